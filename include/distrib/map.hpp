#pragma once
// The arguments of Client::map, as Dask's `client.map(func, *iterables, **kwargs)`: one
// argument per parameter of the task function, each a range to map over or a constant
// given to every call.
//
//   client.map(add, xs, ys);                     // add(xs[i], ys[i]) for each i
//   client.map(add, xs, distrib::constant(2.0)); // add(xs[i], 2.0): Dask's map(add, xs, y=2)
//
// As Dask (which zips its iterables), the calls stop at the end of the shortest range.
// Element and constant types are checked against the parameters at compile time.
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "distrib/graph.hpp"

namespace distrib {

struct SubmitOptions;

/// A value passed unchanged to every call of a map (see distrib::constant). A Future<T>
/// constant makes every task depend on that one future.
template <class T>
struct Constant {
  T value;
};

/// Wraps `value` for Client::map: the same argument for every call, instead of a range
/// to map over (a std::vector given as it is would be mapped over element by element).
template <class T>
Constant<std::decay_t<T>> constant(T&& value) {
  return Constant<std::decay_t<T>>{std::forward<T>(value)};
}

template <class T>
struct is_constant : std::false_type {};
template <class T>
struct is_constant<Constant<T>> : std::true_type {};
template <class T>
inline constexpr bool is_constant_v = is_constant<std::remove_cvref_t<T>>::value;

namespace detail {

struct TaskRequest {
  const TaskFunction* function = nullptr;
  std::vector<TaskArgument> args;
  const SubmitOptions* options = nullptr;
};

/// What a map argument gives each call: an element of the range, or the constant.
template <class A>
struct MapArgumentOf {
  using type = std::ranges::range_reference_t<const A>;
};
template <class T>
struct MapArgumentOf<Constant<T>> {
  using type = const T&;
};
template <class A>
using map_argument_t = typename MapArgumentOf<A>::type;

/// Whether `A` (a map argument's element or constant) can stand for parameter `P`: it
/// converts to P, or is a Future<P>, or a std::vector<Future<E>> for a std::vector<E>.
template <class P, class A>
constexpr bool map_fits() {
  using D = std::remove_cvref_t<A>;
  if constexpr (is_future_v<D>) return std::is_same_v<typename D::value_type, P>;
  else if constexpr (is_future_vector<D>::value) return std::is_same_v<P, std::vector<typename D::value_type::value_type>>;
  else return std::is_convertible_v<A, P>;
}

template <class A>
concept MapArgument = is_constant_v<A> || std::ranges::input_range<const A>;

/// One TaskRequest per call of a zipped map over `args` (ranges and constants), stopping
/// at the shortest range. Constants are encoded once and shared by every call.
template <class Params, class... A>
std::vector<TaskRequest> map_requests(const TaskFunction& function, const SubmitOptions* options, const A&... args) {
  static_assert(sizeof...(A) == std::tuple_size_v<Params>,
                "map: give one range (or distrib::constant) per parameter of the task function");
  static_assert((!is_constant_v<A> || ...), "map: at least one argument must be a range to map over");
  std::vector<TaskRequest> out;
  if constexpr (sizeof...(A) == std::tuple_size_v<Params>) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      static_assert((map_fits<std::tuple_element_t<I, Params>, map_argument_t<A>>() && ...),
                    "map: an element (or constant) does not convert to its task function parameter");
      // Constants become TaskArguments once; each range gets an iterator.
      auto constants = std::make_tuple([&]() -> TaskArgument {
        if constexpr (is_constant_v<A>) return make_argument<std::tuple_element_t<I, Params>>(args.value);
        else return TaskArgument{};
      }()...);
      auto iters = std::make_tuple([&] {
        if constexpr (is_constant_v<A>) return 0;
        else return std::ranges::begin(args);
      }()...);
      auto at_end = [&] {
        bool end = false;
        ((end = end || [&] {
           if constexpr (is_constant_v<A>) return false;
           else return std::get<I>(iters) == std::ranges::end(args);
         }()),
         ...);
        return end;
      };
      while (!at_end()) {
        TaskRequest req;
        req.function = &function;
        req.options = options;
        req.args.reserve(sizeof...(A));
        (req.args.push_back([&]() -> TaskArgument {
           if constexpr (is_constant_v<A>) return std::get<I>(constants);
           else return make_argument<std::tuple_element_t<I, Params>>(*std::get<I>(iters));
         }()),
         ...);
        out.push_back(std::move(req));
        ((
             [&] {
               if constexpr (!is_constant_v<A>) ++std::get<I>(iters);
             }()),
         ...);
      }
    }(std::index_sequence_for<A...>{});
  }
  return out;
}

}  // namespace detail
}  // namespace distrib
