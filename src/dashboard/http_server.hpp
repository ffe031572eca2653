#pragma once
// A small asynchronous HTTP/1.1 server on Asio for the dashboard (issue 17, parts 4 and 5):
// GET and HEAD, keep-alive, and the limits of HttpLimits (http.hpp).
//
// One io thread accepts, reads and writes every connection; it never blocks, so a peer that
// sends nothing, or a byte at a time, costs it nothing but the bytes and a timer: a hundred of
// them do not delay anyone else's /health. A connection holds a socket, one timer and the
// bytes of its request received so far (no buffer is allocated ahead: readiness is awaited,
// then the bytes are read into one scratch buffer of the server's and only those are kept).
// The handler runs on the io thread and must be quick (routing, checks, static pages); what
// takes time (rendering a snapshot as JSON, a story that waits on the scheduler) goes in the
// response's `render`, run on one of the render threads before the response is written.
//
// Deadlines: a request must arrive whole within request_deadline of its first byte (of the
// accept, for a connection's first request): else 408 if part of it came, and the connection
// is closed. A kept-alive connection idle for idle_keep_alive is closed; a response not taken
// within write_deadline closes it too. Past max_connections, a new connection is answered 503
// and closed. After an error response the server stops sending, and reads and drops what the
// peer still sends for a moment before closing, so that the peer reads the response rather
// than a reset.
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "comm/accept_backoff.hpp"
#include "dashboard/http.hpp"

namespace distrib::detail {

class HttpServer {
 public:
  /// Runs on the io thread, for GET and HEAD (other methods are answered 405 by the server).
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  struct Options {
    std::string host = "0.0.0.0";
    std::uint16_t port = 0;  // 0: any free port
    HttpLimits limits;
    std::size_t render_threads = 2;
    std::string name = "http";  // in log lines
  };

  /// Binds and listens: SO_REUSEADDR (a restarted server binds past TIME_WAIT), never
  /// SO_REUSEPORT, which would let a second server share the port and take some of its
  /// requests instead of failing. Throws CommError if it cannot. Serves from start().
  HttpServer(Options options, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Starts the io thread and the render threads.
  void start();
  /// Stops serving and closes every connection; at any time (before start() too), from any
  /// thread but the server's own, more than once.
  void stop();
  std::uint16_t port() const { return port_; }
  /// Connections open now.
  std::size_t connections() const { return open_.load(); }

 private:
  class Connection;
  void accept();
  void refuse(asio::ip::tcp::socket socket);
  void closed(Connection* connection);

  Options options_;
  Handler handler_;
  asio::io_context io_;         // every socket and timer
  asio::io_context render_io_;  // the render threads
  asio::executor_work_guard<asio::io_context::executor_type> io_work_, render_work_;
  asio::ip::tcp::acceptor acceptor_;
  AcceptBackoff backoff_;
  std::vector<char> scratch_;  // what a read lands in (io thread only)
  std::unordered_map<Connection*, std::shared_ptr<Connection>> connections_;  // io thread only
  std::atomic<std::size_t> open_{0};
  std::chrono::steady_clock::time_point last_refusal_log_{};
  std::uint64_t refused_since_log_ = 0;
  std::uint16_t port_ = 0;
  std::mutex stop_mutex_;
  bool started_ = false, stopped_ = false;
  std::thread io_thread_;
  std::vector<std::thread> render_threads_;
};

}  // namespace distrib::detail
