#pragma once
// What a running task may ask of the worker that runs it (distrib::get_client, secede,
// rejoin, get_worker; include/distrib/worker_client.hpp). While a task runs, its thread's
// current task names it and the worker's services.
#include <string>

#include "distrib/worker_client.hpp"

namespace distrib::detail {

class TaskServices {
 public:
  /// The worker's shared client, connected on first use.
  virtual Client& task_client() = 0;
  /// The running task `key` leaves its thread's slot (the thread keeps running it).
  virtual void secede(const std::string& key) = 0;
  /// The seceded task `key` waits for a slot.
  virtual void rejoin(const std::string& key) = 0;
  virtual TaskWorker identity() const = 0;

 protected:
  ~TaskServices() = default;
};

struct CurrentTask {
  const std::string* key = nullptr;
  TaskServices* services = nullptr;
  bool seceded = false;
};

/// The task this thread runs, or null.
CurrentTask* current_task();

/// Makes `key` this thread's current task for the scope's lifetime.
class CurrentTaskScope {
 public:
  CurrentTaskScope(const std::string& key, TaskServices* services);
  ~CurrentTaskScope();
  CurrentTaskScope(const CurrentTaskScope&) = delete;
  CurrentTaskScope& operator=(const CurrentTaskScope&) = delete;

 private:
  CurrentTask task_;
  CurrentTask* previous_;
};

}  // namespace distrib::detail
