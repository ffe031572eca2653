#include "comm/endpoint.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/connect.hpp>
#include <asio/ip/udp.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

#include "distrib/errors.hpp"

namespace distrib::detail {

namespace {
constexpr std::string_view kUnixScheme = "unix://";
constexpr std::string_view kTcpScheme = "tcp://";
constexpr std::string_view kTlsScheme = "tls://";

// "@name" (abstract, as ss and netstat show it) -> the endpoint's "\0name".
asio::local::stream_protocol::endpoint unix_endpoint(const std::string& address_or_name) {
  std::string name = address_or_name;
  if (name.rfind(kUnixScheme, 0) == 0) name = name.substr(kUnixScheme.size());
  if (name.size() < 2 || name.front() != '@')
    throw std::invalid_argument("bad address '" + address_or_name + "': expected unix://@name (an abstract socket)");
  if (name.size() > sizeof(sockaddr_un::sun_path) - 1)
    throw std::invalid_argument("bad address '" + address_or_name + "': the name is longer than " +
                                std::to_string(sizeof(sockaddr_un::sun_path) - 2) + " bytes");
  name.front() = '\0';
  return asio::local::stream_protocol::endpoint(name);
}

// A TCP/IP socket address as asio sees it (an IPv6 scope id included).
asio::ip::tcp::endpoint ip_endpoint(const sockaddr_storage& sa, socklen_t len) {
  asio::ip::tcp::endpoint ep;
  std::memcpy(ep.data(), &sa, std::min<std::size_t>(len, ep.capacity()));
  ep.resize(std::min<std::size_t>(len, ep.capacity()));
  return ep;
}

std::string sockaddr_text(const sockaddr_storage& sa, socklen_t len) {
  if (sa.ss_family == AF_INET || sa.ss_family == AF_INET6) {
    auto ep = ip_endpoint(sa, len);
    return ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  if (sa.ss_family == AF_UNIX) {
    const auto& un = reinterpret_cast<const sockaddr_un&>(sa);
    auto n = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    std::string path(un.sun_path, n);
    if (!path.empty() && path.front() == '\0') path.front() = '@';
    return "unix:" + path;
  }
  return "?";
}

// One end's socket address: `get` is getsockname or getpeername. False if the call fails.
bool socket_address(const StreamSocket& socket, int (*get)(int, sockaddr*, socklen_t*), sockaddr_storage& sa,
                    socklen_t& len) {
  len = sizeof sa;
  return get(const_cast<StreamSocket&>(socket).native_handle(), reinterpret_cast<sockaddr*>(&sa), &len) == 0;
}
}  // namespace

bool is_unix_address(const std::string& address) { return address.rfind(kUnixScheme, 0) == 0; }

std::string unix_address(const std::string& name) { return std::string(kUnixScheme) + "@" + name; }

std::string unique_unix_socket_name() {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  char random[9];
  std::snprintf(random, sizeof random, "%08x", rd());
  return "distrib-" + std::to_string(getpid()) + "-" + std::to_string(++counter) + "-" + random;
}

std::pair<std::string, std::uint16_t> parse_address(const std::string& address) {
  if (is_unix_address(address))
    throw std::invalid_argument("'" + address + "' is a Unix socket address, not tcp://host:port");
  std::string rest = address;
  if (rest.rfind(kTcpScheme, 0) == 0) rest = rest.substr(kTcpScheme.size());
  else if (rest.rfind(kTlsScheme, 0) == 0) rest = rest.substr(kTlsScheme.size());
  auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon + 1 == rest.size())
    throw std::invalid_argument("bad address '" + address + "': expected tcp://host:port");
  std::string host = rest.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    std::size_t used = 0;
    port = std::stoi(rest.substr(colon + 1), &used);
    if (used != rest.size() - colon - 1) throw std::invalid_argument("trailing characters");
  } catch (const std::exception&) {
    throw std::invalid_argument("bad address '" + address + "': the port is not a number");
  }
  if (port < 0 || port > 65535) throw std::invalid_argument("bad address '" + address + "': port out of range");
  if (host.empty()) host = "127.0.0.1";
  return {host, static_cast<std::uint16_t>(port)};
}

std::string format_address(const std::string& host, std::uint16_t port, const std::string& scheme) {
  bool v6 = host.find(':') != std::string::npos;
  return scheme + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

asio::ip::address listen_on(asio::ip::tcp::acceptor& acceptor, const std::string& host, std::uint16_t port,
                            const std::string& who) {
  asio::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) throw CommError("bad " + who + " host '" + host + "': " + ec.message());
  asio::ip::tcp::endpoint ep(addr, port);
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw CommError(who + " cannot listen on " + format_address(host, port) + ": " + ec.message());
  return addr;
}

void listen_on_unix(asio::local::stream_protocol::acceptor& acceptor, const std::string& name, const std::string& who) {
  auto ep = unix_endpoint("@" + name);
  asio::error_code ec;
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw CommError(who + " cannot listen on " + unix_address(name) + ": " + ec.message());
}

