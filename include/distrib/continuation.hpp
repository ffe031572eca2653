#pragma once
// Continuations without blocking a thread, as HPX's future::then, when_all and when_any.
//
//   distrib::Continuation<std::string> s = client.submit(inc, 1).then([](int v) { return std::to_string(v); });
//   auto both = distrib::when_all(f, g).then([](std::tuple<distrib::Future<int>, distrib::Future<int>> t) {...});
//   auto first = distrib::when_any(futures);          // ready once any of them is done
//
// A Continuation<T> is a client-side future: a value this process computes, not a task on
// the cluster (it has no key, and cannot be an argument of submit). Which thread runs what:
//
// - A function given to then() runs on the continuation thread of the client that owns the
//   future it waits on (each Client starts one on first use; it runs continuations one at a
//   time, in the order they became ready), never on the client's I/O thread. It may call
//   result() on futures (each fetch then waits on that thread; keep continuations short so
//   that the others do not wait). A then() on a continuation whose source is ready at once
//   (when_all of no futures) runs its function on the calling thread.
// - fn takes the value (`fn(T)`): a failed, cancelled or lost future skips fn and the
//   continuation fails with that error (TaskError, CancelledError, CommError). Or fn takes
//   the future itself (`fn(const Future<T>&)`, HPX's style) and decides what to do with
//   its error. An exception fn throws fails the continuation with it. fn may return void
//   (a Continuation<void>).
// - After Client::close, futures still pending fail with CommError, and their continuations
//   run with that error.
#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "distrib/errors.hpp"
#include "distrib/future.hpp"

namespace distrib {

template <class T>
class Continuation;

namespace detail {
class ContinuationThread;  // in libdistrib: a thread that runs posted functions in order
using ExecutorHandle = std::shared_ptr<ContinuationThread>;
/// The continuation thread of the client owning `f` (started on first use), or null if the
/// client is gone.
ExecutorHandle future_executor(const FutureHandle& f);
/// Runs `fn` on `executor`'s thread, or now on this thread if `executor` is null.
void executor_post(const ExecutorHandle& executor, std::function<void()> fn);

template <class T>
using ContinuationStored = std::conditional_t<std::is_void_v<T>, Nothing, T>;

/// What every copy of one Continuation shares.
template <class T>
struct ContinuationState {
  std::mutex mutex;
  std::condition_variable cv;
  bool ready = false;
  std::optional<ContinuationStored<T>> value;
  std::exception_ptr error;
  std::vector<std::function<void()>> callbacks;
  ExecutorHandle executor;  // where then() functions run

  void set_value(ContinuationStored<T> v) {
    finish([&] { value.emplace(std::move(v)); });
  }
  void set_error(std::exception_ptr e) {
    finish([&] { error = std::move(e); });
  }
  /// Runs `fn` (on this thread) once ready: now if it is.
  void on_ready(std::function<void()> fn) {
    {
      std::lock_guard lock(mutex);
      if (!ready) {
        callbacks.push_back(std::move(fn));
        return;
      }
    }
    fn();
  }

 private:
  template <class Set>
  void finish(Set set) {
    std::vector<std::function<void()>> run;
    {
      std::lock_guard lock(mutex);
      if (ready) return;
      set();
      ready = true;
      run.swap(callbacks);
    }
    cv.notify_all();
    for (auto& fn : run) fn();
  }
};

/// Calls fn(args...) and settles `next` with what it returns or throws.
template <class U, class F, class... A>
void settle_with(ContinuationState<U>& next, F& fn, A&&... args) {
  try {
    if constexpr (std::is_void_v<U>) {
      fn(std::forward<A>(args)...);
      next.set_value(Nothing{});
    } else {
      next.set_value(fn(std::forward<A>(args)...));
    }
  } catch (...) {
    next.set_error(std::current_exception());
  }
}

}  // namespace detail

/// A value computed in this process once futures are done (see the top of this file).
/// Copies share one state. get() waits for it and returns it or throws its error.
template <class T>
class Continuation {
 public:
  using value_type = T;
  Continuation() = default;

