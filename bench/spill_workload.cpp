// Data larger than memory (issue 16): the workload of bench/peer/dask_spill.py on distrib. A
// 2-worker x 1-thread LocalCluster (processes) with a memory limit per worker persists a
// float64 random array several times their memory, then computes x.sum(),
// (x * 2 + 1).mean() and x.std(axis 0).sum() one after another, and releases it.
//   bench_spill_workload [total_bytes=1.5GiB] [memory_limit=256MiB] [block_rows=1024] [repeats=1]
//                        [local_directory=/tmp]
// One JSON line per repeat: persist, reduce and release seconds, total, the most spilled,
// restarts and pauses seen, the CPU seconds of this process and of the cluster's children.
// The ratio against Dask is taken by bench/compare_spill.sh, which alternates the two.
#include <distrib/distrib.hpp>

#include "bench_common.hpp"
#include "core/memory_limit.hpp"

#include <sys/resource.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <thread>

namespace da = distrib::array;

namespace {

double cpu_seconds(int who) {
  rusage u{};
  getrusage(who, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

std::size_t keys_on_cluster(distrib::Client& client) {
  std::size_t n = 0;
  for (const auto& [worker, keys] : client.has_what()) n += keys.size();
  return n;
}

struct Sample {
  std::uint64_t spilled = 0;
  unsigned restarts = 0, paused = 0;
};

Sample sample(distrib::Client& client) {
  Sample s;
  for (const auto& w : client.scheduler_info().workers) {
    s.spilled += w.spilled;
    s.restarts += w.restarts;
    s.paused += w.paused;
  }
  return s;
}

void run_once(std::uint64_t total_bytes, const std::string& limit, std::int64_t block_rows, const std::string& dir,
              int repeat) {
  constexpr std::int64_t kCols = 4096;
  const std::int64_t rows = static_cast<std::int64_t>(total_bytes / (8 * kCols));
  distrib::LocalCluster cluster({.n_workers = 2,
                                 .threads_per_worker = 1,
                                 .processes = true,
                                 .start_timeout = std::chrono::seconds(60),
                                 .dashboard_address = "none",
                                 .memory_limit = limit,
                                 .local_directory = dir});
  distrib::Client client(cluster);
  const double cpu_self0 = cpu_seconds(RUSAGE_SELF);
  std::uint64_t spilled_max = 0;
  unsigned paused_seen = 0;
  auto watch = [&] {  // every 20 ms: the scheduler answers each poll
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto s = sample(client);
    spilled_max = std::max(spilled_max, s.spilled);
    paused_seen += s.paused;
  };
  auto x = da::random::random({rows, kCols}, {block_rows, kCols}, 42 + repeat);
  const auto blocks = static_cast<std::size_t>((rows + block_rows - 1) / block_rows);
  auto t0 = bench::Clock::now();
  double persist_s = 0, reduce_s = 0, release_s = 0;
  double sum = 0, mean = 0, stdsum = 0;
  {
    auto p = client.persist(x);
    while (keys_on_cluster(client) < blocks) watch();
    persist_s = bench::seconds_since(t0);
    auto t1 = bench::Clock::now();
    sum = client.compute(p.sum()).result().values<double>()[0];
    mean = client.compute((p * 2.0 + 1.0).mean()).result().values<double>()[0];
    stdsum = client.compute(p.std(0).sum()).result().values<double>()[0];
    reduce_s = bench::seconds_since(t1);
    watch();
  }
  auto t2 = bench::Clock::now();
  while (keys_on_cluster(client) > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  release_s = bench::seconds_since(t2);
  const double total_s = bench::seconds_since(t0);
  auto end = sample(client);
  const double cpu_self = cpu_seconds(RUSAGE_SELF) - cpu_self0;
  client.shutdown();
  cluster.close();
  // Plausible results: uniform [0, 1) values have mean 0.5 and std sqrt(1/12) per column.
  const bool ok = std::abs(sum / double(rows * kCols) - 0.5) < 0.01 && std::abs(mean - 2.0) < 0.02 &&
                  std::abs(stdsum / kCols - std::sqrt(1.0 / 12)) < 0.01;
  std::printf(
      "{\"system\": \"distrib\", \"total_bytes\": %llu, \"memory_limit\": \"%s\", \"block_rows\": %lld, "
      "\"persist_s\": %.3f, \"reduce_s\": %.3f, \"release_s\": %.3f, \"total_s\": %.3f, \"spilled_bytes_max\": %llu, "
      "\"worker_restarts\": %u, \"paused_samples\": %u, \"cpu_s\": {\"client\": %.2f, \"cluster_children\": %.2f}, "
      "\"results\": [%.10g, %.10g, %.10g], \"ok\": %s}\n",
      static_cast<unsigned long long>(total_bytes), bench::json_escape(limit).c_str(), static_cast<long long>(block_rows),
      persist_s, reduce_s, release_s, total_s, static_cast<unsigned long long>(spilled_max), end.restarts, paused_seen,
      cpu_self, cpu_seconds(RUSAGE_CHILDREN), sum, mean, stdsum, ok ? "true" : "false");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  std::uint64_t total = argc > 1 ? distrib::detail::parse_byte_size(argv[1]) : std::uint64_t{3} << 29;
  std::string limit = argc > 2 ? argv[2] : "256MiB";
  std::int64_t block_rows = argc > 3 ? std::stoll(argv[3]) : 1024;
  int repeats = argc > 4 ? std::stoi(argv[4]) : 1;
  std::string dir = argc > 5 ? argv[5] : "/tmp";
  for (int r = 0; r < repeats; ++r)
    bench::section("spill_workload", [&] { run_once(total, limit, block_rows, dir, r); });
  return 0;
}
