// One scheduler driving many workers (issue 18, "Measure"). A real dscheduler process, and
// N simulated workers inside this process: each is a real protocol peer on its own TCP
// connection (handshake as WORKER, registerWorker naming `inc`, a heartbeat a second) that
// answers every computeTasks at once with tasksFinished carrying the result inline (x + 1,
// 4 bytes), and every stealRequest with "not released". All N share one Asio io_context
// thread. The client is the real distrib::Client (client.map(inc, ...) + gather). The tasks
// are independent, so no worker ever fetches an input or is asked for data.
//
//   curve:   for each N of --workers, a fresh scheduler and N workers, a 1,000-task warm-up,
//            then M independent tasks (--tasks, default 100,000): wall time and the
//            scheduler process's CPU seconds (/proc/<pid>/stat) -> µs of scheduler CPU per
//            task and tasks/s; --rounds rounds, the order of N reversed every other round;
//            then cost(largest N) / cost(smallest N).
//   million: a fresh scheduler and --million-workers workers, --million independent tasks
//            (default 1,000,000) in one client.map: the time of the map call (every
//            updateGraph encoded and handed to the connection), the time until
//            distrib::wait says all are done, then the gather; the scheduler's VmRSS before
//            the map, the most sampled (every 20 ms) while the graph is held, and at the
//            end with every task in memory, its VmHWM, and its CPU seconds.
//
// Prints one JSON line per figure: {"bench": ..., "unit": ..., "median": ..., "runs": [...]}.
//   bench_many_workers [--workers 2,10,50,100,200] [--tasks 100000] [--rounds 2]
//                      [--million 1000000] [--million-workers 10] [--duration 0.0001]
//                      [--only curve,million]
#include <distrib/distrib.hpp>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

#include "bench_common.hpp"
#include "scheduler_process.hpp"
#include "cluster/process.hpp"
#include "comm/connection.hpp"
#include "comm/message.hpp"
#include "comm/transport.hpp"

int inc(int x) { return x + 1; }
DISTRIB_TASK(inc);

using bench::Clock;
using bench::report;
using bench::seconds_since;
using namespace std::chrono_literals;
namespace dd = distrib::detail;

namespace {

struct Options {
  std::vector<int> workers{2, 10, 50, 100, 200};
  int tasks = 100000;
  int rounds = 2;
  int million = 1000000;
  int million_workers = 10;
  double duration = 1e-4;  // what the simulated workers report as each task's run time
  std::string only = "curve,million";
};

// ---- the scheduler process ------------------------------------------------------------

using Scheduler = bench::SchedulerProcess;

Scheduler start_scheduler() { return bench::start_dscheduler(DSCHEDULER_PATH, 0); }

double scheduler_cpu(int pid) { return bench::cpu_times(pid).self; }

/// A field of /proc/<pid>/status in bytes (VmRSS, VmHWM); -1 if unreadable.
double status_bytes(int pid, const std::string& field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) * 1024.0;  // kB
  return -1;
}

double thread_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

// ---- simulated workers ----------------------------------------------------------------

class Simulator;

/// One worker as the scheduler sees it: a connection that registers and answers at once.
class SimWorker : public std::enable_shared_from_this<SimWorker> {
 public:
  SimWorker(Simulator& sim, int index, asio::io_context& io) : sim_(sim), index_(index), heartbeat_(io) {}
  void start(asio::io_context& io, const std::string& scheduler);
  void close() {
    heartbeat_.cancel();
    if (conn_) conn_->close("simulator done");
  }

 private:
  void on_message(dd::InMessage&& m);
  void beat();

  Simulator& sim_;
  int index_;
  asio::steady_timer heartbeat_;
  dd::ConnectionPtr conn_;
};

class Simulator {
 public:
  explicit Simulator(double duration) : duration_(duration), guard_(asio::make_work_guard(io_)) {
    thread_ = std::thread([this] {
      io_.run();
      cpu_seconds_ = thread_cpu_seconds();
    });
  }
  ~Simulator() { stop(); }

