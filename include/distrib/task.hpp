#pragma once
// Task functions: C++ cannot ship a closure to another process, so the functions a worker
// may run are registered by name.
//
//   int inc(int x) { return x + 1; }
//   DISTRIB_TASK(inc);   // at namespace scope, in any translation unit
//
// A worker can run every function registered in its own program or in a library it
// loaded with `dworker --preload libmytasks.so`. Parameters and the result need a Codec
// (see codec.hpp); a function may return void.
//
// Stopping work nobody wants. When a running task's result is no longer wanted (its future
// was cancelled or released, its client disconnected, the worker is closing or lost its
// scheduler), the worker asks it to stop. A long task can notice in two ways:
//
//   double simulate(int steps, std::stop_token stop) {   // a last std::stop_token parameter
//     for (int i = 0; i < steps && !stop.stop_requested(); ++i) step();
//     return result();
//   }
//   DISTRIB_TASK(simulate);          // called as client.submit(simulate, 1000): the worker
//                                    // passes the token, it is not an argument
//
//   void helper() { if (distrib::cancelled()) throw std::runtime_error("stopped"); }
//
// What a task returns or raises after it was asked to stop is discarded (it may be
// partial): if the result is wanted again, the task runs anew. Its thread is free for the
// next task as soon as the function returns. C++ cannot kill a thread: a task that never
// looks keeps its thread until it returns (and a closing worker exits without it after
// its --close-timeout).
#include <functional>
#include <span>
#include <stop_token>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "distrib/codec.hpp"

namespace distrib {

/// True once the worker asked the task running on this thread to stop (its result is no
/// longer wanted); false outside a task. Cheap enough to poll in a loop.
bool cancelled() noexcept;

/// The result of a task function returning void.
struct Nothing {
  template <class Archive>
  void serialize(Archive&) {}
  static std::string distrib_type_name() { return "void"; }
};

namespace detail {

using AnyFunctionPointer = void (*)();
using TaskInvoker = Value (*)(std::span<const Value> args);

struct TaskFunction {
  std::string name;
  TaskInvoker invoke = nullptr;
  std::vector<std::string> param_types;
  std::string result_type;
};

/// The one registry of task functions, inside libdistrib, shared by the program and every
/// library it loads.
class TaskRegistry {
 public:
  static TaskRegistry& instance();
  /// Registers `fn` under `name`; registering the same function twice is harmless, two
  /// different functions under one name throw std::logic_error.
  void add(AnyFunctionPointer address, TaskFunction fn);
  const TaskFunction* find(std::string_view name) const;
  const TaskFunction* find(AnyFunctionPointer address) const;
  std::vector<std::string> names() const;

 private:
  TaskRegistry() = default;
  struct Impl;
  Impl& impl() const;
};

/// The stop token of the task running on this thread (one that never stops outside a task).
std::stop_token current_stop_token() noexcept;
/// Makes `token` the running task's token on this thread while it lives (set by the worker).
class TaskStopScope {
 public:
  explicit TaskStopScope(std::stop_token token) noexcept;
  ~TaskStopScope();
  TaskStopScope(const TaskStopScope&) = delete;
  TaskStopScope& operator=(const TaskStopScope&) = delete;

 private:
  std::stop_token previous_;
};

template <class T>
inline constexpr bool is_stop_token_v = std::is_same_v<std::remove_cvref_t<T>, std::stop_token>;

template <class Tuple, class Indices>
struct TupleHead;
template <class Tuple, std::size_t... I>
struct TupleHead<Tuple, std::index_sequence<I...>> {
  using type = std::tuple<std::tuple_element_t<I, Tuple>...>;
};

/// A task function's parameters as the client sees them: a last std::stop_token parameter
/// is the worker's to pass, not an argument.
template <class... P>
struct TaskParameters {
  static constexpr bool takes_stop_token = [] {
    if constexpr (sizeof...(P) == 0) return false;
    else return is_stop_token_v<std::tuple_element_t<sizeof...(P) - 1, std::tuple<P...>>>;
  }();
  /// Arguments the caller passes.
  static constexpr std::size_t arity = sizeof...(P) - (takes_stop_token ? 1 : 0);
  /// Their types, without cv and references.
  using Params = typename TupleHead<std::tuple<std::remove_cvref_t<P>...>, std::make_index_sequence<arity>>::type;
  static constexpr bool stop_token_only_last = (0 + ... + (is_stop_token_v<P> ? 1 : 0)) == (takes_stop_token ? 1 : 0);
};

template <class F>
struct FunctionTraits;
template <class R, class... P>
struct FunctionTraits<R (*)(P...)> : TaskParameters<P...> {
  using Result = R;
};
template <class R, class... P>
struct FunctionTraits<R (*)(P...) noexcept> : FunctionTraits<R (*)(P...)> {};

template <class R>
using StoredResult = std::conditional_t<std::is_void_v<R>, Nothing, std::remove_cvref_t<R>>;

/// Decodes the arguments, calls Fn and encodes its result. Runs on a worker thread.
template <auto Fn>
Value invoke_task(std::span<const Value> args) {
  using Traits = FunctionTraits<decltype(Fn)>;
  if (args.size() != Traits::arity)
    throw std::invalid_argument("expected " + std::to_string(Traits::arity) + " arguments, got " +
                                std::to_string(args.size()));
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    auto call = [&] {
      if constexpr (Traits::takes_stop_token)
        return Fn(decode_value<std::tuple_element_t<I, typename Traits::Params>>(args[I])..., current_stop_token());
      else
        return Fn(decode_value<std::tuple_element_t<I, typename Traits::Params>>(args[I])...);
    };
    if constexpr (std::is_void_v<typename Traits::Result>) {
      call();
      return encode_value(Nothing{});
    } else {
      return encode_value(call());
    }
  }(std::make_index_sequence<Traits::arity>{});
}

template <auto Fn>
bool register_task(const char* name) {
  using Traits = FunctionTraits<decltype(Fn)>;
  static_assert(Traits::stop_token_only_last, "a task function's std::stop_token must be its last parameter");
  TaskFunction f;
  f.name = name;
  f.invoke = &invoke_task<Fn>;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (f.param_types.push_back(type_name<std::tuple_element_t<I, typename Traits::Params>>()), ...);
  }(std::make_index_sequence<Traits::arity>{});
  f.result_type = type_name<StoredResult<typename Traits::Result>>();
  TaskRegistry::instance().add(reinterpret_cast<AnyFunctionPointer>(Fn), std::move(f));
  return true;
}

}  // namespace detail
}  // namespace distrib

#define DISTRIB_DETAIL_CONCAT2(a, b) a##b
#define DISTRIB_DETAIL_CONCAT(a, b) DISTRIB_DETAIL_CONCAT2(a, b)
/// Registers a function so that workers can run it. Use at namespace scope.
#define DISTRIB_TASK(fn)                                                  \
  [[maybe_unused]] static const bool DISTRIB_DETAIL_CONCAT(distrib_task_, __COUNTER__) = \
      ::distrib::detail::register_task<&fn>(#fn)
