#include "client/continuation_thread.hpp"

#include "client/client_impl.hpp"
#include "comm/io_loop.hpp"
#include "core/log.hpp"

namespace distrib::detail {

ContinuationThread::ContinuationThread() = default;

ContinuationThread::~ContinuationThread() { stop(); }

void ContinuationThread::run(const std::shared_ptr<Shared>& shared) {
  name_this_thread("distrib-then");
  std::unique_lock lock(shared->mutex);
  while (true) {
    shared->cv.wait(lock, [&] { return shared->stopping || !shared->queue.empty(); });
    if (shared->queue.empty()) return;  // stopping, and everything posted ran
    auto fn = std::move(shared->queue.front());
    shared->queue.pop_front();
    lock.unlock();
    try {
      fn();
    } catch (const std::exception& e) {  // a continuation settles its own errors; this is a bug
      log().error("a continuation raised: {}", e.what());
    }
    fn = nullptr;  // what it held goes before the next one runs
    lock.lock();
  }
}

void ContinuationThread::post(std::function<void()> fn) {
  {
    std::lock_guard lock(shared_->mutex);
    if (!shared_->stopping) {
      shared_->queue.push_back(std::move(fn));
      shared_->cv.notify_one();
      std::lock_guard start(thread_mutex_);
      if (!thread_.joinable()) thread_ = std::thread([shared = shared_] { run(shared); });
      return;
    }
  }
  fn();  // stopped: nothing runs the queue any more
}

void ContinuationThread::stop() {
  {
    std::lock_guard lock(shared_->mutex);
    shared_->stopping = true;
    shared_->cv.notify_one();
  }
  std::lock_guard lock(thread_mutex_);
  if (!thread_.joinable()) return;
  // Stopped from a continuation (it closed the client, or dropped its last reference): the
  // thread finishes the queue by itself.
  if (thread_.get_id() == std::this_thread::get_id()) thread_.detach();
  else thread_.join();
}

ExecutorHandle future_executor(const FutureHandle& f) {
  auto c = f->client.lock();
  return c ? c->continuation_thread() : nullptr;
}

void executor_post(const ExecutorHandle& executor, std::function<void()> fn) {
  if (executor) executor->post(std::move(fn));
  else fn();
}

}  // namespace distrib::detail