  /// Connects and registers `n` workers; returns once the scheduler accepted them all.
  void add_workers(int n, const std::string& scheduler) {
    std::promise<void> started;
    asio::post(io_, [&] {
      try {
        for (int i = 0; i < n; ++i) {
          auto w = std::make_shared<SimWorker>(*this, static_cast<int>(workers_.size()), io_);
          workers_.push_back(w);
          w->start(io_, scheduler);
        }
        started.set_value();
      } catch (...) {
        started.set_exception(std::current_exception());
      }
    });
    started.get_future().get();
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, 60s, [&] { return registered_ >= n || !error_.empty(); }))
      throw std::runtime_error("simulated workers did not all register");
    if (!error_.empty()) throw std::runtime_error(error_);
  }

  void stop() {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] {
      for (auto& w : workers_) w->close();
      workers_.clear();
      guard_.reset();
    });
    thread_.join();
  }

  double duration() const { return duration_; }
  /// The simulator thread's CPU seconds (after stop()).
  double cpu_seconds() const { return cpu_seconds_; }
  std::uint64_t answered() const { return answered_.load(); }

  void registered(bool ok, const std::string& reason) {
    std::lock_guard lock(mutex_);
    if (ok) ++registered_;
    else error_ = "a simulated worker was rejected: " + reason;
    cv_.notify_all();
  }
  void count(std::size_t n) { answered_ += n; }

 private:
  double duration_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::vector<std::shared_ptr<SimWorker>> workers_;  // on the io thread only
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int registered_ = 0;
  std::string error_;
  std::atomic<std::uint64_t> answered_{0};
  double cpu_seconds_ = 0;
};

void SimWorker::start(asio::io_context& io, const std::string& scheduler) {
  auto stream = dd::connect(io, scheduler, distrib::Security{}, 10s);
  conn_ = std::make_shared<dd::Connection>(std::move(stream));
  std::weak_ptr<SimWorker> weak = shared_from_this();
  conn_->start(
      [weak](dd::InMessage&& m) {
        if (auto self = weak.lock()) self->on_message(std::move(m));
      },
      [](const std::string&) {});
  const std::string name = "sim-" + std::to_string(index_);
  conn_->send(dd::make_handshake(distrib::proto::Role::WORKER, name));
  dd::MessageBuilder mb;
  auto reg = mb.root().initRegisterWorker();
  reg.setName(name);
  // Never contacted: the tasks have no inputs and the client gets every result inline.
  reg.setAddress("tcp://127.0.0.1:" + std::to_string(20000 + index_));
  reg.setNthreads(1);
  reg.setMemoryLimit(std::uint64_t{1} << 30);
  reg.initFunctions(1).set(0, "inc");
  conn_->send(mb.finish());
  beat();
}

void SimWorker::beat() {
  if (!conn_ || !conn_->is_open()) return;
  dd::MessageBuilder mb;
  mb.root().initHeartbeat();
  conn_->send(mb.finish());
  heartbeat_.expires_after(1s);
  heartbeat_.async_wait([weak = weak_from_this()](asio::error_code ec) {
    if (auto self = weak.lock(); self && !ec) self->beat();
  });
}

void SimWorker::on_message(dd::InMessage&& m) {
  dd::MessageReader mr(m);
  auto root = mr.root();
  using M = distrib::proto::Message;
  switch (root.which()) {
    case M::COMPUTE_TASKS: {
      auto list = root.getComputeTasks();
      dd::MessageBuilder mb;
      auto out = mb.root().initTasksFinished(list.size());
      for (unsigned i = 0; i < list.size(); ++i) {
        auto ct = list[i];
        auto spec = ct.getSpec();
        auto args = spec.getArgs();
        int x = 0;
        if (args.size() == 1 && args[0].isValue()) x = distrib::decode_value<int>(mr.value(args[0].getValue()));
        auto v = distrib::encode_value(x + 1);
        out[i].setKey(spec.getKey());
        out[i].setType(v.type);
        out[i].setNbytes(v.bytes.size());
        out[i].setDuration(sim_.duration());
        out[i].setRunId(ct.getRunId());
        mb.set_value(out[i].initValue(), v);
      }
      conn_->send(mb.finish());
      sim_.count(list.size());
      return;
    }
    case M::STEAL_REQUEST: {  // it "started" everything it was given
      dd::MessageBuilder mb;
      auto r = mb.root().initStealResponse();
      r.setKey(root.getStealRequest());
      r.setReleased(false);
      r.setRunId(0);
      conn_->send(mb.finish());
      return;
    }
    case M::WORKER_REGISTERED:
      sim_.registered(root.getWorkerRegistered().getOk(), root.getWorkerRegistered().getReason());
      return;
    case M::SHUTDOWN:
      heartbeat_.cancel();
      conn_->close("shutdown");
      return;
    case M::REREGISTER:
      std::fprintf(stderr, "simulated worker %d removed: %s\n", index_, root.getReregister().cStr());
      return;
    default:  // handshake, freeKeys, keyLocations, pushTo: nothing to do
      return;
  }
}

