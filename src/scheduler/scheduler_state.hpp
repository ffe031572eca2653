#pragma once
// SchedulerState: the scheduler's decisions as a pure state machine (sans-IO). Events come
// in (a graph from a client, a task finished on a worker, a worker left ...), actions come
// out (compute this task on that worker, tell that client its key is ready ...). No
// sockets, threads or clocks: every rule is unit-tested by feeding events.
//
// Task states, as in Dask: released -> waiting -> (no-worker | queued) -> processing ->
// memory, or erred. A key is forgotten when no client wants it and no task depends on it.
// Every status change goes through one transition function, checked against a table of
// the allowed (from, to) pairs (transition_allowed) and logged in the task's story under
// the stimulus (the event) that caused it.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "core/task_spec.hpp"

namespace distrib::detail::sched {

using ClientId = std::uint64_t;
using WorkerId = std::uint64_t;
using WhoHas = std::vector<std::pair<std::string, std::vector<std::string>>>;
/// Names one event given to SchedulerState::handle; every transition it causes is logged
/// under it. Given by the caller (a replayed journal keeps its ids) or the next number.
using StimulusId = std::uint64_t;

/// A key a worker still holds when it registers (it lost its scheduler and came back).
struct HeldKey {
  std::string key;
  std::string type;
  std::uint64_t nbytes = 0;
};

// ---- events ----
struct AddClient {
  ClientId client;
};
struct RemoveClient {
  ClientId client;
};
struct AddWorker {
  WorkerId worker;
  std::string name;
  std::string address;
  std::uint32_t nthreads = 1;
  std::uint64_t memory_limit = 0;
  std::vector<std::string> functions;
  std::vector<std::pair<std::string, double>> resources;
  std::vector<HeldKey> held;
};
struct RemoveWorker {
  WorkerId worker;
  /// The worker said goodbye first (a graceful close or restart): its tasks are not
  /// suspected of having killed it.
  bool safe = false;
  /// Why it went, if it said (a worker past its memory terminate threshold): named in the
  /// KilledWorker error of a task that was running on it.
  std::string reason;
};
struct UpdateGraph {
  ClientId client;
  std::vector<TaskSpecPtr> tasks;
  std::vector<std::string> wanted;
};
struct TaskFinished {
  WorkerId worker;
  std::string key;
  std::string type;
  std::uint64_t nbytes = 0;
  double duration = 0;  // seconds
  std::optional<Value> value;  // a small result sent along (passed on to clients, not kept)
  std::uint64_t run_id = 0;    // the ComputeTask's; 0 from a worker that predates run ids
};
struct TaskErred {
  WorkerId worker;
  std::string key;
  std::string exception_type;
  std::string message;
  std::uint64_t run_id = 0;
};
struct ReleaseKeys {
  ClientId client;
  std::vector<std::string> keys;
};
/// A heartbeat's figures: process memory (RSS), and the stored values' sizes in memory
/// ("managed") and on disk ("spilled"). Not journaled, so nothing placed depends on them.
struct WorkerMetrics {
  WorkerId worker;
  std::uint64_t memory_bytes = 0;
  std::uint64_t managed_bytes = 0;
  std::uint64_t spilled_bytes = 0;
};
/// The worker paused (past its memory pause threshold, or its disk is full: it starts no
/// task and fetches nothing) or resumed. A paused worker is given no new work, and an idle
/// worker may steal the tasks queued on it.
struct WorkerPaused {
  WorkerId worker;
  bool paused = false;
};
/// Values a client placed on workers itself (scatter): they are in memory already.
struct Scattered {
  ClientId client;
  struct Key {
    std::string key;
    std::string type;
    std::uint64_t nbytes = 0;
    std::vector<WorkerId> holders;
  };
  std::vector<Key> keys;
};
/// A client cancels keys: they and their dependents stop, and the client lets go of them.
struct CancelKeys {
  ClientId client;
  std::vector<std::string> keys;
};
/// A worker's answer to StealRequest.
struct StealResponse {
  WorkerId worker;
  std::string key;
  bool released = false;
  std::uint64_t run_id = 0;
};
/// A worker could not get `key` from `holder_address`, which the scheduler said had it.
struct MissingData {
  WorkerId worker;
  std::string key;
  std::string holder_address;
};
/// A client restarts the cluster (client.restart(), as Dask's Scheduler.restart): every
/// client stops wanting every key (RestartCancelled tells each one which of its keys were
/// cancelled) and every task is released and forgotten, running ones freed on their
/// workers. Clients stay connected; the server restarts the workers themselves.
struct Restart {};
/// `worker` could not push its result `key` to the worker at `target` (PushTo): the
/// dependent waiting there is told where to fetch it instead. Changes no task's status,
/// so it is not journaled.
struct PushFailed {
  WorkerId worker;
  std::string key;
  std::string target;
};
/// `holder` now stores a copy of each of `keys` (client.retire_workers: a retiring worker
/// copied there what only it held): one more place they can be fetched from.
struct Replicated {
  WorkerId holder;
  std::vector<std::string> keys;
};
/// A task running on `worker` seceded (distrib::secede, worker_client): it waits on other
/// tasks and no longer takes one of the worker's threads, so it counts neither among the
/// worker's runnable tasks nor in its occupancy. It still runs there until it reports.
struct TaskSeceded {
  WorkerId worker;
  std::string key;
  std::uint64_t run_id = 0;
};
/// The worker loaded a library (client.upload_file) and can run these functions too. Not
/// journaled: a worker registers again with all its functions after a scheduler restart.
struct WorkerFunctions {
  WorkerId worker;
  std::vector<std::string> functions;
};
/// The wanter of keys given to fire_and_forget: not a connected client, the scheduler itself.
constexpr ClientId kFireAndForget = ~ClientId{0};
/// client.fire_and_forget (as Dask's): `kFireAndForget` wants `keys` too until each is
/// finished or erred, and then lets go of it, so that they run to the end when every client
/// has let go of them. Keys unknown, or already finished or erred, are left alone.
struct FireAndForget {
  ClientId client;
  std::vector<std::string> keys;
};
/// client.retry (as Dask's stimulus_retry): each erred key of `keys`, the erred tasks it
/// depends on, and their erred dependents are computed again. KeysRetried tells each client
/// which of its keys this reset (the requester always, with `request`).
struct RetryKeys {
  ClientId client;
  std::uint64_t request = 0;
  std::vector<std::string> keys;
};
/// `worker` is to drop its copies of `keys` (client.replicate's surplus, client.rebalance's
/// moves): only of keys in memory that another worker holds too; the others are kept.
struct DropReplicas {
  WorkerId worker;
  std::vector<std::string> keys;
};
using Event = std::variant<AddClient, RemoveClient, AddWorker, RemoveWorker, UpdateGraph, TaskFinished, TaskErred,
                           ReleaseKeys, WorkerMetrics, Scattered, CancelKeys, StealResponse, MissingData, Restart,
                           PushFailed, WorkerPaused, Replicated, WorkerFunctions, TaskSeceded, FireAndForget,
                           RetryKeys, DropReplicas>;

// ---- actions ----
struct ComputeTask {
  WorkerId worker;
  TaskSpecPtr spec;
  WhoHas who_has;  // where each dependency can be fetched from
  /// This assignment of the key; the worker's reports carry it, so a report that crosses a
  /// release and reassignment of the same key is told apart from the new run's.
  std::uint64_t run_id = 0;
  /// Assigned ahead: inputs not computed yet (processing here or on a peer told to push
  /// them here, PushTo). The worker starts the task the moment the last one arrives.
  std::vector<std::string> pending;
};
/// Tells the worker computing `key` to send its result, once it has it, straight to the
/// workers at `targets`, where a task assigned ahead waits for it.
struct PushTo {
  WorkerId worker;
  std::string key;
  std::vector<std::string> targets;
};
struct FreeKeys {
  WorkerId worker;
  std::vector<std::string> keys;
  /// The keys are tasks assigned to the worker and not finished: the free takes work back
  /// (a release, an error upstream, a lost input), so it should arrive before they start.
  /// Frees of stored results can wait for the connection's next write.
  bool stops_work = false;
};
struct KeyInMemory {
  ClientId client;
  std::string key;
  std::string worker_address;
  std::string type;
  std::uint64_t nbytes = 0;
  std::optional<Value> value;  // the result itself, when the worker sent it along
};
struct KeyErred {
  ClientId client;
  std::string key;
  std::string exception_type;
  std::string message;
};
/// The set of workers changed: clients are told how many workers and threads there are.
struct ClusterChanged {
  std::uint32_t workers = 0;
  std::uint32_t threads = 0;
};
/// These keys of the client were cancelled (including dependents of what it cancelled).
struct KeysCancelled {
  ClientId client;
  std::vector<std::string> keys;
};
/// Asks a busy worker to give back a task it has not started, for an idle worker.
struct StealRequest {
  WorkerId worker;
  std::string key;
};
/// Tells a worker where a key it looks for lives now.
struct KeyLocations {
  WorkerId worker;
  std::string key;
  std::vector<std::string> addresses;
};
/// A restart cancelled these keys of the client: every key it wanted (one per client,
/// empty for a client that wanted none).
struct RestartCancelled {
  ClientId client;
  std::vector<std::string> keys;
};
/// These keys of the client are computed again (RetryKeys); `request` is the client's retry
/// request, or 0 for keys another client's retry reset.
struct KeysRetried {
  ClientId client;
  std::uint64_t request = 0;
  std::vector<std::string> keys;
};
using Action = std::variant<ComputeTask, FreeKeys, KeyInMemory, KeyErred, ClusterChanged, KeysCancelled, StealRequest,
                            KeyLocations, RestartCancelled, PushTo, KeysRetried>;

/// Scheduling knobs (Dask's names where they exist).
struct SchedulerConfig {
  /// Root tasks (no dependencies) are sent to a worker only while it has fewer than
  /// ceil(nthreads * worker_saturation) of them, as Dask's queuing; the rest wait on the
  /// scheduler in priority order. Tasks known to be short get more room: enough to keep
  /// the worker busy for `saturation_seconds`.
  double worker_saturation = 1.1;
  double saturation_seconds = 0.005;
  /// Duration assumed for a task prefix that never finished yet.
  double unknown_task_duration = 0.0005;
  /// Work stealing: idle workers take tasks that wait on busy ones, when moving the
  /// task's inputs (at `bandwidth` bytes/s) costs less than the task itself.
  bool work_stealing = true;
  double bandwidth = 100e6;
  /// A task processing on this many workers that died errs with distrib::KilledWorker
  /// (dscheduler --allowed-failures). A worker that closed gracefully does not count.
  std::uint32_t allowed_failures = 3;
  /// Assigning ahead: a task whose inputs are all computed or being computed is sent to a
  /// worker before they finish (to the one that computes most of them), and their
  /// producers push small results straight to it, so that it starts without waiting for
  /// the scheduler. The value is how many levels of unfinished inputs a task may wait on
  /// (0: off, as Dask; each level assigned ahead commits placement earlier).
  std::uint32_t assign_ahead_depth = 2;

