// Tasks that compute (issue 15): the same graphs of compute-bound tasks on a 2-worker x
// 1-thread LocalCluster and on 2 plain std::threads, in the same run, alternating.
//   stepped2, stepped4: steps W tasks wide; every task of step s+1 reads ALL W outputs of
//             step s (so every step needs data from the other worker); plain threads: a
//             barrier per step.
//   chains:   2 independent chains (one per task thread), each task reads its predecessor;
//             plain threads: one chain each, no barrier.
//   tree:     a binary fan-out tree from one root (63-255 tasks), each node reads its
//             parent; plain threads: a shared queue of ready nodes.
// The kernel is a dependent chain of floating-point multiply-adds, calibrated once on one
// thread (iterations per microsecond) and seeded from the task's inputs, so nothing can be
// optimized away and both sides compute bit-identical values (checked on every run).
// Efficiency = plain-thread wall time / cluster wall time, per pair of runs; medians over
// `repeats` pairs. Each run holds about 0.3 s of kernel CPU time (at least 8 steps, at most
// 2000). Also the wall time per step of stepped2 with empty kernels, the CPU seconds of the
// bench process and of the cluster's processes, and the smallest kernel at efficiency 0.5.
//   bench_stepped [repeats=3] [workloads=stepped2,stepped4,chains,tree]
//                 [kernels_us=40000,10000,...,1] [processes|threads|both]
// JSON lines on stdout (bench_common.hpp's format); a markdown summary on stderr.
#include <distrib/distrib.hpp>

#include "bench_common.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <barrier>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

// ---- the kernel and the tasks ---------------------------------------------------------

// `iters` dependent multiply-adds from `x` (converges to 1000, so values stay bounded).
static double spin(double x, long long iters) {
  double a = x;
  for (long long i = 0; i < iters; ++i) a = a * 0.999999 + 0.001;
  return a;
}

// The kernel's start value, from the inputs and the task's index (low 32 bits; the high
// bits tag the run so that keys never repeat).
static double seed_of(double inputs, long long index) {
  return std::fmod(std::fabs(inputs), 1000.0) + static_cast<double>((index & 0xffffffffLL) % 1000) * 1e-3;
}

double first_task(long long index, long long iters) { return spin(seed_of(0.0, index), iters); }
DISTRIB_TASK(first_task);

double link_task(double input, long long index, long long iters) { return spin(seed_of(input, index), iters); }
DISTRIB_TASK(link_task);

double step_task(std::vector<double> inputs, long long index, long long iters) {
  double sum = 0;
  for (double v : inputs) sum += v;
  return spin(seed_of(sum, index), iters);
}
DISTRIB_TASK(step_task);

