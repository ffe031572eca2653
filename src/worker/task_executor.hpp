#pragma once
// TaskExecutor: runs a worker's tasks on its thread pool. Each task runs with its stop
// token as the thread's current one (distrib::cancelled(), a std::stop_token parameter);
// a task asked to stop before it started does not start. A task thread hands its result
// back itself and goes on with the next task the state gives it, so short tasks run back
// to back without a hand-off through the io thread.
#include <chrono>
#include <functional>
#include <optional>

#include "worker/task_context.hpp"
#include "worker/thread_pool.hpp"
#include "worker/worker_state.hpp"

namespace distrib::detail {

class TaskExecutor {
 public:
  /// Applies a task's result (on the task thread); may set `next` to the task this thread
  /// runs next.
  using OnResult = std::function<void(wrk::Event result, std::optional<wrk::Execute>& next)>;

  /// `services`: what tasks may ask of their worker (get_client, secede); may be null.
  TaskExecutor(unsigned nthreads, OnResult on_result, TaskServices* services = nullptr);
  /// Waits for the running tasks (ask them to stop first).
  ~TaskExecutor() = default;
  TaskExecutor(const TaskExecutor&) = delete;
  TaskExecutor& operator=(const TaskExecutor&) = delete;

  /// Queues a task for the next free thread.
  void submit(wrk::Execute ex);
  /// Waits until no task runs or is queued, or `timeout`; true if none does.
  bool wait_idle(std::chrono::milliseconds timeout);
  /// From a task thread: the task seceded; another thread takes its place in the pool.
  void secede_current_thread() { pool_.secede_current(); }

 private:
  void run(wrk::Execute ex);

  OnResult on_result_;
  TaskServices* services_;
  ThreadPool pool_;  // last: its threads are joined before on_result_ goes
};

/// Runs one task on this thread: its result, or its exception, as the state's event.
/// `services` is what the task may ask of its worker (get_client, secede, ...), or null.
wrk::Event run_task(const wrk::Execute& ex, TaskServices* services = nullptr);

}  // namespace distrib::detail
