#pragma once
// SchedulerState: the scheduler's decisions as a pure state machine (sans-IO). Events come
// in (a graph from a client, a task finished on a worker, a worker left ...), actions come
// out (compute this task on that worker, tell that client its key is ready ...). No
// sockets, threads or clocks: every rule is unit-tested by feeding events.
//
// Task states, as in Dask: released -> waiting -> (no-worker) -> processing -> memory, or
// erred. A key is forgotten when no client wants it and no task depends on it.
#include <cstdint>
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
};
struct RemoveWorker {
  WorkerId worker;
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
};
struct TaskErred {
  WorkerId worker;
  std::string key;
  std::string exception_type;
  std::string message;
};
struct ReleaseKeys {
  ClientId client;
  std::vector<std::string> keys;
};
struct WorkerMetrics {
  WorkerId worker;
  std::uint64_t memory_bytes = 0;
};
using Event = std::variant<AddClient, RemoveClient, AddWorker, RemoveWorker, UpdateGraph, TaskFinished, TaskErred,
                           ReleaseKeys, WorkerMetrics>;

// ---- actions ----
struct ComputeTask {
  WorkerId worker;
  TaskSpecPtr spec;
  WhoHas who_has;  // where each dependency can be fetched from
};
struct FreeKeys {
  WorkerId worker;
  std::vector<std::string> keys;
};
struct KeyInMemory {
  ClientId client;
  std::string key;
  std::string worker_address;
  std::string type;
  std::uint64_t nbytes = 0;
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
using Action = std::variant<ComputeTask, FreeKeys, KeyInMemory, KeyErred, ClusterChanged>;

enum class TaskStatus { released, waiting, no_worker, processing, memory, erred };
const char* to_string(TaskStatus s);

class SchedulerState {
 public:
  SchedulerState();
  ~SchedulerState();
  SchedulerState(const SchedulerState&) = delete;
  SchedulerState& operator=(const SchedulerState&) = delete;

  /// Applies one event and appends the resulting actions to `out`.
  void handle(Event event, std::vector<Action>& out);
  std::vector<Action> handle(Event event) {
    std::vector<Action> out;
    handle(std::move(event), out);
    return out;
  }

  // Introspection (for the server, tests and diagnostics).
  std::size_t n_tasks() const;
  std::size_t n_workers() const;
  std::uint32_t total_threads() const;
  std::optional<TaskStatus> status(const std::string& key) const;
  /// The worker processing `key`, or 0.
  WorkerId processing_on(const std::string& key) const;
  std::vector<WorkerId> who_has(const std::string& key) const;
  std::size_t n_processing(WorkerId worker) const;
  /// Checks every internal invariant; throws std::logic_error describing the first broken one.
  void validate() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace distrib::detail::sched
