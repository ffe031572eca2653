#include "tcp_proxy.hpp"

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <array>
#include <future>
#include <thread>
#include <vector>

#include "comm/endpoint.hpp"

namespace distrib::test {

using asio::ip::tcp;

namespace {
struct Pair : std::enable_shared_from_this<Pair> {
  explicit Pair(asio::io_context& io) : client(io), server(io) {}
  tcp::socket client, server;
  std::array<char, 65536> up{}, down{};
  void close() {
    asio::error_code ec;
    client.close(ec);
    server.close(ec);
  }
  void pump(tcp::socket& from, tcp::socket& to, std::array<char, 65536>& buf) {
    from.async_read_some(asio::buffer(buf), [self = shared_from_this(), &from, &to, &buf](asio::error_code ec, std::size_t n) {
      if (ec) return self->close();
      asio::async_write(to, asio::buffer(buf.data(), n), [self, &from, &to, &buf](asio::error_code ec2, std::size_t) {
        if (ec2) return self->close();
        self->pump(from, to, buf);
      });
    });
  }
};
}  // namespace

struct TcpProxy::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  tcp::endpoint target;
  std::vector<std::weak_ptr<Pair>> pairs;  // io thread only
  bool blocked = false;                    // io thread only
  std::atomic<int> forwarded{0};
  std::thread thread;

  void accept() {
    auto pair = std::make_shared<Pair>(io);
    acceptor.async_accept(pair->client, [this, pair](asio::error_code ec) {
      if (ec) return;
      if (blocked) {
        pair->close();
      } else {
        asio::error_code cec;
        pair->server.connect(target, cec);
        if (cec) {
          pair->close();
        } else {
          ++forwarded;
          pairs.push_back(pair);
          pair->pump(pair->client, pair->server, pair->up);
          pair->pump(pair->server, pair->client, pair->down);
        }
      }
      accept();
    });
  }
  void cut_all() {
    for (auto& w : pairs)
      if (auto p = w.lock()) p->close();
    pairs.clear();
  }
  // Runs `fn` on the io thread and waits for it.
  template <class Fn>
  void on_io(Fn fn) {
    std::promise<void> done;
    asio::post(io, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }
};

TcpProxy::TcpProxy(const std::string& target) : impl_(std::make_unique<Impl>()) {
  auto [host, port] = detail::parse_address(target);
  impl_->target = tcp::endpoint(asio::ip::make_address(host), port);
  tcp::endpoint here(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(here.protocol());
  impl_->acceptor.bind(here);
  impl_->acceptor.listen();
  impl_->accept();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

TcpProxy::~TcpProxy() {
  impl_->on_io([this] {
    asio::error_code ec;
    impl_->acceptor.close(ec);
    impl_->cut_all();
  });
  impl_->io.stop();
  impl_->thread.join();
}

std::string TcpProxy::address() const {
  return "tcp://127.0.0.1:" + std::to_string(impl_->acceptor.local_endpoint().port());
}

void TcpProxy::cut() {
  impl_->on_io([this] { impl_->cut_all(); });
}

void TcpProxy::block() {
  impl_->on_io([this] {
    impl_->blocked = true;
    impl_->cut_all();
  });
}

void TcpProxy::unblock() {
  impl_->on_io([this] { impl_->blocked = false; });
}

int TcpProxy::forwarded() const { return impl_->forwarded; }

}  // namespace distrib::test
