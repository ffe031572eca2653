// What the scheduler's journal (dscheduler --journal) costs and how fast it brings a
// scheduler back. A dscheduler process and two 1-thread workers (this program re-run in
// the worker role) on loopback:
//   map:     client.map(inc, 20k distinct inputs) + gather, without and with --journal,
//            alternating; tasks/s and the scheduler's CPU seconds per run
//   restart: SIGKILL of a journaled scheduler, start again on its port and journal: time
//            until it listens, and until the client's next submit(inc).result() returns
//   replay:  in-process, no sockets: N tasks submitted and finished through a journaled
//            SchedulerState, then the time to replay that journal into a fresh state, and
//            the time to write a snapshot of N wanted tasks and to replay from it.
// Prints one JSON line per figure: {"bench": ..., "median": ..., "runs": [...]}.
//   bench_journal [n_tasks=20000] [repeats=5] [replay_tasks=1000000] [only=map,restart,replay]
#include <distrib/distrib.hpp>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include "bench_common.hpp"
#include "scheduler_process.hpp"
#include "cluster/process.hpp"
#include "journal/journal.hpp"

int inc(int x) { return x + 1; }
DISTRIB_TASK(inc);

using bench::Clock;
using bench::report;
using bench::seconds_since;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace sched = distrib::detail::sched;
namespace journal = distrib::detail::journal;

