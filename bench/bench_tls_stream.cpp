// TLS streams against plain sockets (issue 17, part 2): the ByteStreams a Connection reads
// and writes, over loopback TCP, one thread and io_context per end (as two processes have).
// Alternating runs, plain then TLS, each figure the median of its runs:
//   bandwidth_*     1 GB (1e9 B) one way, as frames of an 8-byte header and 1 MiB of data
//                   (two parts per write, as the Connection writes them); GB/s
//   cpu_*           CPU seconds of both threads per GB of that transfer (user + system)
//   small_*         100 MB as frames of an 8-byte header and 200 B, 64 frames per write
//                   (the Connection's batches of small messages); GB/s
//   rtt_*           a 64-byte message there and back, 20000 times; microseconds each
//   bench_tls_stream [runs=5] [only=plain|tls]   (`only`: one kind, e.g. to profile it)
#include <sys/resource.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.hpp"
#include "comm/byte_stream.hpp"
#include "comm/tls.hpp"

namespace {

using distrib::detail::ByteStream;
using distrib::detail::ByteStreamPtr;
using distrib::detail::StreamSocket;
using distrib::detail::TlsRole;

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// Writes every part, then calls done (the Connection's write_all, simplified).
void write_all(ByteStream& s, std::vector<asio::const_buffer>& parts, std::size_t first, std::function<void()>& done) {
  while (first < parts.size() && parts[first].size() == 0) ++first;
  if (first == parts.size()) return done();
  s.async_write_some(std::span(parts).subspan(first), [&s, &parts, first, &done](asio::error_code ec, std::size_t n) {
    if (ec) throw std::runtime_error("write: " + ec.message());
    std::size_t i = first;
    for (; n > 0; ++i) {
      const std::size_t take = std::min(n, parts[i].size());
      parts[i] += take;
      n -= take;
      if (parts[i].size() > 0) break;
    }
    write_all(s, parts, i, done);
  });
}

// Reads until `size` bytes have come into `buffer` (reused from its start when full).
void read_total(ByteStream& s, std::vector<char>& buffer, std::size_t size, std::function<void()>& done) {
  if (size == 0) return done();
  const std::size_t room = std::min(buffer.size(), size);
  s.async_read_some(asio::buffer(buffer.data(), room), [&, size](asio::error_code ec, std::size_t n) {
    if (ec) throw std::runtime_error("read: " + ec.message());
    read_total(s, buffer, size - n, done);
  });
}

// A connected pair of streams, one end on each io_context, handshakes done.
struct Ends {
  asio::io_context io_a, io_b;
  ByteStreamPtr a, b;

  explicit Ends(distrib::detail::TlsContext* tls) {
    asio::ip::tcp::acceptor acceptor(io_b, {asio::ip::make_address("127.0.0.1"), 0});
    asio::ip::tcp::socket client(io_a);
    client.connect(acceptor.local_endpoint());
    StreamSocket ca(std::move(client)), cb(acceptor.accept());
    a = tls ? tls->wrap(std::move(ca), TlsRole::client) : distrib::detail::make_socket_stream(std::move(ca));
    b = tls ? tls->wrap(std::move(cb), TlsRole::server) : distrib::detail::make_socket_stream(std::move(cb));
    int done = 0;
    auto check = [&done](asio::error_code ec) {
      if (ec) throw std::runtime_error("handshake: " + ec.message());
      ++done;
    };
    a->async_handshake(check);
    b->async_handshake(check);
    std::thread t([this] { io_b.run(); });
    io_a.run();
    t.join();
    io_a.restart();
    io_b.restart();
    if (done != 2) throw std::runtime_error("handshakes did not finish");
  }

