// Microbenchmarks of SchedulerState alone (src/scheduler/scheduler_state.hpp): the
// scheduler's sans-IO state machine driven by events in memory, with no sockets, threads,
// encoding or clocks. It measures how many tasks per second the scheduler's bookkeeping can
// take through submit -> processing -> memory -> released (then forgotten).
//
// Set-up, as the LocalCluster benchmarks (bench/throughput.cpp): one client and 2 workers
// with 1 thread each. Each iteration the client submits a graph (UpdateGraph); the simulated
// workers run the ComputeTask actions they receive in order, one at a time each, taking
// turns, and answer each with TaskFinished; once every wanted key was reported in memory
// (KeyInMemory) the client releases them (ReleaseKeys) and the state is empty again.
//
// Workloads:
//   map/N:         N independent tasks inc(i), one UpdateGraph, all wanted (client.map + gather)
//   submit_loop/N: the same N tasks, one UpdateGraph each (a loop of client.submit)
//   tree/L:        L leaves widen(i), pairwise add until one key is left (2L-1 tasks), only
//                  the root wanted: intermediate results are released as soon as consumed
//                  (their records are forgotten, as a cascade, when the root is released)
//   chain/N:       inc(inc(...inc(0))), N tasks, only the last wanted: strictly serial
//
// Counters (rates are per CPU second, Google Benchmark's default):
//   items_per_second  tasks through the whole life cycle per second
//   transitions       task state transitions per second. Counted as 4 per task: every task
//                     here goes released -> waiting -> processing -> memory -> released
//                     (each arrow counted once), then is forgotten. This is the
//                     conservative count: root tasks held back on the scheduler also pass
//                     through `queued` (+1), and Dask's transition log would also count
//                     released -> forgotten (+1), i.e. 5-6 per task in Dask's terms. Compare
//                     with the target of >= 1,000,000 transitions/s.
//   events            events handled by SchedulerState per second (UpdateGraph, TaskFinished,
//                     ReleaseKeys, StealResponse)
//   steals            StealRequests per iteration (the simulated worker gives back a task it
//                     has not started; the answer arrives after the next round of finishes)
//
// Task specs are built once, outside the timed region; each iteration only copies the
// shared pointers into the UpdateGraph event (also outside the timed region).
//
// Run: bench_micro_scheduler [--benchmark_min_time=0.2] [--benchmark_filter=map]
#include <benchmark/benchmark.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/task_spec.hpp"
#include "distrib/codec.hpp"
#include "scheduler/scheduler_state.hpp"

