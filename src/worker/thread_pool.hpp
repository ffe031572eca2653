#pragma once
// A pool of threads that run tasks in FIFO order. The worker's state machine already
// orders tasks by priority and never hands out more than `nthreads` at once. A job may
// leave the pool (secede_current: a task waiting on other tasks); a new thread takes its
// place, and the job's own thread ends when the job does.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace distrib::detail {

class ThreadPool {
 public:
  explicit ThreadPool(unsigned nthreads);
  /// Joins the threads after the queued jobs are done.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void submit(std::function<void()> job);
  unsigned size() const { return static_cast<unsigned>(threads_.size()); }
  /// Waits until no job is queued or running, or `deadline`; true if idle.
  bool wait_idle_until(std::chrono::steady_clock::time_point deadline);
  /// Called from one of this pool's jobs: its thread stops counting as one of the pool's,
  /// and a new thread starts taking jobs. Its thread ends once the job returns. A second
  /// call from the same job does nothing.
  void secede_current();

 private:
  void run();
  void start_thread();  // with mutex_ held
  void join_finished();  // with mutex_ held
  std::mutex mutex_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  unsigned sleeping_ = 0;  // threads blocked in cv_.wait
  unsigned running_ = 0;   // jobs taken and not finished
  std::vector<std::thread> threads_;
  std::vector<std::thread::id> finished_;  // threads of seceded jobs that ended, to be joined
};

}  // namespace distrib::detail
