// Data movement on a 2-worker, 1-thread-each LocalCluster (processes), as
// ../shared/peer/dask/transfer.py: scatter and gather of 100 MB and 1 GB, and a 200 MB
// value produced on one worker and consumed on the other (submit .. result of the
// consumer), for each contiguous type (std::vector<double>, std::vector<float>,
// std::string) and NDArray. For each size, each repetition first measures the plain-socket
// loopback limit (bench/loopback.hpp, as bench_loopback_limit), then runs every type once,
// so that the types alternate and each can be read against the limit seen while it ran
// (each repetition starts with the next type: the first transfer of a new size pays for
// fresh memory).
// Prints JSON lines: per case the rate (GB/s, median of `repeats`), `<case>.of_loopback`
// (each repetition's rate over that repetition's limit) and `<case>.cpu_client` /
// `<case>.cpu_cluster` (CPU seconds of this process and of the scheduler, nannies and
// workers during one transfer). Between transfers it waits until the workers hold nothing,
// as Dask's script does.
//   bench_transfer [repeats=5] [only=100MB,1GB,w2w]
#include <distrib/distrib.hpp>

#include "bench_cluster.hpp"
#include "bench_common.hpp"
#include "loopback.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// Deterministic pseudo-random bytes (xorshift), the same on the client and the workers.
std::vector<std::uint64_t> random_words(std::int64_t nbytes, int seed) {
  std::vector<std::uint64_t> v(static_cast<std::size_t>(nbytes / 8));
  std::uint64_t x = 0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(seed + 1);
  for (auto& w : v) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    w = x;
  }
  return v;
}

std::vector<double> make_data(std::int64_t nbytes, int seed) {
  auto w = random_words(nbytes, seed);
  std::vector<double> v(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) v[i] = static_cast<double>(w[i] >> 11) * 0x1.0p-53;
  return v;
}
DISTRIB_TASK(make_data);

std::int64_t consume(std::vector<double> v) { return static_cast<std::int64_t>(v.size() * sizeof(double)); }
DISTRIB_TASK(consume);

std::vector<float> make_floats(std::int64_t nbytes, int seed) {
  auto w = random_words(nbytes, seed);
  std::vector<float> v(w.size() * 2);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((w[i / 2] >> (i % 2 ? 40 : 8)) & 0xffffff) * 0x1.0p-24f;
  return v;
}
DISTRIB_TASK(make_floats);

std::int64_t consume_floats(std::vector<float> v) { return static_cast<std::int64_t>(v.size() * sizeof(float)); }
DISTRIB_TASK(consume_floats);

std::string make_text(std::int64_t nbytes, int seed) {
  auto w = random_words(nbytes, seed);
  std::string s(w.size() * 8, '\0');
  std::memcpy(s.data(), w.data(), s.size());
  return s;
}
DISTRIB_TASK(make_text);

std::int64_t consume_text(std::string s) { return static_cast<std::int64_t>(s.size()); }
DISTRIB_TASK(consume_text);

// NDArray moves without being copied out of the received frame (as a numpy array in Dask).
distrib::NDArray make_array(std::int64_t nbytes, int seed) {
  auto v = make_data(nbytes, seed);
  return distrib::NDArray::from_values<double>(v);
}
DISTRIB_TASK(make_array);

std::int64_t consume_array(distrib::NDArray a) { return static_cast<std::int64_t>(a.nbytes()); }
DISTRIB_TASK(consume_array);

using bench::Clock;
using bench::seconds_since;

