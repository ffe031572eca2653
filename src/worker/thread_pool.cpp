#include "worker/thread_pool.hpp"

#include "comm/cpu_occupancy.hpp"
#include "comm/io_loop.hpp"

namespace distrib::detail {

ThreadPool::ThreadPool(unsigned nthreads) {
  for (unsigned i = 0; i < std::max(1u, nthreads); ++i)
    threads_.emplace_back([this] {
      name_this_thread("distrib-task");
      run();
    });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
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
    {
      std::lock_guard lock(mutex_);
      idle = --running_ == 0 && jobs_.empty();
    }
    if (idle) idle_cv_.notify_all();
  }
}

bool ThreadPool::wait_idle_until(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  return idle_cv_.wait_until(lock, deadline, [this] { return running_ == 0 && jobs_.empty(); });
}

}  // namespace distrib::detail
