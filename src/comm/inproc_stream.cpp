#include "comm/inproc_stream.hpp"

#include <unistd.h>

#include <asio/post.hpp>

#include <atomic>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

#include "comm/transport.hpp"
#include "distrib/errors.hpp"

namespace distrib::detail {
namespace {

using IoCompletion = ByteStream::IoCompletion;

void complete(const asio::any_io_executor& executor, IoCompletion done, asio::error_code ec, std::size_t n) {
  asio::post(executor, [done = std::move(done), ec, n]() mutable { done(ec, n); });
}

/// One direction of a connection: at most one write and one read wait in it at a time
/// (a Connection has one of each outstanding).
struct Direction {
  std::vector<std::byte> buffered;  // written, not yet read: at most kBufferBytes
  std::size_t buffered_from = 0;    // what of it was read
  std::span<const asio::const_buffer> write_parts;
  IoCompletion write_done;
  asio::any_io_executor write_executor;
  asio::mutable_buffer read_into;
  IoCompletion read_done;
  asio::any_io_executor read_executor;
  bool writer_closed = false, reader_closed = false;
};

// A write that finds no read waiting is copied here and completes, as into a socket's
// buffer (both ends may write before either reads: the token exchange does). Past this,
// it waits for the reader, which then copies from the writer's buffers directly.
constexpr std::size_t kBufferBytes = 256 * 1024;

/// Copies from `parts` into `into` until either runs out.
std::size_t copy_parts(std::span<const asio::const_buffer> parts, asio::mutable_buffer into) {
  std::size_t n = 0;
  for (const auto& part : parts) {
    const std::size_t take = std::min(part.size(), into.size() - n);
    if (take > 0) std::memcpy(static_cast<std::byte*>(into.data()) + n, part.data(), take);
    n += take;
    if (n == into.size()) break;
  }
  return n;
}

std::size_t total_size(std::span<const asio::const_buffer> parts) {
  std::size_t n = 0;
  for (const auto& p : parts) n += p.size();
  return n;
}

/// The two directions of a connection; directions[i] is written by end i, read by end 1 - i.
struct Pipe {
  std::mutex mutex;
  Direction directions[2];
};

// Completions found under the lock, posted after it is released.
struct Completions {
  struct One {
    asio::any_io_executor executor;
    IoCompletion done;
    asio::error_code ec;
    std::size_t n;
  };
  std::vector<One> list;
  void add(asio::any_io_executor executor, IoCompletion done, asio::error_code ec, std::size_t n) {
    if (done) list.push_back({std::move(executor), std::move(done), ec, n});
  }
  void post_all() {
    for (auto& c : list) complete(c.executor, std::move(c.done), c.ec, c.n);
  }
};

class InprocStream final : public ByteStream {
 public:
  InprocStream(std::shared_ptr<Pipe> pipe, int side, asio::any_io_executor executor, std::string peer)
      : pipe_(std::move(pipe)), side_(side), executor_(std::move(executor)), peer_(std::move(peer)) {}
  ~InprocStream() override { close(); }

  asio::any_io_executor executor() override { return executor_; }
  void async_handshake(Completion done) override {
    asio::post(executor_, [done = std::move(done)]() mutable { done(asio::error_code{}); });
  }

  void async_write_some(std::span<const asio::const_buffer> parts, IoCompletion done) override {
    Completions ready;
    {
      std::lock_guard lock(pipe_->mutex);
      Direction& d = pipe_->directions[side_];
      if (closed_) ready.add(executor_, std::move(done), asio::error::operation_aborted, 0);
      else if (d.reader_closed) ready.add(executor_, std::move(done), asio::error::broken_pipe, 0);
      else if (total_size(parts) == 0) ready.add(executor_, std::move(done), {}, 0);
      else if (d.read_done) {
        const std::size_t n = copy_parts(parts, d.read_into);
        ready.add(std::move(d.read_executor), std::move(d.read_done), {}, n);
        d.read_done = {};
        ready.add(executor_, std::move(done), {}, n);
      } else if (d.buffered.size() - d.buffered_from < kBufferBytes) {
        if (d.buffered_from == d.buffered.size() || d.buffered_from >= kBufferBytes) {  // drop what was read
          d.buffered.erase(d.buffered.begin(), d.buffered.begin() + static_cast<std::ptrdiff_t>(d.buffered_from));
          d.buffered_from = 0;
        }
        const std::size_t at = d.buffered.size();
        const std::size_t room = kBufferBytes - (at - d.buffered_from);
        d.buffered.resize(at + std::min(room, total_size(parts)));
        const std::size_t n = copy_parts(parts, {d.buffered.data() + at, d.buffered.size() - at});
        ready.add(executor_, std::move(done), {}, n);
      } else {
        d.write_parts = parts;
        d.write_done = std::move(done);
        d.write_executor = executor_;
      }
    }
    ready.post_all();
  }