namespace {

double self_cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

// CPU seconds of every process below this one (scheduler, nannies, workers).
double cluster_cpu_s(int pid = getpid()) {
  double s = 0;
  for (int c : bench::child_pids(pid)) s += std::max(0.0, bench::cpu_times(c).self) + cluster_cpu_s(c);
  return s;
}

// One case's timings over the repetitions.
struct Figures {
  double bytes = 0;
  std::vector<double> seconds, of_loopback, cpu_client, cpu_cluster;
};
std::map<std::string, Figures> g_figures;
std::vector<std::string> g_order;  // cases in the order they first ran
double g_loopback = 0;             // this repetition's limit, GB/s

// Times `fn` (which moves `bytes`) as one repetition of case `name`.
template <class Fn>
auto timed(const std::string& name, double bytes, Fn&& fn) {
  if (!g_figures.count(name)) g_order.push_back(name);
  auto& f = g_figures[name];
  f.bytes = bytes;
  const double c0 = self_cpu_s(), k0 = cluster_cpu_s();
  const auto t0 = Clock::now();
  auto out = fn();
  const double s = seconds_since(t0);
  f.seconds.push_back(s);
  f.of_loopback.push_back(bytes / s / 1e9 / g_loopback);
  f.cpu_client.push_back(self_cpu_s() - c0);
  f.cpu_cluster.push_back(cluster_cpu_s() - k0);
  return out;
}

// Waits until the scheduler lists no stored key on any worker (releases are asynchronous),
// as Dask's transfer.py waits between repetitions: otherwise a repetition's buffer is
// allocated while the previous one's is still being freed.
void wait_released(distrib::Client& client) {
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    const auto info = client.scheduler_info();
    if (std::all_of(info.workers.begin(), info.workers.end(), [](const auto& w) { return w.stored == 0; })) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  throw std::runtime_error("workers still hold data 30 s after every future was released");
}

// Scatters `value` and gathers it back, as one repetition of scatter_<label> and gather_<label>.
template <class T, class Same>
void scatter_gather(distrib::Client& client, const T& value, const std::string& label, double bytes, Same same) {
  {
    auto f = timed("scatter_" + label, bytes, [&] { return client.scatter(value, {.hash = false}); });
    auto back = timed("gather_" + label, bytes, [&] { return f.result(); });
    if (!same(back)) throw std::runtime_error("gather of " + label + " returned other data");
  }
  wait_released(client);
}

// Produces a value on worker-1; times submit..result of a task on worker-0 that uses it.
template <class Make, class Consume>
void worker_to_worker(distrib::Client& client, const std::string& name, Make make, Consume consume,
                      std::int64_t bytes, int seed) {
  {
    auto src = client.submit({.pure = false, .workers = {"worker-1"}}, make, bytes, seed);
    src.wait();
    auto n = timed(name, static_cast<double>(bytes), [&] {
      return client.submit({.pure = false, .workers = {"worker-0"}}, consume, src).result();
    });
    if (n != bytes) throw std::runtime_error(name + " lost bytes");
  }
  wait_released(client);
}

template <class A, class B>
bool same_bytes(const A& a, const B& b, std::size_t n) {
  return n == b.size() * sizeof(b[0]) && std::memcmp(a.data(), b.data(), n) == 0;
}

// Runs the cases, then moves the first to the end: the first transfer after a change of
// size lands in memory no buffer of that size used yet (fresh pages, slow here), and each
// case should take that turn as often as the others.
void run_and_rotate(std::vector<std::function<void()>>& cases) {
  for (auto& c : cases) c();
  std::rotate(cases.begin(), cases.begin() + 1, cases.end());
}

void measure_loopback() {
  g_loopback = static_cast<double>(bench::loopback::kTotalBytes) / bench::loopback::time_bandwidth(bench::loopback::kChunk) / 1e9;
  if (!g_figures.count("loopback_bandwidth_1GB")) g_order.insert(g_order.begin(), "loopback_bandwidth_1GB");
  g_figures["loopback_bandwidth_1GB"].bytes = 1e9;
  g_figures["loopback_bandwidth_1GB"].seconds.push_back(1.0 / g_loopback);
}

// Scatter and gather of `nbytes` of each type; the sources live through every repetition,
// as a user's data does.
void scatter_gather_all(distrib::Client& client, const std::string& label, std::int64_t nbytes, int repeats) {
  const auto n = static_cast<std::size_t>(nbytes);
  const double bytes = static_cast<double>(nbytes);
  const auto doubles = make_data(nbytes, 1);
  const auto array = distrib::NDArray::from_values<double>(doubles);
  std::vector<float> floats(n / 4);
  std::memcpy(floats.data(), doubles.data(), n);
  const std::string text(reinterpret_cast<const char*>(doubles.data()), n);
  std::vector<std::function<void()>> cases{
      [&] {
        scatter_gather(client, doubles, label, bytes, [&](const std::vector<double>& b) { return same_bytes(doubles, b, n); });
      },
      [&] {
        // The same as an NDArray, which decodes without a copy (as a numpy array in Dask).
        scatter_gather(client, array, label + "_ndarray", bytes,
                       [&](const distrib::NDArray& b) { return b.nbytes() == array.nbytes(); });
      },
      [&] {
        scatter_gather(client, floats, label + "_f32", bytes, [&](const std::vector<float>& b) { return same_bytes(floats, b, n); });
      },
      [&] {
        scatter_gather(client, text, label + "_string", bytes, [&](const std::string& b) { return same_bytes(text, b, n); });
      }};
  for (int r = 0; r < repeats; ++r) {
    measure_loopback();
    run_and_rotate(cases);
  }
}

void worker_to_worker_all(distrib::Client& client, int repeats) {
  const std::int64_t w2w = 200'000'000;
  int seed = 0;
  std::vector<std::function<void()>> cases{
      [&] { worker_to_worker(client, "worker_to_worker_200MB", make_data, consume, w2w, ++seed); },
      [&] { worker_to_worker(client, "worker_to_worker_200MB_ndarray", make_array, consume_array, w2w, ++seed); },
      [&] { worker_to_worker(client, "worker_to_worker_200MB_f32", make_floats, consume_floats, w2w, ++seed); },
      [&] { worker_to_worker(client, "worker_to_worker_200MB_string", make_text, consume_text, w2w, ++seed); }};
  for (int r = 0; r < repeats; ++r) {
    measure_loopback();
    run_and_rotate(cases);
  }
}

void report_all() {
  for (const auto& name : g_order) {
    const auto& f = g_figures[name];
    std::vector<double> rates;
    for (double s : f.seconds) rates.push_back(f.bytes / s / 1e9);
    bench::report(name, "GB/s", rates);
    if (f.of_loopback.empty()) continue;
    bench::report(name + ".of_loopback", "ratio", f.of_loopback);
    bench::report(name + ".cpu_client", "s", f.cpu_client);
    bench::report(name + ".cpu_cluster", "s", f.cpu_cluster);
  }
}
}  // namespace

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  const int repeats = std::max(1, argc > 1 ? std::stoi(argv[1]) : 5);
  bench::report_value("loadavg_before", "1min", bench::loadavg_1min());
  distrib::LocalCluster cluster(bench::cluster_options(2));
  distrib::Client client(cluster);
  const std::string only = argc > 2 ? argv[2] : "100MB,1GB,w2w";
  auto wanted = [&](const std::string& part) { return ("," + only + ",").find("," + part + ",") != std::string::npos; };
  if (wanted("100MB")) scatter_gather_all(client, "100MB", 100'000'000, repeats);
  if (wanted("1GB")) scatter_gather_all(client, "1GB", 1'000'000'000, repeats);
  if (wanted("w2w")) worker_to_worker_all(client, repeats);
  report_all();
  bench::report_value("loadavg_after", "1min", bench::loadavg_1min());
  client.shutdown();
  return 0;
}
