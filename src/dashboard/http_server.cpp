#include "dashboard/http_server.hpp"

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <array>

#include "comm/io_loop.hpp"
#include "core/log.hpp"
#include "distrib/errors.hpp"

namespace distrib::detail {

namespace {
// How long the peer may go on sending after an error response before the connection is closed.
constexpr std::chrono::milliseconds kLinger{2000};
constexpr std::size_t kScratchBytes = 16 * 1024;
constexpr std::chrono::seconds kRefusalLogEvery{10};
}  // namespace

// One peer's connection; every member function runs on the io thread.
class HttpServer::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(HttpServer& server, asio::ip::tcp::socket socket)
      : server_(server), socket_(std::move(socket)), timer_(socket_.get_executor()), reader_(server.options_.limits) {}

  void start() {
    asio::error_code ec;
    socket_.non_blocking(true, ec);
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    arm(limits().request_deadline, Phase::request);  // the first request is due from the accept
    wait_readable();
  }

  /// The server stops (its io thread no longer runs): closes the socket.
  void abort() {
    closed_ = true;
    asio::error_code ec;
    timer_.cancel();
    socket_.close(ec);
  }

 private:
  // What the timer is counting down, which is also where the connection is.
  enum class Phase { request, idle, answering, writing, linger };

  const HttpLimits& limits() const { return server_.options_.limits; }

  void arm(std::chrono::milliseconds after, Phase phase) {
    phase_ = phase;
    const auto generation = ++timer_generation_;
    timer_.expires_after(after);
    timer_.async_wait([self = shared_from_this(), generation](asio::error_code ec) {
      if (!ec && generation == self->timer_generation_) self->timed_out();
    });
  }
  void disarm(Phase phase) {
    phase_ = phase;
    ++timer_generation_;
    timer_.cancel();
  }

  void wait_readable() {
    if (waiting_ || closed_) return;
    waiting_ = true;
    socket_.async_wait(asio::socket_base::wait_read, [self = shared_from_this()](asio::error_code ec) {
      self->waiting_ = false;
      if (self->closed_) return;
      if (ec) return self->close();
      self->on_readable();
    });
  }

  void on_readable() {
    if (phase_ == Phase::linger) return drain();
    if (phase_ != Phase::request && phase_ != Phase::idle) return;  // answering: read later
    // Never more than the reader may need to decide: a connection keeps at most the limits.
    const std::size_t room = reader_.max_buffered() + 1 - std::min(reader_.buffered(), reader_.max_buffered() + 1);
    auto& scratch = server_.scratch_;
    asio::error_code ec;
    const std::size_t n = socket_.read_some(asio::buffer(scratch.data(), std::min(room, scratch.size())), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) return wait_readable();
    if (ec) return close();  // the peer closed (or reset) the connection
    reader_.append(std::string_view(scratch.data(), n));
    process();
  }

  // Looks at what has arrived: the next request, an error, or more to wait for.
  void process() {
    HttpRequest request;
    switch (reader_.next(request)) {
      case HttpRequestReader::State::need_more:
        if (phase_ == Phase::idle && reader_.started()) arm(limits().request_deadline, Phase::request);
        return wait_readable();
      case HttpRequestReader::State::error:
        return fail(reader_.error_status(), reader_.error_reason());
      case HttpRequestReader::State::request:
        return handle(std::move(request));
    }
  }