  void async_read_some(asio::mutable_buffer into, IoCompletion done) override {
    Completions ready;
    {
      std::lock_guard lock(pipe_->mutex);
      Direction& d = pipe_->directions[1 - side_];
      if (closed_) ready.add(executor_, std::move(done), asio::error::operation_aborted, 0);
      else if (into.size() == 0) ready.add(executor_, std::move(done), {}, 0);
      else if (d.buffered_from < d.buffered.size() || d.write_done) {
        // What was buffered comes first, then what a waiting write holds.
        const std::size_t from_buffer = std::min(into.size(), d.buffered.size() - d.buffered_from);
        if (from_buffer > 0) std::memcpy(into.data(), d.buffered.data() + d.buffered_from, from_buffer);
        d.buffered_from += from_buffer;
        std::size_t n = from_buffer;
        if (d.write_done && n < into.size()) {
          const std::size_t taken = copy_parts(d.write_parts, into + n);
          n += taken;
          ready.add(std::move(d.write_executor), std::move(d.write_done), {}, taken);
          d.write_done = {};
        }
        ready.add(executor_, std::move(done), {}, n);
      } else if (d.writer_closed) {
        ready.add(executor_, std::move(done), asio::error::eof, 0);
      } else {
        d.read_into = into;
        d.read_done = std::move(done);
        d.read_executor = executor_;
      }
    }
    ready.post_all();
  }

  // Our waiting operations end with operation_aborted, the peer's with end of stream (its
  // read) or a broken pipe (its write), as on a socket.
  void close() override {
    Completions ready;
    {
      std::lock_guard lock(pipe_->mutex);
      if (closed_) return;
      closed_ = true;
      Direction& out = pipe_->directions[side_];
      Direction& in = pipe_->directions[1 - side_];
      out.writer_closed = true;
      in.reader_closed = true;
      ready.add(std::move(out.write_executor), std::move(out.write_done), asio::error::operation_aborted, 0);
      ready.add(std::move(in.read_executor), std::move(in.read_done), asio::error::operation_aborted, 0);
      ready.add(std::move(out.read_executor), std::move(out.read_done), asio::error::eof, 0);
      ready.add(std::move(in.write_executor), std::move(in.write_done), asio::error::broken_pipe, 0);
      out.write_done = {};
      in.read_done = {};
      out.read_done = {};
      in.write_done = {};
    }
    ready.post_all();
  }

  const std::string& peer() const override { return peer_; }
  std::string local_ip() const override { return ""; }

 private:
  std::shared_ptr<Pipe> pipe_;
  int side_;
  asio::any_io_executor executor_;
  std::string peer_;
  bool closed_ = false;  // guarded by pipe_->mutex
};

// ---- listeners ----------------------------------------------------------------------------

using AcceptHandler = UniqueFunction<void(asio::error_code, ByteStreamPtr)>;

struct Acceptor {
  std::mutex mutex;
  asio::any_io_executor executor;
  std::string address;
  std::string token;  // what accepted streams prove ("": the process's)
  std::deque<ByteStreamPtr> backlog;  // connected, not yet accepted
  AcceptHandler pending;
  bool closed = false;
  std::uint64_t connections = 0;
};

// Connections waiting for accept beyond this are refused, as a full listen backlog.
constexpr std::size_t kMaxBacklog = 4096;

std::mutex registry_mutex;
std::map<std::string, std::weak_ptr<Acceptor>>& registry() {
  static std::map<std::string, std::weak_ptr<Acceptor>> r;
  return r;
}

class InprocListener final : public Listener {
 public:
  explicit InprocListener(std::shared_ptr<Acceptor> acceptor) : acceptor_(std::move(acceptor)) {}
  ~InprocListener() override { close(); }