namespace {

using distrib::encode_value;
using distrib::detail::TaskArg;
using distrib::detail::TaskSpec;
using distrib::detail::TaskSpecPtr;
namespace sched = distrib::detail::sched;

constexpr std::uint64_t kTransitionsPerTask = 4;  // see the header comment
constexpr sched::ClientId kClient = 1;
constexpr int kWorkers = 2;
// What a worker reports as the run time of a trivial task (inc on an int): the scheduler
// learns it per key prefix and uses it to size how many root tasks a worker may hold
// (worker_saturation / saturation_seconds) and to decide on work stealing.
constexpr double kTaskSeconds = 5e-6;

struct Graph {
  std::vector<TaskSpecPtr> tasks;
  std::vector<std::string> wanted;
};

TaskSpecPtr make_task(std::string key, const std::string& function, std::int64_t priority,
                      std::vector<std::string> deps, std::int32_t literal, bool with_literal) {
  auto t = std::make_shared<TaskSpec>();
  t->key = std::move(key);
  t->function = function;
  t->priority = priority;
  if (with_literal) t->args.push_back(TaskArg{encode_value(literal)});
  for (auto& d : deps) t->args.push_back(TaskArg{std::move(d)});
  return t;
}

// Keys look like the client's: "<function>-<token>", so the prefix groups them per function.
std::string key_of(const char* function, std::int64_t i) { return std::string(function) + "-" + std::to_string(i); }

Graph make_map(std::int64_t n) {
  Graph g;
  for (std::int64_t i = 0; i < n; ++i) {
    g.tasks.push_back(make_task(key_of("inc", i), "inc", i, {}, static_cast<std::int32_t>(i), true));
    g.wanted.push_back(g.tasks.back()->key);
  }
  return g;
}

// Pairwise reduction with the odd one carried to the next level, as bench/throughput.cpp.
Graph make_tree(std::int64_t leaves) {
  Graph g;
  std::int64_t seq = 0;
  std::vector<std::string> level;
  for (std::int64_t i = 0; i < leaves; ++i) {
    g.tasks.push_back(make_task(key_of("widen", i), "widen", seq++, {}, static_cast<std::int32_t>(i), true));
    level.push_back(g.tasks.back()->key);
  }
  std::int64_t next_id = 0;
  while (level.size() > 1) {
    std::vector<std::string> next;
    for (std::size_t i = 0; i + 1 < level.size(); i += 2) {
      g.tasks.push_back(make_task(key_of("add", next_id++), "add", seq++, {level[i], level[i + 1]}, 0, false));
      next.push_back(g.tasks.back()->key);
    }
    if (level.size() % 2) next.push_back(level.back());
    level = std::move(next);
  }
  g.wanted = level;
  return g;
}

Graph make_chain(std::int64_t n) {
  Graph g;
  for (std::int64_t i = 0; i < n; ++i) {
    std::vector<std::string> deps;
    if (i > 0) deps.push_back(g.tasks.back()->key);
    g.tasks.push_back(make_task(key_of("inc", i), "inc", i, std::move(deps), 1, true));
  }
  g.wanted = {g.tasks.back()->key};
  return g;
}

/// A SchedulerState with one client and two 1-thread workers, and the simulated workers.
class Driver {
 public:
  Driver() {
    state_.handle(sched::AddClient{kClient}, out_);
    for (int w = 1; w <= kWorkers; ++w)
      state_.handle(sched::AddWorker{static_cast<sched::WorkerId>(w), "w" + std::to_string(w),
                                     "tcp://127.0.0.1:" + std::to_string(40000 + w), 1, 0,
                                     {"inc", "widen", "add"}, {}},
                    out_);
    out_.clear();
  }

  void submit(sched::UpdateGraph ev) { apply(std::move(ev)); }

  /// Runs what the workers were given until nothing is left, taking turns. Answers to steal
  /// requests arrive after the next round of finished tasks, as over a network.
  void drain() {
    for (;;) {
      bool any = false;
      for (int w = 0; w < kWorkers; ++w) {
        auto& q = queues_[w];
        if (q.empty()) continue;
        any = true;
        auto spec = std::move(q.front());
        q.pop_front();
        apply(sched::TaskFinished{static_cast<sched::WorkerId>(w + 1), spec->key, "i64", 8, kTaskSeconds});
      }
      if (!pending_.empty()) {
        auto responses = std::move(pending_);
        pending_.clear();
        for (auto& r : responses) apply(std::move(r));
        any = true;
      }
      if (!any) return;
    }
  }

  void release(sched::ReleaseKeys ev) { apply(std::move(ev)); }

  sched::SchedulerState& state() { return state_; }
  std::uint64_t events = 0, steals = 0, in_memory = 0, computed = 0;

 private:
  void apply(sched::Event ev) {
    state_.handle(std::move(ev), out_);
    ++events;
    for (auto& a : out_) {
      if (auto* ct = std::get_if<sched::ComputeTask>(&a)) {
        queues_[ct->worker - 1].push_back(std::move(ct->spec));
        ++computed;
      } else if (std::get_if<sched::KeyInMemory>(&a)) {
        ++in_memory;
      } else if (auto* sr = std::get_if<sched::StealRequest>(&a)) {
        steal(*sr);
      }
    }
    out_.clear();
  }

