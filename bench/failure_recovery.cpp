// Failures (issue 14): how fast the cluster notices a dead worker, and what a worker killed
// every second costs the seed's first array example. Real processes on loopback: dscheduler
// (--host 127.0.0.1 --port 0, no dashboard) and dworker --nthreads 1 --host 127.0.0.1, all
// started by this program, which stops every one of them when it ends (SIGTERM, then SIGKILL;
// they also get SIGKILL if this program dies: PR_SET_PDEATHSIG).
//
//   detect: a fresh scheduler and 2 workers per scenario and repetition; the time from the
//     fault to this client's view of the worker count (pushed by the scheduler to every
//     client) dropping, polled every 0.2 ms:
//     sigterm  a --no-nanny worker gets SIGTERM (it says goodbye, the socket closes);
//     sigkill  a nanny's worker running a `sleep_then_pid(task_ms)` task (submitted to it,
//              allow_other_workers) is SIGKILLed: detection, the task's result back from the
//              other worker, and the nanny's replacement registered;
//     sigstop  a --no-nanny worker gets SIGSTOP, the scheduler runs with --worker-ttl 2;
//              then SIGCONT, and the time until it has registered again.
//   seed1: `computations` times the seed's first example, z = (x + x.T()).mean(0) on
//     10000 x 10000 in 1000 x 1000 blocks (seed i for the i-th), on a fresh dscheduler +
//     2 dworkers with nannies: undisturbed and with a worker process SIGKILLed every second
//     (kill_period_ms; the first 0.5 s after the first compute, the workers taken in turn; a
//     worker whose nanny is still restarting it is passed over for the other, and a tick
//     with neither alive is counted), the two alternating.
//     Each result must equal the first undisturbed run's, bit for bit. CPU seconds of each
//     process over the computations, from /proc/<pid>/stat (10 ms ticks): the scheduler,
//     the two nannies, the workers (live ones plus the killed ones their nanny reaped) and
//     this process (the client).
//
// Prints one JSON line per figure: {"bench": ..., "unit": ..., "median": ..., "runs": [...]}
// (runs: one per repetition); a section that throws prints {"bench": ..., "error": ...}.
//   bench_failure_recovery [repetitions=5] [computations=10] [detect|seed1|all] [task_ms=500] [kill_period_ms=1000]
// DSCHEDULER, DWORKER and BENCH_TASKS override the paths of the daemons and task library;
// LOG_LEVEL (default warn) is the daemons' --log-level (they log to this program's stderr).
#include <distrib/distrib.hpp>

#include "bench_common.hpp"
#include "cluster/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

int sleep_then_pid(int ms);  // failure_tasks.cpp

namespace da = distrib::array;
using bench::Clock;
using bench::report;
using bench::seconds_since;
using distrib::detail::ChildProcess;
using namespace std::chrono_literals;

namespace {

std::string env_or(const char* variable, const char* fallback) {
  const char* v = std::getenv(variable);
  return v && *v ? v : fallback;
}

const std::string& dscheduler_path() {
  static const std::string p = env_or("DSCHEDULER", DSCHEDULER_PATH);
  return p;
}
const std::string& dworker_path() {
  static const std::string p = env_or("DWORKER", DWORKER_PATH);
  return p;
}
const std::string& tasks_path() {
  static const std::string p = env_or("BENCH_TASKS", BENCH_TASKS_PATH);
  return p;
}
const std::string& log_level() {  // of the daemons, which log to our stderr
  static const std::string level = env_or("LOG_LEVEL", "warn");
  return level;
}

// Waits (polling every 0.2 ms) until `done()`, at most `limit`; the seconds since `since`.
template <class Done>
double seconds_until(Clock::time_point since, Done done, std::chrono::seconds limit, const std::string& what) {
  const auto deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > deadline) throw std::runtime_error(what + ": not within " + std::to_string(limit.count()) + " s");
    std::this_thread::sleep_for(200us);
  }
  return seconds_since(since);
}

