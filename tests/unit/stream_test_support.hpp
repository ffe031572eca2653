#pragma once
// What the ByteStream tests (tls_test.cpp, tls_stream_test.cpp) share: a connected pair of
// loopback sockets, running an io_context until a condition holds, and writing every part.
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "comm/byte_stream.hpp"

namespace distrib::detail::test {

struct SocketPair {
  StreamSocket client;
  StreamSocket server;
};

inline SocketPair tcp_pair(asio::io_context& io) {
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket client(io);
  client.connect(acceptor.local_endpoint());
  asio::ip::tcp::socket server = acceptor.accept();
  return {StreamSocket(std::move(client)), StreamSocket(std::move(server))};
}

/// Runs `io` until `done()`, for `timeout` at most (then the caller's expectations fail).
inline bool run_until(asio::io_context& io, const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    if (io.stopped()) io.restart();
    io.run_one_for(std::chrono::milliseconds(50));
  }
  return done();
}

/// Writes every part from `first` on (a write_all over async_write_some), then calls done.
inline void write_all(ByteStream& s, std::shared_ptr<std::vector<asio::const_buffer>> parts, std::size_t first,
                      std::function<void(asio::error_code)> done) {
  while (first < parts->size() && (*parts)[first].size() == 0) ++first;
  if (first == parts->size()) return done({});
  s.async_write_some(std::span(*parts).subspan(first),
                     [&s, parts, first, done = std::move(done)](asio::error_code ec, std::size_t n) mutable {
                       if (ec) return done(ec);
                       std::size_t i = first;
                       for (; n > 0; ++i) {
                         const std::size_t take = std::min(n, (*parts)[i].size());
                         (*parts)[i] += take;
                         n -= take;
                         if ((*parts)[i].size() > 0) break;
                       }
                       write_all(s, parts, i, std::move(done));
                     });
}

}  // namespace distrib::detail::test
