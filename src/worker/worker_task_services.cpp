// What a worker's tasks may ask of it (task_context.hpp): the client they share, seceding
// from and rejoining the worker's threads, and who the worker is.
#include "client/client_access.hpp"
#include "core/log.hpp"
#include "worker/worker_server.hpp"

namespace distrib::detail {

Client& WorkerServer::task_client() {
  std::lock_guard lock(task_client_mutex_);
  if (task_client_ && ClientAccess::impl(*task_client_).is_lost() && !stopped_tasks_client_) {
    // The scheduler went away (and may be back, or another one): the next tasks get a new
    // client. Tasks of the old life may still hold the old one, so it is kept until the end.
    lost_task_clients_.push_back(std::move(task_client_));
  }
  if (!task_client_) {
    ClientOptions o;
    o.name = "tasks-of-" + options_.name;
    o.security = options_.security;
    o.connect_timeout = options_.connect_timeout;
    // Its tasks die with the worker's connection (their runs are void then): it does not
    // reconnect, and so the scheduler drops what it wanted as soon as it is gone, instead of
    // running the subtrees of dead tasks for --client-grace.
    o.reconnect_timeout = std::chrono::milliseconds(0);
    auto client = std::make_unique<Client>(options_.scheduler_address, o);
    // Tasks submitted by tasks run newest first: a recursion goes depth first, so that the
    // tasks waiting on others (each holding a thread) stay few.
    ClientAccess::impl(*client).prefer_newest_tasks();
    log().debug("worker '{}': a client for its tasks is connected", options_.name);
    task_client_ = std::move(client);
  }
  return *task_client_;
}

void WorkerServer::close_task_client() {
  std::lock_guard lock(task_client_mutex_);
  stopped_tasks_client_ = true;
  if (task_client_) task_client_->close();
}

void WorkerServer::secede(const std::string& key) {
  executor_->secede_current_thread();  // a new thread first, for the task that may start now
  std::vector<std::function<void()>> io_work;
  {
    std::lock_guard lock(state_mutex_);
    apply_locked(wrk::Secede{key}, nullptr, io_work);
  }
  post_io_work(std::move(io_work));
}

void WorkerServer::rejoin(const std::string& key) {
  std::vector<std::function<void()>> io_work;
  std::unique_lock lock(state_mutex_);
  if (stopped_) return;
  rejoin_waiting_.insert(key);
  apply_locked(wrk::Rejoin{key}, nullptr, io_work);  // Rejoined at once if a thread is free
  if (!io_work.empty()) {
    lock.unlock();
    post_io_work(std::move(io_work));
    lock.lock();
  }
  rejoin_cv_.wait(lock, [&] { return !rejoin_waiting_.count(key) || stopped_; });
  rejoin_waiting_.erase(key);
}

TaskWorker WorkerServer::identity() const {
  TaskWorker w;
  w.name = options_.name;
  w.address = address_;
  w.scheduler_address = options_.scheduler_address;
  w.nthreads = options_.nthreads;
  for (const auto& [name, amount] : options_.resources) w.resources[name] = amount;
  return w;
}

}  // namespace distrib::detail
