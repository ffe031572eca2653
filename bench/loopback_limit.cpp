// Physical limits of this machine's loopback TCP, measured with plain POSIX sockets (no
// distrib), so that the transfer and latency benchmarks can be read against them:
//   bandwidth:  one sender thread writes 1 GB (1e9 B) in 4 MiB writes from one reused buffer,
//               one receiver thread reads it into one reused buffer; timed from the first write
//               until the receiver has every byte. GB/s = 1e9 B/s, median of `repeats`.
//               Also with the receiver reading 64 KiB at a time (its buffer stays in cache):
//               the socket path alone, an upper bound rather than a like-for-like figure.
//   round trip: a few bytes (8) sent and echoed back by a thread on the other end of a
//               TCP_NODELAY connection; median (and p99) of 1000 sequential round trips after
//               100 warm-ups, per run; reported as the median over `repeats` runs.
// Prints one JSON line per figure: {"bench": ..., "median": ..., "runs": [...]}.
//   bench_loopback_limit [repeats=3]
#include "bench_common.hpp"
#include "loopback.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using bench::Clock;
using bench::seconds_since;

namespace {

using namespace bench::loopback;

constexpr int kWarmups = 100;
constexpr int kRoundTrips = 1000;
constexpr std::size_t kPingBytes = 8;

double percentile(std::vector<double> v, double p) {  // nearest rank
  std::sort(v.begin(), v.end());
  auto k = static_cast<long>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) - 1;
  k = std::clamp<long>(k, 0, static_cast<long>(v.size()) - 1);
  return v[static_cast<std::size_t>(k)];
}

// Round-trip times (µs) of kRoundTrips sequential 8-byte pings echoed by another thread.
std::vector<double> time_round_trips() {
  auto [a, b] = tcp_pair();
  std::string echo_error;
  std::thread echo([&, fd = b.get()] {
    try {
      char buf[kPingBytes];
      while (read_all(fd, buf, sizeof buf)) write_all(fd, buf, sizeof buf);
    } catch (const std::exception& e) {
      echo_error = e.what();
    }
  });
  std::vector<double> us;
  us.reserve(kRoundTrips);
  char ping[kPingBytes] = {'p', 'i', 'n', 'g', 0, 0, 0, 0}, pong[kPingBytes];
  try {
    for (int i = 0; i < kWarmups + kRoundTrips; ++i) {
      std::memcpy(ping + 4, &i, sizeof i);
      auto t = Clock::now();
      write_all(a.get(), ping, sizeof ping);
      if (!read_all(a.get(), pong, sizeof pong)) throw std::runtime_error("echo side closed");
      double d = seconds_since(t) * 1e6;
      if (std::memcmp(ping, pong, sizeof ping) != 0) throw std::runtime_error("echo mismatch");
      if (i >= kWarmups) us.push_back(d);
    }
  } catch (...) {
    ::shutdown(a.get(), SHUT_RDWR);
    echo.join();
    throw;
  }
  ::shutdown(a.get(), SHUT_WR);  // EOF ends the echo thread
  echo.join();
  if (!echo_error.empty()) throw std::runtime_error(echo_error);
  return us;
}

void report_error(const char* name, const char* what) {
  std::printf("{\"bench\": \"%s\", \"error\": \"", name);
  for (const char* p = what; *p; ++p) {
    if (*p == '"' || *p == '\\') std::putchar('\\');
    if (static_cast<unsigned char>(*p) >= 0x20) std::putchar(*p);
  }
  std::printf("\"}\n");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = std::max(1, argc > 1 ? std::atoi(argv[1]) : 3);
  int rc = 0;
  for (auto [name, read_bytes] : {std::pair{"loopback_bandwidth_1GB", kChunk},
                                   std::pair{"loopback_bandwidth_1GB_64KiB_reads", std::size_t{64} << 10}}) {
    try {
      std::vector<double> rates;
      for (int r = 0; r < repeats; ++r)
        rates.push_back(static_cast<double>(kTotalBytes) / time_bandwidth(read_bytes) / 1e9);
      bench::report(name, "GB/s", rates);
    } catch (const std::exception& e) {
      report_error(name, e.what());
      rc = 1;
    }
  }
  try {
    std::vector<double> medians, p99s;
    for (int r = 0; r < repeats; ++r) {
      auto us = time_round_trips();
      medians.push_back(bench::median(us));
      p99s.push_back(percentile(us, 99));
    }
    bench::report("loopback_round_trip_median", "us", medians);
    bench::report("loopback_round_trip_p99", "us", p99s);
  } catch (const std::exception& e) {
    report_error("loopback_round_trip_median", e.what());
    rc = 1;
  }
  return rc;
}
