// Tasks that launch tasks (issue 19, "Measure"): a Fibonacci tree where every call is a task
// (pure = false, so no two calls share a key) that submits its two children through the
// worker's shared client and waits for them inside a WorkerClient (seceded), on a
// LocalCluster of 2 workers x 1 thread (real processes: a dscheduler and this program as
// each worker). For fib(n) that is 2 * fib(n + 1) - 1 tasks, more than half of which wait.
//
// For each round (after one warm-up): wall time of client.submit(fib, n).result(), tasks/s,
// and the CPU seconds of the scheduler, the workers and this process (the client) over the
// round, from /proc/<pid>/stat. bench/peer/dask_fib.py does the same on Python Dask with
// worker_client; bench/compare_fib.sh alternates the two.
//
// Prints one JSON line per figure: {"bench": ..., "unit": ..., "median": ..., "runs": [...]}
//   bench_launching_tasks [n=15] [rounds=5]
#include <distrib/distrib.hpp>

#include "bench_common.hpp"

using bench::Clock;
using bench::report;
using bench::seconds_since;

long bench_fib(int n) {
  if (n < 2) return n;
  distrib::WorkerClient c;
  distrib::SubmitOptions impure;
  impure.pure = false;
  auto a = c->submit(impure, bench_fib, n - 1);
  auto b = c->submit(impure, bench_fib, n - 2);
  return a.result() + b.result();
}
DISTRIB_TASK(bench_fib);

namespace {
long fib_value(int n) { return n < 2 ? n : fib_value(n - 1) + fib_value(n - 2); }
double calls(int n) { return 2.0 * static_cast<double>(fib_value(n + 1)) - 1.0; }

double cpu_of(const std::vector<int>& pids) {
  double s = 0;
  for (int pid : pids) s += bench::cpu_times(pid).self;
  return s;
}
}  // namespace

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  const int n = argc > 1 ? std::stoi(argv[1]) : 15;
  const int rounds = std::max(1, argc > 2 ? std::stoi(argv[2]) : 5);
  distrib::LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1});
  distrib::Client client(cluster);
  client.wait_for_workers(2);
  auto children = bench::cluster_children();
  std::vector<int> scheduler, workers;
  for (const auto& [role, pid] : children) (role == "scheduler" ? scheduler : workers).push_back(pid);
  const int self = static_cast<int>(getpid());

  distrib::SubmitOptions impure;
  impure.pure = false;
  if (client.submit(impure, bench_fib, n).result() != fib_value(n)) throw std::runtime_error("warm-up: wrong result");
  std::vector<double> wall, rate, cpu_sched, cpu_workers, cpu_client;
  for (int r = 0; r < rounds; ++r) {
    const double s0 = cpu_of(scheduler), w0 = cpu_of(workers), c0 = bench::cpu_times(self).self;
    auto t0 = Clock::now();
    const long got = client.submit(impure, bench_fib, n).result();
    const double dt = seconds_since(t0);
    if (got != fib_value(n)) throw std::runtime_error("fib(" + std::to_string(n) + ") = " + std::to_string(got));
    wall.push_back(dt);
    rate.push_back(calls(n) / dt);
    cpu_sched.push_back(cpu_of(scheduler) - s0);
    cpu_workers.push_back(cpu_of(workers) - w0);
    cpu_client.push_back(bench::cpu_times(self).self - c0);
  }
  const std::string tag = ".n=" + std::to_string(n) + ".tasks=" + std::to_string(static_cast<long>(calls(n)));
  report("launching_tasks.wall" + tag, "s", wall);
  report("launching_tasks.tasks_per_s" + tag, "tasks/s", rate);
  report("launching_tasks.cpu_scheduler" + tag, "s", cpu_sched);
  report("launching_tasks.cpu_workers" + tag, "s", cpu_workers);
  report("launching_tasks.cpu_client" + tag, "s", cpu_client);
  return 0;
}
