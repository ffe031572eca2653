// The TLS stream's edges (comm/tls_stream.cpp), over real loopback TCP in one io_context:
// writes that span many records and batches, reads into buffers smaller than a record, and a
// peer that goes away in the middle of a record.
#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "comm/tls.hpp"
#include "stream_test_support.hpp"

namespace distrib::detail {
namespace {

using namespace std::chrono_literals;
using test::tcp_pair;
using test::write_all;

bool run_until(asio::io_context& io, const std::function<bool()>& done) { return test::run_until(io, done, 20s); }



std::string pattern(std::size_t size, std::size_t seed) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>((i * 131 + seed + i / 7919) & 255);
  return s;
}


// Reads into `into` at most `chunk` bytes per call until it is full or the stream fails.
void read_all(ByteStream& s, std::shared_ptr<std::string> into, std::size_t at, std::size_t chunk,
              std::function<void(asio::error_code, std::size_t)> done) {
  if (at == into->size()) return done({}, at);
  s.async_read_some(asio::buffer(into->data() + at, std::min(chunk, into->size() - at)),
                    [&s, into, at, chunk, done = std::move(done)](asio::error_code ec, std::size_t n) mutable {
                      if (ec) return done(ec, at + n);
                      read_all(s, into, at + n, chunk, std::move(done));
                    });
}

struct Handshaken {
  std::optional<asio::error_code> client, server;
};

// Mutual handshakes of two streams, both given one throw-away CA and certificate.
void handshake(asio::io_context& io, ByteStream& client, ByteStream& server) {
  Handshaken h;
  client.async_handshake([&](asio::error_code ec) { h.client = ec; });
  server.async_handshake([&](asio::error_code ec) { h.server = ec; });
  ASSERT_TRUE(run_until(io, [&] { return h.client && h.server; }));
  ASSERT_FALSE(*h.client) << h.client->message();
  ASSERT_FALSE(*h.server) << h.server->message();
}

struct Pair {
  asio::io_context io;
  std::shared_ptr<TlsContext> context = tls_backend().make_context(Security::temporary(), TlsRole::client);
  ByteStreamPtr client, server;
  Pair() {
    auto [client_socket, server_socket] = tcp_pair(io);
    client = context->wrap(std::move(client_socket), TlsRole::client);
    server = context->wrap(std::move(server_socket), TlsRole::server);
    handshake(io, *client, *server);
  }
};

TEST(TlsStream, AWriteOfManyRecordsArrivesWhole) {
  Pair pair;
  // One part of many batches with a tail shorter than a record, then small parts after it.
  const std::string big = pattern((5 << 20) + 12345, 3);
  const std::string small = pattern(30, 9);
  auto parts = std::make_shared<std::vector<asio::const_buffer>>();
  parts->push_back(asio::buffer(big));
  std::string expected = big;
  for (int i = 0; i < 10; ++i) parts->push_back(asio::buffer(small)), expected += small;
  std::optional<asio::error_code> wrote;
  write_all(*pair.client, parts, 0, [&](asio::error_code ec) { wrote = ec; });
  auto got = std::make_shared<std::string>(expected.size(), '\0');
  std::optional<asio::error_code> read;
  read_all(*pair.server, got, 0, 1 << 18, [&](asio::error_code ec, std::size_t) { read = ec; });
  ASSERT_TRUE(run_until(pair.io, [&] { return wrote.has_value() && read.has_value(); }));
  ASSERT_FALSE(*wrote) << wrote->message();
  ASSERT_FALSE(*read) << read->message();
  EXPECT_TRUE(*got == expected);
}

TEST(TlsStream, ARecordReadInPiecesSmallerThanItself) {
  Pair pair;
  const std::string message = pattern(3 * 16384 + 77, 5);
  auto parts = std::make_shared<std::vector<asio::const_buffer>>(1, asio::buffer(message));
  std::optional<asio::error_code> wrote;
  write_all(*pair.client, parts, 0, [&](asio::error_code ec) { wrote = ec; });
  for (const std::size_t chunk : {std::size_t{1}, std::size_t{1000}, std::size_t{1} << 20}) {
    SCOPED_TRACE(chunk);
    if (chunk != 1) {  // the same message again for every reader
      auto again = std::make_shared<std::vector<asio::const_buffer>>(1, asio::buffer(message));
      write_all(*pair.client, again, 0, [&](asio::error_code ec) { wrote = ec; });
    }
    auto got = std::make_shared<std::string>(message.size(), '\0');
    std::optional<asio::error_code> read;
    read_all(*pair.server, got, 0, chunk, [&](asio::error_code ec, std::size_t) { read = ec; });
    ASSERT_TRUE(run_until(pair.io, [&] { return read.has_value(); }));
    ASSERT_FALSE(*read) << read->message();
    EXPECT_TRUE(*got == message);
  }
}

// Forwards bytes between two sockets; from `cut_at` bytes client to server on, forwards no
// more and closes the server's side.
class Relay {
 public:
  Relay(StreamSocket to_client, StreamSocket to_server)
      : sockets_{std::move(to_client), std::move(to_server)} {
    pump(0, 1);
    pump(1, 0);
  }
  std::size_t forwarded_up() const { return forwarded_[0]; }
  void cut_at(std::size_t bytes) { cut_at_ = bytes; }

