// Coordination primitives (issue 19, "Measure"): the round trip of a Queue put followed by a
// get from one client, through the scheduler (a LocalCluster's dscheduler process), and of a
// Lock acquire + release. Each round: N put/get pairs, N lock/unlock pairs, the median pair
// time over rounds. bench/peer/dask_queue.py does the same on Python Dask.
//
// Prints one JSON line per figure: {"bench": ..., "unit": ..., "median": ..., "runs": [...]}
//   bench_queue_round_trip [n=2000] [rounds=5]
#include <distrib/distrib.hpp>

#include "bench_common.hpp"

using bench::Clock;
using bench::report;
using bench::seconds_since;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  const int n = argc > 1 ? std::stoi(argv[1]) : 2000;
  const int rounds = std::max(1, argc > 2 ? std::stoi(argv[2]) : 5);
  distrib::LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1});
  distrib::Client client(cluster);
  distrib::Queue<int> q("bench-queue", client);
  distrib::Lock lock("bench-lock", client);
  for (int i = 0; i < 100; ++i) {  // warm-up
    q.put(i);
    q.get(10s);
  }
  std::vector<double> queue_us, lock_us;
  for (int r = 0; r < rounds; ++r) {
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
      q.put(i);
      if (q.get(10s) != i) throw std::runtime_error("queue out of order");
    }
    queue_us.push_back(seconds_since(t0) / n * 1e6);
    t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
      lock.acquire();
      lock.release();
    }
    lock_us.push_back(seconds_since(t0) / n * 1e6);
  }
  report("queue.put_get_round_trip.n=" + std::to_string(n), "us", queue_us);
  report("lock.acquire_release_round_trip.n=" + std::to_string(n), "us", lock_us);
  return 0;
}
