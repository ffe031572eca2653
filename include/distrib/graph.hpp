#pragma once
// Task graphs, in the spirit of Dask's low-level graphs and `delayed`: tasks name their
// inputs by key, and the whole graph goes to the scheduler in one message.
//
//   distrib::Graph g;
//   auto a = g.add("a", inc, 1);
//   auto b = g.add("b", add, a, 10.0);   // a Delayed<T> argument is the result of that task
//   distrib::Future<double> fb = client.compute(g, b);
//   double v = client.get(g, b);         // one shot: compute, fetch, release
#include <string>
#include <unordered_map>
#include <vector>

#include "distrib/codec.hpp"
#include "distrib/future.hpp"
#include "distrib/task.hpp"

namespace distrib {

/// The result of a task in a Graph, typed; used as an argument of later tasks.
template <class T>
struct Delayed {
  using value_type = T;
  std::string key;
};

template <class T>
struct is_delayed : std::false_type {};
template <class T>
struct is_delayed<Delayed<T>> : std::true_type {};

namespace detail {
/// One argument of a task on its way to the scheduler: an encoded value, another task's
/// result (a future, or a key of the same graph), or a list of futures.
struct TaskArgument {
  Value value;
  FutureHandle dependency;
  std::string graph_key;
  std::vector<FutureHandle> dependency_list;
  std::string list_type;
  bool is_list = false;
};
const TaskFunction& registered_function(AnyFunctionPointer fn);

template <class T>
struct is_future_vector : std::false_type {};
template <class T>
struct is_future_vector<std::vector<Future<T>>> : std::true_type {};

template <class P, class A>
TaskArgument make_argument(A&& a) {
  using D = std::remove_cvref_t<A>;
  if constexpr (is_future_v<D>) {
    static_assert(std::is_same_v<typename D::value_type, P>,
                  "a Future<T> argument must have exactly the parameter's type T");
    if (!a.valid()) throw std::invalid_argument("distrib: an empty Future was passed as an argument");
    return TaskArgument{{}, a.handle(), {}, {}, {}, false};
  } else if constexpr (is_future_vector<D>::value) {
    using Element = typename D::value_type::value_type;
    static_assert(std::is_same_v<P, std::vector<Element>>,
                  "a std::vector<Future<T>> argument needs a std::vector<T> parameter");
    TaskArgument arg{{}, nullptr, {}, {}, type_name<P>(), true};
    arg.dependency_list.reserve(a.size());
    for (const auto& f : a) {
      if (!f.valid()) throw std::invalid_argument("distrib: an empty Future was passed in a vector argument");
      arg.dependency_list.push_back(f.handle());
    }
    return arg;
  } else if constexpr (is_delayed<D>::value) {
    static_assert(std::is_same_v<typename D::value_type, P>,
                  "a Delayed<T> argument must have exactly the parameter's type T");
    return TaskArgument{{}, nullptr, a.key, {}, {}, false};
  } else {
    static_assert(std::is_convertible_v<A&&, P>,
                  "argument type does not convert to the task function's parameter type");
    return TaskArgument{encode_value<P>(static_cast<P>(std::forward<A>(a))), nullptr, {}, {}, {}, false};
  }
}

/// The arguments of a call of the task function type `Fn`, each checked against its
/// parameter (a last std::stop_token parameter is the worker's, not an argument).
template <class Fn, class... A>
std::vector<TaskArgument> make_arguments(A&&... args) {
  using Params = typename FunctionTraits<Fn>::Params;
  static_assert(std::tuple_size_v<Params> == sizeof...(A), "wrong number of arguments for this task function");
  std::vector<TaskArgument> out;
  if constexpr (std::tuple_size_v<Params> == sizeof...(A)) {
    out.reserve(sizeof...(A));
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (out.push_back(make_argument<std::tuple_element_t<I, Params>>(std::forward<A>(args))), ...);
    }(std::index_sequence_for<A...>{});
  }
  return out;
}
}  // namespace detail

class Graph {
 public:
  struct Node {
    std::string key;
    const detail::TaskFunction* function;
    std::vector<detail::TaskArgument> args;
  };

  /// Adds the task `key` = fn(args...). Arguments convert to the parameter types; a
  /// Delayed<T> names an earlier task of this graph; a Future<T> a result on the cluster.
  /// Throws std::invalid_argument on a duplicate key or a Delayed of another graph.
  template <class R, class... P, class... A>
  Delayed<detail::StoredResult<R>> add(std::string key, R (*fn)(P...), A&&... args) {
    Node node{std::move(key), &detail::registered_function(reinterpret_cast<detail::AnyFunctionPointer>(fn)), {}};
    node.args = detail::make_arguments<R (*)(P...)>(std::forward<A>(args)...);
    add_node(std::move(node));
    return Delayed<detail::StoredResult<R>>{nodes_.back().key};
  }

  /// Adds a task whose arguments are already built (used by collections such as
  /// distrib::array, whose task functions take their inputs as separate arguments).
  void add_task(Node node) { add_node(std::move(node)); }

  const std::vector<Node>& nodes() const { return nodes_; }
  bool contains(const std::string& key) const { return index_.count(key) > 0; }
  std::size_t size() const { return nodes_.size(); }

 private:
  void add_node(Node node);
  std::vector<Node> nodes_;
  std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace distrib
