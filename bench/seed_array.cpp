// The seed examples with distrib::array on a 2-worker, 1-thread-each LocalCluster
// (processes), as ../shared/peer/dask/seed_array.py (and memory.py for the RSS figures):
//
//   seed1: x = da::random::random({10000, 10000}, {1000, 1000}); z = (x + x.T()).mean(0);
//          client.compute(z).result()  -- cold (first computation on the fresh cluster),
//          then warm (a new unseeded x, `repeats` times, median)
//   seed2: x = da::random::normal({100000, 1000}, {1000, 1000});
//          client.compute(x.mean()).result(); client.compute(x.std()).result()  (Dask's flow)
//          and the seed's own flow: xs = client.scatter(x); mean = client.submit(da::mean, xs);
//          std = client.submit(da::std, xs); both gathered.
//   local: seed1 with z.compute() (thread pool in this process, no cluster).
//   limit: seed1 by hand in one process with plain loops on 2 (and 1) std::threads.
//   rss:   idle VmRSS of the scheduler and worker processes (and this one) after start-up,
//          and peak VmHWM of each after Dask's workload (seed1 + seed2 as Dask runs them)
//          and, separately (the high-water marks are reset in between), after the scatter flow.
//
// Prints one JSON line per figure: {"bench": ..., "unit": ..., "median": ..., "runs": [...]};
// a section that throws prints {"bench": ..., "error": "..."} and the others still run.
//   bench_seed_array [repeats=3]
#include <distrib/distrib.hpp>

#include "bench_common.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace da = distrib::array;
using bench::Clock;
using bench::median;
using bench::report;
using bench::report_error;
using bench::report_value;
using bench::section;
using bench::seconds_since;