  void handle(HttpRequest request) {
    disarm(Phase::answering);
    const bool head = request.method == "HEAD";
    if (!head && request.method != "GET") {
      HttpResponse r{.status = 405, .body = "only GET and HEAD are served\n", .headers = {{"Allow", "GET, HEAD"}}, .close = true};
      return respond(std::move(r), false, request.keep_alive, request.minor_version);
    }
    HttpResponse response;
    try {
      response = server_.handler_(request);
    } catch (const std::exception& e) {
      log().error("{}: {} {}: {}", server_.options_.name, request.method, request.path, e.what());
      response = HttpResponse{.status = 500, .body = "internal error\n"};
    }
    if (!response.render) return respond(std::move(response), head, request.keep_alive, request.minor_version);
    // Rendered on a render thread, then written from here.
    asio::post(server_.render_io_, [self = shared_from_this(), response = std::move(response), head,
                                    keep_alive = request.keep_alive, minor = request.minor_version,
                                    path = std::move(request.path)]() mutable {
      try {
        auto render = std::move(response.render);
        render(response);
      } catch (const std::exception& e) {
        log().error("{}: rendering {}: {}", self->server_.options_.name, path, e.what());
        response = HttpResponse{.status = 500, .body = "internal error\n"};
      }
      asio::post(self->server_.io_, [self, response = std::move(response), head, keep_alive, minor]() mutable {
        if (!self->closed_) self->respond(std::move(response), head, keep_alive, minor);
      });
    });
  }

  void fail(int status, const std::string& reason) {
    log().debug("{}: {} from {}: {}", server_.options_.name, status, peer(), reason);
    HttpResponse r{.status = status, .body = reason + "\n", .close = true};
    respond(std::move(r), false, false, 1);
  }

  void respond(HttpResponse response, bool head_only, bool keep_alive, int minor_version) {
    keep_ = keep_alive && !response.close;
    head_ = http_response_head(response, keep_, minor_version);
    body_ = head_only ? std::string() : std::move(response.body);
    arm(limits().write_deadline, Phase::writing);
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(body_)};
    asio::async_write(socket_, buffers, [self = shared_from_this()](asio::error_code ec, std::size_t) {
      if (self->closed_) return;
      if (ec) return self->close();
      self->written();
    });
  }

  void written() {
    std::string().swap(head_);  // an idle connection keeps no response
    std::string().swap(body_);
    if (!keep_) return linger();
    // The next request may be in already (pipelined); its deadline starts now.
    if (reader_.started()) arm(limits().request_deadline, Phase::request);
    else arm(limits().idle_keep_alive, Phase::idle);
    process();
  }

  // After the last response: no more sending, and what the peer still sends is read and
  // dropped until it closes or kLinger passes (closing with unread bytes would reset the
  // connection, and the peer could lose the response).
  void linger() {
    asio::error_code ec;
    socket_.shutdown(asio::socket_base::shutdown_send, ec);
    arm(kLinger, Phase::linger);
    drain();
  }
  void drain() {
    auto& scratch = server_.scratch_;
    for (int reads = 0; reads < 16; ++reads) {
      asio::error_code ec;
      socket_.read_some(asio::buffer(scratch), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) return wait_readable();
      if (ec) return close();
    }
    wait_readable();
  }

  void timed_out() {
    switch (phase_) {
      case Phase::request:
        if (reader_.started())
          return fail(408, "the request did not arrive within " + std::to_string(limits().request_deadline.count()) + " ms");
        return close();  // a connection that never sent anything
      case Phase::idle:
      case Phase::writing:
      case Phase::linger:
        return close();
      case Phase::answering:
        return;
    }
  }

  void close() {
    if (closed_) return;
    abort();
    server_.closed(this);
  }

  std::string peer() const {
    asio::error_code ec;
    const auto ep = socket_.remote_endpoint(ec);
    return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  HttpServer& server_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  HttpRequestReader reader_;
  std::string head_, body_;  // the response being written
  std::uint64_t timer_generation_ = 0;
  Phase phase_ = Phase::request;
  bool waiting_ = false;  // an async_wait for readability is outstanding
  bool keep_ = true;      // keep the connection after the response being written
  bool closed_ = false;
};