StreamSocket connect_socket(asio::io_context& io, const std::string& address, std::chrono::milliseconds timeout) {
  // One attempt; an error code says why it failed.
  std::function<StreamSocket(asio::error_code&)> attempt;
  if (is_unix_address(address)) {
    auto ep = unix_endpoint(address);
    attempt = [&io, ep](asio::error_code& ec) {
      asio::local::stream_protocol::socket socket(io);
      socket.connect(ep, ec);
      return StreamSocket(std::move(socket));
    };
  } else {
    auto [host, port] = parse_address(address);
    attempt = [&io, host = host, port = port](asio::error_code& ec) {
      asio::ip::tcp::resolver resolver(io);
      asio::ip::tcp::socket socket(io);
      auto endpoints = resolver.resolve(host, std::to_string(port), ec);
      if (!ec) asio::connect(socket, endpoints, ec);
      return StreamSocket(std::move(socket));
    };
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto delay = std::chrono::milliseconds(5);
  while (true) {
    asio::error_code ec;
    auto socket = attempt(ec);
    if (!ec) return socket;
    if (std::chrono::steady_clock::now() + delay > deadline)
      throw CommError("cannot connect to " + address + ": " + ec.message());
    std::this_thread::sleep_for(delay);  // retry backoff: the peer may still be starting
    delay = std::min(delay * 2, std::chrono::milliseconds(200));
  }
}

namespace {
// One attempt in progress: the first of the connect and the timer to finish decides.
template <class Socket>
struct ConnectAttempt : std::enable_shared_from_this<ConnectAttempt<Socket>> {
  ConnectAttempt(asio::io_context& io, std::function<void(asio::error_code, StreamSocket)> done)
      : socket(io), timer(io), done(std::move(done)) {}
  Socket socket;
  asio::steady_timer timer;
  std::function<void(asio::error_code, StreamSocket)> done;
  bool finished = false;
  bool timed_out = false;

  void arm(std::chrono::milliseconds timeout) {
    timer.expires_after(timeout);
    timer.async_wait([self = this->shared_from_this()](asio::error_code ec) {
      if (ec || self->finished) return;
      self->timed_out = true;
      asio::error_code ignored;
      self->socket.close(ignored);  // the connect completes with operation_aborted
    });
  }
  void finish(asio::error_code ec) {
    if (finished) return;
    finished = true;
    timer.cancel();
    if (timed_out) ec = asio::error::timed_out;
    if (ec) {
      asio::error_code ignored;
      socket.close(ignored);
      return done(ec, StreamSocket(socket.get_executor()));
    }
    done(ec, StreamSocket(std::move(socket)));
  }
};
}  // namespace

void async_connect_socket(asio::io_context& io, const std::string& address, std::chrono::milliseconds timeout,
                          std::function<void(asio::error_code, StreamSocket)> done) {
  if (is_unix_address(address)) {
    auto ep = unix_endpoint(address);
    auto a = std::make_shared<ConnectAttempt<asio::local::stream_protocol::socket>>(io, std::move(done));
    a->arm(timeout);
    a->socket.async_connect(ep, [a](asio::error_code ec) { a->finish(ec); });
    return;
  }
  auto [host, port] = parse_address(address);
  auto a = std::make_shared<ConnectAttempt<asio::ip::tcp::socket>>(io, std::move(done));
  auto resolver = std::make_shared<asio::ip::tcp::resolver>(io);
  a->arm(timeout);
  resolver->async_resolve(host, std::to_string(port),
                          [a, resolver](asio::error_code ec, asio::ip::tcp::resolver::results_type endpoints) {
                            if (ec || a->finished || a->timed_out) return a->finish(ec ? ec : asio::error::operation_aborted);
                            asio::async_connect(a->socket, endpoints,
                                                [a](asio::error_code ec2, const asio::ip::tcp::endpoint&) { a->finish(ec2); });
                          });
}

std::string describe_peer(const StreamSocket& socket) {
  sockaddr_storage sa{};
  socklen_t len = 0;
  if (!socket_address(socket, getpeername, sa, len)) return "?";
  // An accepted Unix peer has no name: show where it came in.
  if (sa.ss_family == AF_UNIX && len <= offsetof(sockaddr_un, sun_path) && !socket_address(socket, getsockname, sa, len))
    return "unix:?";
  return sockaddr_text(sa, len);
}

std::string local_ip(const StreamSocket& socket) {
  sockaddr_storage sa{};
  socklen_t len = 0;
  if (!socket_address(socket, getsockname, sa, len)) return "";
  if (sa.ss_family != AF_INET && sa.ss_family != AF_INET6) return "";
  return ip_endpoint(sa, len).address().to_string();
}

std::string default_route_ip() {
  // Connecting a UDP socket sends nothing; it only asks the kernel which interface the
  // default route leaves by (Dask's get_ip does the same).
  asio::io_context io;
  asio::ip::udp::socket probe(io);
  asio::error_code ec;
  probe.connect({asio::ip::make_address("8.8.8.8"), 80}, ec);
  if (ec) return "127.0.0.1";
  auto ip = probe.local_endpoint(ec).address();
  return ec || ip.is_unspecified() ? "127.0.0.1" : ip.to_string();
}

std::string interface_ip(const std::string& name) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) throw std::invalid_argument("--interface " + name + ": cannot list the interfaces");
  std::string v4, v6;
  std::set<std::string> names;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr) continue;
    names.insert(a->ifa_name);
    if (name != a->ifa_name) continue;
    char text[INET6_ADDRSTRLEN] = {};
    if (a->ifa_addr->sa_family == AF_INET && v4.empty()) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, text, sizeof text);
      v4 = text;
    } else if (a->ifa_addr->sa_family == AF_INET6 && v6.empty()) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ifa_addr)->sin6_addr, text, sizeof text);
      v6 = text;
    }
  }
  freeifaddrs(list);
  if (!v4.empty()) return v4;
  if (!v6.empty()) return v6;
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("--interface " + name + ": no such interface with an address (there are: " + known + ")");
}

}  // namespace distrib::detail
