#pragma once
// Plain POSIX loopback TCP, no distrib: the bandwidth limit of this machine's loopback, used
// by bench_loopback_limit and, in the same run, by bench_transfer (so that its figures can
// be read as a fraction of what one socket moves while they are measured).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench_common.hpp"

namespace bench::loopback {

[[noreturn]] inline void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

inline void set_nodelay(int fd) {
  int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) fail("setsockopt(TCP_NODELAY)");
}

// A connected pair of TCP sockets over 127.0.0.1 (an ephemeral listening port, closed again).
inline std::pair<Fd, Fd> tcp_pair() {
  Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (listener.get() < 0) fail("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("bind");
  if (::listen(listener.get(), 1) != 0) fail("listen");
  socklen_t len = sizeof addr;
  if (::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) fail("getsockname");
  Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (client.get() < 0) fail("socket");
  if (::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("connect");
  Fd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (server.get() < 0) fail("accept");
  set_nodelay(client.get());
  set_nodelay(server.get());
  return {std::move(client), std::move(server)};
}

inline void write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("send");
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

// Reads exactly n bytes (a short read of a stream is normal); false on EOF.
inline bool read_all(int fd, char* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      fail("recv");
    }
    if (r == 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

constexpr std::int64_t kTotalBytes = 1'000'000'000;
constexpr std::size_t kChunk = 4u << 20;  // 4 MiB

// Seconds to move kTotalBytes from one thread to another over a fresh loopback connection,
// the receiver reading into a reused buffer of `read_bytes`.
inline double time_bandwidth(std::size_t read_bytes) {
  auto [tx, rx] = tcp_pair();
  std::vector<char> out(kChunk), in(read_bytes);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>(i * 131 + 7);

  std::int64_t received = 0;
  std::string receiver_error;
  std::thread receiver([&, fd = rx.get()] {
    try {
      while (received < kTotalBytes) {
        ssize_t r = ::recv(fd, in.data(), in.size(), 0);
        if (r < 0) {
          if (errno == EINTR) continue;
          fail("recv");
        }
        if (r == 0) break;
        received += r;
      }
    } catch (const std::exception& e) {
      receiver_error = e.what();
    }
  });
  auto start = bench::Clock::now();
  std::int64_t left = kTotalBytes;
  while (left > 0) {
    auto n = static_cast<std::size_t>(std::min<std::int64_t>(left, static_cast<std::int64_t>(kChunk)));
    write_all(tx.get(), out.data(), n);
    left -= static_cast<std::int64_t>(n);
  }
  receiver.join();
  double s = bench::seconds_since(start);
  if (!receiver_error.empty()) throw std::runtime_error(receiver_error);
  if (received != kTotalBytes) throw std::runtime_error("receiver got " + std::to_string(received) + " bytes");
  return s;
}

}  // namespace bench::loopback
