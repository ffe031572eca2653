#pragma once
// The inside of SchedulerState, shared by the files that implement it by job:
//   scheduler_state.cpp        the public entry points (handle) and the event handlers
//   scheduler_transitions.cpp  the one transition function, its table, the story, releasing
//   scheduler_placement.cpp    choosing workers, queuing, work stealing
//   scheduler_views.cpp        introspection for the server and dashboard, and validate()
#include <algorithm>
#include <array>
#include <limits>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/keyed_table.hpp"
#include "core/pointer_set.hpp"
#include "scheduler/scheduler_state.hpp"

namespace distrib::detail::sched {

constexpr std::size_t kStatuses = 7;  // TaskStatus values

/// The clients that want a key: almost always one, so a small vector (no allocation per
/// task for a hash table) with set operations.
class ClientSet {
 public:
  void insert(ClientId c) {
    if (!count(c)) ids_.push_back(c);
  }
  void erase(ClientId c) { std::erase(ids_, c); }
  bool count(ClientId c) const { return std::find(ids_.begin(), ids_.end(), c) != ids_.end(); }
  bool empty() const { return ids_.empty(); }
  auto begin() const { return ids_.begin(); }
  auto end() const { return ids_.end(); }

 private:
  std::vector<ClientId> ids_;
};

/// Live tasks of one prefix by status, kept as statuses change (the dashboard reads them
/// every refresh; counting over every task each time cost a fifth of the scheduler's CPU).
struct PrefixTally {
  std::array<std::size_t, kStatuses> by_status{};
};

// The fields are ordered so that the small ones share words: a graph of a million tasks
// holds a million of these (the scheduler's memory per task is measured in benchmarks.md).
struct TaskState {
  std::string key;
  std::string prefix;
  PrefixTally* tally = nullptr;
  TaskSpecPtr spec;
  std::uint64_t run_id = 0;      // the current assignment, echoed by the worker's reports
  double estimate = 0;  // expected duration counted in its worker's occupancy
  WorkerId steal_to = 0;   // a steal request for it is in flight, for this worker
  WorkerId processing_on = 0;
  std::size_t waiting_on = 0;  // dependencies not in memory
  std::uint32_t retries_left = 0;
  std::uint32_t suspicious = 0;  // workers that died while it was processing on them
  // Assigned ahead (processing with waiting_on > 0): how many levels of unfinished inputs
  // it waits on, 0 once all are in memory.
  std::uint32_t ahead_level = 0;
  TaskStatus status = TaskStatus::released;
  bool scattered = false;  // placed by a client: cannot be recomputed
  bool steal_refused = false;  // its worker said no (it started it): do not ask again
  bool seceded = false;  // processing, but waiting on other tasks without a thread (TaskSeceded)
  std::vector<TaskState*> dependencies;
  std::vector<TaskState*> dependents;
  std::vector<WorkerId> who_has;
  std::string type;
  std::uint64_t nbytes = 0;
  ClientSet who_wants;
  std::vector<StoryEntry> story;  // its last kStoryLength transitions, oldest first

  /// What it raised, once erred ("" before): kept apart, as few tasks ever err.
  const std::string& exception_type() const { return error ? error->first : no_error(); }
  const std::string& exception_message() const { return error ? error->second : no_error(); }
  void set_error(const std::string& type, const std::string& message) {
    error = std::make_unique<std::pair<std::string, std::string>>(type, message);
  }
  void clear_error() { error.reset(); }

