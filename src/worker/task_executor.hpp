#pragma once
// TaskExecutor: runs a worker's tasks on its thread pool. Each task runs with its stop
// token as the thread's current one (distrib::cancelled(), a std::stop_token parameter);
// a task asked to stop before it started does not start. A task thread hands its result
// back itself and goes on with the next task the state gives it, so short tasks run back
// to back without a hand-off through the io thread.
#include <chrono>
#include <functional>
#include <optional>

#include "worker/thread_pool.hpp"
#include "worker/worker_state.hpp"

namespace distrib::detail {

class TaskExecutor {
 public:
  /// Applies a task's result (on the task thread); may set `next` to the task this thread
  /// runs next.
  using OnResult = std::function<void(wrk::Event result, std::optional<wrk::Execute>& next)>;

  TaskExecutor(unsigned nthreads, OnResult on_result);
  /// Waits for the running tasks (ask them to stop first).
  ~TaskExecutor() = default;
  TaskExecutor(const TaskExecutor&) = delete;
  TaskExecutor& operator=(const TaskExecutor&) = delete;

  /// Queues a task for the next free thread.
  void submit(wrk::Execute ex);
  /// Waits until no task runs or is queued, or `timeout`; true if none does.
  bool wait_idle(std::chrono::milliseconds timeout);

 private:
  void run(wrk::Execute ex);

  OnResult on_result_;
  ThreadPool pool_;  // last: its threads are joined before on_result_ goes
};

/// Runs one task on this thread: its result, or its exception, as the state's event.
wrk::Event run_task(const wrk::Execute& ex);

}  // namespace distrib::detail
