#pragma once
// The inside of WorkerState, shared by the files that implement it by job:
//   worker_state.cpp       the public entry points, queries and validate()
//   worker_state_impl.hpp  tasks, their transitions, fetching and computing (here, inline)
//   worker_state_push.cpp  inputs pushed by peers to tasks assigned ahead
#include <algorithm>
#include <deque>
#include <functional>
#include <optional>
#include <queue>
#include <stdexcept>
#include <stop_token>
#include <unordered_map>
#include <unordered_set>

#include "core/keyed_table.hpp"
#include "worker/data_store.hpp"
#include "worker/worker_state.hpp"

namespace distrib::detail::wrk {


struct TaskState {
  std::string key;
  TaskSpecPtr spec;        // null for an input fetched from a peer
  bool assigned = false;   // the scheduler asked this worker to compute (and keep) the key
  TaskStatus status = TaskStatus::waiting;
  std::vector<TaskState*> dependencies;
  std::vector<TaskState*> dependents;
  std::size_t waiting_on = 0;
  std::vector<std::string> who_has;  // peers to fetch from
  std::uint64_t sequence = 0;        // submission order, breaks priority ties
  std::uint64_t run_id = 0;          // the scheduler's runId of the latest assignment
  bool stop_requested = false;       // its running thread was asked to stop: the result is void
  WhoHas inputs_who_has;             // where its inputs are, kept only for a rerun after a stop
  std::vector<std::string> inputs_pending;  // and which are still being computed
  std::vector<std::string> push_to;  // peers with a task assigned ahead that waits for it
  std::uint32_t pending_ticks = 0;   // pending: ticks waited for its push
  std::stop_source stop;             // of its current run
  bool seceded = false;              // running, but not counted in `executing` (Secede)
};

// An entry of the ready queue. Tasks are named by key, not pointer: a task may be
// forgotten while queued, and its entry is then skipped.
struct ReadyEntry {
  std::int64_t priority;
  std::uint64_t sequence;
  std::string key;
  bool operator>(const ReadyEntry& o) const {
    return priority != o.priority ? priority > o.priority : sequence > o.sequence;
  }
};


struct WorkerState::Impl {
  std::uint32_t nthreads;
  std::size_t max_gathers;
  KeyedTable<TaskState> tasks;  // owns every task, by key
  // The values of the tasks in memory (and only those: validate() checks it). Called with
  // the server's state mutex held, from the io thread and from task threads.
  std::unique_ptr<DataStore> data;
  std::priority_queue<ReadyEntry, std::vector<ReadyEntry>, std::greater<>> ready;
  std::vector<TaskState*> to_fetch;
  std::unordered_set<std::string> gathering_from;  // peers with a request in flight
  std::size_t executing = 0;  // running tasks that hold a thread (seceded ones do not)
  std::deque<std::string> rejoining;  // seceded tasks waiting for a thread, first come first
  std::uint64_t sequence = 0;
  bool paused = false;  // Pause: start nothing, fetch nothing
  std::unordered_map<std::string, double> available;  // free resources
  std::vector<Instruction>* out = nullptr;
  // Pushes that arrived before the task they are for (the producer's push raced the
  // scheduler's compute message here), oldest first, bounded.
  struct EarlyPush {
    std::string worker;
    std::optional<Value> value;  // none: announced, to be fetched from `worker`
  };
  std::unordered_map<std::string, EarlyPush> early;
  std::deque<std::string> early_order;
  std::uint64_t early_bytes = 0;
  static constexpr std::size_t kEarlyPushes = 1024;
  static constexpr std::uint64_t kEarlyPushBytes = std::uint64_t{64} << 20;

  TaskState* find(const std::string& key) { return tasks.find(key); }

  /// The value of a task in memory (sharing its bytes). Throws std::out_of_range if the
  /// store lacks it, as the map it replaces did.
  Value stored(const std::string& key) const {
    auto v = data->get(key);
    if (!v) throw std::out_of_range("no stored value for '" + key + "'");
    return std::move(*v);
  }

  TaskState* create(const std::string& key) {
    auto ts = std::make_unique<TaskState>();
    ts->key = key;
    ts->sequence = ++sequence;
    return tasks.insert(std::move(ts));
  }