 private:
  std::unique_ptr<std::pair<std::string, std::string>> error;
  static const std::string& no_error() {
    static const std::string empty;
    return empty;
  }
};

struct WorkerInfo {
  WorkerId id = 0;
  std::string name;
  std::string address;
  std::uint32_t nthreads = 1;
  std::uint64_t memory_limit = 0;
  std::uint64_t memory_bytes = 0;
  std::uint64_t managed_bytes = 0, spilled_bytes = 0;  // from its heartbeats
  bool paused = false;  // given no new work (WorkerPaused)
  std::unordered_set<std::string> functions;
  std::unordered_map<std::string, double> resources;
  PointerSet<TaskState> processing;
  PointerSet<TaskState> has_what;
  double occupancy = 0;  // expected seconds of work assigned, summed over its tasks
  std::size_t incoming_steals = 0;
  std::size_t ahead = 0;  // of `processing`, the tasks assigned ahead (waiting for inputs)
  std::size_t seceded = 0;  // of `processing`, the tasks that seceded (they hold no thread)
  /// Tasks it can run now: those assigned ahead wait for their inputs, seceded ones wait
  /// on other tasks without a thread.
  std::size_t runnable() const { return processing.size() - ahead - seceded; }
  /// occupancy / nthreads, as the load index (Impl::by_load) last filed it.
  double load = 0;
  /// A thread free for a steal / more tasks than threads to start (a paused one: any):
  /// what balance() last counted it as (Impl::recount_load keeps both counts in step).
  bool counted_free = false, counted_overloaded = false;
  bool has_free_thread() const { return runnable() + incoming_steals < nthreads; }
  bool overloaded() const { return runnable() > (paused ? 0 : nthreads); }
  std::uint64_t stored_bytes() const {
    std::uint64_t n = 0;
    for (auto* ts : has_what) n += ts->nbytes;
    return n;
  }
};

struct ByPriority {
  bool operator()(const TaskState* a, const TaskState* b) const {
    return a->spec->priority != b->spec->priority ? a->spec->priority < b->spec->priority : a->key < b->key;
  }
};

template <class T>
void erase_one(std::vector<T>& v, const T& x) {
  auto it = std::find(v.begin(), v.end(), x);
  if (it != v.end()) v.erase(it);
}

inline bool is_active(TaskStatus s) {
  return s == TaskStatus::waiting || s == TaskStatus::no_worker || s == TaskStatus::processing ||
         s == TaskStatus::queued;
}

/// Seconds since the epoch by the config's clock.
double now_seconds(const SchedulerConfig& config);

inline bool holds(const TaskState* ts, WorkerId w) {
  return std::find(ts->who_has.begin(), ts->who_has.end(), w) != ts->who_has.end();
}

struct SchedulerState::Impl {
  SchedulerConfig config;
  KeyedTable<TaskState> tasks;  // owns every task, by key
  std::set<TaskState*, ByPriority> queued;           // root tasks withheld from saturated workers
  std::unordered_map<std::string, double> durations;  // per prefix, seconds
  std::unordered_map<std::string, std::uint64_t> result_sizes;  // per prefix, the last result's bytes
  std::vector<WorkerId> has_room;                     // workers that may take queued tasks
  std::unordered_map<WorkerId, WorkerInfo> workers;
  std::unordered_map<ClientId, PointerSet<TaskState>> clients;
  PointerSet<TaskState> unrunnable;  // no-worker: waiting for a worker to join
  std::vector<std::string> recheck;            // keys to release if unneeded once the event is applied
  std::vector<std::string> to_release;         // worklist of release_keys_if_unneeded
  bool releasing = false;
  std::vector<Action>* out = nullptr;
  std::unordered_map<std::string, PrefixTally> tallies;  // prefixes with live tasks
  std::array<std::size_t, kStatuses> status_totals{};
  PrefixTally* last_tally = nullptr;
  std::string last_tally_prefix;
  // The event being applied: every transition it causes is logged under it.
  StimulusId stimulus = 0;
  std::uint8_t stimulus_kind = 0;  // the event's index in the Event variant
  double now = 0;
  std::uint64_t next_run_id = 1;
  std::vector<std::string> violations;  // illegal transitions seen, for validate()
  std::unordered_map<WorkerId, std::string> worker_addresses;  // every worker ever seen, for stories

  // ---- events (scheduler_state.cpp) ----
  void on(AddClient& e);
  void on(RemoveClient& e);
  void on(AddWorker& e);
  void on(RemoveWorker& e);
  void on(UpdateGraph& e);
  void on(TaskFinished& e);
  void on(TaskErred& e);
  void on(ReleaseKeys& e);
  void on(Scattered& e);
  void on(CancelKeys& e);
  void on(MissingData& e);
  void on(StealResponse& e);
  void on(WorkerMetrics& e);
  void on(WorkerPaused& e);
  void on(Replicated& e);
  void on(WorkerFunctions& e);
  void on(TaskSeceded& e);
  // client operations (scheduler_state_client_ops.cpp)
  void on(FireAndForget& e);
  void on(RetryKeys& e);
  void on(DropReplicas& e);
  /// A task the scheduler wanted for fire_and_forget is finished or erred: it lets go.
  void fire_and_forget_done(TaskState* ts);
  void set_paused(WorkerInfo& w, bool paused);
  /// Places the tasks that found no worker, in priority order (a worker joined or resumed).
  void retry_unrunnable();
  void on(Restart& e);
  void on(PushFailed& e);
  void cancel(TaskState* root, ClientId client, std::vector<std::string>& cancelled);
  void cluster_changed();
  void report_memory(TaskState* ts, ClientId c, const std::optional<Value>& value = std::nullopt);
  void report_erred(TaskState* ts, ClientId c);
  /// A report of `run_id` from `worker` about `ts` belongs to its current assignment.
  bool is_current_run(const TaskState* ts, WorkerId worker, std::uint64_t run_id) const;