 private:
  void pump(int from, int to) {
    sockets_[from].async_read_some(asio::buffer(buffers_[from]), [this, from, to](asio::error_code ec, std::size_t n) {
      if (ec) return;
      if (from == 0 && forwarded_[0] + n > cut_at_) {
        n = cut_at_ - forwarded_[0];
        asio::write(sockets_[to], asio::buffer(buffers_[from].data(), n), ec);
        forwarded_[0] += n;
        sockets_[1].close(ec);
        return;
      }
      asio::write(sockets_[to], asio::buffer(buffers_[from].data(), n), ec);
      forwarded_[from] += n;
      if (!ec) pump(from, to);
    });
  }
  std::array<StreamSocket, 2> sockets_;
  std::array<std::array<char, 4096>, 2> buffers_{};
  std::array<std::size_t, 2> forwarded_{};
  std::size_t cut_at_ = static_cast<std::size_t>(-1);
};

TEST(TlsStream, APeerGoneInTheMiddleOfARecordEndsTheReadInsteadOfHanging) {
  asio::io_context io;
  auto [client_socket, relay_client] = tcp_pair(io);
  auto [relay_server, server_socket] = tcp_pair(io);
  Relay relay(std::move(relay_client), std::move(relay_server));
  auto context = tls_backend().make_context(Security::temporary(), TlsRole::client);
  ByteStreamPtr client = context->wrap(std::move(client_socket), TlsRole::client);
  ByteStreamPtr server = context->wrap(std::move(server_socket), TlsRole::server);
  handshake(io, *client, *server);
  // Half of the first record gets through, then the server's side is closed.
  relay.cut_at(relay.forwarded_up() + 8000);
  const std::string message = pattern(100000, 1);
  std::optional<asio::error_code> wrote;
  write_all(*client, std::make_shared<std::vector<asio::const_buffer>>(1, asio::buffer(message)), 0,
            [&](asio::error_code ec) { wrote = ec; });
  auto got = std::make_shared<std::string>(message.size(), '\0');
  std::optional<asio::error_code> read;
  std::size_t received = 0;
  read_all(*server, got, 0, 1 << 20, [&](asio::error_code ec, std::size_t n) { read = ec, received = n; });
  ASSERT_TRUE(run_until(io, [&] { return read.has_value(); })) << "the read hung";
  EXPECT_EQ(*read, asio::error::eof) << read->message();
  EXPECT_LT(received, 8000u);
}

}  // namespace
}  // namespace distrib::detail