  // ---- events ----
  void on(ComputeTask& e) {
    const auto& key = e.spec->key;
    auto* ts = find(key);
    if (ts) {
      ts->spec = e.spec;
      ts->assigned = true;
      ts->run_id = e.run_id;  // a new assignment of a key still here: reports carry the new id
      if (ts->status == TaskStatus::memory) {
        report_finished(ts);
      } else if (ts->status == TaskStatus::cancelled || ts->status == TaskStatus::executing) {
        ts->status = TaskStatus::executing;  // wanted again while still running
        // A run asked to stop gives no result: it runs anew when it ends, with these inputs.
        if (ts->stop_requested) {
          ts->inputs_who_has = std::move(e.who_has);
          ts->inputs_pending = std::move(e.pending);
        }
      } else if (ts->status == TaskStatus::pending) {
        // Awaited from a peer, and now to be computed here: nobody else will send it.
        ts->status = TaskStatus::waiting;
        if (auto missing = link_inputs(ts, e.who_has, e.pending)) {
          fail_with_dependents(ts, "distrib::MissingDependency", *missing);
          return;
        }
        if (ts->waiting_on == 0) make_ready(ts);
        ensure_communicating();
        ensure_computing();
      }
      return;  // waiting, ready, executing, fetch or flight: already on its way
    }
    ts = create(key);
    ts->spec = e.spec;
    ts->assigned = true;
    ts->run_id = e.run_id;
    if (auto missing = link_inputs(ts, e.who_has, e.pending)) {
      fail_unlinked(ts, *missing);
      return;
    }
    if (ts->waiting_on == 0) make_ready(ts);
    ensure_communicating();
    ensure_computing();
  }

  /// Links `ts` to each of its inputs, creating fetches for those held elsewhere. Returns
  /// why an input cannot be had: nobody holds it, or it is `ts` itself or waits for `ts` (a
  /// cycle, which only a broken or hostile scheduler sends). The links made so far stay, for
  /// the caller to undo.
  std::optional<std::string> link_inputs(TaskState* ts, const WhoHas& who_has, const std::vector<std::string>& pending) {
    for (const auto& dep_key : ts->spec->dependencies()) {
      auto loc = std::find_if(who_has.begin(), who_has.end(), [&](auto& p) { return p.first == dep_key; });
      auto* dep = find(dep_key);
      if (dep && waits_for(dep, ts))
        return "dependency '" + dep_key + "' of '" + ts->key + "' depends on it (a cycle)";
      if (!dep && std::find(pending.begin(), pending.end(), dep_key) != pending.end()) {
        dep = create(dep_key);
        dep->status = TaskStatus::pending;  // its producer pushes it here
        take_early_push(dep);
      } else if (!dep) {
        if (loc == who_has.end() || loc->second.empty()) return "dependency '" + dep_key + "' is not held by any worker";
        dep = create(dep_key);
        dep->status = TaskStatus::fetch;
        dep->who_has = loc->second;
        to_fetch.push_back(dep);
      }
      if (dep->status != TaskStatus::memory && loc != who_has.end()) {
        // Remember where else it lives, in case the local copy never materialises.
        for (const auto& w : loc->second)
          if (std::find(dep->who_has.begin(), dep->who_has.end(), w) == dep->who_has.end()) dep->who_has.push_back(w);
      }
      ts->dependencies.push_back(dep);
      dep->dependents.push_back(ts);
      if (dep->status != TaskStatus::memory) ++ts->waiting_on;
    }
    return std::nullopt;
  }

  /// Whether `from` is `target` or reaches it through inputs not yet in memory.
  static bool waits_for(const TaskState* from, const TaskState* target) {
    std::vector<const TaskState*> stack{from};
    std::unordered_set<const TaskState*> seen;
    while (!stack.empty()) {
      const auto* t = stack.back();
      stack.pop_back();
      if (t == target) return true;
      if (t->status == TaskStatus::memory || !seen.insert(t).second) continue;
      for (const auto* d : t->dependencies) stack.push_back(d);
    }
    return false;
  }

  static bool running(const TaskState* ts) {
    return ts->status == TaskStatus::executing || ts->status == TaskStatus::cancelled;
  }