HttpServer::HttpServer(Options options, Handler handler)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      io_work_(io_.get_executor()),
      render_work_(render_io_.get_executor()),
      acceptor_(io_),
      backoff_(io_.get_executor()),
      scratch_(kScratchBytes) {
  asio::error_code ec;
  asio::ip::tcp::endpoint endpoint;
  auto address = asio::ip::make_address(options_.host, ec);
  if (!ec) {
    endpoint = asio::ip::tcp::endpoint(address, options_.port);
  } else {  // a host name
    asio::ip::tcp::resolver resolver(io_);
    auto results = resolver.resolve(options_.host, std::to_string(options_.port), ec);
    if (!ec && !results.empty()) endpoint = *results.begin();
    else if (!ec) ec = asio::error::host_not_found;
  }
  if (!ec) acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) port_ = acceptor_.local_endpoint(ec).port();
  if (ec)
    throw CommError(options_.name + " cannot listen on " + options_.host + ":" + std::to_string(options_.port) + ": " +
                    ec.message());
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  std::lock_guard lock(stop_mutex_);
  if (started_ || stopped_) return;
  started_ = true;
  accept();
  io_thread_ = std::thread([this] {
    name_this_thread("distrib-http");
    // Handlers catch what they throw; this only keeps the thread serving if one did not.
    while (!io_.stopped()) {
      try {
        io_.run();
      } catch (const std::exception& e) {
        log().error("{}: {}", options_.name, e.what());
      }
    }
  });
  for (std::size_t i = 0; i < std::max<std::size_t>(options_.render_threads, 1); ++i)
    render_threads_.emplace_back([this] {
      name_this_thread("distrib-render");
      while (!render_io_.stopped()) {
        try {
          render_io_.run();
        } catch (const std::exception& e) {
          log().error("{}: {}", options_.name, e.what());
        }
      }
    });
}

void HttpServer::stop() {
  std::lock_guard lock(stop_mutex_);
  if (stopped_) return;
  stopped_ = true;
  // io_context::stop() is remembered: a thread that has not reached run() yet returns from
  // it at once, so stopping right after start() cannot leave the thread serving.
  io_.stop();
  render_io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
  for (auto& t : render_threads_) t.join();
  // Nothing runs on io_ now: close everything from here.
  asio::error_code ec;
  acceptor_.close(ec);
  backoff_.cancel();
  for (const auto& [raw, c] : connections_) c->abort();
  connections_.clear();
  open_ = 0;
}

void HttpServer::accept() {
  acceptor_.async_accept([this](asio::error_code ec, asio::ip::tcp::socket socket) {
    if (ec) {
      if (ec != asio::error::operation_aborted && acceptor_.is_open())
        backoff_.failed(ec, options_.name, [this] {
          if (acceptor_.is_open()) accept();
        });
      return;
    }
    backoff_.succeeded();
    if (connections_.size() >= options_.limits.max_connections) {
      refuse(std::move(socket));
    } else {
      auto c = std::make_shared<Connection>(*this, std::move(socket));
      connections_.emplace(c.get(), c);
      open_ = connections_.size();
      c->start();
    }
    accept();
  });
}

void HttpServer::refuse(asio::ip::tcp::socket socket) {
  ++refused_since_log_;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_refusal_log_ >= kRefusalLogEvery) {
    log().warn("{}: {} connections open, the limit: refused {} since the last report", options_.name,
               connections_.size(), refused_since_log_);
    refused_since_log_ = 0;
    last_refusal_log_ = now;
  }
  static constexpr std::string_view kBusy =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 21\r\nConnection: close\r\n\r\n"
      "too many connections\n";
  asio::error_code ec;
  socket.non_blocking(true, ec);
  socket.write_some(asio::buffer(kBusy.data(), kBusy.size()), ec);  // into an empty send buffer
  socket.shutdown(asio::socket_base::shutdown_both, ec);
  socket.close(ec);
}

void HttpServer::closed(Connection* connection) {
  auto it = connections_.find(connection);
  if (it == connections_.end()) return;
  auto keep = std::move(it->second);  // the connection lives until its own call returns
  connections_.erase(it);
  open_ = connections_.size();
}

}  // namespace distrib::detail
