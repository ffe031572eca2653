#pragma once
// WorkerState: a worker's decisions as a pure state machine (sans-IO), after Dask's
// worker_state_machine. Events in (compute this task, a task finished on the pool, data
// arrived from a peer ...), instructions out (execute, fetch from a peer, report to the
// scheduler). The values it holds (key -> encoded value) live in a DataStore it owns, given
// to it or a MemoryStore by default (data_store.hpp): the state decides, the store keeps.
//
// Task states: waiting (for inputs) -> ready -> executing -> memory; inputs held elsewhere
// go fetch -> flight -> memory, and inputs a peer still computes (assigned ahead) go
// pending -> memory when the peer pushes them (or -> fetch when it announces a large one). A task freed while it runs is `cancelled`: it is asked to
// stop (StopExecution) unless a local task needs its result, and whatever a run that was
// asked to stop returns is discarded (it may be partial): if the task is wanted again by
// then, it runs anew.
//
// Every ComputeTask carries the scheduler's runId for that assignment of the key; each report
// about the key (finished, erred, steal response) echoes the runId it holds the key under.
#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <variant>
#include <vector>

#include "core/task_spec.hpp"
#include "worker/data_store.hpp"

namespace distrib::detail::wrk {

using WhoHas = std::vector<std::pair<std::string, std::vector<std::string>>>;

// ---- events ----
struct ComputeTask {
  TaskSpecPtr spec;
  WhoHas who_has;
  std::uint64_t run_id = 0;  // the scheduler's id of this assignment (0: it sets none)
  /// Assigned ahead: inputs still being computed, by this worker or by a peer that pushes
  /// them here (PushedData); the task starts the moment the last one arrives.
  std::vector<std::string> pending;
};
struct ExecuteSuccess {
  std::string key;
  Value value;
  double duration = 0;  // seconds
};
struct ExecuteFailure {
  std::string key;
  std::string exception_type;
  std::string message;
};
struct FreeKeys {
  std::vector<std::string> keys;
};
struct GatherSuccess {
  std::string worker;
  std::vector<std::pair<std::string, Value>> data;
  std::vector<std::string> missing;
};
struct GatherFailure {
  std::string worker;
  std::vector<std::string> keys;
  std::string reason;
};
/// Values a client put here directly (scatter): held until the scheduler frees them.
struct StoreData {
  std::vector<std::pair<std::string, Value>> data;
};
/// The scheduler wants a task back (to run it on an idle worker) if it has not started.
struct StealRequest {
  std::string key;
};
/// The scheduler's answer to SendMissingData: where the key lives now.
struct KeyLocations {
  std::string key;
  std::vector<std::string> addresses;
};
/// The connection to the scheduler is gone: it reschedules everything this worker had not
/// finished. Every task not in memory is dropped (running ones are asked to stop); the
/// stored results stay, to be offered to the scheduler on registering again (held_keys()).
/// The scheduler assigned a task ahead on the workers at `targets` that needs `key`: once
/// this worker has it, it sends it there (PushData).
struct PushTo {
  std::string key;
  std::vector<std::string> targets;
};
/// A peer pushed results for tasks assigned ahead here, or (`available`) said it holds
/// results too large to push, to be fetched from it.
struct PushedData {
  std::string worker;
  std::vector<std::pair<std::string, Value>> data;
  std::vector<std::string> available;
};
/// Time passes (the server sends it once per heartbeat): an input of a task assigned ahead
/// still pending after two ticks is asked for (SendMissingData), in case its push was lost.
struct Tick {};
struct SchedulerLost {};
/// The scheduler removed this worker (reregister: it then registers as a new worker), or
/// the worker is closing: everything is dropped, stored results too, and running tasks
/// are asked to stop.
struct ForgetAll {};
/// Memory past the pause threshold, or a full spill disk (issue 16): while paused no task
/// starts and no input is fetched (running tasks finish, pushes are still taken in); on
/// resume both start again. As Dask's worker status "paused".
struct Pause {
  bool paused = true;
};
/// The data store wrote out the backlog that held new tasks back (DataStore::backlogged).
struct StoreDrained {};
/// The running task `key` seceded (distrib::secede): it waits on other tasks, so its thread
/// no longer counts against nthreads and another task may start.
struct Secede {
  std::string key;
};
/// The seceded task `key` wants a thread again (distrib::rejoin): it gets one at once if
/// fewer than nthreads tasks run, else as soon as one finishes, before any new task starts
/// (Rejoined says when).
struct Rejoin {
  std::string key;
};
using Event = std::variant<ComputeTask, ExecuteSuccess, ExecuteFailure, FreeKeys, GatherSuccess, GatherFailure, StoreData,
                           StealRequest, KeyLocations, SchedulerLost, ForgetAll, PushTo, PushedData, Tick, Pause,
                           StoreDrained, Secede, Rejoin>;

// ---- instructions ----
struct Execute {
  TaskSpecPtr spec;
  std::vector<Value> args;  // every argument resolved to a value
  std::stop_token stop;     // stop_requested() once nobody wants the result (StopExecution)
};
struct GatherDep {
  std::string worker;
  std::vector<std::string> keys;
};
/// Results up to this size travel with the report, so that a client gets them from the
/// scheduler's notice instead of asking the worker (one round trip less per small result).
inline constexpr std::size_t kInlineResultBytes = 1024;

struct SendTaskFinished {
  std::string key;
  std::string type;
  std::uint64_t nbytes = 0;
  double duration = 0;
  std::optional<Value> value;  // set when nbytes <= kInlineResultBytes
  std::uint64_t run_id = 0;
};
struct SendTaskErred {
  std::string key;
  std::string exception_type;
  std::string message;
  std::uint64_t run_id = 0;
};
struct SendStealResponse {
  std::string key;
  bool released = false;
  std::uint64_t run_id = 0;  // the runId the worker holds the key under (0: unknown key)
};
/// The running task `key` was asked to stop (its Execute's token): nobody wants its result.
struct StopExecution {
  std::string key;
};
/// No peer had `key` (the last one asked was `worker`): ask the scheduler where it is.
struct SendMissingData {
  std::string key;
  std::string worker;
};
/// Results up to this size are pushed to a worker that has a task assigned ahead waiting
/// for them; larger ones are announced to it, and it fetches them.
inline constexpr std::size_t kPushResultBytes = 256 * 1024;
/// Sends these results to the worker at `worker` (PushTo): the values themselves, or for
/// large ones (`available`) only their keys. If the worker cannot be reached, the scheduler
/// is told (pushFailed), so that the waiting task fetches them instead.
struct PushData {
  std::string worker;
  std::vector<std::pair<std::string, Value>> data;
  std::vector<std::string> available;
};
/// Tell the scheduler that `key` seceded (longRunning).
struct SendLongRunning {
  std::string key;
  std::uint64_t run_id = 0;
};
/// The seceded task `key` has a thread again: its rejoin() returns.
struct Rejoined {
  std::string key;
};
using Instruction = std::variant<Execute, GatherDep, SendTaskFinished, SendTaskErred, SendStealResponse, SendMissingData,
                                 StopExecution, PushData, SendLongRunning, Rejoined>;

/// A stored result, as offered to a scheduler on registering again.
struct HeldKey {
  std::string key;
  std::string type;
  std::uint64_t nbytes = 0;
};

/// pending: an input of a task assigned ahead, which a peer computes and pushes here.
enum class TaskStatus { waiting, ready, executing, memory, fetch, flight, missing, cancelled, pending };
const char* to_string(TaskStatus s);

class WorkerState {
 public:
  /// `resources`: what this worker offers (e.g. {"GPU", 2}); tasks that ask for resources
  /// run only while enough are free. `store` keeps the values of the tasks in memory (null:
  /// a MemoryStore); the state calls it from inside every call made on the state.
  explicit WorkerState(std::uint32_t nthreads, std::size_t max_concurrent_gathers = 10,
                       std::vector<std::pair<std::string, double>> resources = {},
                       std::unique_ptr<DataStore> store = nullptr);
  ~WorkerState();
  WorkerState(const WorkerState&) = delete;
  WorkerState& operator=(const WorkerState&) = delete;

  void handle(Event event, std::vector<Instruction>& out);
  std::vector<Instruction> handle(Event event) {
    std::vector<Instruction> out;
    handle(std::move(event), out);
    return out;
  }

  /// A stored value, for serving peers and clients.
  std::optional<Value> get_data(const std::string& key) const;
  std::optional<TaskStatus> status(const std::string& key) const;
  std::size_t n_stored() const;
  /// The store's managed bytes: the sum of the stored values' sizes.
  std::uint64_t stored_bytes() const;
  std::size_t n_executing() const;
  bool paused() const;
  std::size_t n_tasks() const;
  /// The results this worker holds for the scheduler (computed or scattered here).
  std::vector<HeldKey> held_keys() const;
  /// The runId the key is held under (nullopt: unknown key).
  std::optional<std::uint64_t> run_id(const std::string& key) const;
  void validate() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace distrib::detail::wrk