  void on(ExecuteSuccess& e) {
    auto* ts = find(e.key);
    if (!ts || !running(ts)) return;
    release_thread(ts);
    give_back_resources(ts);
    if (ts->stop_requested) {
      stopped_run_ended(ts);
    } else if (ts->status == TaskStatus::cancelled && ts->dependents.empty()) {
      done_with_inputs(ts);
      forget(ts);  // freed while running and needed by nobody here: the result is dropped
    } else {
      // Assigned here, or freed but a local task waits for it as an input.
      store(ts, std::move(e.value));
      if (ts->assigned) report_finished(ts, e.duration);
      done_with_inputs(ts);
    }
    ensure_computing();
  }

  /// A run that was asked to stop ended: what it returned or raised may be partial, so it is
  /// discarded. A task wanted again by then (assigned anew, or the input of a local task)
  /// is fetched from a peer that has it, or runs again here.
  void stopped_run_ended(TaskState* ts) {
    ts->stop_requested = false;
    if (!ts->assigned && ts->dependents.empty()) {
      done_with_inputs(ts);
      forget(ts);
      return;
    }
    if (!ts->assigned && !ts->who_has.empty()) {
      done_with_inputs(ts);
      ts->status = TaskStatus::fetch;
      to_fetch.push_back(ts);
      ensure_communicating();
      return;
    }
    // Inputs are linked again from the latest assignment's who_has: a lost scheduler may
    // have dropped them since the first run.
    std::vector<std::string> old_inputs;
    for (auto* d : ts->dependencies) {
      old_inputs.push_back(d->key);
      std::erase(d->dependents, ts);
    }
    ts->dependencies.clear();
    ts->waiting_on = 0;
    ts->status = TaskStatus::waiting;
    auto who_has = std::move(ts->inputs_who_has);
    auto pending = std::move(ts->inputs_pending);
    ts->inputs_who_has.clear();
    ts->inputs_pending.clear();
    auto missing = link_inputs(ts, who_has, pending);
    for (const auto& k : old_inputs)
      if (auto* d = find(k)) drop_if_unneeded(d);
    if (missing) {
      fail_with_dependents(ts, "distrib::MissingDependency", *missing);
      return;
    }
    if (ts->waiting_on == 0) make_ready(ts);
    ensure_communicating();
  }

  /// `ts` cannot be computed: reported if assigned, and every local task waiting for it
  /// fails too.
  void fail_with_dependents(TaskState* ts, const std::string& type, const std::string& message) {
    if (ts->assigned) out->push_back(SendTaskErred{ts->key, type, message, ts->run_id});
    fail_dependents(ts, "input '" + ts->key + "' failed: " + type + ": " + message);
    done_with_inputs(ts);
    forget(ts);
  }

  /// Fails every local task waiting for `ts`. By key: failing one may forget another that
  /// depends on both.
  /// They are unlinked from `ts` first: otherwise forgetting the last of them would drop
  /// `ts` (unneeded now) while the caller still uses it.
  void fail_dependents(TaskState* ts, const std::string& why) {
    std::vector<std::string> keys;
    for (auto* d : ts->dependents) {
      keys.push_back(d->key);
      std::erase(d->dependencies, ts);
    }
    ts->dependents.clear();
    for (const auto& k : keys)
      if (auto* d = find(k)) fail_unlinked(d, why);
  }

  void on(ExecuteFailure& e) {
    auto* ts = find(e.key);
    if (!ts || !running(ts)) return;
    release_thread(ts);
    give_back_resources(ts);
    if (ts->stop_requested) {
      stopped_run_ended(ts);
      ensure_computing();
      return;
    }
    if (ts->status == TaskStatus::cancelled && !ts->dependents.empty() && !ts->who_has.empty()) {
      // Our own (cancelled) run failed, but a local task needs this input and a peer has it.
      done_with_inputs(ts);
      ts->status = TaskStatus::fetch;
      to_fetch.push_back(ts);
      ensure_communicating();
      ensure_computing();
      return;
    }
    fail_with_dependents(ts, e.exception_type, e.message);  // local tasks waiting for it cannot run now
    ensure_computing();
  }

  void on(FreeKeys& e) {
    for (const auto& key : e.keys) {
      auto* ts = find(key);
      if (!ts) continue;
      ts->assigned = false;
      if (running(ts)) {
        ts->status = TaskStatus::cancelled;
        // Nobody wants the result: ask the function to stop. A local task waiting for it
        // as an input keeps it going.
        if (ts->dependents.empty()) request_stop(ts);
        continue;
      }
      if (!ts->dependents.empty()) continue;  // still an input of a local task: freed after it
      done_with_inputs(ts);
      forget(ts);
    }
    ensure_computing();
  }