namespace {

using bench::Clock;
using bench::median;
using bench::report;
using bench::report_value;
using bench::seconds_since;

constexpr int kThreads = 2;                // task threads: 2 workers x 1 thread, or 2 std::threads
constexpr double kKernelCpuPerRun = 0.3;  // seconds of kernel work per run
constexpr int kMinSteps = 8, kMaxSteps = 2000;

// ---- graphs ---------------------------------------------------------------------------

enum class Kind { stepped, chains, tree };

struct Graph {
  Kind kind{};
  int width = 0;                       // stepped: tasks per step; chains: number of chains
  int length = 0;                      // stepped: steps; chains: tasks per chain; tree: depth
  std::vector<std::vector<int>> deps;  // tasks in topological order (ids 0..n-1)
  std::vector<int> sinks;              // tasks nobody reads: gathered
  std::size_t size() const { return deps.size(); }
};

Graph make_graph(const std::string& workload, double kernel_us) {
  Graph g;
  const double per_task_s = kernel_us * 1e-6;
  auto count = [&](int parallel) {  // steps (or chain length) for ~kKernelCpuPerRun of kernel
    if (per_task_s <= 0) return kMaxSteps;
    return std::clamp(static_cast<int>(std::lround(kKernelCpuPerRun / (parallel * per_task_s))), kMinSteps, kMaxSteps);
  };
  if (workload == "stepped2" || workload == "stepped4") {
    g.kind = Kind::stepped;
    g.width = workload == "stepped2" ? 2 : 4;
    g.length = count(g.width);
    for (int s = 0; s < g.length; ++s)
      for (int j = 0; j < g.width; ++j) {
        std::vector<int> d;
        if (s > 0)
          for (int k = 0; k < g.width; ++k) d.push_back((s - 1) * g.width + k);
        g.deps.push_back(std::move(d));
      }
    for (int j = 0; j < g.width; ++j) g.sinks.push_back((g.length - 1) * g.width + j);
  } else if (workload == "chains") {
    g.kind = Kind::chains;
    g.width = kThreads;
    g.length = count(g.width);
    for (int c = 0; c < g.width; ++c) {
      for (int i = 0; i < g.length; ++i) {
        const int id = c * g.length + i;
        g.deps.push_back(i > 0 ? std::vector<int>{id - 1} : std::vector<int>{});
      }
      g.sinks.push_back(c * g.length + g.length - 1);
    }
  } else if (workload == "tree") {
    g.kind = Kind::tree;
    int depth = 5;  // 63 tasks ... depth 7: 255 tasks
    while (depth < 7 && per_task_s > 0 && ((1 << (depth + 1)) - 1) * per_task_s < kKernelCpuPerRun) ++depth;
    if (per_task_s <= 0) depth = 7;
    g.length = depth;
    const int n = (1 << (depth + 1)) - 1;
    for (int i = 0; i < n; ++i) g.deps.push_back(i > 0 ? std::vector<int>{(i - 1) / 2} : std::vector<int>{});
    for (int i = n / 2; i < n; ++i) g.sinks.push_back(i);
  } else {
    throw std::invalid_argument("unknown workload " + workload);
  }
  return g;
}

// One task's value from its inputs' values: the same functions the workers call.
double compute(const Graph& g, const std::vector<double>& values, int id, long long tag, long long iters) {
  const auto& d = g.deps[static_cast<std::size_t>(id)];
  const long long index = tag | id;
  if (d.empty()) return first_task(index, iters);
  if (g.kind != Kind::stepped) return link_task(values[static_cast<std::size_t>(d[0])], index, iters);
  std::vector<double> in;
  in.reserve(d.size());
  for (int k : d) in.push_back(values[static_cast<std::size_t>(k)]);
  return step_task(std::move(in), index, iters);
}

double sum_sinks(const Graph& g, const std::vector<double>& values) {
  double s = 0;
  for (int i : g.sinks) s += values[static_cast<std::size_t>(i)];
  return s;
}

// ---- the two runners ------------------------------------------------------------------

// Submits the whole graph (each task as soon as its inputs' futures exist, dropping a future
// once its last reader is submitted), gathers the sinks; every future is released on return.
// `wall` is the time from the first submit until the gather returns; `same_worker` counts
// runs whose sinks all ended on one worker (asked after the timing).
double run_cluster(distrib::Client& client, const Graph& g, long long tag, long long iters, double& wall,
                   int* same_worker = nullptr) {
  const auto t0 = Clock::now();
  const std::size_t n = g.size();
  std::vector<int> last_reader(n, -1);
  for (std::size_t i = 0; i < n; ++i)
    for (int d : g.deps[i]) last_reader[static_cast<std::size_t>(d)] = static_cast<int>(i);
  std::vector<distrib::Future<double>> fut(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& d = g.deps[i];
    const long long index = tag | static_cast<long long>(i);
    if (d.empty()) {
      fut[i] = client.submit(first_task, index, iters);
    } else if (g.kind != Kind::stepped) {
      fut[i] = client.submit(link_task, fut[static_cast<std::size_t>(d[0])], index, iters);
    } else {
      std::vector<distrib::Future<double>> in;
      in.reserve(d.size());
      for (int k : d) in.push_back(fut[static_cast<std::size_t>(k)]);
      fut[i] = client.submit(step_task, in, index, iters);
    }
    for (int k : d)
      if (last_reader[static_cast<std::size_t>(k)] == static_cast<int>(i)) fut[static_cast<std::size_t>(k)] = {};
  }
  std::vector<distrib::Future<double>> sinks;
  for (int i : g.sinks) sinks.push_back(fut[static_cast<std::size_t>(i)]);
  fut.clear();
  const std::vector<double> got = client.gather(sinks);
  wall = seconds_since(t0);
  if (same_worker) {
    std::set<std::string> where;
    for (const auto& [key, workers] : client.who_has(sinks))
      for (const auto& w : workers) where.insert(w);
    if (where.size() < 2) ++*same_worker;
  }
  double s = 0;
  for (double v : got) s += v;
  return s;
}

// The same graph on kThreads std::threads.
double run_threads(const Graph& g, long long tag, long long iters) {
  std::vector<double> values(g.size());
  std::vector<std::jthread> pool;
  if (g.kind == Kind::stepped) {
    std::barrier step_done(kThreads);
    for (int t = 0; t < kThreads; ++t)
      pool.emplace_back([&, t] {
        for (int s = 0; s < g.length; ++s) {
          for (int j = t; j < g.width; j += kThreads) {
            const int id = s * g.width + j;
            values[static_cast<std::size_t>(id)] = compute(g, values, id, tag, iters);
          }
          step_done.arrive_and_wait();
        }
      });
    pool.clear();  // joins
  } else if (g.kind == Kind::chains) {
    for (int t = 0; t < kThreads; ++t)
      pool.emplace_back([&, t] {
        for (int c = t; c < g.width; c += kThreads)
          for (int i = 0; i < g.length; ++i) {
            const int id = c * g.length + i;
            values[static_cast<std::size_t>(id)] = compute(g, values, id, tag, iters);
          }
      });
    pool.clear();
  } else {
    std::mutex m;
    std::condition_variable cv;
    std::deque<int> ready{0};
    std::size_t done = 0;
    const int n = static_cast<int>(g.size());
    for (int t = 0; t < kThreads; ++t)
      pool.emplace_back([&] {
        std::unique_lock lock(m);
        for (;;) {
          cv.wait(lock, [&] { return !ready.empty() || done == g.size(); });
          if (ready.empty()) return;
          const int id = ready.front();
          ready.pop_front();
          lock.unlock();
          const double v = compute(g, values, id, tag, iters);
          lock.lock();
          values[static_cast<std::size_t>(id)] = v;
          ++done;
          for (int c : {2 * id + 1, 2 * id + 2})
            if (c < n) ready.push_back(c);
          cv.notify_all();
        }
      });
    pool.clear();
  }
  return sum_sinks(g, values);
}

// ---- CPU time -------------------------------------------------------------------------

double self_cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

double reaped_children_cpu_s() {
  rusage u{};
  getrusage(RUSAGE_CHILDREN, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

std::vector<int> descendants(int pid) {
  std::vector<int> out;
  for (int c : bench::child_pids(pid)) {
    out.push_back(c);
    for (int d : descendants(c)) out.push_back(d);
  }
  return out;
}

std::string comm_of(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
  std::string s;
  std::getline(f, s);
  return s;
}

double cpu_of(const std::vector<int>& pids) {
  double s = 0;
  for (int p : pids) s += std::max(0.0, bench::cpu_times(p).self);
  return s;
}

// ---- the sweep ------------------------------------------------------------------------

struct Totals {  // per (configuration, workload), over every run
  double cluster_wall = 0, client_cpu = 0, children_cpu = 0, threads_wall = 0, threads_cpu = 0, kernel_cpu = 0;
  int runs = 0, sinks_on_one_worker = 0;
};

struct Summary {
  std::map<std::string, std::map<double, double>> efficiency;  // workload -> kernel_us -> median
  std::map<std::string, Totals> totals;
  std::map<std::string, double> half_machine_us, smallest_half_us;
  double empty_step_cluster_us = -1, empty_step_threads_us = -1;
  std::vector<std::pair<std::string, double>> process_cpu;  // "pid comm" -> CPU seconds
  double reaped_children_cpu = -1;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string kernel_label(double us) {
  char buf[32];
  if (us >= 1000) std::snprintf(buf, sizeof buf, "%.3g ms", us / 1000);
  else std::snprintf(buf, sizeof buf, "%.3g us", us);
  return buf;
}

// The kernel where efficiency crosses 0.5, interpolated in log(kernel) between the last
// measured point at >= 0.5 and the first below (sweeping down from the largest kernel);
// the smallest kernel if none falls below, -1 if the largest is already below.
double half_point(const std::map<double, double>& eff) {
  double prev_k = -1, prev_e = -1;
  for (auto it = eff.rbegin(); it != eff.rend(); ++it) {
    const auto [k, e] = *it;
    if (e < 0.5) {
      if (prev_k < 0) return -1;
      const double f = (prev_e - 0.5) / (prev_e - e);
      return std::exp(std::log(prev_k) + f * (std::log(k) - std::log(prev_k)));
    }
    prev_k = k, prev_e = e;
  }
  return prev_k;
}

Summary sweep(bool processes, int repeats, const std::vector<std::string>& workloads, const std::vector<double>& kernels,
              double iters_per_us, long long& tag_counter) {
  Summary sum;
  const std::string config = processes ? "processes" : "threads";
  const double reaped_before = reaped_children_cpu_s(), self_before = self_cpu_s();
  std::vector<int> children;
  {
    auto t0 = Clock::now();
    distrib::LocalCluster cluster(
        {.n_workers = 2, .threads_per_worker = 1, .processes = processes, .dashboard_address = "none"});
    distrib::Client client(cluster);
    report_value(config + ".localcluster_start", "s", seconds_since(t0));
    if (processes) children = descendants(static_cast<int>(getpid()));
    // Warm up: connections between the workers, the task functions, the allocators.
    {
      const Graph g = make_graph("stepped2", 100);
      double wall = 0;
      run_cluster(client, g, ++tag_counter << 32, static_cast<long long>(100 * iters_per_us), wall);
    }
    auto pair = [&](const Graph& g, long long iters, Totals& tot, std::vector<double>& cl, std::vector<double>& th) {
      const long long tag = ++tag_counter << 32;
      const double c0 = self_cpu_s(), k0 = cpu_of(children);
      double wall = 0;
      const double a = run_cluster(client, g, tag, iters, wall, g.kind == Kind::chains ? &tot.sinks_on_one_worker : nullptr);
      cl.push_back(wall);
      const double c1 = self_cpu_s(), k1 = cpu_of(children);
      auto t = Clock::now();
      const double b = run_threads(g, tag, iters);
      th.push_back(seconds_since(t));
      const double c2 = self_cpu_s();
      if (a != b) throw std::runtime_error("cluster and threads disagree: " + std::to_string(a) + " vs " + std::to_string(b));
      tot.cluster_wall += cl.back(), tot.threads_wall += th.back();
      tot.client_cpu += c1 - c0, tot.children_cpu += k1 - k0, tot.threads_cpu += c2 - c1;
      tot.kernel_cpu += static_cast<double>(g.size()) * static_cast<double>(iters) / iters_per_us * 1e-6;
      ++tot.runs;
    };
    // The per-step cost with empty kernels: stepped2, 0 iterations.
    bench::section(config + ".empty_step", [&] {
      const Graph g = make_graph("stepped2", 0);
      Totals tot;
      std::vector<double> cl, th;
      for (int r = 0; r < repeats; ++r) pair(g, 0, tot, cl, th);
      for (auto& v : cl) v = v / g.length * 1e6;
      for (auto& v : th) v = v / g.length * 1e6;
      report(config + ".empty_step.cluster", "us/step", cl);
      report(config + ".empty_step.threads", "us/step", th);
      sum.empty_step_cluster_us = median(cl), sum.empty_step_threads_us = median(th);
    });
    for (const auto& w : workloads) {
      Totals& tot = sum.totals[w];
      for (double k : kernels) {
        char label[32];
        std::snprintf(label, sizeof label, "%gus", k);
        const std::string name = w + "." + config + ".k" + label;
        bench::section(name, [&] {
          const Graph g = make_graph(w, k);
          const auto iters = static_cast<long long>(std::llround(k * iters_per_us));
          std::vector<double> cl, th, eff;
          for (int r = 0; r < repeats; ++r) {
            pair(g, iters, tot, cl, th);
            eff.push_back(th.back() / cl.back());
          }
          report_value(name + ".tasks", "", static_cast<double>(g.size()));
          report(name + ".cluster", "s", cl);
          report(name + ".threads", "s", th);
          report(name + ".efficiency", "threads/cluster", eff);
          sum.efficiency[w][k] = median(eff);
        });
      }
      const auto& eff = sum.efficiency[w];
      const double half = half_point(eff);
      double smallest = -1;
      for (auto [k, e] : eff)
        if (e >= 0.5) { smallest = k; break; }
      sum.half_machine_us[w] = half, sum.smallest_half_us[w] = smallest;
      report_value(w + "." + config + ".half_machine_kernel_interpolated", "us", half);
      report_value(w + "." + config + ".smallest_kernel_at_half", "us", smallest);
      report_value(w + "." + config + ".cpu.cluster_wall", "s", tot.cluster_wall);
      report_value(w + "." + config + ".cpu.client_process", "s", tot.client_cpu);
      report_value(w + "." + config + ".cpu.cluster_children", "s", tot.children_cpu);
      report_value(w + "." + config + ".cpu.kernels", "s", tot.kernel_cpu);
      report_value(w + "." + config + ".cpu.threads_wall", "s", tot.threads_wall);
      report_value(w + "." + config + ".cpu.threads_process", "s", tot.threads_cpu);
      if (w == "chains") report_value(w + "." + config + ".runs_with_both_chains_on_one_worker", "", tot.sinks_on_one_worker);
    }
    for (int p : children) {
      const double c = bench::cpu_times(p).self;
      sum.process_cpu.emplace_back(std::to_string(p) + " " + comm_of(p), c);
      report_value(config + ".process_cpu." + comm_of(p) + "." + std::to_string(p), "s", c);
    }
    sum.process_cpu.emplace_back("bench (client" + std::string(processes ? "" : " + cluster threads") +
                                     " + plain threads)",
                                 self_cpu_s() - self_before);
    client.shutdown();
  }
  if (processes) {
    sum.reaped_children_cpu = reaped_children_cpu_s() - reaped_before;
    report_value(config + ".rusage_children_after_close", "s", sum.reaped_children_cpu);
  }
  return sum;
}

void print_summary(const std::string& config, const Summary& s, const std::vector<std::string>& workloads,
                   const std::vector<double>& kernels) {
  std::fprintf(stderr, "\n### %s (LocalCluster processes = %s)\n\n| kernel |", config.c_str(),
               config == "processes" ? "true" : "false");
  for (const auto& w : workloads) std::fprintf(stderr, " %s |", w.c_str());
  std::fprintf(stderr, "\n|---|");
  for (std::size_t i = 0; i < workloads.size(); ++i) std::fprintf(stderr, "---:|");
  std::fprintf(stderr, "\n");
  for (double k : kernels) {
    std::fprintf(stderr, "| %s |", kernel_label(k).c_str());
    for (const auto& w : workloads) {
      auto it = s.efficiency.find(w);
      if (it != s.efficiency.end() && it->second.count(k)) std::fprintf(stderr, " %.2f |", it->second.at(k));
      else std::fprintf(stderr, " - |");
    }
    std::fprintf(stderr, "\n");
  }
  std::fprintf(stderr, "| **0.5 at (interpolated)** |");
  for (const auto& w : workloads) std::fprintf(stderr, " %s |", s.half_machine_us.count(w) && s.half_machine_us.at(w) > 0 ? kernel_label(s.half_machine_us.at(w)).c_str() : "none");
  std::fprintf(stderr, "\n| smallest measured >= 0.5 |");
  for (const auto& w : workloads) std::fprintf(stderr, " %s |", s.smallest_half_us.count(w) && s.smallest_half_us.at(w) > 0 ? kernel_label(s.smallest_half_us.at(w)).c_str() : "none");
  std::fprintf(stderr, "\n\nempty kernels, stepped2: %.1f us/step on the cluster, %.1f us/step on plain threads\n\n",
               s.empty_step_cluster_us, s.empty_step_threads_us);
  std::fprintf(stderr, "| CPU seconds, whole sweep | cluster wall | client process | scheduler + workers | kernels | threads wall | threads process |\n|---|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& w : workloads) {
    auto it = s.totals.find(w);
    if (it == s.totals.end()) continue;
    const Totals& t = it->second;
    std::fprintf(stderr, "| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n", w.c_str(), t.cluster_wall, t.client_cpu,
                 t.children_cpu, t.kernel_cpu, t.threads_wall, t.threads_cpu);
  }
  if (s.totals.count("chains"))
    std::fprintf(stderr, "\nchains: both chains ended on one worker in %d of %d cluster runs\n",
                 s.totals.at("chains").sinks_on_one_worker, s.totals.at("chains").runs);
  std::fprintf(stderr, "\nper process, whole configuration:");
  for (const auto& [who, c] : s.process_cpu) std::fprintf(stderr, " %s %.1f s;", who.c_str(), c);
  if (s.reaped_children_cpu >= 0) std::fprintf(stderr, " getrusage(RUSAGE_CHILDREN) after close: %.1f s", s.reaped_children_cpu);
  std::fprintf(stderr, "\n");
}

// Iterations of spin() per microsecond on one thread: the best of 5 timings of >= 50 ms.
double calibrate() {
  long long n = 1 << 20;
  double best = 0;
  volatile double sink = 0;
  for (int round = 0; round < 5; ++round) {
    for (;;) {
      auto t = Clock::now();
      sink = spin(1.0 + round, n);
      const double us = seconds_since(t) * 1e6;
      if (us >= 50'000) {
        best = std::max(best, static_cast<double>(n) / us);
        break;
      }
      n *= 2;
    }
  }
  (void)sink;
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  const int repeats = argc > 1 ? std::max(1, std::stoi(argv[1])) : 3;
  const auto workloads = split(argc > 2 ? argv[2] : "stepped2,stepped4,chains,tree");
  std::vector<double> kernels;
  for (const auto& k : split(argc > 3 ? argv[3] : "40000,10000,5000,2400,1200,600,300,150,50,20,5,1"))
    kernels.push_back(std::stod(k));
  const std::string mode = argc > 4 ? argv[4] : "both";
  if (mode != "processes" && mode != "threads" && mode != "both") {
    std::fprintf(stderr, "usage: bench_stepped [repeats=3] [workloads=stepped2,stepped4,chains,tree] [kernels_us=40000,...,1] [processes|threads|both]\n");
    return 2;
  }
  for (const auto& w : workloads) make_graph(w, 1);  // rejects unknown names before anything starts
  report_value("loadavg_1min_at_start", "", bench::loadavg_1min());
  const auto t_all = Clock::now();
  const double iters_per_us = calibrate();
  report_value("kernel_iterations_per_us", "1/us", iters_per_us);
  long long tag_counter = 0;
  std::vector<std::pair<std::string, Summary>> results;
  for (bool processes : {true, false}) {
    if ((processes && mode == "threads") || (!processes && mode == "processes")) continue;
    results.emplace_back(processes ? "processes" : "threads",
                         sweep(processes, repeats, workloads, kernels, iters_per_us, tag_counter));
  }
  report_value("total_wall", "s", seconds_since(t_all));
  report_value("loadavg_1min_at_end", "", bench::loadavg_1min());
  std::fprintf(stderr, "\nefficiency = plain-thread wall time / cluster wall time, median of %d alternating pairs; "
               "kernel calibrated at %.1f iterations/us\n", repeats, iters_per_us);
  for (const auto& [config, s] : results) print_summary(config, s, workloads, kernels);
  return 0;
}
