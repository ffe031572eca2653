#include "worker/thread_pool.hpp"

#include <algorithm>

#include "comm/cpu_occupancy.hpp"
#include "comm/io_loop.hpp"

namespace distrib::detail {

namespace {
// The pool whose job this thread runs, and whether that job seceded.
thread_local ThreadPool* t_pool = nullptr;
thread_local bool t_seceded = false;
}  // namespace

ThreadPool::ThreadPool(unsigned nthreads) {
  std::lock_guard lock(mutex_);
  for (unsigned i = 0; i < std::max(1u, nthreads); ++i) start_thread();
}

void ThreadPool::start_thread() {
  threads_.emplace_back([this] {
    name_this_thread("distrib-task");
    t_pool = this;
    run();
  });
}

void ThreadPool::join_finished() {
  for (auto id : finished_) {
    auto it = std::find_if(threads_.begin(), threads_.end(), [&](const std::thread& t) { return t.get_id() == id; });
    if (it == threads_.end()) continue;
    it->join();  // it said it finished: it is returning, if it has not already
    threads_.erase(it);
  }
  finished_.clear();
}

void ThreadPool::secede_current() {
  if (t_pool != this || t_seceded) return;
  t_seceded = true;
  std::lock_guard lock(mutex_);
  if (stopping_) return;
  join_finished();  // threads of jobs that seceded earlier and ended
  start_thread();
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  // No thread starts after stopping_ is set; a seceded job still running is waited for.
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
}

void ThreadPool::submit(std::function<void()> job) {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
    wake = sleeping_ > 0;  // a polling thread sees the job without a wake-up
  }
  if (wake) cv_.notify_one();
}

void ThreadPool::run() {
  AdaptiveSpin spin(default_io_spin());
  while (true) {
    std::function<void()> job;
    {
      auto ready = [this] { return stopping_ || !jobs_.empty(); };
      // Short tasks come back to back: poll briefly before sleeping (see io_loop.hpp), for as
      // long as the gaps between jobs have lately been short.
      const auto idle_since = std::chrono::steady_clock::now();
      spin_until_locked(mutex_, ready, spin.window());
      std::unique_lock lock(mutex_);
      ++sleeping_;
      cv_.wait(lock, ready);
      --sleeping_;
      spin.record(std::chrono::steady_clock::now() - idle_since);
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
      ++running_;
    }
    {
      BusyTaskThread busy;  // io threads on this host stop polling while tasks hold every core
      job();
    }
    bool idle = false;
    const bool leave = t_seceded;  // its place in the pool went to a new thread
    {
      std::lock_guard lock(mutex_);
      idle = --running_ == 0 && jobs_.empty();
      if (leave && !stopping_) finished_.push_back(std::this_thread::get_id());
    }
    if (idle) idle_cv_.notify_all();
    if (leave) {
      t_seceded = false;
      return;
    }
  }
}

bool ThreadPool::wait_idle_until(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  return idle_cv_.wait_until(lock, deadline, [this] { return running_ == 0 && jobs_.empty(); });
}

}  // namespace distrib::detail