  // A worker gives back a task it has not started; the one at the front of its queue is
  // running (1 thread).
  void steal(const sched::StealRequest& sr) {
    ++steals;
    auto& q = queues_[sr.worker - 1];
    bool released = false;
    for (std::size_t i = 1; i < q.size(); ++i)
      if (q[i]->key == sr.key) {
        q.erase(q.begin() + static_cast<std::ptrdiff_t>(i));
        released = true;
        break;
      }
    if (released) --computed;  // it will be sent again, to the thief
    pending_.push_back(sched::StealResponse{sr.worker, sr.key, released});
  }

  sched::SchedulerState state_;
  std::vector<sched::Action> out_;
  std::deque<TaskSpecPtr> queues_[kWorkers];
  std::vector<sched::StealResponse> pending_;
};

void report(benchmark::State& st, std::size_t n_tasks, const Driver& d) {
  auto tasks = static_cast<double>(st.iterations()) * static_cast<double>(n_tasks);
  st.SetItemsProcessed(static_cast<std::int64_t>(tasks));
  st.counters["tasks"] = static_cast<double>(n_tasks);
  st.counters["transitions"] = benchmark::Counter(tasks * kTransitionsPerTask, benchmark::Counter::kIsRate);
  st.counters["events"] = benchmark::Counter(static_cast<double>(d.events), benchmark::Counter::kIsRate);
  st.counters["steals"] = benchmark::Counter(static_cast<double>(d.steals), benchmark::Counter::kAvgIterations);
}

/// One graph per iteration: submitted whole, run, its wanted keys released.
void run_graph(benchmark::State& st, const Graph& g) {
  Driver d;
  for (auto _ : st) {
    st.PauseTiming();
    sched::UpdateGraph ug{kClient, g.tasks, g.wanted};
    sched::ReleaseKeys rk{kClient, g.wanted};
    std::uint64_t in_memory_before = d.in_memory, computed_before = d.computed;
    st.ResumeTiming();

    d.submit(std::move(ug));
    d.drain();
    d.release(std::move(rk));

    st.PauseTiming();
    if (d.in_memory - in_memory_before != g.wanted.size() || d.computed - computed_before != g.tasks.size() ||
        d.state().n_tasks() != 0) {
      st.SkipWithError("the graph did not run to completion and release");
      st.ResumeTiming();
      break;
    }
    st.ResumeTiming();
  }
  report(st, g.tasks.size(), d);
}

void BM_Map(benchmark::State& st) { run_graph(st, make_map(st.range(0))); }
void BM_Tree(benchmark::State& st) { run_graph(st, make_tree(st.range(0))); }
void BM_Chain(benchmark::State& st) { run_graph(st, make_chain(st.range(0))); }

/// The map's tasks, one UpdateGraph per task (client.submit in a loop), then gathered and
/// released together.
void BM_SubmitLoop(benchmark::State& st) {
  Graph g = make_map(st.range(0));
  Driver d;
  std::vector<sched::UpdateGraph> events;
  for (auto _ : st) {
    st.PauseTiming();
    events.clear();
    events.reserve(g.tasks.size());
    for (std::size_t i = 0; i < g.tasks.size(); ++i) events.push_back({kClient, {g.tasks[i]}, {g.wanted[i]}});
    sched::ReleaseKeys rk{kClient, g.wanted};
    std::uint64_t in_memory_before = d.in_memory;
    st.ResumeTiming();

    for (auto& ev : events) d.submit(std::move(ev));
    d.drain();
    d.release(std::move(rk));

    st.PauseTiming();
    if (d.in_memory - in_memory_before != g.wanted.size() || d.state().n_tasks() != 0) {
      st.SkipWithError("the tasks did not run to completion and release");
      st.ResumeTiming();
      break;
    }
    st.ResumeTiming();
  }
  report(st, g.tasks.size(), d);
}

BENCHMARK(BM_Map)->Name("map")->Arg(1000)->Arg(20000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SubmitLoop)->Name("submit_loop")->Arg(20000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Tree)->Name("tree")->Arg(10000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Chain)->Name("chain")->Arg(10000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
