// Connection::send_later: a deferred message arrives on its own after a short delay, rides
// along in order with the next send(), and a connection closed while one is pending closes
// cleanly. Two Connections in this process, over a loopback TCP pair (OS-chosen port) and
// over an abstract Unix socket pair: the same checks run on both kinds.
#include "comm/connection.hpp"

#include <gtest/gtest.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/connect_pair.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "comm/message.hpp"
#include "distrib/errors.hpp"
#include "proto/distrib.capnp.h"

namespace distrib::detail {
namespace {

using namespace std::chrono_literals;

OutMessage release_message(const std::string& key) {
  MessageBuilder mb;
  mb.root().initReleaseKeys(1).set(0, key);
  return mb.finish();
}

enum class Transport { tcp, unix_socket };

// A connected pair: `sender` and `receiver`, both run by one io thread.
class ConnectionPair : public ::testing::TestWithParam<Transport> {
 protected:
  void SetUp() override {
    if (GetParam() == Transport::tcp) {
      asio::ip::tcp::acceptor acceptor(io_);
      listen_on(acceptor, "127.0.0.1", 0, "test");
      auto port = acceptor.local_endpoint().port();
      sender_ = std::make_shared<Connection>(connect_socket(io_, format_address("127.0.0.1", port), 10s));
      receiver_ = std::make_shared<Connection>(StreamSocket(acceptor.accept()));
    } else {
      asio::local::stream_protocol::acceptor acceptor(io_);
      auto name = unique_unix_socket_name();
      listen_on_unix(acceptor, name, "test");
      sender_ = std::make_shared<Connection>(connect_socket(io_, unix_address(name), 10s));
      receiver_ = std::make_shared<Connection>(StreamSocket(acceptor.accept()));
    }
    sender_->start([](InMessage&&) {}, [this](const std::string&) { ++sender_closes_; });
    receiver_->start(
        [this](InMessage&& m) {
          MessageReader reader(std::move(m));
          std::lock_guard lock(mutex_);
          received_.push_back(reader.root().getReleaseKeys()[0]);
          if (received_.size() == expected_) all_received_.set_value();
        },
        [](const std::string&) {});
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    asio::post(io_, [this] {
      sender_->close("test over");
      receiver_->close("test over");
    });
    work_.reset();  // the loop ends once the closes are done
    thread_.join();
  }

