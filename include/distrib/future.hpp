#pragma once
// Future<T>: the result of a task that runs on the cluster, as in Dask. Copies share one
// state; the result stays on the worker that computed it until `result()` or
// `Client::gather` fetches it.
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include "distrib/codec.hpp"
#include "distrib/errors.hpp"
#include "distrib/task.hpp"

namespace distrib {

enum class FutureStatus { pending, finished, error, cancelled };

namespace detail {
class FutureState;  // defined in libdistrib: key, status, error, where the result lives
using FutureHandle = std::shared_ptr<FutureState>;

const std::string& future_key(const FutureState& f);
FutureStatus future_status(const FutureState& f);
/// Waits until the task is no longer pending; returns false if `timeout` passed first.
bool future_wait(const FutureState& f, std::optional<std::chrono::nanoseconds> timeout);
/// Runs `fn` once the future is no longer pending: at once on this thread if it is already
/// done, else on the client's I/O thread (keep it short; do not block in it).
void future_on_done(const FutureHandle& f, std::function<void()> fn);
/// Cancels the task (see Client::cancel).
void future_cancel(const FutureHandle& f);
/// Computes an erred task again (see Client::retry).
void future_retry(const FutureHandle& f);
/// Waits, then returns the error as an exception_ptr (null if the task succeeded).
std::exception_ptr future_exception(const FutureState& f);
/// Waits, then fetches the encoded result from the worker that holds it (each call fetches
/// again: the client keeps no copy, except of results of at most 1 KiB, which came with
/// the notice that the task finished), or throws TaskError, CancelledError, CommError or
/// TimeoutError.
Value future_value(const FutureState& f, std::optional<std::chrono::nanoseconds> timeout);

/// What then(fn) makes of a Future or Continuation `Src` (continuation.hpp): fn(T) (value
/// style) if fn can take the value, else fn(const Src&) (the future itself).
template <class F, class V>
struct ValueInvoke : std::bool_constant<std::is_invocable_v<F&, V>> {
  template <class G = F>
  static std::invoke_result_t<G&, V> call();
};
template <class F>
struct ValueInvoke<F, void> : std::bool_constant<std::is_invocable_v<F&>> {
  template <class G = F>
  static std::invoke_result_t<G&> call();
};
template <class Src, class F>
struct ThenResult;
template <class Src, class F>
  requires ValueInvoke<F, typename Src::value_type>::value
struct ThenResult<Src, F> {
  using type = decltype(ValueInvoke<F, typename Src::value_type>::call());
  static constexpr bool by_value = true;
};
template <class Src, class F>
  requires(!ValueInvoke<F, typename Src::value_type>::value && std::is_invocable_v<F&, const Src&>)
struct ThenResult<Src, F> {
  using type = std::invoke_result_t<F&, const Src&>;
  static constexpr bool by_value = false;
};
template <class Src, class F>
concept ThenFunction = requires { typename ThenResult<Src, std::decay_t<F>>::type; };
}  // namespace detail

template <class T>
class Continuation;

template <class T>
class Future {
 public:
  using value_type = T;
  Future() = default;
  explicit Future(detail::FutureHandle state) : state_(std::move(state)) {}

  /// The task's key, `prefix-token` as in Dask (the prefix is the function's name).
  const std::string& key() const { return detail::future_key(checked()); }
  FutureStatus status() const { return detail::future_status(checked()); }
  /// True once the task finished, failed or was cancelled.
  bool done() const { return status() != FutureStatus::pending; }
  bool valid() const { return state_ != nullptr; }

  void wait() const { detail::future_wait(checked(), std::nullopt); }
  /// Returns false if the task is still pending after `timeout`.
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> timeout) const {
    return detail::future_wait(checked(), std::chrono::duration_cast<std::chrono::nanoseconds>(timeout));
  }

  /// Waits for the task and returns its value. Throws TaskError if the task raised,
  /// CancelledError if it was cancelled, CommError if the cluster went away.
  T result() const { return decode(detail::future_value(checked(), std::nullopt)); }
  /// As result(), but throws TimeoutError if the value is not there after `timeout`.
  template <class Rep, class Period>
  T result(std::chrono::duration<Rep, Period> timeout) const {
    return decode(detail::future_value(checked(), std::chrono::duration_cast<std::chrono::nanoseconds>(timeout)));
  }

  /// Cancels the task: it never runs if it has not started, its result is dropped if it
  /// has; tasks that depend on it are cancelled too. result() then throws CancelledError.
  void cancel() const { detail::future_cancel(checked_handle()); }

  /// As Dask's Future.retry: if the task erred, it (and the erred tasks it depends on) is
  /// computed again, and this future is pending once retry() returns (Client::retry).
  void retry() const { detail::future_retry(checked_handle()); }

  /// Waits, then returns the task's error (TaskError, CancelledError or CommError) as an
  /// exception_ptr, or a null one if the task succeeded.
  std::exception_ptr exception() const { return detail::future_exception(checked()); }

  /// Calls `fn(*this)` once the task finishes, fails or is cancelled: at once if it already
  /// has, otherwise on the client's I/O thread (keep `fn` short and non-blocking).
  void add_done_callback(std::function<void(const Future<T>&)> fn) const {
    detail::future_on_done(checked_handle(), [state = std::weak_ptr(state_), fn = std::move(fn)] {
      if (auto s = state.lock()) fn(Future<T>(std::move(s)));
    });
  }

  /// A continuation: fn runs on the client's continuation thread once the task is done,
  /// with its value (`fn(T)`; an error skips fn and fails the continuation with it) or
  /// with this future (`fn(const Future<T>&)`). See continuation.hpp.
  template <class F>
    requires detail::ThenFunction<Future<T>, F>
  Continuation<typename detail::ThenResult<Future<T>, std::decay_t<F>>::type> then(F&& fn) const;

  const detail::FutureHandle& handle() const { return state_; }

 private:
  const detail::FutureHandle& checked_handle() const {
    checked();
    return state_;
  }
  const detail::FutureState& checked() const {
    if (!state_) throw std::logic_error("distrib::Future: this future is empty (default-constructed or moved from)");
    return *state_;
  }
  static T decode(const Value& v) { return decode_value<T>(v); }
  detail::FutureHandle state_;
};

template <class T>
struct is_future : std::false_type {};
template <class T>
struct is_future<Future<T>> : std::true_type {};
template <class T>
inline constexpr bool is_future_v = is_future<std::remove_cvref_t<T>>::value;

}  // namespace distrib

// Continuation and Future<T>::then: after Future is complete.
#include "distrib/continuation.hpp"