// ---- runs -------------------------------------------------------------------------------

struct CurveRun {
  double wall = 0, sched_cpu = 0, sim_cpu = 0;
};

void warm_up(distrib::Client& client) {
  std::vector<int> warm(1000);
  std::iota(warm.begin(), warm.end(), -1000);
  auto out = client.gather(client.map(inc, warm));
  if (out.back() != 0) throw std::runtime_error("wrong warm-up result");
}

CurveRun curve_run(const Options& o, int n_workers, int round) {
  auto s = start_scheduler();
  const int pid = s.process.pid();
  CurveRun r;
  {
    Simulator sim(o.duration);
    sim.add_workers(n_workers, s.address);
    {
      distrib::Client client(s.address);
      client.wait_for_workers(static_cast<std::size_t>(n_workers), 60s);
      warm_up(client);
      // Distinct keys in every run (pure keys hash the input).
      std::vector<int> xs(static_cast<std::size_t>(o.tasks));
      std::iota(xs.begin(), xs.end(), round * 10'000'000 + n_workers * 100'000);
      auto cpu0 = scheduler_cpu(pid);
      auto t0 = Clock::now();
      auto out = client.gather(client.map(inc, xs));
      r.wall = seconds_since(t0);
      r.sched_cpu = scheduler_cpu(pid) - cpu0;
      if (out.size() != xs.size() || out.back() != xs.back() + 1) throw std::runtime_error("wrong map result");
      client.shutdown();
    }
    sim.stop();
    r.sim_cpu = sim.cpu_seconds();
  }
  if (!s.process.wait(20s)) s.process.stop(2s);
  return r;
}

void curve(const Options& o) {
  std::map<int, std::vector<double>> us_per_task, rate, wall, sim_us;
  for (int round = 0; round < o.rounds; ++round) {
    auto order = o.workers;
    if (round % 2) std::reverse(order.begin(), order.end());
    for (int n : order) {
      auto r = curve_run(o, n, round);
      us_per_task[n].push_back(r.sched_cpu / o.tasks * 1e6);
      rate[n].push_back(o.tasks / r.wall);
      wall[n].push_back(r.wall);
      sim_us[n].push_back(r.sim_cpu / o.tasks * 1e6);
      std::fprintf(stderr, "round %d, %d workers: %.2f s, scheduler %.2f CPU s (%.2f us/task)\n", round, n, r.wall,
                   r.sched_cpu, r.sched_cpu / o.tasks * 1e6);
    }
  }
  const std::string tag = ".tasks=" + std::to_string(o.tasks);
  for (int n : o.workers) {
    const std::string w = ".workers=" + std::to_string(n) + tag;
    report("many_workers.scheduler_cpu_per_task" + w, "us", us_per_task[n]);
    report("many_workers.tasks_per_s" + w, "tasks/s", rate[n]);
    report("many_workers.wall" + w, "s", wall[n]);
    report("many_workers.simulator_cpu_per_task" + w, "us", sim_us[n]);
  }
  if (o.workers.size() >= 2) {
    int lo = *std::min_element(o.workers.begin(), o.workers.end());
    int hi = *std::max_element(o.workers.begin(), o.workers.end());
    std::vector<double> ratio;
    for (std::size_t i = 0; i < us_per_task[lo].size(); ++i) ratio.push_back(us_per_task[hi][i] / us_per_task[lo][i]);
    report("many_workers.cost_ratio.workers=" + std::to_string(hi) + "/" + std::to_string(lo) + tag, "x", ratio);
  }
}

void million(const Options& o) {
  auto s = start_scheduler();
  const int pid = s.process.pid();
  const std::string tag = ".tasks=" + std::to_string(o.million) + ".workers=" + std::to_string(o.million_workers);
  {
    Simulator sim(o.duration);
    sim.add_workers(o.million_workers, s.address);
    distrib::Client client(s.address);
    client.wait_for_workers(static_cast<std::size_t>(o.million_workers), 60s);
    warm_up(client);
    std::vector<int> xs(static_cast<std::size_t>(o.million));
    std::iota(xs.begin(), xs.end(), 0);
    std::this_thread::sleep_for(200ms);
    const double rss0 = status_bytes(pid, "VmRSS"), hwm0 = status_bytes(pid, "VmHWM");
    // The scheduler's RSS, sampled while the graph is held.
    std::atomic<bool> sampling{true};
    std::atomic<double> peak{rss0};
    std::thread sampler([&] {
      while (sampling) {
        double v = status_bytes(pid, "VmRSS");
        if (v > peak) peak = v;
        std::this_thread::sleep_for(20ms);
      }
    });
    auto cpu0 = scheduler_cpu(pid);
    auto t0 = Clock::now();
    auto futures = client.map(inc, xs);
    const double submit = seconds_since(t0);
    const double cpu_submit = scheduler_cpu(pid) - cpu0;
    distrib::wait(futures);
    const double done = seconds_since(t0);
    const double cpu_done = scheduler_cpu(pid) - cpu0;
    const double rss_done = status_bytes(pid, "VmRSS");
    auto t1 = Clock::now();
    auto out = client.gather(futures);
    const double gather = seconds_since(t1);
    sampling = false;
    sampler.join();
    const double hwm = status_bytes(pid, "VmHWM");
    if (out.size() != xs.size() || out.back() != o.million) throw std::runtime_error("wrong million result");
    report("many_workers.million.submit" + tag, "s", {submit});
    report("many_workers.million.scheduler_cpu_during_submit" + tag, "s", {cpu_submit});
    report("many_workers.million.complete" + tag, "s", {done});
    report("many_workers.million.tasks_per_s" + tag, "tasks/s", {o.million / done});
    report("many_workers.million.gather" + tag, "s", {gather});
    report("many_workers.million.scheduler_cpu" + tag, "s", {cpu_done});
    report("many_workers.million.scheduler_cpu_per_task" + tag, "us", {cpu_done / o.million * 1e6});
    report("many_workers.million.scheduler_rss_before" + tag, "MB", {rss0 / 1e6});
    report("many_workers.million.scheduler_rss_peak" + tag, "MB", {peak / 1e6});
    report("many_workers.million.scheduler_rss_all_in_memory" + tag, "MB", {rss_done / 1e6});
    report("many_workers.million.scheduler_hwm" + tag, "MB", {hwm / 1e6});
    report("many_workers.million.scheduler_rss_per_task_peak" + tag, "bytes", {(peak - rss0) / o.million});
    report("many_workers.million.scheduler_rss_per_task_all_in_memory" + tag, "bytes",
           {(rss_done - rss0) / o.million});
    report("many_workers.million.scheduler_hwm_per_task" + tag, "bytes", {(hwm - hwm0) / o.million});
    client.shutdown();
    sim.stop();
  }
  if (!s.process.wait(60s)) s.process.stop(2s);
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');)
    if (!part.empty()) out.push_back(std::stoi(part));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--workers") o.workers = parse_list(v);
    else if (a == "--tasks") o.tasks = std::stoi(v);
    else if (a == "--rounds") o.rounds = std::stoi(v);
    else if (a == "--million") o.million = std::stoi(v);
    else if (a == "--million-workers") o.million_workers = std::stoi(v);
    else if (a == "--duration") o.duration = std::stod(v);
    else if (a == "--only") o.only = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  report("many_workers.loadavg_before", "load", {bench::loadavg_1min()});
  if (o.only.find("curve") != std::string::npos) bench::section("many_workers.curve", [&] { curve(o); });
  if (o.only.find("million") != std::string::npos) bench::section("many_workers.million", [&] { million(o); });
  report("many_workers.loadavg_after", "load", {bench::loadavg_1min()});
  return 0;
}