  // ---- transitions (scheduler_transitions.cpp) ----
  /// The one way a task's status changes: checks the pair against the table (an illegal
  /// pair is recorded for validate()), keeps the tallies, and logs it in the task's story.
  void transition(TaskState* ts, TaskStatus to, WorkerId worker = 0);
  TaskState* add_task(std::unique_ptr<TaskState> owned);
  TaskState* find(const std::string& key) { return tasks.find(key); }
  const TaskState* find(const std::string& key) const { return tasks.find(key); }
  void count_in(TaskState* ts);
  void count_out(TaskState* ts);
  bool needed(const TaskState* ts) const;
  void recompute(TaskState* root);
  void set_erred(TaskState* ts, const std::string& type, const std::string& message);
  void lose(TaskState* ts);
  void release_if_unneeded(TaskState* ts);
  void release_inputs_then_self(TaskState* ts);
  void release_keys_if_unneeded(const std::vector<std::string>& keys);
  void forget(TaskState* ts);
  static std::vector<std::string> keys_of(const std::vector<TaskState*>& v);

  // ---- placement (scheduler_placement.cpp) ----
  void schedule(TaskState* ts);
  void assign(TaskState* ts, WorkerInfo& w);
  void unassign(TaskState* ts);
  void fill_workers();
  void balance();
  /// Not being stolen already, not refused, runnable now, and worth a move.
  bool stealable(const TaskState* ts) const;
  /// Asks `victim` for tasks among its first `window` for `thief`'s free threads; whether
  /// one is left there that another thief might take.
  bool steal_for(WorkerInfo& thief, WorkerInfo& victim, std::size_t window);
  void clear_steal(TaskState* ts);
  double estimate(const TaskState* ts) const;
  /// When `ts` could start on `w`, in seconds from now (lower is better), as Dask's worker
  /// objective: the later of w's queued work and `inputs_ready` (when its inputs being
  /// computed should exist), plus fetching the inputs w lacks. Inputs in memory count their
  /// bytes, those being computed their prefix's last result size.
  double start_cost(const TaskState* ts, const WorkerInfo& w, double inputs_ready) const;
  /// When every input of `ts` should exist, in seconds from now.
  double inputs_ready(const TaskState* ts) const;
  bool satisfies(const WorkerInfo& w, const TaskState* ts, bool strict_restrictions) const;
  /// The workers that can run `function`, in `workers` order. schedule() runs once per task,
  /// mostly for the function of the task before: the answer is kept until a worker comes,
  /// goes or loads a library (functions_epoch), instead of a string lookup per worker per task.
  const std::vector<WorkerInfo*>& workers_with(const std::string& function);
  /// Workers with a free thread, and workers with tasks waiting for a thread. Kept as
  /// counts so that balance() returns at once while either is zero instead of looking at
  /// every worker after every event (with 200 busy workers, most of the scheduler's time).
  std::size_t free_workers = 0, overloaded_workers = 0;
  /// Call after anything that changes w's processing, ahead, incoming_steals or paused.
  void recount_load(WorkerInfo& w);
  /// Every worker by load, then id: schedule() takes the least loaded worker for a task
  /// without inputs, and balance() the most loaded as its victim, without a pass over all.
  struct ByLoad {
    bool operator()(const WorkerInfo* a, const WorkerInfo* b) const {
      return a->load < b->load || (a->load == b->load && a->id < b->id);
    }
  };
  std::set<WorkerInfo*, ByLoad> by_load;
  /// The only way w.occupancy changes, so that by_load stays ordered.
  void set_occupancy(WorkerInfo& w, double occupancy);
  void forget_load(WorkerInfo& w);  // before w is removed
  /// Where a task without inputs goes (the least loaded worker that may run it and has
  /// room), or why not; what schedule()'s pass over all workers would find.
  enum class Placement { assigned, queued, look_further };
  Placement place_without_inputs(TaskState* ts);
  std::uint64_t functions_epoch = 0;
  struct FunctionMemo {
    std::string function;
    std::uint64_t epoch = ~std::uint64_t{0};
    std::vector<WorkerInfo*> holders;
  } function_memo;
  /// satisfies() without the function: running, with the resources, allowed by restrictions.
  bool meets_restrictions(const WorkerInfo& w, const TaskState* ts, bool strict_restrictions) const;
  std::size_t saturation_limit(const WorkerInfo& w, const TaskState* ts) const;
  bool saturated(const WorkerInfo& w, const TaskState* ts) const;
  static bool by_priority(const TaskState* a, const TaskState* b) { return ByPriority{}(a, b); }

  // ---- assigning ahead (scheduler_ahead.cpp) ----
  /// `ts` was assigned, finished, or waits on fewer levels now: its dependents may be
  /// assigned ahead, or wait on fewer levels themselves.
  void consider_dependents(TaskState* ts);
  /// Assigns a waiting task ahead if its unfinished inputs are all processing, at most
  /// assign_ahead_depth levels deep.
  void try_assign_ahead(TaskState* ts);
  /// The levels of unfinished inputs a task processing or about to be assigned waits on.
  std::uint32_t ahead_level_of(const TaskState* ts) const;
  /// `ts` leaves processing without a result (its worker died, it is stolen or retried, its
  /// input was lost): the tasks assigned ahead on it go back to waiting, and theirs too.
  void take_back_ahead(TaskState* ts);
};

}  // namespace distrib::detail::sched
