#pragma once
// Waiting on many futures, as dask.distributed.wait and as_completed.
//
//   auto [done, not_done] = distrib::wait(futures, std::chrono::seconds(10), distrib::FIRST_COMPLETED);
//   for (auto& f : distrib::as_completed(futures)) use(f.result());
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "distrib/future.hpp"

namespace distrib {

enum ReturnWhen { FIRST_COMPLETED, ALL_COMPLETED };

template <class T>
struct WaitResult {
  std::vector<Future<T>> done;
  std::vector<Future<T>> not_done;
};

/// Waits until all (or the first) of `futures` are done — finished, erred or cancelled.
/// Throws TimeoutError if `timeout` passes first.
template <class T>
WaitResult<T> wait(const std::vector<Future<T>>& futures,
                   std::optional<std::chrono::milliseconds> timeout = std::nullopt,
                   ReturnWhen return_when = ALL_COMPLETED) {
  struct Shared {
    std::mutex mutex;
    std::condition_variable cv;
    std::size_t done = 0;
  };
  auto shared = std::make_shared<Shared>();
  for (const auto& f : futures)
    detail::future_on_done(f.handle(), [shared] {
      std::lock_guard lock(shared->mutex);
      ++shared->done;
      shared->cv.notify_all();
    });
  std::size_t needed = futures.empty() ? 0 : (return_when == FIRST_COMPLETED ? 1 : futures.size());
  std::unique_lock lock(shared->mutex);
  auto ready = [&] { return shared->done >= needed; };
  if (!timeout) shared->cv.wait(lock, ready);
  else if (!shared->cv.wait_for(lock, *timeout, ready))
    throw TimeoutError("wait: only " + std::to_string(shared->done) + " of " + std::to_string(futures.size()) +
                       " futures were done after " + std::to_string(timeout->count()) + " ms");
  lock.unlock();
  WaitResult<T> r;
  for (const auto& f : futures) (f.done() ? r.done : r.not_done).push_back(f);
  return r;
}

/// Yields futures in the order they complete. More can be added while iterating.
///   distrib::AsCompleted<int> ac(futures);
///   for (auto& f : ac) { ... ac.add(client.submit(...)); }
template <class T>
class AsCompleted {
 public:
  AsCompleted() : shared_(std::make_shared<Shared>()) {}
  explicit AsCompleted(const std::vector<Future<T>>& futures) : AsCompleted() {
    for (const auto& f : futures) add(f);
  }

  void add(const Future<T>& f) {
    {
      std::lock_guard lock(shared_->mutex);
      ++shared_->pending;
    }
    detail::future_on_done(f.handle(), [shared = shared_, f] {
      std::lock_guard lock(shared->mutex);
      --shared->pending;
      shared->ready.push_back(f);
      shared->cv.notify_all();
    });
  }
  /// True while futures remain to be returned.
  bool has_next() const {
    std::lock_guard lock(shared_->mutex);
    return shared_->pending > 0 || !shared_->ready.empty();
  }
  /// The next future to complete (blocks); throws std::out_of_range when none is left.
  Future<T> next() {
    std::unique_lock lock(shared_->mutex);
    shared_->cv.wait(lock, [&] { return !shared_->ready.empty() || shared_->pending == 0; });
    if (shared_->ready.empty()) throw std::out_of_range("as_completed: no futures left");
    auto f = std::move(shared_->ready.front());
    shared_->ready.pop_front();
    return f;
  }

  class iterator {
   public:
    using value_type = Future<T>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(AsCompleted* owner) : owner_(owner) { advance(); }
    Future<T>& operator*() { return current_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    void operator++(int) { advance(); }
    bool operator==(const iterator& o) const { return owner_ == o.owner_; }

   private:
    void advance() {
      if (owner_ && owner_->has_next()) current_ = owner_->next();
      else owner_ = nullptr;
    }
    AsCompleted* owner_ = nullptr;
    Future<T> current_;
  };
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

 private:
  struct Shared {
    mutable std::mutex mutex;
    std::condition_variable cv;
    std::deque<Future<T>> ready;
    std::size_t pending = 0;
  };
  std::shared_ptr<Shared> shared_;
};

template <class T>
AsCompleted<T> as_completed(const std::vector<Future<T>>& futures) {
  return AsCompleted<T>(futures);
}

}  // namespace distrib