  bool valid() const { return state_ != nullptr; }
  /// True once it has a value or an error.
  bool ready() const {
    std::lock_guard lock(checked().mutex);
    return state_->ready;
  }
  void wait() const {
    std::unique_lock lock(checked().mutex);
    state_->cv.wait(lock, [&] { return state_->ready; });
  }
  /// Returns false if it is still not ready after `timeout`.
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> timeout) const {
    std::unique_lock lock(checked().mutex);
    return state_->cv.wait_for(lock, timeout, [&] { return state_->ready; });
  }
  /// Waits; returns the value, or throws the error.
  T get() const {
    wait();
    std::lock_guard lock(state_->mutex);
    if (state_->error) std::rethrow_exception(state_->error);
    if constexpr (!std::is_void_v<T>) return *state_->value;
  }
  /// As get(), but throws TimeoutError if not ready after `timeout`.
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) const {
    if (!wait_for(timeout))
      throw TimeoutError("the continuation was not ready after " +
                         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()) + " ms");
    return get();
  }
  /// Waits; the error, or a null exception_ptr.
  std::exception_ptr exception() const {
    wait();
    std::lock_guard lock(state_->mutex);
    return state_->error;
  }

  /// Runs fn once this is ready, on the same thread as the function that made it (see the
  /// top of this file): fn(T) gets the value (an error skips fn and passes on), fn(const
  /// Continuation&) gets this.
  template <class F>
    requires detail::ThenFunction<Continuation<T>, F>
  Continuation<typename detail::ThenResult<Continuation<T>, std::decay_t<F>>::type> then(F&& fn) const {
    using Traits = detail::ThenResult<Continuation<T>, std::decay_t<F>>;
    using U = typename Traits::type;
    auto next = std::make_shared<detail::ContinuationState<U>>();
    next->executor = checked().executor;
    auto self = *this;
    state_->on_ready([self, next, fn = std::forward<F>(fn)]() mutable {
      detail::executor_post(next->executor, [self, next, fn = std::move(fn)]() mutable {
        if constexpr (Traits::by_value) {
          if (auto e = self.state_->error) return next->set_error(e);
          if constexpr (std::is_void_v<T>) detail::settle_with(*next, fn);
          else detail::settle_with(*next, fn, T(*self.state_->value));
        } else {
          detail::settle_with(*next, fn, self);
        }
      });
    });
    return Continuation<U>(std::move(next));
  }

  /// Made by then(), when_all and when_any.
  explicit Continuation(std::shared_ptr<detail::ContinuationState<T>> state) : state_(std::move(state)) {}
  const std::shared_ptr<detail::ContinuationState<T>>& state() const { return state_; }

 private:
  template <class>
  friend class Continuation;
  detail::ContinuationState<T>& checked() const {
    if (!state_) throw std::logic_error("distrib::Continuation: this continuation is empty (default-constructed)");
    return *state_;
  }
  std::shared_ptr<detail::ContinuationState<T>> state_;
};

// Future<T>::then, declared in future.hpp.
template <class T>
template <class F>
  requires detail::ThenFunction<Future<T>, F>
Continuation<typename detail::ThenResult<Future<T>, std::decay_t<F>>::type> Future<T>::then(F&& fn) const {
  using Traits = detail::ThenResult<Future<T>, std::decay_t<F>>;
  using U = typename Traits::type;
  auto next = std::make_shared<detail::ContinuationState<U>>();
  next->executor = detail::future_executor(checked_handle());  // null once the client is gone: runs here
  auto self = *this;
  detail::future_on_done(state_, [self, next, fn = std::forward<F>(fn)]() mutable {
    // On the I/O thread (or this one, if done): the function runs on the continuation thread.
    detail::executor_post(next->executor, [self, next, fn = std::move(fn)]() mutable {
      if constexpr (Traits::by_value) {
        try {
          auto value = self.result();  // fetched here, on the continuation thread
          detail::settle_with(*next, fn, std::move(value));
        } catch (...) {
          next->set_error(std::current_exception());
        }
      } else {
        detail::settle_with(*next, fn, self);
      }
    });
  });
  return Continuation<U>(std::move(next));
}