// dscheduler and two dworkers ("w0", "w1") on loopback. Stopped (workers first) when it goes.
class Cluster {
 public:
  Cluster(bool nanny, const std::vector<std::string>& scheduler_options = {}) : nanny_(nanny) {
    std::vector<std::string> argv{dscheduler_path(), "--host", "127.0.0.1", "--port", "0",
                                  "--dashboard-address", "none", "--log-level", log_level()};
    argv.insert(argv.end(), scheduler_options.begin(), scheduler_options.end());
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    scheduler_out_ = fds[0];
    scheduler_ = ChildProcess::spawn(argv, {}, {}, fds[1]);
    close(fds[1]);
    address_ = announced_address();
    for (int i = 0; i < 2; ++i) {
      std::vector<std::string> w{dworker_path(), address_, "--host", "127.0.0.1", "--nthreads", "1",
                                 "--name", "w" + std::to_string(i), "--preload", tasks_path(), "--log-level", log_level()};
      if (!nanny) w.emplace_back("--no-nanny");
      workers_.push_back(ChildProcess::spawn(w, {}, {}, /*stdout to our stderr*/ 2));
    }
  }
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;
  ~Cluster() {
    for (auto& w : workers_) {
      if (w.running()) w.signal(SIGCONT);  // a stopped worker would not see the SIGTERM
      w.stop(3000ms);
    }
    scheduler_.stop(3000ms);
    close(scheduler_out_);
  }

  const std::string& address() const { return address_; }
  ChildProcess& scheduler() { return scheduler_; }
  /// The dworker process we started: the nanny, or the worker itself with --no-nanny.
  ChildProcess& dworker(int i) { return workers_.at(static_cast<std::size_t>(i)); }
  /// The worker process of w<i> (the nanny's child), or -1 while there is none.
  int worker_pid(int i) {
    const int top = dworker(i).pid();
    if (!nanny_) return dworker(i).running() ? top : -1;
    auto children = bench::child_pids(top);
    return children.empty() ? -1 : children.front();
  }

