// Connection limits against a real dscheduler and a worker's data port, attacked as a
// stranger would (issue 17, part 5): thousands of idle connections, frames declaring huge
// sizes, a peer dripping one byte at a time. Each daemon must hold little for them, close
// every one of them by its handshake deadline or its caps, write few log lines about it,
// and keep serving a legitimate client meanwhile.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <distrib/distrib.hpp>
#include <fstream>
#include <sstream>
#include <thread>

#include "helpers.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

constexpr int kHandshakeSeconds = 2;

std::uint16_t port_of(const std::string& address) {
  return static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
}

/// A blocking TCP connection to 127.0.0.1:port, -1 if it could not be made.
int connect_to(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::uint64_t rss_bytes(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

/// Sockets the test opened; closed at the end of the scope.
struct Sockets {
  std::vector<int> fds;
  ~Sockets() {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
};

/// Reads every socket until the peer closes it (what it sends first, its handshake, is
/// dropped) or `timeout` passes; returns how many were closed by the peer.
std::size_t wait_until_closed_by_peer(std::vector<int>& fds, std::chrono::milliseconds timeout) {
  std::vector<bool> closed(fds.size(), false);
  std::size_t n_closed = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[4096];
  while (n_closed < fds.size() && std::chrono::steady_clock::now() < deadline) {
    std::vector<pollfd> polled;
    std::vector<std::size_t> index;
    for (std::size_t i = 0; i < fds.size(); ++i)
      if (!closed[i]) {
        polled.push_back({fds[i], POLLIN, 0});
        index.push_back(i);
      }
    if (::poll(polled.data(), polled.size(), 200) <= 0) continue;
    for (std::size_t j = 0; j < polled.size(); ++j) {
      if (polled[j].revents == 0) continue;
      const ssize_t got = ::recv(polled[j].fd, buffer, sizeof buffer, MSG_DONTWAIT);
      if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        closed[index[j]] = true;
        ++n_closed;
      }
    }
  }
  return n_closed;
}

/// As many descriptors as the hard limit allows, so the test can hold thousands of sockets.
std::size_t raise_descriptor_limit() {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);
  ::getrlimit(RLIMIT_NOFILE, &limit);
  return static_cast<std::size_t>(limit.rlim_cur);
}

/// A message prefix that declares a huge message: a header of 2^29 words and 2^20 frames.
std::string huge_declaration() {
  std::string bytes(8, '\0');
  const std::uint32_t header_words = 1u << 29, frames = 1u << 20;
  std::memcpy(bytes.data(), &header_words, 4);
  std::memcpy(bytes.data() + 4, &frames, 4);
  return bytes;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

/// The tcp:// address a scheduler started by spawn_watched announced, "" if none within 30 s.
std::string announced_address(Watched& scheduler) {
  const auto at = scheduler.wait_for("tcp://127.0.0.1:");
  if (at == std::string::npos || scheduler.wait_for("\n", 30s, at) == std::string::npos) return "";
  return scheduler.output.substr(at, scheduler.output.find_first_of(" \n", at) - at);
}

class Attack : public ::testing::Test {
 protected:
  void SetUp() override {
    descriptors_ = raise_descriptor_limit();
    scheduler_ = std::make_unique<Watched>(spawn_watched(
        {DSCHEDULER_PATH, "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "none", "--handshake-timeout",
         std::to_string(kHandshakeSeconds), "--max-unauthenticated-connections", "256"}));
    address_ = announced_address(*scheduler_);
    ASSERT_FALSE(address_.empty()) << scheduler_->output;
    worker_ = start_worker(address_, {"--preload", TEST_TASKS_PATH, "--no-nanny", "--handshake-timeout",
                                      std::to_string(kHandshakeSeconds)});
    client_ = std::make_unique<Client>(address_);
    client_->wait_for_workers(1, 30s);
    ASSERT_EQ(client_->submit(triple, 2).result(60s), 6);  // warmed up: the baseline is a serving daemon
  }

  // The attack on one port of the daemon `pid`; afterwards a new client's work completes.
  void attack(const std::string& address, int pid) {
    const std::uint16_t port = port_of(address);
    const std::uint64_t before = rss_bytes(pid);
    ASSERT_GT(before, 0u);
    const std::size_t idle = std::min<std::size_t>(2000, descriptors_ > 600 ? descriptors_ - 500 : 100);

    Sockets huge, quiet;
    for (int i = 0; i < 50; ++i) {
      const int fd = connect_to(port);
      ASSERT_GE(fd, 0);
      const std::string bytes = huge_declaration();
      ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
      huge.fds.push_back(fd);
    }
    for (std::size_t i = 0; i < idle; ++i) {
      const int fd = connect_to(port);
      ASSERT_GE(fd, 0) << "connection " << i << ": " << std::strerror(errno);
      quiet.fds.push_back(fd);
    }

    // Meanwhile a legitimate client connects and works.
    {
      Client fresh(address_);
      EXPECT_EQ(fresh.submit(triple, 7).result(60s), 21);
    }
    const std::uint64_t during = rss_bytes(pid);
    EXPECT_LT(during, before + (24u << 20)) << "RSS grew from " << before << " to " << during << " at " << address;

    // Every attacking connection is closed by the daemon: the huge declarations at once
    // (past the handshake's 64 KiB), the idle ones by the cap or the deadline.
    EXPECT_EQ(wait_until_closed_by_peer(huge.fds, 30s), huge.fds.size()) << address;
    EXPECT_EQ(wait_until_closed_by_peer(quiet.fds, 30s), quiet.fds.size()) << address;

    // A peer dripping one byte every 250 ms is closed by its deadline, long before 40 bytes.
    {
      Sockets drip;
      drip.fds.push_back(connect_to(port));
      ASSERT_GE(drip.fds[0], 0);
      bool closed = false;
      for (int i = 0; i < 40 && !closed; ++i) {
        const char byte = 0;
        if (::send(drip.fds[0], &byte, 1, MSG_NOSIGNAL) != 1) closed = true;
        std::vector<int> one{drip.fds[0]};
        if (wait_until_closed_by_peer(one, 250ms) == 1) closed = true;
      }
      EXPECT_TRUE(closed) << "a dripping peer kept its connection to " << address;
    }

    Client after(address_);
    EXPECT_EQ(after.submit(triple, 9).result(60s), 27);
    // Its memory is back within a few MB once the connections are gone.
    EXPECT_TRUE(eventually([&] { return rss_bytes(pid) < before + (8u << 20); }, 10s))
        << "RSS " << rss_bytes(pid) << " after the attack, " << before << " before, at " << address;
  }

  std::size_t descriptors_ = 0;
  std::unique_ptr<Watched> scheduler_;
  std::string address_;
  Daemon worker_;
  std::unique_ptr<Client> client_;
};

TEST_F(Attack, TheSchedulerHoldsLittleClosesEveryStrangerAndKeepsServing) {
  attack(address_, scheduler_->process.pid());
  // Thousands of closed strangers, but a few lines about them: at most ten per ten seconds.
  ASSERT_NE(scheduler_->wait_for("closed connection from", 30s), std::string::npos) << scheduler_->output;
  scheduler_->wait_for("no such line: read what is there", 1s);
  const std::string log = scheduler_->output;
  const std::size_t lines = count(log, "closed connection from") + count(log, "rejected 127.0.0.1");
  EXPECT_GT(lines, 0u) << log;
  EXPECT_LE(lines, 40u) << log;
}

TEST_F(Attack, AWorkersDataPortHoldsLittleClosesEveryStrangerAndKeepsServing) {
  attack(worker_.address, worker_.process.pid());
}

TEST_F(Attack, PastMaxConnectionsANewConnectionIsClosedAtOnce) {
  Watched capped = spawn_watched(
      {DSCHEDULER_PATH, "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "none", "--max-connections", "3"});
  const std::string address = announced_address(capped);
  ASSERT_FALSE(address.empty()) << capped.output;
  const std::uint16_t port = port_of(address);
  Sockets kept;
  for (int i = 0; i < 3; ++i) kept.fds.push_back(connect_to(port));
  std::vector<int> fourth{connect_to(port)};
  ASSERT_GE(fourth[0], 0);
  EXPECT_EQ(wait_until_closed_by_peer(fourth, 30s), 1u);
  EXPECT_NE(capped.wait_for("(the cap, max_connections)"), std::string::npos) << capped.output;
  ::close(fourth[0]);
}

}  // namespace
}  // namespace distrib::test