  /// Transitions kept per key for story(); older ones are dropped.
  std::size_t story_length = 32;
  /// Seconds since the epoch, for the story's times (the default reads the system clock).
  std::function<double()> clock;
};

// One byte: it is in every task and in each entry of its story (a million tasks are a
// million of each).
enum class TaskStatus : std::uint8_t { released, waiting, no_worker, queued, processing, memory, erred };
const char* to_string(TaskStatus s);
/// Whether a task may go from `from` to `to` (the transition table). A task is forgotten
/// from released or erred, which is not a status.
bool transition_allowed(TaskStatus from, TaskStatus to);
/// The name of event kind `index` (the Event variant's index), e.g. "task-finished".
const char* event_name(std::size_t index);

/// One transition of a task, as story() reports it.
struct StoryEntry {
  StimulusId stimulus = 0;
  std::uint8_t event = 0;  // the stimulus's kind: event_name(event)
  TaskStatus from = TaskStatus::released;
  TaskStatus to = TaskStatus::released;
  WorkerId worker = 0;     // the worker it concerns (processing on, finished on ...), or 0
  double time = 0;         // seconds since the epoch
};

/// What the scheduler must remember across its own restart (dscheduler --journal): every
/// task with its definition, who wants it and where its result lives, the clients and
/// workers. Taken by durable_state(), given back by restore().
struct DurableTask {
  std::string key;
  TaskSpecPtr spec;
  TaskStatus status = TaskStatus::waiting;
  bool scattered = false;
  std::vector<ClientId> wanted_by;
  std::vector<WorkerId> holders;  // memory: the workers that hold it
  std::string type;
  std::uint64_t nbytes = 0;
  WorkerId processing_on = 0;     // processing: where, under which run id
  std::uint64_t run_id = 0;
  std::string exception_type;     // erred
  std::string exception_message;
  std::uint32_t retries_left = 0;
  std::uint32_t suspicious = 0;
};
struct DurableState {
  std::vector<ClientId> clients;
  std::vector<AddWorker> workers;  // without held keys: the tasks say what each holds
  std::uint64_t next_run_id = 1;
  StimulusId last_stimulus = 0;
  std::vector<std::pair<std::string, double>> durations;  // learned per prefix
  std::vector<DurableTask> tasks;
};

class SchedulerState {
 public:
  explicit SchedulerState(SchedulerConfig config = {});
  ~SchedulerState();
  SchedulerState(const SchedulerState&) = delete;
  SchedulerState& operator=(const SchedulerState&) = delete;

