// Connection::send_later: a deferred message arrives on its own after a short delay, rides
// along in order with the next send(), and a connection closed while one is pending closes
// cleanly. Two Connections over a loopback socket pair (OS-chosen port) in this process.
#include "comm/connection.hpp"

#include <gtest/gtest.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>

#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "comm/message.hpp"
#include "proto/distrib.capnp.h"

namespace distrib::detail {
namespace {

using namespace std::chrono_literals;

OutMessage release_message(const std::string& key) {
  MessageBuilder mb;
  mb.root().initReleaseKeys(1).set(0, key);
  return mb.finish();
}

// A connected pair: `sender` and `receiver`, both run by one io thread.
class ConnectionPair : public ::testing::Test {
 protected:
  void SetUp() override {
    asio::ip::tcp::acceptor acceptor(io_);
    listen_on(acceptor, "127.0.0.1", 0, "test");
    auto port = acceptor.local_endpoint().port();
    asio::ip::tcp::socket client(io_);
    client.connect({asio::ip::make_address("127.0.0.1"), port});
    auto server = acceptor.accept();
    sender_ = std::make_shared<Connection>(std::move(client));
    receiver_ = std::make_shared<Connection>(std::move(server));
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

TEST_F(ConnectionPair, DeferredMessageArrivesOnItsOwn) {
  expected_ = 1;
  auto sent_at = std::chrono::steady_clock::now();
  on_io([&] { sender_->send_later(release_message("alone")); });
  ASSERT_EQ(all_received_.get_future().wait_for(30s), std::future_status::ready);
  // It was held for the delay, not written at once (a lower bound: the timer cannot fire early).
  EXPECT_GE(std::chrono::steady_clock::now() - sent_at, kDeferredWriteDelay);
  std::lock_guard lock(mutex_);
  EXPECT_EQ(received_, std::vector<std::string>{"alone"});
}

TEST_F(ConnectionPair, DeferredMessagesGoInOrderWithTheNextSend) {
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

TEST_F(ConnectionPair, ClosingWithADeferredMessagePendingClosesOnce) {
  on_io([&] {
    sender_->send_later(release_message("dropped"));
    sender_->close("closed with a deferred message");
  });
  on_io([&] {});  // after the close; the cancelled timer's handler finds the connection closed
  EXPECT_EQ(sender_closes_, 1);
  EXPECT_FALSE(sender_->is_open());
}

}  // namespace
}  // namespace distrib::detail