  // Runs `f` on the io thread and waits for it.
  template <class F>
  void on_io(F f) {
    std::promise<void> done;
    asio::post(io_, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }

  asio::io_context io_;
  // Keeps the loop running when both connections are closed (a peer's EOF closes the other).
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::shared_ptr<Connection> sender_, receiver_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<std::string> received_;
  std::size_t expected_ = 0;
  std::promise<void> all_received_;
  int sender_closes_ = 0;
};

TEST_P(ConnectionPair, DeferredMessageArrivesOnItsOwn) {
  expected_ = 1;
  auto sent_at = std::chrono::steady_clock::now();
  on_io([&] { sender_->send_later(release_message("alone")); });
  ASSERT_EQ(all_received_.get_future().wait_for(30s), std::future_status::ready);
  // It was held for the delay, not written at once (a lower bound: the timer cannot fire early).
  EXPECT_GE(std::chrono::steady_clock::now() - sent_at, kDeferredWriteDelay);
  std::lock_guard lock(mutex_);
  EXPECT_EQ(received_, std::vector<std::string>{"alone"});
}

TEST_P(ConnectionPair, DeferredMessagesGoInOrderWithTheNextSend) {
  expected_ = 4;
  on_io([&] {
    sender_->send_later(release_message("a"));
    sender_->send_later(release_message("b"));
    sender_->send(release_message("c"));
    sender_->send_later(release_message("d"));  // queued while "c" is being written
  });
  ASSERT_EQ(all_received_.get_future().wait_for(30s), std::future_status::ready);
  std::lock_guard lock(mutex_);
  EXPECT_EQ(received_, (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST_P(ConnectionPair, ClosingWithADeferredMessagePendingClosesOnce) {
  on_io([&] {
    sender_->send_later(release_message("dropped"));
    sender_->close("closed with a deferred message");
  });
  on_io([&] {});  // after the close; the cancelled timer's handler finds the connection closed
  EXPECT_EQ(sender_closes_, 1);
  EXPECT_FALSE(sender_->is_open());
}

TEST_P(ConnectionPair, PeersAreDescribedByTheirKind) {
  if (GetParam() == Transport::tcp) {
    EXPECT_EQ(sender_->peer().rfind("127.0.0.1:", 0), 0u) << sender_->peer();
  } else {
    EXPECT_EQ(sender_->peer().rfind("unix:@distrib-", 0), 0u) << sender_->peer();
    EXPECT_EQ(receiver_->peer(), sender_->peer());  // the accepted end shows where it came in
  }
}

INSTANTIATE_TEST_SUITE_P(Transports, ConnectionPair, ::testing::Values(Transport::tcp, Transport::unix_socket),
                         [](const auto& info) { return info.param == Transport::tcp ? "tcp" : "unix"; });

TEST(UnixAddresses, AreRecognisedAndRejectedWhereTcpIsNeeded) {
  EXPECT_TRUE(is_unix_address("unix://@distrib-1"));
  EXPECT_FALSE(is_unix_address("tcp://127.0.0.1:1"));
  EXPECT_THROW(parse_address("unix://@distrib-1"), std::invalid_argument);
  asio::io_context io;
  // Not abstract (no '@'): a clear error, not a file created somewhere.
  EXPECT_THROW(connect_socket(io, "unix:///tmp/x.sock", 100ms), std::invalid_argument);
  // Nobody listens: CommError after the timeout.
  EXPECT_THROW(connect_socket(io, unix_address(unique_unix_socket_name()), 50ms), CommError);
}

TEST(Endpoints, DefaultRouteIpIsAConcreteAddress) {
  asio::error_code ec;
  auto ip = asio::ip::make_address(default_route_ip(), ec);
  ASSERT_FALSE(ec) << default_route_ip();
  EXPECT_FALSE(ip.is_unspecified());
}

}  // namespace
}  // namespace distrib::detail

namespace distrib::detail {
namespace {

// Issue 17 part 5: a peer that floods requests and never reads the answers does not grow
// our write queue past FrameLimits::max_queued_write_bytes; once it reads, all answers come.
TEST(ConnectionBackpressure, APeerThatNeverReadsDoesNotGrowTheQueuePastTheCap) {
  asio::io_context io;
  asio::local::stream_protocol::socket ours(io), theirs(io);
  asio::local::connect_pair(ours, theirs);
  FrameLimits limits;
  limits.max_queued_write_bytes = 1 << 20;
  auto server = std::make_shared<Connection>(StreamSocket(std::move(ours)), limits, auth::Side::acceptor);
  auto reply = [] {
    OutMessage m = release_message("answer");
    m.frames.push_back(Bytes::allocate(64 * 1024));
    std::memset(m.frames.back().mutable_data(), 7, 64 * 1024);
    return m;
  };
  std::vector<std::byte> staging;
  std::vector<std::span<const std::byte>> parts;
  std::vector<OutMessage> one;
  one.push_back(reply());
  plan_write(one, staging, parts);
  std::size_t reply_bytes = 0;
  for (auto p : parts) reply_bytes += p.size();
  std::atomic<std::size_t> handled{0};
  std::weak_ptr<Connection> weak = server;
  server->start(
      [&](InMessage&&) {
        ++handled;
        if (auto s = weak.lock()) s->send(reply());
      },
      [](const std::string&) {});
  auto work = asio::make_work_guard(io);
  std::thread thread([&] { io.run(); });
  constexpr std::size_t kRequests = 2000;
  std::vector<OutMessage> requests;
  for (std::size_t i = 0; i < kRequests; ++i) requests.push_back(release_message("k" + std::to_string(i)));
  plan_write(requests, staging, parts);
  for (auto p : parts) asio::write(theirs, asio::buffer(p.data(), p.size()));
  auto on_io = [&](auto f) {
    std::promise<decltype(f())> done;
    asio::post(io, [&] { done.set_value(f()); });
    return done.get_future().get();
  };
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (on_io([&] { return server->read_pauses(); }) == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  EXPECT_GE(on_io([&] { return server->read_pauses(); }), 1u);
  EXPECT_LT(handled.load(), kRequests);
  EXPECT_LE(on_io([&] { return server->peak_pending_write_bytes(); }), limits.max_queued_write_bytes + reply_bytes);
  // Now read everything: every request is answered.
  std::vector<std::byte> buf(1 << 20);
  std::size_t got = 0;
  while (got < kRequests * reply_bytes) got += theirs.read_some(asio::buffer(buf));
  EXPECT_EQ(got, kRequests * reply_bytes);
  EXPECT_EQ(handled.load(), kRequests);
  EXPECT_LE(on_io([&] { return server->peak_pending_write_bytes(); }), limits.max_queued_write_bytes + reply_bytes);
  asio::post(io, [&] { server->close("test over"); });
  work.reset();
  thread.join();
}

}  // namespace
}  // namespace distrib::detail