  void on(GatherSuccess& e) {
    gathering_from.erase(e.worker);
    for (auto& [key, value] : e.data) {
      auto* ts = find(key);
      if (!ts || ts->status != TaskStatus::flight) continue;
      store(ts, std::move(value));
      if (ts->assigned) report_finished(ts);
      if (ts->dependents.empty() && !ts->assigned) forget(ts);
    }
    for (const auto& key : e.missing) fetch_failed(key, e.worker, "the peer does not hold it");
    ensure_communicating();
    ensure_computing();
  }

  void on(GatherFailure& e) {
    gathering_from.erase(e.worker);
    for (const auto& key : e.keys) fetch_failed(key, e.worker, e.reason);
    ensure_communicating();
    ensure_computing();
  }

  // ---- transitions ----
  void make_ready(TaskState* ts) {
    ts->status = TaskStatus::ready;
    ready.push(ReadyEntry{ts->spec->priority, ts->sequence, ts->key});
  }

  void store(TaskState* ts, Value v) {
    const std::uint64_t nbytes = v.bytes.size();
    data->put(ts->key, std::move(v), nbytes);  // replaces a value stored before
    ts->status = TaskStatus::memory;
    for (auto* d : ts->dependents)
      if (d->status == TaskStatus::waiting && --d->waiting_on == 0) make_ready(d);
    if (!ts->push_to.empty()) push_out(ts);
  }

  // ---- assigned ahead: pushed inputs (worker_state_push.cpp) ----
  /// Sends a result to the peers whose tasks assigned ahead wait for it.
  void push_out(TaskState* ts);
  void on(PushTo& e);
  /// Keeps a push that came before its task (bounded, oldest dropped first).
  void stash_early(const std::string& key, EarlyPush p);
  /// A pending input whose push came first: it is here (or announced) already.
  void take_early_push(TaskState* dep);
  void on(Tick&);
  void on(PushedData& e);

  void report_finished(TaskState* ts, double duration = 0) {
    auto v = stored(ts->key);  // a copy that shares the bytes: moved on, not copied again
    const std::uint64_t nbytes = v.bytes.size();
    std::string type = v.type;
    std::optional<Value> small;
    if (nbytes <= kInlineResultBytes) small = std::move(v);
    out->push_back(SendTaskFinished{ts->key, std::move(type), nbytes, duration, std::move(small), ts->run_id});
  }

  void request_stop(TaskState* ts) {
    if (ts->stop_requested) return;
    ts->stop_requested = true;
    ts->stop.request_stop();  // the running function sees it through its token
    out->push_back(StopExecution{ts->key});
  }

  void on(StoreData& e) {
    for (auto& [key, value] : e.data) {
      auto* ts = find(key);
      if (!ts) ts = create(key);
      // Only a key this worker holds or is fetching takes the value; a task it computes or
      // will compute keeps its own course (the scheduler expects its result).
      bool fetching = ts->status == TaskStatus::fetch || ts->status == TaskStatus::flight ||
                      ts->status == TaskStatus::missing;
      bool fresh = ts->status == TaskStatus::waiting && !ts->spec && ts->dependents.empty();
      if (ts->status == TaskStatus::memory) {
        ts->assigned = true;
        continue;
      }
      if (!fetching && !fresh) continue;
      ts->assigned = true;
      std::erase(to_fetch, ts);
      store(ts, std::move(value));
    }
    ensure_computing();
  }

  void on(StealRequest& e) {
    auto* ts = find(e.key);
    // Not one that a local task assigned ahead waits for: it would wait for nothing.
    bool release = ts && ts->assigned && ts->spec && ts->dependents.empty() &&
                   (ts->status == TaskStatus::ready || ts->status == TaskStatus::waiting);
    std::uint64_t run_id = ts ? ts->run_id : 0;
    if (release) {
      done_with_inputs(ts);
      forget(ts);  // its entry in the ready queue is skipped: it is looked up by key
    }
    out->push_back(SendStealResponse{e.key, release, run_id});
    ensure_communicating();
  }

  bool take_resources(const TaskState* ts) {
    for (const auto& [name, amount] : ts->spec->resources) {
      auto it = available.find(name);
      if (it == available.end() || it->second < amount) return false;
    }
    for (const auto& [name, amount] : ts->spec->resources) available[name] -= amount;
    return true;
  }