namespace detail {
/// Calls `done` once when each of `n` callbacks has been called (n = 0: at once).
inline std::function<void()> countdown(std::size_t n, std::function<void()> done) {
  if (n == 0) {
    done();
    return [] {};
  }
  auto left = std::make_shared<std::pair<std::mutex, std::size_t>>();
  left->second = n;
  return [left, done = std::move(done)] {
    {
      std::lock_guard lock(left->first);
      if (--left->second != 0) return;
    }
    done();
  };
}

/// Runs `fn` once `x` (a Future or a Continuation) is done, on whichever thread makes it so.
template <class T>
void when_done(const Future<T>& x, std::function<void()> fn) {
  if (!x.valid()) throw std::invalid_argument("distrib: an empty Future was given to when_all or when_any");
  future_on_done(x.handle(), std::move(fn));
}
template <class T>
void when_done(const Continuation<T>& x, std::function<void()> fn) {
  if (!x.valid()) throw std::invalid_argument("distrib: an empty Continuation was given to when_all or when_any");
  x.state()->on_ready(std::move(fn));
}
template <class T>
ExecutorHandle executor_of(const Future<T>& x) {
  return x.valid() ? future_executor(x.handle()) : nullptr;
}
template <class T>
ExecutorHandle executor_of(const Continuation<T>& x) {
  return x.valid() ? x.state()->executor : nullptr;
}
template <class X>
struct is_awaitable : std::false_type {};
template <class T>
struct is_awaitable<Future<T>> : std::true_type {};
template <class T>
struct is_awaitable<Continuation<T>> : std::true_type {};
template <class X>
concept Awaitable = is_awaitable<std::remove_cvref_t<X>>::value;
}  // namespace detail

/// What when_any gives: every input, and the position of one that is done (HPX's
/// when_any_result).
template <class Sequence>
struct WhenAnyResult {
  std::size_t index = 0;
  Sequence futures;
};

/// Ready once every one of `futures` is done (finished, failed or cancelled; it never fails
/// itself): the same futures, each then ready to give its result or error.
template <class X>
  requires detail::Awaitable<X>
Continuation<std::vector<X>> when_all(const std::vector<X>& futures) {
  auto state = std::make_shared<detail::ContinuationState<std::vector<X>>>();
  for (const auto& f : futures)
    if (!state->executor) state->executor = detail::executor_of(f);
  auto tick = detail::countdown(futures.size(), [state, futures] { state->set_value(futures); });
  for (const auto& f : futures) detail::when_done(f, tick);
  return Continuation<std::vector<X>>(std::move(state));
}

/// The same for futures of different types: a tuple of them.
template <class... X>
  requires(sizeof...(X) > 0 && (detail::Awaitable<X> && ...))
Continuation<std::tuple<std::remove_cvref_t<X>...>> when_all(const X&... futures) {
  using Tuple = std::tuple<std::remove_cvref_t<X>...>;
  auto state = std::make_shared<detail::ContinuationState<Tuple>>();
  ((state->executor = state->executor ? state->executor : detail::executor_of(futures)), ...);
  auto tick = detail::countdown(sizeof...(X), [state, all = Tuple(futures...)] { state->set_value(all); });
  (detail::when_done(futures, tick), ...);
  return Continuation<Tuple>(std::move(state));
}

/// Ready once any one of `futures` is done: all of them, and the index of the first done.
/// Throws std::invalid_argument for an empty vector (nothing would ever be done).
template <class X>
  requires detail::Awaitable<X>
Continuation<WhenAnyResult<std::vector<X>>> when_any(const std::vector<X>& futures) {
  if (futures.empty()) throw std::invalid_argument("distrib::when_any: no futures given");
  using Result = WhenAnyResult<std::vector<X>>;
  auto state = std::make_shared<detail::ContinuationState<Result>>();
  for (const auto& f : futures)
    if (!state->executor) state->executor = detail::executor_of(f);
  for (std::size_t i = 0; i < futures.size(); ++i)
    detail::when_done(futures[i], [state, futures, i] { state->set_value(Result{i, futures}); });  // the first wins
  return Continuation<Result>(std::move(state));
}

/// The same for futures of different types.
template <class... X>
  requires(sizeof...(X) > 0 && (detail::Awaitable<X> && ...))
Continuation<WhenAnyResult<std::tuple<std::remove_cvref_t<X>...>>> when_any(const X&... futures) {
  using Result = WhenAnyResult<std::tuple<std::remove_cvref_t<X>...>>;
  auto state = std::make_shared<detail::ContinuationState<Result>>();
  ((state->executor = state->executor ? state->executor : detail::executor_of(futures)), ...);
  std::tuple<std::remove_cvref_t<X>...> all(futures...);
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (detail::when_done(futures, [state, all, i = I] { state->set_value(Result{i, all}); }), ...);
  }(std::index_sequence_for<X...>{});
  return Continuation<Result>(std::move(state));
}

}  // namespace distrib
