// Data movement on a 2-worker, 1-thread-each LocalCluster (processes), as
// ../shared/peer/dask/transfer.py: scatter and gather of 100 MB and 1 GB, and a 200 MB
// value produced on one worker and consumed on the other (submit .. result of the
// consumer). Prints one JSON line per figure (GB/s, median of `repeats`). Between
// repetitions it waits until the workers hold nothing, as Dask's script does.
//   bench_transfer [repeats=3]
#include <distrib/distrib.hpp>

#include "bench_common.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

std::vector<double> make_data(std::int64_t nbytes, int seed) {
  std::vector<double> v(static_cast<std::size_t>(nbytes / 8));
  std::uint64_t x = 0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(seed + 1);
  for (auto& d : v) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    d = static_cast<double>(x >> 11) * 0x1.0p-53;
  }
  return v;
}
DISTRIB_TASK(make_data);

std::int64_t consume(std::vector<double> v) { return static_cast<std::int64_t>(v.size() * sizeof(double)); }
DISTRIB_TASK(consume);

// The same with NDArray, which moves without being copied out of the received frame.
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
// Reports transfer rates (GB/s) for timings of moving `bytes`.
void report_rate(const std::string& name, double bytes, const std::vector<double>& seconds) {
  std::vector<double> rates;
  for (double s : seconds) rates.push_back(bytes / s / 1e9);
  bench::report(name, "GB/s", rates);
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

// Produces a value on worker-1 and times submit..result of a task on worker-0 that uses it.
template <class Make, class Consume>
std::vector<double> time_worker_to_worker(distrib::Client& client, Make make, Consume consume, std::int64_t bytes,
                                          int repeats, int seed) {
  std::vector<double> seconds;
  for (int r = 0; r < repeats; ++r) {
    {
      auto src = client.submit({.pure = false, .workers = {"worker-1"}}, make, bytes, seed + r);
      src.wait();
      auto t0 = Clock::now();
      auto n = client.submit({.pure = false, .workers = {"worker-0"}}, consume, src).result();
      seconds.push_back(seconds_since(t0));
      if (n != bytes) throw std::runtime_error("worker-to-worker transfer lost bytes");
    }
    wait_released(client);
  }
  return seconds;
}

// Times `repeats` scatters of `value` and gathers of it back; reports both as
// scatter_<label> and gather_<label>. `same` checks what came back.
template <class T, class Same>
void time_scatter_gather(distrib::Client& client, const T& value, const std::string& label, double bytes,
                         int repeats, Same same) {
  std::vector<double> scatter_s, gather_s;
  for (int r = 0; r < repeats; ++r) {
    {
      auto t0 = Clock::now();
      auto f = client.scatter(value, {.hash = false});
      scatter_s.push_back(seconds_since(t0));
      auto t1 = Clock::now();
      auto back = f.result();
      gather_s.push_back(seconds_since(t1));
      if (!same(back)) throw std::runtime_error("gather of " + label + " returned other data");
    }
    wait_released(client);
  }
  report_rate("scatter_" + label, bytes, scatter_s);
  report_rate("gather_" + label, bytes, gather_s);
}
}  // namespace

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  int repeats = argc > 1 ? std::stoi(argv[1]) : 3;
  distrib::LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1});
  distrib::Client client(cluster);

  for (auto [label, nbytes] : {std::pair{"100MB", std::int64_t{100'000'000}}, {"1GB", std::int64_t{1'000'000'000}}}) {
    const auto data = make_data(nbytes, 1);
    time_scatter_gather(client, data, label, static_cast<double>(nbytes), repeats, [&](const std::vector<double>& b) {
      return b.size() == data.size() && b[b.size() / 2] == data[data.size() / 2];
    });
    // The same as an NDArray, which decodes without a copy (as a numpy array in Dask).
    const auto array = distrib::NDArray::from_values<double>(data);
    time_scatter_gather(client, array, std::string(label) + "_ndarray", static_cast<double>(nbytes), repeats,
                        [&](const distrib::NDArray& b) { return b.nbytes() == array.nbytes(); });
  }

  const std::int64_t w2w = 200'000'000;
  report_rate("worker_to_worker_200MB", static_cast<double>(w2w),
              time_worker_to_worker(client, make_data, consume, w2w, repeats, 100));
  report_rate("worker_to_worker_200MB_ndarray", static_cast<double>(w2w),
              time_worker_to_worker(client, make_array, consume_array, w2w, repeats, 200));
  client.shutdown();
  return 0;
}