  /// Applies one event and appends the resulting actions to `out`. `stimulus` names the
  /// event in the stories of the tasks it changes (0: the next number).
  void handle(Event event, std::vector<Action>& out, StimulusId stimulus = 0);
  std::vector<Action> handle(Event event) {
    std::vector<Action> out;
    handle(std::move(event), out);
    return out;
  }
  /// The stimulus id the last handle() used.
  StimulusId last_stimulus() const;

  // Introspection (for the server, tests and diagnostics).
  std::size_t n_tasks() const;
  std::size_t n_workers() const;
  std::uint32_t total_threads() const;
  std::optional<TaskStatus> status(const std::string& key) const;
  /// The worker processing `key`, or 0.
  WorkerId processing_on(const std::string& key) const;
  std::vector<WorkerId> who_has(const std::string& key) const;
  /// The size of `key`'s value, if it is in memory.
  std::optional<std::uint64_t> nbytes(const std::string& key) const;
  std::size_t n_processing(WorkerId worker) const;
  /// The keys `worker` holds (none for an unknown worker).
  std::vector<std::string> keys_on(WorkerId worker) const;
  /// Learned average duration (seconds) of tasks of this prefix, if any finished.
  std::optional<double> prefix_duration(const std::string& prefix) const;

  struct WorkerSnapshot {
    WorkerId id;
    std::string name;
    std::string address;
    std::uint32_t nthreads;
    std::uint64_t memory_limit;
    std::uint64_t memory_bytes;
    std::size_t processing;
    std::size_t stored;
    std::uint64_t stored_bytes;
    std::vector<std::string> keys;  // only with `with_keys`
    std::uint64_t managed_bytes = 0;  // from its heartbeats
    std::uint64_t spilled_bytes = 0;
    bool paused = false;
  };
  std::vector<WorkerSnapshot> workers(bool with_keys = false) const;
  /// Number of tasks in each state.
  std::vector<std::pair<std::string, std::size_t>> task_counts() const;
  /// Tasks per key prefix and state group, for the dashboard.
  struct PrefixCounts {
    std::size_t waiting = 0, processing = 0, memory = 0, erred = 0;
  };
  std::unordered_map<std::string, PrefixCounts> prefix_counts() const;
  /// Keys wanted by `client`.
  std::vector<std::string> wanted_by(ClientId client) const;
  /// The last transitions of `key`, oldest first (empty for a key never seen or forgotten).
  std::vector<StoryEntry> story(const std::string& key) const;
  /// The address a worker had (also after it left), or "".
  std::string worker_address(WorkerId worker) const;
  /// The durable part of the state, for a snapshot.
  DurableState durable_state() const;
  /// Rebuilds an empty state from a snapshot (throws std::invalid_argument if it is not
  /// consistent, e.g. a task depending on a key it does not hold). Tasks that were
  /// processing stay assigned under their run ids, so that the journal's reports after
  /// the snapshot are believed.
  void restore(DurableState state);
  /// Checks every internal invariant, and that no transition broke the table; throws
  /// std::logic_error describing the first broken one.
  void validate() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace distrib::detail::sched
