#pragma once
// Client: the user's connection to a cluster, as dask.distributed.Client.
//
//   distrib::Client client("tcp://head:8786");     // or distrib::Client client(cluster);
//   distrib::Future<int> f = client.submit(inc, 10);
//   std::vector<distrib::Future<int>> fs = client.map(inc, std::vector<int>{1, 2, 3});
//   std::vector<int> r = client.gather(fs);
//
// Functions must be registered with DISTRIB_TASK. Argument types are checked at compile
// time against the function's parameters; a Future<T> argument stands for a T and makes
// the task depend on that future.
#include <chrono>
#include <memory>
#include <ranges>
#include <string>
#include <type_traits>
#include <vector>

#include "distrib/codec.hpp"
#include "distrib/future.hpp"
#include "distrib/task.hpp"

namespace distrib {

class LocalCluster;

struct ClientOptions {
  /// How long the constructor waits for the scheduler to answer.
  std::chrono::milliseconds connect_timeout{10'000};
  /// A name for this client in the scheduler's logs.
  std::string name = "client";
};

namespace detail {
class ClientImpl;

/// One argument of a task on its way to the scheduler: an encoded value, or the key of
/// another task whose result it is.
struct TaskArgument {
  Value value;
  FutureHandle dependency;
};
struct TaskRequest {
  const TaskFunction* function = nullptr;
  std::vector<TaskArgument> args;
};

const TaskFunction& registered_function(AnyFunctionPointer fn);

template <class P, class A>
TaskArgument make_argument(A&& a) {
  using D = std::remove_cvref_t<A>;
  if constexpr (is_future_v<D>) {
    static_assert(std::is_same_v<typename D::value_type, P>,
                  "a Future<T> argument must have exactly the parameter's type T");
    if (!a.valid()) throw std::invalid_argument("distrib: an empty Future was passed as an argument");
    return TaskArgument{{}, a.handle()};
  } else {
    static_assert(std::is_convertible_v<A&&, P>,
                  "argument type does not convert to the task function's parameter type");
    return TaskArgument{encode_value<P>(static_cast<P>(std::forward<A>(a))), nullptr};
  }
}
}  // namespace detail

class Client {
 public:
  /// Connects to a scheduler at "tcp://host:port" (or "host:port"). Throws CommError if it
  /// cannot be reached within the connect timeout.
  explicit Client(const std::string& address, ClientOptions options = {});
  /// Connects to a LocalCluster's scheduler.
  explicit Client(LocalCluster& cluster, ClientOptions options = {});
  ~Client();
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Runs fn(args...) on a worker. Arguments convert to the parameter types (checked at
  /// compile time); Future<T> arguments become dependencies.
  template <class R, class... P, class... A>
  Future<detail::StoredResult<R>> submit(R (*fn)(P...), A&&... args) {
    static_assert(sizeof...(P) == sizeof...(A), "wrong number of arguments for this task function");
    detail::TaskRequest req;
    req.function = &detail::registered_function(reinterpret_cast<detail::AnyFunctionPointer>(fn));
    req.args.reserve(sizeof...(A));
    (req.args.push_back(detail::make_argument<std::remove_cvref_t<P>>(std::forward<A>(args))), ...);
    std::vector<detail::TaskRequest> batch;
    batch.push_back(std::move(req));
    return Future<detail::StoredResult<R>>(submit_tasks(std::move(batch)).front());
  }

  /// Runs fn on every element of `range`, sent to the scheduler as one batch.
  template <class R, class P, std::ranges::input_range Range>
  std::vector<Future<detail::StoredResult<R>>> map(R (*fn)(P), const Range& range) {
    using Param = std::remove_cvref_t<P>;
    const auto& function = detail::registered_function(reinterpret_cast<detail::AnyFunctionPointer>(fn));
    std::vector<detail::TaskRequest> batch;
    if constexpr (std::ranges::sized_range<Range>) batch.reserve(std::ranges::size(range));
    for (const auto& x : range) {
      detail::TaskRequest req;
      req.function = &function;
      req.args.push_back(detail::make_argument<Param>(x));
      batch.push_back(std::move(req));
    }
    std::vector<Future<detail::StoredResult<R>>> out;
    out.reserve(batch.size());
    for (auto& h : submit_tasks(std::move(batch))) out.emplace_back(std::move(h));
    return out;
  }

  /// The value of one future (same as f.result()).
  template <class T>
  T gather(const Future<T>& f) {
    return f.result();
  }
  /// The values of many futures, fetched with one request per worker.
  template <class T>
  std::vector<T> gather(const std::vector<Future<T>>& fs) {
    std::vector<detail::FutureHandle> handles;
    handles.reserve(fs.size());
    for (const auto& f : fs) handles.push_back(f.handle());
    std::vector<Value> values = gather_values(handles);
    std::vector<T> out;
    out.reserve(values.size());
    for (const auto& v : values) out.push_back(decode_value<T>(v));
    return out;
  }

  /// Disconnects; the scheduler releases this client's keys. Idempotent.
  void close();
  /// Stops the scheduler and all its workers, then closes. Idempotent.
  void shutdown();
  /// The scheduler's address, "tcp://host:port".
  std::string scheduler_address() const;
  /// Workers currently connected to the scheduler (as last reported to this client).
  std::size_t n_workers() const;
  /// Blocks until at least `n` workers are connected; throws TimeoutError.
  void wait_for_workers(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  std::vector<detail::FutureHandle> submit_tasks(std::vector<detail::TaskRequest> batch);
  std::vector<Value> gather_values(const std::vector<detail::FutureHandle>& futures);
  std::shared_ptr<detail::ClientImpl> impl_;
};

}  // namespace distrib