  void give_back_resources(const TaskState* ts) {
    if (ts->spec)
      for (const auto& [name, amount] : ts->spec->resources) available[name] += amount;
  }

  /// After `ts` ran (or failed), drops inputs that were fetched only for local tasks.
  void done_with_inputs(TaskState* ts) {
    auto deps = std::move(ts->dependencies);
    ts->dependencies.clear();
    for (auto* d : deps) {
      auto& ds = d->dependents;
      ds.erase(std::remove(ds.begin(), ds.end(), ts), ds.end());
      drop_if_unneeded(d);
    }
  }

  /// An input that no local task and not the scheduler wants any more: forgotten, or asked
  /// to stop if it still runs (a freed task that was kept going for a local dependent).
  void drop_if_unneeded(TaskState* d) {
    if (!d->dependents.empty() || d->assigned) return;
    if (d->status == TaskStatus::memory || d->status == TaskStatus::fetch || d->status == TaskStatus::flight ||
        d->status == TaskStatus::missing || d->status == TaskStatus::pending) {
      forget(d);
    } else if (d->status == TaskStatus::waiting || d->status == TaskStatus::ready) {
      done_with_inputs(d);  // freed, and kept only for a local task assigned ahead that is gone now
      forget(d);
    }
    else if (d->status == TaskStatus::cancelled)
      request_stop(d);
  }

  void forget(TaskState* ts) {
    data->erase(ts->key);
    for (auto* d : ts->dependencies) {
      auto& ds = d->dependents;
      ds.erase(std::remove(ds.begin(), ds.end(), ts), ds.end());
    }
    std::erase(to_fetch, ts);
    tasks.erase(ts->key);
  }

  /// A task that cannot run because an input is gone everywhere.
  /// Local tasks assigned ahead on it fail with it (they cannot run without it).
  void fail_unlinked(TaskState* ts, const std::string& why) {
    fail_with_dependents(ts, "distrib::MissingDependency", why);
  }

  void fetch_failed(const std::string& key, const std::string& worker, const std::string& why) {
    auto* ts = find(key);
    if (!ts || ts->status != TaskStatus::flight) return;
    std::erase(ts->who_has, worker);
    if (!ts->who_has.empty()) {
      ts->status = TaskStatus::fetch;
      to_fetch.push_back(ts);
      return;
    }
    // No peer left to try: ask the scheduler, which knows where it is now (or recomputes
    // it and takes the dependents back).
    ts->status = TaskStatus::missing;
    out->push_back(SendMissingData{key, worker});
    (void)why;
  }

  void on(KeyLocations& e) {
    auto* ts = find(e.key);
    // A missing input, or a pending one whose producer could not push it (pushFailed).
    if (!ts || (ts->status != TaskStatus::missing && ts->status != TaskStatus::pending)) return;
    if (e.addresses.empty()) {
      fail_dependents(ts, "no worker holds dependency '" + e.key + "'");
      if (find(e.key) == ts && ts->dependents.empty()) forget(ts);
      return;
    }
    ts->who_has = e.addresses;
    ts->status = TaskStatus::fetch;
    to_fetch.push_back(ts);
    ensure_communicating();
  }

  // ---- a new life with the scheduler ----
  void on(SchedulerLost&) { drop_work(/*keep_stored=*/true); }
  void on(ForgetAll&) { drop_work(/*keep_stored=*/false); }
  void on(StoreDrained&) { ensure_computing(); }
  void on(Pause& e) {
    paused = e.paused;
    ensure_communicating();
    ensure_computing();
  }

  /// Drops every task that is not a stored result of the scheduler's (all of them unless
  /// `keep_stored`). Running tasks stay, unlinked and cancelled, until their thread returns
  /// (their threads are busy until then), and are asked to stop.
  void drop_work(bool keep_stored);
  // ---- tasks that launch tasks (worker_state_secede.cpp) ----
  void on(Secede& e);
  void on(Rejoin& e);
  /// A run ended: its thread is free, unless it had seceded (then it held none).
  void release_thread(TaskState* ts);
  /// Gives threads to seceded tasks waiting in rejoin, before any new task starts.
  void admit_rejoiners();
  /// Starts ready tasks while threads (and their resources) are free.
  void ensure_computing();
  /// Asks peers for inputs, at most max_gathers peers at a time.
  void ensure_communicating();
};

}  // namespace distrib::detail::wrk
