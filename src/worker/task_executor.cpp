#include "worker/task_executor.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <typeinfo>

#include "distrib/task.hpp"

namespace distrib::detail {

namespace {
std::string demangle(const char* name) {
  int status = 0;
  char* s = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = status == 0 && s ? s : name;
  std::free(s);
  return out;
}
}  // namespace

wrk::Event run_task(const wrk::Execute& ex, TaskServices* services) {
  const auto& key = ex.spec->key;
  // Freed (or the worker closing) while it waited for a thread: no user code runs.
  if (ex.stop.stop_requested()) return wrk::ExecuteFailure{key, "distrib::CancelledError", "stopped before it started"};
  const TaskFunction* fn = TaskRegistry::instance().find(ex.spec->function);
  if (!fn)
    return wrk::ExecuteFailure{key, "distrib::NoWorkerCanRun",
                               "task function '" + ex.spec->function + "' is not registered in this worker"};
  TaskStopScope scope(ex.stop);
  CurrentTaskScope current(key, services);
  try {
    auto start = std::chrono::steady_clock::now();
    auto value = fn->invoke(ex.args);
    return wrk::ExecuteSuccess{key, std::move(value),
                               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
  } catch (const std::exception& e) {
    return wrk::ExecuteFailure{key, demangle(typeid(e).name()), e.what()};
  } catch (...) {
    return wrk::ExecuteFailure{key, "unknown", "a non-standard exception was thrown"};
  }
}

TaskExecutor::TaskExecutor(unsigned nthreads, OnResult on_result, TaskServices* services)
    : on_result_(std::move(on_result)), services_(services), pool_(nthreads) {}

void TaskExecutor::submit(wrk::Execute ex) {
  pool_.submit([this, ex = std::move(ex)]() mutable { run(std::move(ex)); });
}

void TaskExecutor::run(wrk::Execute ex) {
  std::optional<wrk::Execute> next = std::move(ex);
  while (next) {
    wrk::Execute current = std::move(*next);
    next.reset();
    wrk::Event result = run_task(current, services_);
    current.args.clear();  // inputs are released before the next task starts
    on_result_(std::move(result), next);
  }
}

bool TaskExecutor::wait_idle(std::chrono::milliseconds timeout) {
  return pool_.wait_idle_until(std::chrono::steady_clock::now() + timeout);
}

}  // namespace distrib::detail
