#pragma once
// ContinuationThread: the thread on which a client's continuations run (continuation.hpp),
// so that none runs on the client's I/O thread, where fetching a result would wait on
// itself. Functions run one at a time in the order posted; the thread starts with the first.
// After stop(), what was posted still runs, and a function posted later runs on the
// posting thread.
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace distrib::detail {

class ContinuationThread {
 public:
  ContinuationThread();
  /// stop().
  ~ContinuationThread();
  ContinuationThread(const ContinuationThread&) = delete;
  ContinuationThread& operator=(const ContinuationThread&) = delete;

  void post(std::function<void()> fn);
  /// Runs what was posted, then ends the thread (waits for it, unless called on it).
  void stop();

 private:
  struct Shared {
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<std::function<void()>> queue;
    bool stopping = false;
  };
  static void run(const std::shared_ptr<Shared>& shared);
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
  std::mutex thread_mutex_;
  std::thread thread_;
};

}  // namespace distrib::detail
