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
#include <stdexcept>
#include <string>
#include <utility>
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

namespace detail {
/// An input iterator over whatever `Source` yields: `has_next()` says whether `next()` has
/// something to give (waiting for it if need be).
template <class Source, class Value>
class PullIterator {
 public:
  using value_type = Value;
  using difference_type = std::ptrdiff_t;
  PullIterator() = default;
  explicit PullIterator(Source* source) : source_(source) { advance(); }
  Value& operator*() const { return *current_; }
  PullIterator& operator++() {
    advance();
    return *this;
  }
  void operator++(int) { advance(); }
  bool operator==(const PullIterator& o) const { return source_ == o.source_; }

 private:
  void advance() {
    if (source_ && source_->has_next()) current_.emplace(source_->next());
    else source_ = nullptr;
  }
  Source* source_ = nullptr;
  mutable std::optional<Value> current_;  // `*it` on a const iterator too (std::input_iterator)
};
}  // namespace detail

/// Yields futures in the order they complete, as Dask's as_completed. More can be added
/// while iterating.
///
///   distrib::AsCompleted<int> ac(futures);
///   for (auto& f : ac) { ... ac.add(client.submit(...)); }
///   for (auto& batch : ac.batches()) { ... }               // every future done by then, at once
///   for (auto& [f, value] : ac.with_results()) { ... }     // with each result fetched
///
/// With a timeout (counted from construction, as Dask's), next() throws TimeoutError once
/// it passes with futures still pending.
template <class T>
class AsCompleted {
 public:
  AsCompleted() : shared_(std::make_shared<Shared>()) {}
  explicit AsCompleted(const std::vector<Future<T>>& futures) : AsCompleted() { update(futures); }
  AsCompleted(const std::vector<Future<T>>& futures, std::chrono::milliseconds timeout) : AsCompleted(futures) {
    if (timeout.count() < 0) throw std::invalid_argument("as_completed: the timeout must not be negative");
    deadline_ = std::chrono::steady_clock::now() + timeout;
    timeout_ = timeout;
  }

  void add(const Future<T>& f) {
    if (!f.valid()) throw std::invalid_argument("as_completed: an empty Future was added");
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
  /// Adds each of `futures`.
  void update(const std::vector<Future<T>>& futures) {
    for (const auto& f : futures) add(f);
  }
  /// True while futures remain to be returned.
  bool has_next() const {
    std::lock_guard lock(shared_->mutex);
    return shared_->pending > 0 || !shared_->ready.empty();
  }
  /// Futures not yet returned, done or not (Dask's count()).
  std::size_t count() const {
    std::lock_guard lock(shared_->mutex);
    return shared_->pending + shared_->ready.size();
  }
  bool is_empty() const { return count() == 0; }
  /// True if next() would return at once.
  bool has_ready() const {
    std::lock_guard lock(shared_->mutex);
    return !shared_->ready.empty();
  }
  /// The next future to complete (blocks); throws std::out_of_range when none is left, and
  /// TimeoutError past the timeout.
  Future<T> next() {
    std::unique_lock lock(shared_->mutex);
    wait_ready(lock);
    auto f = std::move(shared_->ready.front());
    shared_->ready.pop_front();
    return f;
  }
  /// Every future done now, oldest first; with `block`, waits for at least one first
  /// (throws as next() does), without, may return none.
  std::vector<Future<T>> next_batch(bool block = true) {
    std::unique_lock lock(shared_->mutex);
    if (block) wait_ready(lock);
    std::vector<Future<T>> out(std::make_move_iterator(shared_->ready.begin()),
                               std::make_move_iterator(shared_->ready.end()));
    shared_->ready.clear();
    return out;
  }

  using iterator = detail::PullIterator<AsCompleted, Future<T>>;
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

  /// Iterates batches: each step yields every future done by then (at least one), as
  /// Dask's batches(). It shares the futures with the AsCompleted it came from (which may
  /// be a temporary: `for (auto& b : as_completed(fs).batches())`).
  class Batches {
   public:
    explicit Batches(std::shared_ptr<AsCompleted> owner) : owner_(std::move(owner)) {}
    bool has_next() const { return owner_->has_next(); }
    std::vector<Future<T>> next() { return owner_->next_batch(true); }
    using iterator = detail::PullIterator<Batches, std::vector<Future<T>>>;
    iterator begin() { return iterator(this); }
    iterator end() { return iterator(); }

   private:
    std::shared_ptr<AsCompleted> owner_;
  };
  Batches batches() { return Batches(std::make_shared<AsCompleted>(*this)); }

  /// Iterates (future, value) pairs, each value fetched as its future completes (Dask's
  /// with_results=True with raise_errors=True): a failed or cancelled future's error is
  /// thrown by the step that reaches it. batches() yields vectors of such pairs.
  class WithResults {
   public:
    using value_type = std::pair<Future<T>, T>;
    explicit WithResults(std::shared_ptr<AsCompleted> owner) : owner_(std::move(owner)) {}
    bool has_next() const { return owner_->has_next(); }
    value_type next() { return paired(owner_->next()); }
    using iterator = detail::PullIterator<WithResults, value_type>;
    iterator begin() { return iterator(this); }
    iterator end() { return iterator(); }

    class Batches {
     public:
      explicit Batches(std::shared_ptr<AsCompleted> owner) : owner_(std::move(owner)) {}
      bool has_next() const { return owner_->has_next(); }
      std::vector<value_type> next() {
        std::vector<value_type> out;
        for (auto& f : owner_->next_batch(true)) out.push_back(paired(std::move(f)));
        return out;
      }
      using iterator = detail::PullIterator<Batches, std::vector<value_type>>;
      iterator begin() { return iterator(this); }
      iterator end() { return iterator(); }

     private:
      std::shared_ptr<AsCompleted> owner_;
    };
    Batches batches() { return Batches(owner_); }

   private:
    static value_type paired(Future<T> f) {
      T value = f.result();
      return {std::move(f), std::move(value)};
    }
    std::shared_ptr<AsCompleted> owner_;
  };
  /// (Shares the futures with this AsCompleted, as batches() does.)
  WithResults with_results() { return WithResults(std::make_shared<AsCompleted>(*this)); }

 private:
  struct Shared {
    mutable std::mutex mutex;
    std::condition_variable cv;
    std::deque<Future<T>> ready;
    std::size_t pending = 0;
  };
  void wait_ready(std::unique_lock<std::mutex>& lock) {
    auto some = [&] { return !shared_->ready.empty() || shared_->pending == 0; };
    if (!deadline_) shared_->cv.wait(lock, some);
    else if (!shared_->cv.wait_until(lock, *deadline_, some))
      throw TimeoutError("as_completed: " + std::to_string(shared_->pending) + " futures were still pending after " +
                         std::to_string(timeout_.count()) + " ms");
    if (shared_->ready.empty()) throw std::out_of_range("as_completed: no futures left");
  }
  std::shared_ptr<Shared> shared_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  std::chrono::milliseconds timeout_{0};
};

template <class T>
AsCompleted<T> as_completed(const std::vector<Future<T>>& futures) {
  return AsCompleted<T>(futures);
}
/// As above; next() throws TimeoutError once `timeout` has passed since this call with
/// futures still pending.
template <class T>
AsCompleted<T> as_completed(const std::vector<Future<T>>& futures, std::chrono::milliseconds timeout) {
  return AsCompleted<T>(futures, timeout);
}

}  // namespace distrib
