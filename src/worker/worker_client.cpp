// distrib::get_client, secede, rejoin, get_worker and WorkerClient: the calling thread's
// current task (task_context.hpp), set by the task executor, names the worker to ask.
#include "distrib/worker_client.hpp"

#include "worker/task_context.hpp"

namespace distrib {

namespace detail {
namespace {
thread_local CurrentTask* t_current = nullptr;

CurrentTask& require_task(const char* what) {
  if (!t_current || !t_current->services)
    throw Error(std::string("distrib::") + what + "(): not called from a task running on a worker");
  return *t_current;
}
}  // namespace

CurrentTask* current_task() { return t_current; }

CurrentTaskScope::CurrentTaskScope(const std::string& key, TaskServices* services)
    : task_{&key, services, false}, previous_(t_current) {
  t_current = &task_;
}

CurrentTaskScope::~CurrentTaskScope() { t_current = previous_; }
}  // namespace detail

TaskWorker get_worker() { return detail::require_task("get_worker").services->identity(); }

Client& get_client() { return detail::require_task("get_client").services->task_client(); }

void secede() {
  auto& task = detail::require_task("secede");
  if (task.seceded) return;
  task.services->secede(*task.key);
  task.seceded = true;
}

void rejoin() {
  auto& task = detail::require_task("rejoin");
  if (!task.seceded) return;
  task.services->rejoin(*task.key);
  task.seceded = false;
}

WorkerClient::WorkerClient() : client_(&get_client()), seceded_here_(!detail::current_task()->seceded) {
  if (seceded_here_) secede();
}

WorkerClient::~WorkerClient() {
  if (!seceded_here_) return;
  try {
    rejoin();
  } catch (...) {  // a destructor must not throw; the task goes on without its slot
  }
}

}  // namespace distrib