  // Runs `on_a` and `on_b` (which start async work) on their own threads until both end.
  void run(const std::function<void()>& on_a, const std::function<void()>& on_b) {
    asio::post(io_a, on_a);
    asio::post(io_b, on_b);
    std::thread t([this] { io_b.run(); });
    io_a.run();
    t.join();
    io_a.restart();
    io_b.restart();
  }
};

struct Transfer {
  double seconds, cpu;
};

// `frames` frames of an 8-byte header and `payload` bytes, `per_write` frames a write.
Transfer one_way(distrib::detail::TlsContext* tls, std::size_t frames, std::size_t payload, std::size_t per_write) {
  Ends ends(tls);
  std::vector<char> header(8, 'h'), data(payload, 'd'), into(4 << 20);
  std::vector<asio::const_buffer> parts;
  std::size_t sent = 0;
  std::function<void()> next_write = [&] {
    if (sent == frames) return;
    parts.clear();
    for (std::size_t i = 0; i < per_write && sent < frames; ++i, ++sent)
      parts.push_back(asio::buffer(header)), parts.push_back(asio::buffer(data));
    write_all(*ends.a, parts, 0, next_write);
  };
  std::function<void()> received = [] {};
  const auto t0 = bench::Clock::now();
  const double c0 = cpu_seconds();
  ends.run(next_write, [&] { read_total(*ends.b, into, frames * (8 + payload), received); });
  return {bench::seconds_since(t0), cpu_seconds() - c0};
}

double round_trip_us(distrib::detail::TlsContext* tls, int trips) {
  Ends ends(tls);
  std::vector<char> ping(64, 'p'), pong(64, 'q'), into_a(64), into_b(64);
  std::vector<asio::const_buffer> parts_a, parts_b;
  int a_left = trips, b_left = trips;
  std::function<void()> a_send, a_read, b_read, b_send;
  a_send = [&] {
    if (a_left-- == 0) return;
    parts_a = {asio::buffer(ping)};
    write_all(*ends.a, parts_a, 0, a_read);
  };
  a_read = [&] { read_total(*ends.a, into_a, 64, a_send); };
  b_read = [&] {
    if (b_left-- == 0) return;
    read_total(*ends.b, into_b, 64, b_send);
  };
  b_send = [&] {
    parts_b = {asio::buffer(pong)};
    write_all(*ends.b, parts_b, 0, b_read);
  };
  const auto t0 = bench::Clock::now();
  ends.run(a_send, b_read);
  return 1e6 * bench::seconds_since(t0) / trips;
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 5;
  const std::string only = argc > 2 ? argv[2] : "";
  const auto tls = distrib::detail::tls_backend().make_context(distrib::Security::temporary(), TlsRole::server);
  constexpr std::size_t kGB = 1000000000, kMiB = 1 << 20, kSmall = 200;
  const std::size_t big_frames = kGB / (8 + kMiB), small_frames = 100000000 / (8 + kSmall);
  std::printf("{\"bench\": \"tls_stream.config\", \"runs\": %d, \"loadavg_before\": %.2f}\n", runs, bench::loadavg_1min());
  std::vector<double> bw[2], cpu[2], small[2], rtt[2];
  for (int r = 0; r < runs; ++r) {
    for (int t = 0; t < 2; ++t) {
      if (!only.empty() && only != (t ? "tls" : "plain")) continue;
      distrib::detail::TlsContext* context = t ? tls.get() : nullptr;
      const Transfer big = one_way(context, big_frames, kMiB, 1);
      bw[t].push_back(big_frames * (8 + kMiB) / big.seconds / 1e9);
      cpu[t].push_back(big.cpu / (big_frames * (8 + kMiB) / 1e9));
      const Transfer little = one_way(context, small_frames, kSmall, 64);
      small[t].push_back(small_frames * (8 + kSmall) / little.seconds / 1e9);
      rtt[t].push_back(round_trip_us(context, 20000));
    }
  }
  const char* names[2] = {"plain", "tls"};
  for (int t = 0; t < 2; ++t) {
    if (bw[t].empty()) continue;
    bench::report(std::string("tls_stream.bandwidth_") + names[t], "GB/s", bw[t]);
    bench::report(std::string("tls_stream.cpu_") + names[t], "s/GB", cpu[t]);
    bench::report(std::string("tls_stream.small_") + names[t], "GB/s", small[t]);
    bench::report(std::string("tls_stream.rtt_") + names[t], "us", rtt[t]);
  }
  if (bw[0].empty() || bw[1].empty()) return 0;
  std::printf("{\"bench\": \"tls_stream.ratios\", \"bandwidth\": %.3f, \"small\": %.3f, \"rtt\": %.3f, \"loadavg_after\": %.2f}\n",
              bench::median(bw[1]) / bench::median(bw[0]), bench::median(small[1]) / bench::median(small[0]),
              bench::median(rtt[1]) / bench::median(rtt[0]), bench::loadavg_1min());
}
