// Task throughput and round-trip latency on a 2-worker, 1-thread-each LocalCluster
// (processes), the same workloads as ../shared/peer/dask/throughput.py and latency.py:
//   map:  client.map(inc, 20k distinct inputs) + gather
//   tree: 10k leaves of inc, pairwise add until one future is left (19,999 tasks)
//   loop: 20k client.submit(inc, i) + gather
//   rtt:  submit(inc, i).result(), median and p99 of 1000 after 50 warm-ups (as latency.py)
//   first: the first submit(inc).result() on each fresh cluster
// Prints one JSON line per figure: {"bench": ..., "median": ..., "runs": [...]}.
//   bench_throughput [n_tasks=20000] [repeats=3] [only=map,tree,loop,rtt]
// `only` runs a subset (for profiling one workload); start-up and first task always run.
#include <distrib/distrib.hpp>

#include "bench_cluster.hpp"
#include "bench_common.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

int inc(int x) { return x + 1; }
DISTRIB_TASK(inc);

long long add(long long a, long long b) { return a + b; }
DISTRIB_TASK(add);

long long widen(int x) { return x; }
DISTRIB_TASK(widen);

using bench::Clock;
using bench::median;
using bench::report;
using bench::seconds_since;

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  int n = argc > 1 ? std::stoi(argv[1]) : 20000;
  int repeats = argc > 2 ? std::stoi(argv[2]) : 3;
  const int leaves = n / 2;
  const std::string only = argc > 3 ? argv[3] : "map,tree,loop,rtt";
  auto wanted = [&](const char* name) { return only.find(name) != std::string::npos; };

  std::vector<double> map_call_ms, map_gathered_ms;
  std::vector<double> startup, first_task_ms, map_rate, tree_rate, loop_rate, latency_us, latency_p99_us;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = Clock::now();
    distrib::LocalCluster cluster(bench::cluster_options(2));
    distrib::Client client(cluster);
    startup.push_back(seconds_since(t0));
    // The first task on the fresh cluster: submit to result, nothing warmed up.
    auto tf = Clock::now();
    if (client.submit(inc, -1000).result() != -999) return 3;
    first_task_ms.push_back(seconds_since(tf) * 1e3);
    std::vector<int> warm(200);
    std::iota(warm.begin(), warm.end(), -200);
    client.gather(client.map(inc, warm));

    std::vector<int> xs(static_cast<std::size_t>(n));
    std::iota(xs.begin(), xs.end(), 0);
    if (wanted("map")) {
      auto t1 = Clock::now();
      std::vector<int> ys;
      {
        auto fs = client.map(inc, xs);
        map_call_ms.push_back(seconds_since(t1) * 1e3);  // as Dask's figure: the map() call alone
        ys = client.gather(fs);
        map_gathered_ms.push_back(seconds_since(t1) * 1e3);
      }  // the futures are released here, inside the timing, as in Dask's script
      map_rate.push_back(n / seconds_since(t1));
      if (ys.back() != n) return 1;
    }
    if (wanted("tree")) {
      std::vector<int> leaf_inputs(static_cast<std::size_t>(leaves));
      std::iota(leaf_inputs.begin(), leaf_inputs.end(), 10 * n);
      auto t2 = Clock::now();
      auto level = client.map(widen, leaf_inputs);
      std::size_t tasks = level.size();
      while (level.size() > 1) {
        std::vector<distrib::Future<long long>> next;
        for (std::size_t i = 0; i + 1 < level.size(); i += 2) next.push_back(client.submit(add, level[i], level[i + 1]));
        tasks += next.size();
        if (level.size() % 2) next.push_back(level.back());
        level = std::move(next);
    }
    long long total = level.front().result();
    tree_rate.push_back(static_cast<double>(tasks) / seconds_since(t2));
    long long expect = 0;
    for (int x : leaf_inputs) expect += x;
    if (total != expect) return 2;
    }
    if (wanted("loop")) {
      auto t3 = Clock::now();
      std::vector<distrib::Future<int>> fs;
      fs.reserve(xs.size());
      for (int x : xs) fs.push_back(client.submit(inc, 20 * n + x));
      client.gather(fs);
      loop_rate.push_back(n / seconds_since(t3));
    }
    if (wanted("rtt")) {
      // As Dask's latency.py: 50 warm-ups, then 1000 timed round trips. The warm-ups also let
      // the previous phase's releases (20k keys freed on the scheduler and the workers) finish.
      for (int i = 0; i < 50; ++i) client.submit(inc, -1'000'000 - i).result();
      std::vector<double> lat;
      const int round_trips = std::getenv("RTT_COUNT") ? std::atoi(std::getenv("RTT_COUNT")) : 1000;
      for (int i = 0; i < round_trips; ++i) {
        auto t = Clock::now();
        client.submit(inc, 40 * n + i).result();
        lat.push_back(seconds_since(t) * 1e6);
    }
    latency_us.push_back(median(lat));
    std::sort(lat.begin(), lat.end());
    latency_p99_us.push_back(lat[lat.size() * 99 / 100]);
    }
    client.shutdown();
  }
  report("localcluster_start", "s", startup);
  if (!map_rate.empty()) {
    report("map_gather", "tasks/s", map_rate);
    report("map_call", "ms", map_call_ms);
    report("map_until_gathered", "ms", map_gathered_ms);
  }
  if (!tree_rate.empty()) report("tree_reduction", "tasks/s", tree_rate);
  if (!loop_rate.empty()) report("submit_loop_gather", "tasks/s", loop_rate);
  if (!latency_us.empty()) report("round_trip_median", "us", latency_us);
  if (!latency_p99_us.empty()) report("round_trip_p99", "us", latency_p99_us);
  report("first_task", "ms", first_task_ms);
  return 0;
}