namespace {

/// CPU seconds (user + system) a process has used so far.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto fields = std::istringstream(text.substr(text.rfind(')') + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i)
    if (i == 14 || i == 15) ticks += std::stod(f);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

using Scheduler = bench::SchedulerProcess;

/// Starts dscheduler (with --journal `dir` unless empty) and reads the address it prints.
Scheduler start_scheduler(std::uint16_t port, const std::string& dir) {
  return bench::start_dscheduler(DSCHEDULER_PATH, port, dir.empty() ? std::vector<std::string>{}
                                                                     : std::vector<std::string>{"--journal", dir});
}

std::vector<distrib::detail::ChildProcess> start_workers(const std::string& address, int n) {
  std::vector<distrib::detail::ChildProcess> workers;
  for (int i = 0; i < n; ++i)
    workers.push_back(distrib::detail::ChildProcess::spawn(
        {distrib::detail::current_executable()},
        {{"DISTRIB_ROLE", "worker"}, {"DISTRIB_SCHEDULER", address}, {"DISTRIB_NTHREADS", "1"},
         {"DISTRIB_NAME", "bench-" + std::to_string(i)}},
        {}, -1, false));
  return workers;
}

std::uint16_t port_of(const std::string& address) {
  return static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
}

struct MapRun {
  double rate = 0, scheduler_cpu = 0;
};

MapRun map_run(int n, const std::string& dir) {
  auto s = start_scheduler(0, dir);
  auto workers = start_workers(s.address, 2);
  MapRun r;
  {
    distrib::Client client(s.address);
    client.wait_for_workers(2, 30s);
    std::vector<int> warm(200);
    std::iota(warm.begin(), warm.end(), -200);
    client.gather(client.map(inc, warm));
    std::vector<int> xs(static_cast<std::size_t>(n));
    std::iota(xs.begin(), xs.end(), 0);
    auto cpu0 = cpu_seconds(s.process.pid());
    auto t0 = Clock::now();
    auto out = client.gather(client.map(inc, xs));
    r.rate = n / seconds_since(t0);
    r.scheduler_cpu = cpu_seconds(s.process.pid()) - cpu0;
    if (out.back() != n) throw std::runtime_error("wrong map result");
    client.shutdown();
  }
  s.process.wait(10s);
  for (auto& w : workers) w.wait(10s);
  return r;
}

struct RestartRun {
  double listening = 0, first_result = 0;
};

RestartRun restart_run(const std::string& dir) {
  auto s = start_scheduler(0, dir);
  auto port = port_of(s.address);
  auto workers = start_workers(s.address, 2);
  RestartRun r;
  distrib::ClientOptions patient;
  patient.reconnect_timeout = 60s;
  distrib::Client client(s.address, patient);
  client.wait_for_workers(2, 30s);
  std::vector<int> xs(1000);
  std::iota(xs.begin(), xs.end(), 0);
  client.gather(client.map(inc, xs));
  s.process.signal(SIGKILL);
  s.process.wait(10s);
  auto t0 = Clock::now();
  auto again = start_scheduler(port, dir);
  r.listening = seconds_since(t0);
  if (client.submit(inc, 41).result(60s) != 42) throw std::runtime_error("wrong result after the restart");
  r.first_result = seconds_since(t0);
  client.shutdown();
  again.process.wait(10s);
  for (auto& w : workers) w.wait(10s);
  return r;
}

distrib::detail::TaskSpecPtr inc_task(int i) {
  auto t = std::make_shared<distrib::detail::TaskSpec>();
  t->key = "inc-" + std::to_string(i);
  t->function = "inc";
  t->args.push_back(distrib::detail::TaskArg{distrib::encode_value(i)});
  return t;
}

/// Submits and finishes `n` tasks through a journaled state; returns the journal's bytes.
/// With `snapshot_seconds`, then writes a snapshot of them and times it.
std::uint64_t write_journal(const std::string& dir, int n, double* snapshot_seconds) {
  journal::Journal j(journal::JournalOptions{dir, std::uint64_t{1} << 40});
  j.replay([](journal::SnapshotParts&&) {}, [](journal::DecodedEntry&&) {});
  sched::SchedulerState state;
  std::vector<sched::Action> out;
  std::size_t events = 0;
  auto apply = [&](sched::Event e) {
    auto stimulus = state.last_stimulus() + 1;
    j.append(e, stimulus);
    state.handle(std::move(e), out, stimulus);
    if (j.sync_pending() || ++events % 1024 == 0) j.commit();  // as the server's flushes would
  };
  apply(sched::AddClient{1});
  apply(sched::AddWorker{2, "w", "tcp://127.0.0.1:1", 4, 0, {"inc"}, {}});
  const int batch = 10000;
  for (int begin = 0; begin < n; begin += batch) {
    sched::UpdateGraph g{1, {}, {}};
    for (int i = begin; i < std::min(n, begin + batch); ++i) {
      g.tasks.push_back(inc_task(i));
      g.wanted.push_back(g.tasks.back()->key);
    }
    apply(std::move(g));
    // The worker finishes what it is given, which frees room for more.
    for (int guard = 0; guard < 10 * batch; ++guard) {
      std::vector<sched::TaskFinished> done;
      for (auto& a : out)
        if (auto* c = std::get_if<sched::ComputeTask>(&a))
          done.push_back(sched::TaskFinished{2, c->spec->key, "i32", 4, 1e-4, std::nullopt, c->run_id});
      out.clear();
      if (done.empty()) break;
      for (auto& d : done) apply(std::move(d));
    }
  }
  j.commit();
  if (snapshot_seconds) {
    auto t0 = Clock::now();
    j.snapshot(state.durable_state(), {{1, "bench"}}, 3);
    *snapshot_seconds = seconds_since(t0);
  }
  std::uint64_t bytes = 0;
  for (const auto& e : fs::directory_iterator(dir)) bytes += fs::file_size(e.path());
  return bytes;
}

double replay_seconds(const std::string& dir, std::size_t* tasks) {
  auto t0 = Clock::now();
  journal::Journal j(journal::JournalOptions{dir, std::uint64_t{1} << 40});
  sched::SchedulerState state;
  std::vector<sched::Action> ignored;
  j.replay([&](journal::SnapshotParts&& s) { state.restore(std::move(s.state)); },
           [&](journal::DecodedEntry&& d) {
             state.handle(std::move(*d.event), ignored, d.stimulus);
             ignored.clear();
           });
  auto secs = seconds_since(t0);
  *tasks = state.n_tasks();
  return secs;
}

}  // namespace

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  int n = argc > 1 ? std::stoi(argv[1]) : 20000;
  int repeats = argc > 2 ? std::stoi(argv[2]) : 5;
  int replay_tasks = argc > 3 ? std::stoi(argv[3]) : 1000000;
  const std::string only = argc > 4 ? argv[4] : "map,restart,replay";
  auto wanted = [&](const char* part) { return only.find(part) != std::string::npos; };
  // On the disk, not tmpfs: fdatasync must mean something.
  auto base = fs::path("/var/tmp") / ("distrib-bench-journal-" + std::to_string(getpid()));
  fs::create_directories(base);
  struct Cleanup {
    fs::path p;
    ~Cleanup() { fs::remove_all(p); }
  } cleanup{base};

  std::vector<double> plain_rate, journal_rate, plain_cpu, journal_cpu, ratio;
  for (int r = 0; r < repeats && wanted("map"); ++r) {
    auto dir = (base / ("map-" + std::to_string(r))).string();
    MapRun plain, journaled;
    if (r % 2 == 0) {
      plain = map_run(n, "");
      journaled = map_run(n, dir);
    } else {
      journaled = map_run(n, dir);
      plain = map_run(n, "");
    }
    plain_rate.push_back(plain.rate);
    journal_rate.push_back(journaled.rate);
    plain_cpu.push_back(plain.scheduler_cpu);
    journal_cpu.push_back(journaled.scheduler_cpu);
    ratio.push_back(journaled.rate / plain.rate);
  }
  if (wanted("map")) {
    report("map_tasks_per_s_no_journal", "tasks/s", plain_rate);
    report("map_tasks_per_s_journal", "tasks/s", journal_rate);
    report("map_journal_over_no_journal", "ratio", ratio);
    report("map_scheduler_cpu_s_no_journal", "s", plain_cpu);
    report("map_scheduler_cpu_s_journal", "s", journal_cpu);
  }

  std::vector<double> listening, first_result;
  for (int r = 0; r < repeats && wanted("restart"); ++r) {
    auto run = restart_run((base / ("restart-" + std::to_string(r))).string());
    listening.push_back(run.listening);
    first_result.push_back(run.first_result);
  }
  if (wanted("restart")) {
    report("restart_to_listening_s", "s", listening);
    report("restart_to_first_result_s", "s", first_result);
  }

  if (replay_tasks > 0 && wanted("replay")) {
    std::size_t tasks = 0;
    auto events_dir = (base / "replay-events").string();
    auto bytes = write_journal(events_dir, replay_tasks, nullptr);
    std::vector<double> from_events, from_snapshot;
    for (int r = 0; r < 3; ++r) from_events.push_back(replay_seconds(events_dir, &tasks));
    std::printf("{\"bench\": \"replay_journal\", \"tasks\": %d, \"tasks_kept\": %zu, \"journal_bytes\": %llu}\n",
                replay_tasks, tasks, static_cast<unsigned long long>(bytes));
    report("replay_s_from_events", "s", from_events);
    auto snapshot_dir = (base / "replay-snapshot").string();
    double snapshot_s = 0;
    bytes = write_journal(snapshot_dir, replay_tasks, &snapshot_s);
    for (int r = 0; r < 3; ++r) from_snapshot.push_back(replay_seconds(snapshot_dir, &tasks));
    std::printf("{\"bench\": \"replay_snapshot\", \"tasks_kept\": %zu, \"snapshot_bytes\": %llu, \"snapshot_write_s\": %.3f}\n",
                tasks, static_cast<unsigned long long>(bytes), snapshot_s);
    report("replay_s_from_snapshot", "s", from_snapshot);
  }
  return 0;
}
