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
#include <functional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "distrib/codec.hpp"

namespace distrib {

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

template <class F>
struct FunctionTraits;
template <class R, class... P>
struct FunctionTraits<R (*)(P...)> {
  using Result = R;
  using Params = std::tuple<std::remove_cvref_t<P>...>;
  static constexpr std::size_t arity = sizeof...(P);
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
    if constexpr (std::is_void_v<typename Traits::Result>) {
      Fn(decode_value<std::tuple_element_t<I, typename Traits::Params>>(args[I])...);
      return encode_value(Nothing{});
    } else {
      return encode_value(Fn(decode_value<std::tuple_element_t<I, typename Traits::Params>>(args[I])...));
    }
  }(std::make_index_sequence<Traits::arity>{});
}

template <auto Fn>
bool register_task(const char* name) {
  using Traits = FunctionTraits<decltype(Fn)>;
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