 private:
  // The first line of dscheduler's output: "distrib scheduler at tcp://127.0.0.1:PORT".
  std::string announced_address() {
    const std::string marker = "distrib scheduler at ";
    std::string out;
    const auto deadline = Clock::now() + 30s;
    while (out.find('\n') == std::string::npos && Clock::now() < deadline) {
      pollfd p{scheduler_out_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[256];
      auto n = read(scheduler_out_, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    auto at = out.find(marker);
    if (at == std::string::npos || out.find('\n', at) == std::string::npos)
      throw std::runtime_error("dscheduler did not announce its address; it wrote: " + out);
    at += marker.size();
    return out.substr(at, out.find('\n', at) - at);
  }

  bool nanny_;
  ChildProcess scheduler_;
  int scheduler_out_ = -1;
  std::string address_;
  std::vector<ChildProcess> workers_;
};

// A Cluster and a client connected to it, both workers registered. The client goes first.
struct Connected {
  Cluster cluster;
  distrib::Client client;
  explicit Connected(bool nanny, const std::vector<std::string>& scheduler_options = {})
      : cluster(nanny, scheduler_options), client(cluster.address()) {
    client.wait_for_workers(2, 30s);
  }
};

const distrib::WorkerDescription& worker_named(const distrib::SchedulerInfo& info, const std::string& name) {
  for (const auto& w : info.workers)
    if (w.name == name) return w;
  throw std::runtime_error("no worker named " + name);
}

// ---- detect -----------------------------------------------------------------------------

struct Detect {
  std::vector<double> sigterm, sigkill, sigkill_task_done, sigkill_replacement, sigstop, sigstop_rejoin;
};

// Sends `sig` to w1's dworker process: the seconds until the client sees a worker go, which
// must be w1. If w0 went instead, says what became of it.
double seconds_to_lose_w1(Connected& c, int sig, std::chrono::seconds limit, const std::string& scenario) {
  auto t0 = Clock::now();
  c.cluster.dworker(1).signal(sig);
  const double s = seconds_until(t0, [&] { return c.client.n_workers() < 2; }, limit, scenario + ": worker still there");
  for (const auto& w : c.client.scheduler_info().workers) {
    if (w.name != "w1") continue;
    auto& w0 = c.cluster.dworker(0);
    throw std::runtime_error(scenario + ": w0 left, not w1 (w0's dworker process: " +
                             (w0.running() ? std::string("running") : w0.exit_description()) + ")");
  }
  return s;
}

void detect_sigterm(Detect& d) {
  Connected c(false);
  d.sigterm.push_back(seconds_to_lose_w1(c, SIGTERM, 10s, "sigterm"));
}

void detect_sigkill(Detect& d, int task_ms) {
  Connected c(true);
  auto& [cluster, client] = c;
  distrib::SubmitOptions on_w1;
  on_w1.workers = {"w1"};
  on_w1.allow_other_workers = true;
  on_w1.pure = false;
  auto f = client.submit(on_w1, sleep_then_pid, task_ms);
  seconds_until(Clock::now(), [&] { return worker_named(client.scheduler_info(), "w1").processing > 0; }, 10s,
                "sigkill: task not processing on w1");
  std::this_thread::sleep_for(100ms);  // well into the task
  const int victim = cluster.worker_pid(1);
  if (victim <= 0) throw std::runtime_error("sigkill: w1 has no worker process");
  auto t0 = Clock::now();
  kill(victim, SIGKILL);
  const double detected = seconds_until(t0, [&] { return client.n_workers() < 2; }, 10s, "sigkill: worker still there");
  // The task's result and the nanny's replacement, whichever comes first.
  double done_s = -1, replaced_s = -1;
  seconds_until(t0, [&] {
    if (done_s < 0 && f.done()) done_s = seconds_since(t0);
    if (replaced_s < 0 && client.n_workers() == 2) replaced_s = seconds_since(t0);
    return done_s >= 0 && replaced_s >= 0;
  }, 30s, "sigkill: task not done elsewhere or no replacement registered");
  const int ran_on = f.result();
  if (ran_on == victim || ran_on != cluster.worker_pid(0))
    throw std::runtime_error("sigkill: the task's result came from pid " + std::to_string(ran_on) + ", not w0");
  d.sigkill.push_back(detected);
  d.sigkill_task_done.push_back(done_s);
  d.sigkill_replacement.push_back(replaced_s);
}

void detect_sigstop(Detect& d) {
  Connected c(false, {"--worker-ttl", "2"});
  const double gone = seconds_to_lose_w1(c, SIGSTOP, 15s, "sigstop");  // kept only if it comes back
  auto t1 = Clock::now();
  c.cluster.dworker(1).signal(SIGCONT);
  try {
    const double back = seconds_until(t1, [&] { return c.client.n_workers() == 2; }, 15s, "sigstop");
    d.sigstop.push_back(gone);
    d.sigstop_rejoin.push_back(back);
  } catch (const std::runtime_error&) {
    std::string seen;
    for (const auto& w : c.client.scheduler_info().workers) seen += " " + w.name + " at " + w.address;
    auto& w1 = c.cluster.dworker(1);
    throw std::runtime_error("sigstop: w1 did not register again within 15 s of SIGCONT (its process: " +
                             (w1.running() ? std::string("running") : w1.exit_description()) +
                             "; the scheduler has:" + seen + ")");
  }
}

void run_detect(int repetitions, int task_ms) {
  Detect d;
  for (int r = 0; r < repetitions; ++r) {
    bench::section("detect_sigterm", [&] { detect_sigterm(d); });
    bench::section("detect_sigkill", [&] { detect_sigkill(d, task_ms); });
    bench::section("detect_sigstop", [&] { detect_sigstop(d); });
  }
  auto out = [](const std::string& name, const std::vector<double>& v) {
    if (!v.empty()) report(name, "s", v);
  };
  out("detect_sigterm_no_nanny", d.sigterm);
  out("detect_sigkill", d.sigkill);
  out("sigkill_task_done_elsewhere", d.sigkill_task_done);
  bench::report_value("sigkill_task_duration", "s", task_ms / 1000.0);
  out("sigkill_nanny_replacement_registered", d.sigkill_replacement);
  out("detect_sigstop_ttl_2s", d.sigstop);
  out("sigstop_rejoin_after_sigcont", d.sigstop_rejoin);
}

// ---- seed1 under a worker killed every second -------------------------------------------

struct Cpu {
  double scheduler = 0, nannies = 0, workers = 0, client = 0;
};

Cpu cpu_now(Cluster& cluster) {
  Cpu c;
  c.scheduler = bench::cpu_times(cluster.scheduler().pid()).self;
  c.client = bench::cpu_times(static_cast<int>(getpid())).self;
  for (int i = 0; i < 2; ++i) {
    const int nanny = cluster.dworker(i).pid();
    auto t = bench::cpu_times(nanny);
    c.nannies += t.self;
    c.workers += t.reaped_children;
    for (int child : bench::child_pids(nanny)) c.workers += bench::cpu_times(child).self;  // zombies too
  }
  return c;
}

struct SeedRun {
  double wall = 0, compute_median = 0;
  Cpu cpu;
  int errors = 0, mismatches = 0, kills = 0, no_worker_alive = 0;
  double restarts = -1;  // -1: the workers were not both back to ask
  std::string first_error;
  std::vector<distrib::NDArray> results;
};

SeedRun run_seed1(int computations, std::chrono::milliseconds kill_period, const std::vector<distrib::NDArray>& reference) {
  Connected c(true);
  auto& [cluster, client] = c;
  SeedRun run;
  const Cpu before = cpu_now(cluster);
  const auto t0 = Clock::now();
  std::jthread killer;
  if (kill_period.count() > 0) {
    killer = std::jthread([&](std::stop_token stop) {
      std::mutex m;
      std::condition_variable_any cv;
      std::unique_lock lock(m);
      auto next = t0 + 500ms;
      int turn = 0;
      for (int tick = 0; tick < 3600 && !stop.stop_requested(); ++tick, next += kill_period) {
        cv.wait_until(lock, stop, next, [] { return false; });  // wakes at `next` or on stop
        if (stop.stop_requested()) break;
        int target = turn, pid = cluster.worker_pid(target);
        if (pid <= 0) pid = cluster.worker_pid(target = 1 - target);
        if (pid > 0 && kill(pid, SIGKILL) == 0) {
          ++run.kills;
          turn = 1 - target;
        } else {
          ++run.no_worker_alive;
        }
      }
    });
  }
  std::vector<double> each;
  for (int i = 0; i < computations; ++i) {
    auto x = da::random::random({10000, 10000}, {1000, 1000}, 1000 + static_cast<std::uint64_t>(i));
    auto z = (x + x.T()).mean(0);
    auto t = Clock::now();
    try {
      run.results.push_back(client.compute(z).result(300s));
    } catch (const std::exception& e) {
      ++run.errors;
      if (run.first_error.empty()) run.first_error = e.what();
      run.results.emplace_back();
    }
    each.push_back(seconds_since(t));
  }
  run.wall = seconds_since(t0);
  if (killer.joinable()) {
    killer.request_stop();
    killer.join();
  }
  const Cpu after = cpu_now(cluster);
  run.cpu = {after.scheduler - before.scheduler, after.nannies - before.nannies, after.workers - before.workers,
             after.client - before.client};
  run.compute_median = bench::median(each);
  for (std::size_t i = 0; i < run.results.size() && i < reference.size(); ++i)
    if (run.results[i].size() > 0 && !run.results[i].equals(reference[i])) ++run.mismatches;  // errors apart
  try {
    client.wait_for_workers(2, 30s);  // the nannies' backoff after many deaths can reach seconds
    double restarts = 0;
    for (const auto& w : client.scheduler_info().workers) restarts += w.restarts;
    run.restarts = restarts;
  } catch (const std::exception&) {
  }
  return run;
}

void run_seed1_series(int repetitions, int computations, std::chrono::milliseconds kill_period) {
  std::vector<distrib::NDArray> reference;
  std::vector<SeedRun> quiet, chaos;
  for (int r = 0; r < repetitions; ++r) {
    bench::section("seed1_undisturbed", [&] {
      quiet.push_back(run_seed1(computations, 0ms, reference));
      if (reference.empty()) reference = quiet.back().results;
    });
    bench::section("seed1_with_kills", [&] { chaos.push_back(run_seed1(computations, kill_period, reference)); });
  }
  auto out = [](const std::string& prefix, const std::vector<SeedRun>& runs) {
    if (runs.empty()) return;
    auto series = [&](const std::string& name, const char* unit, auto field) {
      std::vector<double> v;
      for (const auto& r : runs) v.push_back(static_cast<double>(field(r)));
      report(prefix + "_" + name, unit, v);
    };
    series("wall", "s", [](const SeedRun& r) { return r.wall; });
    series("compute_median", "s", [](const SeedRun& r) { return r.compute_median; });
    series("cpu_scheduler", "s", [](const SeedRun& r) { return r.cpu.scheduler; });
    series("cpu_nannies", "s", [](const SeedRun& r) { return r.cpu.nannies; });
    series("cpu_workers", "s", [](const SeedRun& r) { return r.cpu.workers; });
    series("cpu_client", "s", [](const SeedRun& r) { return r.cpu.client; });
    series("kills", "", [](const SeedRun& r) { return r.kills; });
    series("ticks_with_no_worker_alive", "", [](const SeedRun& r) { return r.no_worker_alive; });
    series("restarts", "", [](const SeedRun& r) { return r.restarts; });
    series("errors", "", [](const SeedRun& r) { return r.errors; });
    series("completed_results_differing_from_undisturbed", "", [](const SeedRun& r) { return r.mismatches; });
    for (const auto& r : runs)
      if (!r.first_error.empty()) bench::report_error(prefix + "_first_error", r.first_error);
  };
  if (!reference.empty() && reference.front().size() > 0) {
    double s = 0;
    for (double v : reference.front().values<double>()) s += v;
    bench::report_value("seed1_z_sum", "", s);
  }
  bench::report_value("seed1_kill_period", "s", static_cast<double>(kill_period.count()) / 1000);
  out("seed1_undisturbed", quiet);
  out("seed1_with_kills", chaos);
}

}  // namespace

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  const int repetitions = std::max(1, argc > 1 ? std::stoi(argv[1]) : 5);
  const int computations = std::max(1, argc > 2 ? std::stoi(argv[2]) : 10);
  const std::string which = argc > 3 ? argv[3] : "all";
  const int task_ms = std::max(1, argc > 4 ? std::stoi(argv[4]) : 500);
  const auto kill_period = std::chrono::milliseconds(std::max(100, argc > 5 ? std::stoi(argv[5]) : 1000));
  if (which != "detect" && which != "seed1" && which != "all") {
    std::fprintf(stderr, "usage: bench_failure_recovery [repetitions=5] [computations=10] [detect|seed1|all] [task_ms=500] [kill_period_ms=1000]\n");
    return 2;
  }
  // Other work on the machine shows in every figure: the load before and after says how much.
  const auto load = bench::loadavg_1min;
  bench::report_value("loadavg_1min_at_start", "", load());
  if (which != "seed1") run_detect(repetitions, task_ms);
  if (which != "detect") run_seed1_series(repetitions, computations, kill_period);
  bench::report_value("loadavg_1min_at_end", "", load());
  return 0;
}