  const std::string& address() const override { return acceptor_->address; }
  asio::ip::address bound_ip() const override { return {}; }
  std::uint16_t port() const override { return 0; }

  void async_accept(AcceptHandler done) override {
    std::unique_lock lock(acceptor_->mutex);
    if (acceptor_->closed) {
      lock.unlock();
      return post_accept(std::move(done), asio::error::operation_aborted, nullptr);
    }
    if (acceptor_->backlog.empty()) {
      acceptor_->pending = std::move(done);
      return;
    }
    auto stream = std::move(acceptor_->backlog.front());
    acceptor_->backlog.pop_front();
    lock.unlock();
    post_accept(std::move(done), {}, std::move(stream));
  }

  void close() override {
    {
      std::lock_guard lock(registry_mutex);
      auto it = registry().find(acceptor_->address);
      if (it != registry().end() && it->second.lock() == acceptor_) registry().erase(it);
    }
    AcceptHandler pending;
    {
      std::lock_guard lock(acceptor_->mutex);
      if (acceptor_->closed) return;
      acceptor_->closed = true;
      acceptor_->backlog.clear();
      pending = std::move(acceptor_->pending);
      acceptor_->pending = {};
    }
    if (pending) post_accept(std::move(pending), asio::error::operation_aborted, nullptr);
  }

 private:
  void post_accept(AcceptHandler done, asio::error_code ec, ByteStreamPtr stream) {
    asio::post(acceptor_->executor, [done = std::move(done), ec, stream = std::move(stream)]() mutable {
      done(ec, std::move(stream));
    });
  }
  std::shared_ptr<Acceptor> acceptor_;
};

}  // namespace

std::unique_ptr<Listener> listen_inproc(asio::io_context& io, const std::string& address, const std::string& token) {
  auto acceptor = std::make_shared<Acceptor>();
  acceptor->executor = io.get_executor();
  acceptor->address = address;
  acceptor->token = token;
  std::lock_guard lock(registry_mutex);
  auto& slot = registry()[address];
  if (slot.lock()) throw CommError("cannot listen on " + address + ": another listener of this process has it");
  slot = acceptor;
  return std::make_unique<InprocListener>(std::move(acceptor));
}

ByteStreamPtr connect_inproc(asio::io_context& io, const std::string& address, const std::string& token) {
  std::shared_ptr<Acceptor> acceptor;
  {
    std::lock_guard lock(registry_mutex);
    auto it = registry().find(address);
    if (it != registry().end()) acceptor = it->second.lock();
  }
  const auto refused = [&] {
    return CommError("cannot connect to " + address + ": no listener of this process has it (connection refused)");
  };
  if (!acceptor) throw refused();
  auto pipe = std::make_shared<Pipe>();
  std::unique_lock lock(acceptor->mutex);
  if (acceptor->closed || acceptor->backlog.size() >= kMaxBacklog) throw refused();
  const std::string server_peer = address + " (connection " + std::to_string(++acceptor->connections) + ")";
  auto server_end = std::make_unique<InprocStream>(pipe, 1, acceptor->executor, server_peer);
  auto client_end = std::make_unique<InprocStream>(pipe, 0, io.get_executor(), address);
  if (!acceptor->token.empty()) server_end->set_auth_token(acceptor->token);
  if (!token.empty()) client_end->set_auth_token(token);
  if (acceptor->pending) {
    auto done = std::move(acceptor->pending);
    acceptor->pending = {};
    lock.unlock();
    asio::post(acceptor->executor, [done = std::move(done), s = ByteStreamPtr(std::move(server_end))]() mutable {
      done(asio::error_code{}, std::move(s));
    });
  } else {
    acceptor->backlog.push_back(std::move(server_end));
  }
  return client_end;
}

std::string unique_inproc_address() {
  static std::atomic<std::uint64_t> next{0};
  return "inproc://distrib-" + std::to_string(::getpid()) + "-" + std::to_string(++next);
}

}  // namespace distrib::detail
