// inproc:// connections: messages between two io threads of one process, without sockets.
#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/executor_work_guard.hpp>

#include <future>
#include <thread>

#include "comm/connection.hpp"
#include "comm/inproc_stream.hpp"
#include "comm/message.hpp"
#include "comm/transport.hpp"
#include "distrib/errors.hpp"

namespace distrib::detail {
namespace {

using namespace std::chrono_literals;

struct IoThread {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread{[this] { io.run(); }};
  /// Joins the thread: nothing runs on it afterwards (call before the objects its handlers use go).
  void stop() {
    work.reset();
    io.stop();
    if (thread.joinable()) thread.join();
  }
  ~IoThread() { stop(); }
};

OutMessage message_with_frame(std::size_t frame_bytes) {
  OutMessage m = make_error("x");
  Bytes frame = Bytes::allocate(frame_bytes);
  for (std::size_t i = 0; i < frame_bytes; ++i) frame.mutable_data()[i] = static_cast<std::byte>(i * 7);
  m.frames.push_back(std::move(frame));
  return m;
}

TEST(Inproc, MessagesOfEverySizeCrossInOrderAndCloseIsSeenByThePeer) {
  IoThread server_thread, client_thread;
  const std::string address = unique_inproc_address();
  auto listener = listen(server_thread.io, address, Security{}, "test");
  EXPECT_EQ(listener->address(), address);

  std::promise<std::vector<std::size_t>> got;
  std::promise<std::string> server_closed;
  std::vector<std::size_t> sizes;
  ConnectionPtr server;
  listener->async_accept([&](asio::error_code ec, ByteStreamPtr stream) {
    ASSERT_FALSE(ec);
    server = std::make_shared<Connection>(std::move(stream), FrameLimits{}, auth::Side::acceptor);
    server->start(
        [&](InMessage&& m) {
          const auto& f = m.frames.at(0);
          for (std::size_t i = 0; i < f.size(); i += 4093)
            if (f.data()[i] != static_cast<std::byte>(i * 7)) throw std::runtime_error("corrupt frame");
          sizes.push_back(f.size());
          if (sizes.size() == 4) got.set_value(sizes);
        },
        [&](const std::string& reason) { server_closed.set_value(reason); });
  });

  auto client = std::make_shared<Connection>(connect(client_thread.io, address, Security{}, 1s));
  asio::post(client_thread.io, [&] {
    client->start([](InMessage&&) {}, [](const std::string&) {});
    for (std::size_t n : {std::size_t{1}, std::size_t{100'000}, std::size_t{3} << 20, std::size_t{64}})
      client->send(message_with_frame(n));
  });
  auto f = got.get_future();
  ASSERT_EQ(f.wait_for(30s), std::future_status::ready);
  EXPECT_EQ(f.get(), (std::vector<std::size_t>{1, 100'000, std::size_t{3} << 20, 64}));

  asio::post(client_thread.io, [&] { client->close("done"); });
  auto closed = server_closed.get_future();
  ASSERT_EQ(closed.wait_for(30s), std::future_status::ready);
  EXPECT_FALSE(closed.get().empty());
  std::promise<void> listener_closed;
  asio::post(server_thread.io, [&] {
    listener->close();
    if (server) server->close("test over");
    listener_closed.set_value();
  });
  listener_closed.get_future().wait();
  // The threads end before the connections, promises and listener their handlers use.
  client_thread.stop();
  server_thread.stop();
}

TEST(Inproc, ConnectingToANameNobodyListensOnIsRefused) {
  asio::io_context io;
  EXPECT_THROW(connect(io, unique_inproc_address(), Security{}, 1s), CommError);
  const std::string address = unique_inproc_address();
  auto listener = listen(io, address, Security{}, "test");
  EXPECT_THROW(listen(io, address, Security{}, "test"), CommError);  // the name is taken
  listener->close();
  EXPECT_THROW(connect(io, address, Security{}, 1s), CommError);  // and free again once closed
  EXPECT_NO_THROW(listen(io, address, Security{}, "test"));
}

}  // namespace
}  // namespace distrib::detail