namespace {

double scalar_of(const distrib::NDArray& a) {
  if (a.size() != 1) throw std::runtime_error("expected one element, got shape " + a.shape_string());
  return a.values<double>()[0];
}

double sum_of(const distrib::NDArray& a) {
  double s = 0;
  for (double v : a.values<double>()) s += v;
  return s;
}

// ---- /proc ----------------------------------------------------------------------------------

// A field of /proc/<pid>/status in KiB ("VmRSS", "VmHWM"); -1 if the process is gone.
long status_kb(int pid, const std::string& field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

double mib(long kb) { return kb < 0 ? -1.0 : static_cast<double>(kb) / 1024.0; }

// Resets a process's VmHWM to its current RSS (Linux >= 4.0).
void reset_peak_rss(int pid) {
  std::ofstream f("/proc/" + std::to_string(pid) + "/clear_refs");
  f << "5";
}

// Reports VmHWM of each child plus the largest worker's, under `prefix`.
void report_peaks(const std::map<std::string, int>& children, const std::string& prefix) {
  double worker_max = -1;
  for (const auto& [role, pid] : children) {
    double m = mib(status_kb(pid, "VmHWM"));
    report_value(prefix + "_" + role, "MiB", m);
    if (role.rfind("worker", 0) == 0) worker_max = std::max(worker_max, m);
  }
  report_value(prefix + "_worker_max", "MiB", worker_max);
}

// ---- the workloads --------------------------------------------------------------------------

struct Seed1 {
  double seconds = 0, z_sum = 0;
  std::size_t raw_tasks = 0, optimized_tasks = 0;
};

da::Array seed1_expression() {
  auto x = da::random::random({10000, 10000}, {1000, 1000});
  return (x + x.T()).mean(0);
}

Seed1 run_seed1(distrib::Client& client) {
  auto z = seed1_expression();
  Seed1 r;
  r.raw_tasks = z.graph_size(false);
  r.optimized_tasks = z.graph_size(true);
  auto t0 = Clock::now();
  distrib::NDArray zr = client.compute(z).result();
  r.seconds = seconds_since(t0);
  if (zr.shape() != distrib::NDArray::Shape{10000}) throw std::runtime_error("seed1: z has shape " + zr.shape_string());
  r.z_sum = sum_of(zr);
  return r;
}

// The physical limit of seed1: z[j] = mean_i(x[i][j] + x[j][i]) = (colsum_j + rowsum_j) / n,
// so one pass over x generated row by row (never stored) is enough. Each thread takes a range
// of rows, keeps its own column sums (80 KB, stays in L2) and the sums of its rows; the
// per-thread column sums are added at the end. Numbers: splitmix64 of a per-element counter
// (independent of the thread split), uniform in [0, 1).
double seed1_limit(int nthreads, std::uint64_t seed, double* z_sum) {
  constexpr std::int64_t n = 10000;
  std::vector<std::vector<double>> colsums(static_cast<std::size_t>(nthreads), std::vector<double>(n, 0.0));
  std::vector<double> rowsums(n, 0.0);
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < nthreads; ++t) {
    threads.emplace_back([&, t] {
      double* cs = colsums[static_cast<std::size_t>(t)].data();
      const std::int64_t begin = n * t / nthreads, end = n * (t + 1) / nthreads;
      for (std::int64_t i = begin; i < end; ++i) {
        std::uint64_t counter = seed + static_cast<std::uint64_t>(i * n) * 0x9E3779B97F4A7C15ull;
        double rs = 0;
        for (std::int64_t j = 0; j < n; ++j) {
          counter += 0x9E3779B97F4A7C15ull;
          std::uint64_t z = counter;
          z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
          z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
          z ^= z >> 31;
          const double v = static_cast<double>(z >> 11) * 0x1.0p-53;
          cs[j] += v;
          rs += v;
        }
        rowsums[static_cast<std::size_t>(i)] = rs;
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<double> z(n);
  for (std::int64_t j = 0; j < n; ++j) {
    double c = rowsums[static_cast<std::size_t>(j)];
    for (const auto& cs : colsums) c += cs[static_cast<std::size_t>(j)];
    z[static_cast<std::size_t>(j)] = c / n;
  }
  double s = 0;
  for (double v : z) s += v;
  const double dt = seconds_since(t0);
  *z_sum = s;
  return dt;
}

}  // namespace

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  const int repeats = std::max(1, argc > 1 ? std::stoi(argv[1]) : 3);
  const int self = static_cast<int>(getpid());

  // ---- on the cluster ----
  {
    auto t0 = Clock::now();
    distrib::LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1});
    distrib::Client client(cluster);
    client.wait_for_workers(2);
    report_value("localcluster_start", "s", seconds_since(t0));

    auto children = bench::cluster_children();
    section("idle_rss", [&] {
      double main_mib = mib(status_kb(self, "VmRSS")), sched_mib = -1, worker_max = -1;
      report_value("idle_rss_main", "MiB", main_mib);
      for (const auto& [role, pid] : children) {
        double m = mib(status_kb(pid, "VmRSS"));
        report_value("idle_rss_" + role, "MiB", m);
        if (role == "scheduler") sched_mib = m;
        else worker_max = std::max(worker_max, m);
      }
      report_value("idle_rss_main_plus_scheduler", "MiB", main_mib + sched_mib);
      report_value("idle_rss_worker_max", "MiB", worker_max);
      if (children.size() != 3)
        report_error("idle_rss", "found " + std::to_string(children.size()) + " cluster child processes, expected 3");
    });

    section("seed1_cold", [&] {
      Seed1 r = run_seed1(client);
      report_value("seed1_cold", "s", r.seconds);
      report_value("seed1_z_sum", "", r.z_sum);
      report_value("seed1_graph_tasks", "tasks", static_cast<double>(r.raw_tasks));
      report_value("seed1_graph_tasks_optimized", "tasks", static_cast<double>(r.optimized_tasks));
    });

    section("seed1_warm", [&] {
      std::vector<double> secs, sums;
      for (int i = 0; i < repeats; ++i) {
        Seed1 r = run_seed1(client);
        secs.push_back(r.seconds);
        sums.push_back(r.z_sum);
      }
      report("seed1_warm", "s", secs);
      report("seed1_warm_z_sum", "", sums);
    });

    // Dask's flow: x.mean().compute(); x.std().compute() with the client as scheduler.
    section("seed2", [&] {
      std::vector<double> mean_s, std_s, means, stds;
      for (int i = 0; i < repeats; ++i) {
        auto x = da::random::normal({100000, 1000}, {1000, 1000});
        if (i == 0) {
          report_value("seed2_mean_graph_tasks", "tasks", static_cast<double>(x.mean().graph_size(false)));
          report_value("seed2_mean_graph_tasks_optimized", "tasks", static_cast<double>(x.mean().graph_size(true)));
          report_value("seed2_std_graph_tasks", "tasks", static_cast<double>(x.std().graph_size(false)));
          report_value("seed2_std_graph_tasks_optimized", "tasks", static_cast<double>(x.std().graph_size(true)));
        }
        auto t0 = Clock::now();
        double m = scalar_of(client.compute(x.mean()).result());
        auto t1 = Clock::now();
        double s = scalar_of(client.compute(x.std()).result());
        std_s.push_back(seconds_since(t1));
        mean_s.push_back(std::chrono::duration<double>(t1 - t0).count());
        means.push_back(m);
        stds.push_back(s);
      }
      report("seed2_mean", "s", mean_s);
      report("seed2_std", "s", std_s);
      report("seed2_mean_value", "", means);
      report("seed2_std_value", "", stds);
    });

    // Peak RSS after the same workload as Dask's memory.py (seed1 + seed2, Dask's flow).
    section("peak_rss", [&] {
      report_value("peak_rss_main", "MiB", mib(status_kb(self, "VmHWM")));
      report_peaks(children, "peak_rss");
    });
    for (const auto& [role, pid] : children) reset_peak_rss(pid);

    // The seed's own flow: x scattered (kept on the cluster), both reductions submitted.
    section("seed2_scatter", [&] {
      std::vector<double> total_s, call_s, mean_ready_s, resident_make_s, resident_mean_s, resident_std_s, means, stds;
      for (int i = 0; i < repeats; ++i) {
        {
          auto x = da::random::normal({100000, 1000}, {1000, 1000});
          auto t0 = Clock::now();
          da::Array xs = client.scatter(x);
          call_s.push_back(seconds_since(t0));
          distrib::Future<double> mean_f = client.submit(da::mean, xs);
          distrib::Future<double> std_f = client.submit(da::std, xs);
          means.push_back(mean_f.result());
          mean_ready_s.push_back(seconds_since(t0));
          stds.push_back(std_f.result());
          total_s.push_back(seconds_since(t0));
        }
        {
          // Each reduction alone over blocks already in the workers' memory (a da::sum first
          // makes sure they are there).
          auto x = da::random::normal({100000, 1000}, {1000, 1000});
          auto t0 = Clock::now();
          da::Array xs = client.scatter(x);
          client.submit(da::sum, xs).result();
          resident_make_s.push_back(seconds_since(t0));
          auto t1 = Clock::now();
          client.submit(da::mean, xs).result();
          resident_mean_s.push_back(seconds_since(t1));
          auto t2 = Clock::now();
          client.submit(da::std, xs).result();
          resident_std_s.push_back(seconds_since(t2));
        }
      }
      // The first run also pays for the workers' first touch of ~400 MB each.
      report_value("seed2_scatter_mean_std_total_first", "s", total_s.front());
      report("seed2_scatter_mean_std_total", "s", total_s);
      report("seed2_scatter_call", "s", call_s);
      report("seed2_scatter_mean_ready", "s", mean_ready_s);
      report("seed2_scatter_mean_value", "", means);
      report("seed2_scatter_std_value", "", stds);
      report("seed2_scatter_then_sum", "s", resident_make_s);
      report("seed2_resident_mean", "s", resident_mean_s);
      report("seed2_resident_std", "s", resident_std_s);
    });
    section("peak_rss_scatter", [&] { report_peaks(children, "peak_rss_scatter"); });

    auto t1 = Clock::now();
    client.shutdown();
    cluster.close();
    report_value("shutdown", "s", seconds_since(t1));
  }

  // ---- in this process ----
  section("seed1_local", [&] {
    auto z = seed1_expression();
    auto t0 = Clock::now();
    distrib::NDArray zr = z.compute();
    report_value("seed1_local_cold", "s", seconds_since(t0));
    std::vector<double> secs, sums{sum_of(zr)};
    for (int i = 0; i < repeats; ++i) {
      auto zi = seed1_expression();
      auto t = Clock::now();
      distrib::NDArray r = zi.compute();
      secs.push_back(seconds_since(t));
      sums.push_back(sum_of(r));
    }
    report("seed1_local_warm", "s", secs);
    report("seed1_local_z_sum", "", sums);
  });

  section("seed1_limit", [&] {
    for (int nthreads : {2, 1}) {
      std::vector<double> secs, sums;
      for (int i = 0; i < repeats; ++i) {
        double s = 0;
        secs.push_back(seed1_limit(nthreads, 0x1234567ull + static_cast<std::uint64_t>(i), &s));
        sums.push_back(s);
      }
      report("seed1_limit_" + std::to_string(nthreads) + "threads", "s", secs);
      report("seed1_limit_" + std::to_string(nthreads) + "threads_z_sum", "", sums);
    }
  });
  return 0;
}
