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
// the task depend on that future. A last std::stop_token parameter is not an argument: the
// worker passes it, to ask the task to stop (see task.hpp).
#include <chrono>
#include <map>
#include <memory>
#include <ranges>
#include <string>
#include <type_traits>
#include <vector>

#include "distrib/config.hpp"
#include "distrib/codec.hpp"
#include "distrib/coordination_call.hpp"
#include "distrib/future.hpp"
#include "distrib/graph.hpp"
#include "distrib/map.hpp"
#include "distrib/ndarray.hpp"
#include "distrib/security.hpp"
#include "distrib/task.hpp"
#include "distrib/wait.hpp"

namespace distrib {

class LocalCluster;
class SSHCluster;
namespace array {
class Array;
struct FullReduction;
}  // namespace array

/// Each field's default comes from the configuration (config.hpp: client.*), so that a
/// DISTRIB_CONFIG file or DISTRIB_CLIENT__* variables change it; a field you set wins.
struct ClientOptions {
  /// How long the constructor waits for the scheduler to answer.
  std::chrono::milliseconds connect_timeout = config::get_duration("client.connect-timeout");
  /// A name for this client in the scheduler's logs.
  std::string name = config::get("client.name");
  /// If the connection to the scheduler drops (not by close() or shutdown()), the client
  /// reconnects with backoff (0.1 s doubling to 2 s) for this long and re-attaches to its
  /// futures; meanwhile futures stay pending and new work waits to be sent. If no
  /// scheduler answers in time, every pending future fails with CommError. Zero: fail at
  /// once, without reconnecting (and the scheduler forgets the client's keys as soon as its
  /// connection drops). The scheduler keeps a vanished client's keys for
  /// `dscheduler --client-grace` seconds (60 by default), longer than this default.
  std::chrono::milliseconds reconnect_timeout = config::get_duration("client.reconnect-timeout");
  /// TLS files and token (security.hpp). Unset fields come from the environment:
  /// DISTRIB_AUTH_TOKEN, DISTRIB_TLS_CA_FILE, DISTRIB_TLS_CERT, DISTRIB_TLS_KEY. A tls://
  /// scheduler address needs the TLS files.
  Security security;
};

/// A scheduler file, as `dscheduler --scheduler-file PATH` (and drun) write it: a client
/// given one waits for it to appear (up to ClientOptions::connect_timeout) and connects to
/// the address it holds.
///
///   distrib::Client client(distrib::SchedulerFile{"/shared/scheduler.json"});
struct SchedulerFile {
  std::string path;
};

/// Options of submit and map, as Dask's keyword arguments.
struct SubmitOptions {
  /// The task's key (submit only); by default `function-token`.
  std::string key;
  /// As Dask: the key is a hash of the function and its arguments, so the same call made
  /// twice is computed once. Set false for functions with side effects or randomness.
  bool pure = true;
  /// Higher runs first (among tasks that are ready at the same time).
  int priority = 0;
  /// Times to rerun the task if it raises.
  unsigned retries = 0;
  /// Run only on these workers (names or addresses)...
  std::vector<std::string> workers;
  /// ...unless none of them can, when this is true.
  bool allow_other_workers = false;
  /// Abstract resources the task needs while it runs, e.g. {{"GPU", 1}}; only workers
  /// started with enough (`dworker --resources GPU=2`) run it.
  std::map<std::string, double> resources;
};

/// Options of scatter and scatter_each.
struct ScatterOptions {
  /// Place the data on these workers (names or addresses); all workers by default.
  std::vector<std::string> workers;
  /// Put every value on every chosen worker.
  bool broadcast = false;
  /// As Dask: the key is a hash of the content, so scattering the same value twice gives
  /// the same future. Set false for a fresh random key.
  bool hash = true;
};

/// Options of Client::run, as Dask's keyword arguments.
struct RunOptions {
  /// Run on these workers only (names or addresses); every worker if empty.
  std::vector<std::string> workers;
};

/// What gather does with futures that failed.
enum class Errors { raise, skip };

struct WorkerDescription {
  std::string name;
  std::string address;
  unsigned nthreads = 0;
  std::uint64_t memory_limit = 0;
  std::uint64_t memory = 0;  // resident memory last reported
  std::size_t processing = 0;
  std::size_t stored = 0;
  std::uint64_t stored_bytes = 0;
  /// Times the worker's nanny restarted its process after a crash, a client.restart() or
  /// dworker --lifetime (0 without a nanny: dworker --no-nanny, LocalCluster in threads).
  unsigned restarts = 0;
  /// Bytes of values this worker mapped from, and handed to, processes on its host through
  /// shared memory instead of a socket, so far (from its heartbeats: up to a second late).
  std::uint64_t shared_bytes_in = 0;
  std::uint64_t shared_bytes_out = 0;
  /// Memory, from its heartbeats (as Dask's worker memory bars): `managed` is the size of
  /// the values it stores in memory, `spilled` of those it moved to its local directory;
  /// the rest of `memory` (resident memory minus managed) is "unmanaged": the tasks' own
  /// allocations, libraries, and memory freed but not yet returned to the system.
  std::uint64_t managed = 0;
  std::uint64_t spilled = 0;
  /// Past its memory pause threshold (or its spill disk is full): it starts no task and
  /// fetches nothing until it resumes, and the scheduler gives it no new work.
  bool paused = false;
  std::uint64_t unmanaged() const { return memory > managed ? memory - managed : 0; }
};

/// A snapshot of the cluster, as Client.scheduler_info().
struct SchedulerInfo {
  std::string address;
  std::vector<WorkerDescription> workers;
  std::map<std::string, std::size_t> tasks;  // number of tasks in each state
};

/// One transition of a task on the scheduler, as Client::story gives it (Dask's
/// `client.story(key)`): which event (stimulus) moved it from one state to another, the
/// worker it concerned and when.
struct Transition {
  std::string key;
  std::string stimulus;  // the event's kind and id, e.g. "remove-worker-812"
  std::string from, to;  // task states: released, waiting, no-worker, queued, processing, memory, erred
  std::string worker;    // the worker's address, or "" when it concerns none
  double time = 0;       // seconds since the epoch, on the scheduler's clock
};

namespace detail {
class ClientImpl;
struct ClientAccess;  // libdistrib's own way in (client/client_access.hpp)

struct ClusterSnapshot {
  SchedulerInfo info;
  std::map<std::string, std::vector<std::string>> who_has;
  std::map<std::string, std::vector<std::string>> has_what;
  std::vector<Transition> story;
};
}  // namespace detail

class Client {
 public:
  /// Connects to a scheduler at "tcp://host:port" (or "host:port"), or on this host at
  /// "unix://@name" (an abstract Unix socket the scheduler also listens on). Throws CommError
  /// if it cannot be reached within the connect timeout.
  explicit Client(const std::string& address, ClientOptions options = {});
  /// Connects to the scheduler in the scheduler file (see SchedulerFile). With TLS, the
  /// file's CA fingerprint must match the CA of `options.security` (SecurityError if not).
  explicit Client(const SchedulerFile& file, ClientOptions options = {});
  /// Connects to the scheduler this process was pointed at, as Dask's `Client()`: the
  /// address in DISTRIB_SCHEDULER_ADDRESS, or else the scheduler file DISTRIB_SCHEDULER_FILE
  /// (which drun sets). Throws std::invalid_argument if neither is set.
  explicit Client(ClientOptions options = {});
  /// Connects to a LocalCluster's scheduler.
  explicit Client(LocalCluster& cluster, ClientOptions options = {});
  /// Connects to an SSHCluster's scheduler, with its security unless `options` has one.
  explicit Client(SSHCluster& cluster, ClientOptions options = {});
  ~Client();
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Runs fn(args...) on a worker. Arguments convert to the parameter types (checked at
  /// compile time); a Future<T> argument, or a std::vector<Future<T>> for a std::vector<T>
  /// parameter, makes the task depend on those futures.
  template <class R, class... P, class... A>
  Future<detail::StoredResult<R>> submit(R (*fn)(P...), A&&... args) {
    static const SubmitOptions defaults;
    return submit(defaults, fn, std::forward<A>(args)...);
  }
  /// As submit(fn, args...), with Dask's options (key, pure, priority, retries, workers,
  /// allow_other_workers, resources).
  template <class R, class... P, class... A>
  Future<detail::StoredResult<R>> submit(const SubmitOptions& options, R (*fn)(P...), A&&... args) {
    detail::TaskRequest req;
    req.function = &detail::registered_function(reinterpret_cast<detail::AnyFunctionPointer>(fn));
    req.options = &options;
    req.args = detail::make_arguments<R (*)(P...)>(std::forward<A>(args)...);
    std::vector<detail::TaskRequest> batch;
    batch.push_back(std::move(req));
    return Future<detail::StoredResult<R>>(submit_tasks(std::move(batch)).front());
  }

  /// Runs fn once per element of the ranges, zipped, as Dask's `map(func, *iterables)`:
  /// one argument per parameter of fn (a last std::stop_token parameter excepted), each a
  /// range whose elements convert to the parameter, or distrib::constant(v) for a value
  /// given to every call (Dask's `map(func, xs, y=2)`). As Dask, the calls stop at the end
  /// of the shortest range. A range of Future<T> makes each task depend on one of them.
  /// Types are checked at compile time; the tasks go to the scheduler as one batch.
  ///
  ///   client.map(inc, xs);                          // inc(xs[i])
  ///   client.map(add, xs, ys);                      // add(xs[i], ys[i])
  ///   client.map(add, xs, distrib::constant(2.0));  // add(xs[i], 2.0)
  template <class R, class... P, detail::MapArgument... A>
    requires(sizeof...(A) >= 1)
  std::vector<Future<detail::StoredResult<R>>> map(R (*fn)(P...), const A&... args) {
    static const SubmitOptions defaults;
    return map(defaults, fn, args...);
  }
  template <class R, class... P, detail::MapArgument... A>
    requires(sizeof...(A) >= 1)
  std::vector<Future<detail::StoredResult<R>>> map(const SubmitOptions& options, R (*fn)(P...), const A&... args) {
    if (!options.key.empty()) throw std::invalid_argument("distrib: map cannot give one key to many tasks");
    const auto& function = detail::registered_function(reinterpret_cast<detail::AnyFunctionPointer>(fn));
    auto batch = detail::map_requests<typename detail::TaskParameters<P...>::Params>(function, &options, args...);
    std::vector<Future<detail::StoredResult<R>>> out;
    out.reserve(batch.size());
    for (auto& h : submit_tasks(std::move(batch))) out.emplace_back(std::move(h));
    return out;
  }

  /// Places one value on a worker (the client sends it there directly) and returns its
  /// future. A std::vector is one value; see scatter_each to spread elements.
  template <class T>
  Future<T> scatter(const T& value, const ScatterOptions& options = {}) {
    if constexpr (detail::is_contiguous_v<T>) {
      const std::size_t n = value.size() * sizeof(typename T::value_type);
      // Sent straight from `value`'s memory: scatter returns once nothing refers to it.
      if (n >= detail::kAdoptBytes) return Future<T>(scatter_lent(type_name<T>(), value.data(), n, options));
    }
    std::vector<Value> values;
    values.push_back(encode_value(value));
    return Future<T>(scatter_values(std::move(values), options).front());
  }
  /// As above; a string or vector given as an rvalue is sent from its own memory, which the
  /// client keeps until the data is sent.
  template <class T>
    requires(detail::is_contiguous_v<T>)
  Future<T> scatter(T&& value, const ScatterOptions& options = {}) {
    std::vector<Value> values;
    values.push_back(encode_value(std::move(value)));
    return Future<T>(scatter_values(std::move(values), options).front());
  }
  /// Places each element of `range` as its own value, spread over the workers by their
  /// threads; one future per element.
  template <std::ranges::input_range Range>
  std::vector<Future<std::ranges::range_value_t<Range>>> scatter_each(const Range& range,
                                                                      const ScatterOptions& options = {}) {
    std::vector<Value> values;
    for (const auto& x : range) values.push_back(encode_value(x));
    std::vector<Future<std::ranges::range_value_t<Range>>> out;
    for (auto& h : scatter_values(std::move(values), options)) out.emplace_back(std::move(h));
    return out;
  }

  /// The value of one future (same as f.result()).
  template <class T>
  T gather(const Future<T>& f) {
    return f.result();
  }
  /// The values of many futures, fetched with one request per worker. With Errors::skip,
  /// failed or cancelled futures are left out instead of raising.
  template <class T>
  std::vector<T> gather(const std::vector<Future<T>>& fs, Errors errors = Errors::raise) {
    std::vector<detail::FutureHandle> handles;
    handles.reserve(fs.size());
    for (const auto& f : fs) {
      if (errors == Errors::skip) {
        f.wait();
        if (f.status() != FutureStatus::finished) continue;
      }
      handles.push_back(f.handle());
    }
    std::vector<Value> values = gather_values(handles);
    std::vector<T> out;
    out.reserve(values.size());
    for (const auto& v : values) out.push_back(decode_value<T>(v));
    return out;
  }

  /// Cancels futures: pending tasks never run, running ones are asked to stop (a task sees
  /// it through its std::stop_token or distrib::cancelled(), see task.hpp) and their results
  /// are dropped, and dependents are cancelled too. Unknown or finished keys are harmless.
  template <class T>
  void cancel(const Future<T>& f) {
    cancel_handles({f.handle()});
  }
  template <class T>
  void cancel(const std::vector<Future<T>>& fs) {
    std::vector<detail::FutureHandle> handles;
    for (const auto& f : fs) handles.push_back(f.handle());
    cancel_handles(handles);
  }

  /// Computes `target` of `graph` (and what it needs); one message for the whole graph.
  template <class T>
  Future<T> compute(const Graph& graph, const Delayed<T>& target) {
    return Future<T>(submit_graph(graph, {target.key}).front());
  }
  template <class T>
  std::vector<Future<T>> compute(const Graph& graph, const std::vector<Delayed<T>>& targets) {
    std::vector<std::string> keys;
    for (const auto& t : targets) keys.push_back(t.key);
    std::vector<Future<T>> out;
    for (auto& h : submit_graph(graph, keys)) out.emplace_back(std::move(h));
    return out;
  }
  /// Computes every task of `graph` and keeps all the results on the cluster.
  class Persisted {
   public:
    template <class T>
    Future<T> operator[](const Delayed<T>& d) const {
      auto it = futures_.find(d.key);
      if (it == futures_.end()) throw std::out_of_range("distrib: '" + d.key + "' is not in this graph");
      return Future<T>(it->second);
    }
    std::size_t size() const { return futures_.size(); }

   private:
    friend class Client;
    std::map<std::string, detail::FutureHandle> futures_;
  };
  Persisted persist(const Graph& graph);
  /// One shot: computes `target`, fetches its value, and releases everything.
  template <class T>
  T get(const Graph& graph, const Delayed<T>& target) {
    return compute(graph, target).result();
  }

  /// Computes a chunked array on the cluster and returns it as one NDArray (see array.hpp).
  Future<NDArray> compute(const array::Array& a);
  /// Computes a chunked array's blocks on the cluster and keeps them there: the result is
  /// an Array whose blocks are futures, for later computations (they are released when
  /// the last copy of the returned Array goes away).
  array::Array persist(const array::Array& a);
  /// As persist: the seed's `client.scatter(x)` for a chunked array. Blocks are made where
  /// they are placed (from the graph), not computed here and sent.
  array::Array scatter(const array::Array& a);
  /// A full reduction such as da::mean or da::std of an array, computed on the cluster
  /// over its blocks as a tree: `client.submit(da::mean, xs)`.
  Future<double> submit(const array::FullReduction& reduction, const array::Array& a);

  /// Calls fn(args...) right now on every worker (outside the task scheduler) and returns
  /// the results by worker address. Throws TaskError if it raised on a worker.
  template <class R, class... P, class... A>
  std::map<std::string, detail::StoredResult<R>> run(R (*fn)(P...), A&&... args) {
    static const RunOptions everywhere;
    return run(everywhere, fn, std::forward<A>(args)...);
  }
  /// As run(fn, args...) on the workers `options.workers` names (names or addresses; all if
  /// empty), as Dask's `run(fn, *args, workers=[...])`. Throws std::invalid_argument, before
  /// anything runs, naming the workers that are not connected.
  template <class R, class... P, class... A>
  std::map<std::string, detail::StoredResult<R>> run(const RunOptions& options, R (*fn)(P...), A&&... args) {
    std::map<std::string, detail::StoredResult<R>> out;
    for (auto& [address, value] : run_on_workers(task_request(fn, std::forward<A>(args)...), options.workers))
      out.emplace(address, decode_value<detail::StoredResult<R>>(value));
    return out;
  }
  /// Calls fn(args...) in the scheduler's process, as Dask's run_on_scheduler, and returns
  /// its result. The scheduler must have the function: a LocalCluster's scheduler runs this
  /// program, so it has every DISTRIB_TASK of it; a dscheduler has those of the libraries
  /// it loaded with `dscheduler --preload lib.so`. It runs on the scheduler's event loop,
  /// which waits for it: keep it short. Throws TaskError if it raised or the scheduler does
  /// not have it (remote_type "distrib::UnknownFunction").
  template <class R, class... P, class... A>
  detail::StoredResult<R> run_on_scheduler(R (*fn)(P...), A&&... args) {
    return decode_value<detail::StoredResult<R>>(run_scheduler_function(task_request(fn, std::forward<A>(args)...)));
  }

  /// As Dask's fire_and_forget: the tasks run to completion even once every Future for them
  /// is dropped and this client has disconnected (the scheduler wants them itself until
  /// each is finished or erred, then releases them). Their inputs are kept until then.
  template <class T>
  void fire_and_forget(const Future<T>& f) {
    fire_and_forget_handles({f.handle()});
  }
  template <class T>
  void fire_and_forget(const std::vector<Future<T>>& fs) {
    fire_and_forget_handles(handles_of(fs));
  }
  /// As Dask's Client.retry: the erred futures among `fs` (and the erred tasks they depend
  /// on) are computed again; they are pending once this returns. Others are left alone.
  template <class T>
  void retry(const std::vector<Future<T>>& fs) {
    retry_handles(handles_of(fs));
  }
  template <class T>
  void retry(const Future<T>& f) {
    retry_handles({f.handle()});
  }
  /// The size in bytes of each result, as the scheduler knows it (Dask's client.nbytes):
  /// key -> bytes, for the futures whose values are in memory now (others are left out).
  template <class T>
  std::map<std::string, std::uint64_t> nbytes(const std::vector<Future<T>>& fs) {
    return nbytes_of(handles_of(fs));
  }
  /// As Dask's replicate: waits for `fs`, then copies each value until `n` workers hold it
  /// (every worker, if n is 0), the copies going to the workers storing the fewest bytes,
  /// and drops copies beyond n. Returns once done; throws distrib::Error if a copy failed
  /// or a future failed, std::invalid_argument if n exceeds the workers.
  template <class T>
  void replicate(const std::vector<Future<T>>& fs, std::size_t n = 0) {
    replicate_handles(handles_of(fs), n);
  }
  /// As Dask's rebalance: moves values between workers so that the bytes they store even
  /// out (see the user guide for the policy): those of `fs`, or every value in memory.
  /// Returns once the moves are done; a value is never left without a copy.
  template <class T>
  void rebalance(const std::vector<Future<T>>& fs) {
    rebalance_handles(handles_of(fs));
  }
  void rebalance() { rebalance_handles({}); }

  /// Where each future's value lives: key -> worker addresses.
  template <class T>
  std::map<std::string, std::vector<std::string>> who_has(const std::vector<Future<T>>& fs) {
    std::vector<std::string> keys;
    for (const auto& f : fs) keys.push_back(f.key());
    return snapshot(keys).who_has;
  }
  /// Keys held by each worker: worker address -> keys.
  std::map<std::string, std::vector<std::string>> has_what();
  /// Threads of each worker: worker address -> threads.
  std::map<std::string, unsigned> nthreads();
  /// Workers (memory, tasks, keys held) and task counts by state.
  SchedulerInfo scheduler_info();
  /// Why a task is where it is: its last transitions on the scheduler, oldest first
  /// (the last 32 per key; none for a key the
  /// scheduler has forgotten). As Dask's `client.story(key)`.
  std::vector<Transition> story(const std::string& key);
  template <class T>
  std::vector<Transition> story(const Future<T>& f) {
    return story(f.key());
  }
  /// Sends the shared library at `path` to every worker, as Dask's upload_file: each one
  /// loads it (its DISTRIB_TASK functions become runnable there) and so does every worker
  /// that registers later (the scheduler keeps it; a library of the same file name replaces
  /// the one kept). Returns once every worker connected now has loaded it. Throws
  /// std::invalid_argument if the file cannot be read, distrib::Error naming the workers
  /// that could not load it (and why), TimeoutError after `timeout`. The program must link
  /// the library too, to submit its functions. On a cluster with a token or TLS only a
  /// client that passed it can upload; without either, anyone who can reach the scheduler
  /// can: keep such a scheduler on loopback.
  void upload_file(const std::string& path, std::chrono::milliseconds timeout = std::chrono::seconds(60));
  /// Retires workers gracefully, as Dask's retire_workers: they get no new work, and once
  /// their running tasks are done every value that only they hold is copied to another
  /// worker, so nothing is recomputed; then they are closed (a worker under a nanny is not
  /// restarted). `workers`: names or addresses. Returns the addresses of the workers closed.
  /// Throws distrib::Error if no other worker can take their values or `timeout` passes
  /// first (the workers are then taken back into service).
  std::vector<std::string> retire_workers(const std::vector<std::string>& workers,
                                          std::chrono::milliseconds timeout = std::chrono::seconds(60));

  /// Restarts every worker and forgets every task, as Dask's `client.restart()`. Every
  /// future of every client of this scheduler is cancelled (result() throws CancelledError;
  /// finished ones too, since their results go with the workers) and every task is
  /// released. A worker under a nanny (dworker's default, LocalCluster with processes =
  /// true) exits and its nanny starts a fresh process; a worker without one (dworker
  /// --no-nanny) is closed, in the hope that whatever started it starts it again. A restart
  /// counts against no task (it never causes KilledWorker).
  ///
  /// With `wait_for_workers` it returns once as many workers as before have registered
  /// again, and throws TimeoutError, saying how many came back, if they have not within
  /// `timeout` (the tasks are cancelled all the same); without, it returns once the workers
  /// were told. Futures made afterwards run on the new workers. Throws
  /// std::invalid_argument for a timeout that is not positive and distrib::Error for a
  /// LocalCluster with processes = false (its workers are threads of this process), both
  /// before anything is sent, and CommError if the cluster is out of reach.
  void restart(std::chrono::milliseconds timeout = std::chrono::seconds(120), bool wait_for_workers = true);

  /// Datasets, as Dask's publish_dataset: `future` under a name any client of this scheduler
  /// can get (get_dataset), its key kept on the cluster by the scheduler until unpublished,
  /// even once every client dropped its futures. Throws KeyError if the name is taken (unless
  /// `override`), std::invalid_argument for an empty future. The names are held by the
  /// scheduler alone: a restarted scheduler has none.
  template <class T>
  void publish_dataset(const std::string& name, const Future<T>& future, bool override = false) {
    if (!future.valid()) throw std::invalid_argument("distrib::Client::publish_dataset: an empty Future");
    detail::CoordinationCall call{detail::CoordinationOp::publish_dataset, name, type_name<T>()};
    call.key = future.key();
    call.override = override;
    detail::coordinate(*this, std::move(call));
  }
  /// A future of the dataset `name` (this client now wants its key too). Throws KeyError
  /// for an unknown name, DecodeError naming both types if it is a Future of another type.
  template <class T>
  Future<T> get_dataset(const std::string& name) {
    auto answer = detail::coordinate(*this, {detail::CoordinationOp::get_dataset, name, type_name<T>()});
    return Future<T>(std::move(answer.future));
  }
  /// The names of the published datasets, sorted.
  std::vector<std::string> list_datasets();
  /// Forgets the dataset `name` (its key is released unless a client holds a future of it).
  /// Throws KeyError for an unknown name.
  void unpublish_dataset(const std::string& name);

  /// Topics, as Dask's log_event: appends `message` to `topic` on the scheduler (which keeps
  /// the last 1000 of each topic) and hands it to every client subscribed to the topic.
  template <class T>
  void log_event(const std::string& topic, const T& message) {
    detail::CoordinationCall call{detail::CoordinationOp::log_event, topic, type_name<T>()};
    call.value = encode_value(message);
    detail::coordinate(*this, std::move(call));
  }
  void log_event(const std::string& topic, const char* message) { log_event(topic, std::string(message)); }
  /// The events the scheduler keeps of `topic`, oldest first. Throws DecodeError naming both
  /// types if one of them is not a T.
  template <class T>
  std::vector<TopicEvent<T>> get_events(const std::string& topic) {
    auto answer = detail::coordinate(*this, {detail::CoordinationOp::get_events, topic, type_name<T>()});
    std::vector<TopicEvent<T>> out;
    for (auto& e : answer.events) out.push_back({e.topic, e.time, decode_value<T>(e.message)});
    return out;
  }
  /// Calls `handler` with each event logged to `topic` from now on, in order, on a thread of
  /// this client's own ("distrib-topics"), never on its I/O thread: a handler may block
  /// (later events wait for it) and may call this client, but must not close it. An event
  /// that is not a T is skipped with a warning in the log. One handler per topic: subscribing
  /// again replaces it. As Dask's subscribe_topic.
  template <class T>
  void subscribe_topic(const std::string& topic, std::function<void(const TopicEvent<T>&)> handler) {
    if (!handler) throw std::invalid_argument("distrib::Client::subscribe_topic: an empty handler");
    detail::subscribe_topic(*this, topic, [handler = std::move(handler)](const detail::RawTopicEvent& e) {
      handler(TopicEvent<T>{e.topic, e.time, decode_value<T>(e.message)});
    });
  }
  /// Stops the handler of `topic`; events already delivered to this client are dropped.
  void unsubscribe_topic(const std::string& topic);

  /// Disconnects; the scheduler releases this client's keys. Idempotent.
  void close();
  /// Stops the scheduler and all its workers, then closes. Idempotent.
  void shutdown();
  /// The scheduler's address, "tcp://host:port".
  std::string scheduler_address() const;
  /// The URL of the scheduler's live dashboard, "http://host:port/status" (as Dask's
  /// dashboard_link), or "" if the scheduler runs without one. With an auth token (the
  /// cluster's, DISTRIB_AUTH_TOKEN), it ends in "?token=...", which the dashboard wants.
  std::string dashboard_link() const;
  /// Workers currently connected to the scheduler (as last reported to this client).
  std::size_t n_workers() const;
  /// Blocks until at least `n` workers are connected; throws TimeoutError.
  void wait_for_workers(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  std::vector<detail::FutureHandle> submit_tasks(std::vector<detail::TaskRequest> batch);
  std::vector<detail::FutureHandle> submit_graph(const Graph& graph, const std::vector<std::string>& targets);
  std::vector<detail::FutureHandle> scatter_values(std::vector<Value> values, const ScatterOptions& options);
  detail::FutureHandle scatter_lent(const std::string& type, const void* data, std::size_t size,
                                    const ScatterOptions& options);
  std::vector<Value> gather_values(const std::vector<detail::FutureHandle>& futures);
  void cancel_handles(const std::vector<detail::FutureHandle>& futures);
  std::vector<std::pair<std::string, Value>> run_on_workers(detail::TaskRequest request,
                                                            const std::vector<std::string>& workers);
  Value run_scheduler_function(detail::TaskRequest request);
  template <class R, class... P, class... A>
  static detail::TaskRequest task_request(R (*fn)(P...), A&&... args) {
    detail::TaskRequest req;
    req.function = &detail::registered_function(reinterpret_cast<detail::AnyFunctionPointer>(fn));
    req.args = detail::make_arguments<R (*)(P...)>(std::forward<A>(args)...);
    return req;
  }
  template <class T>
  static std::vector<detail::FutureHandle> handles_of(const std::vector<Future<T>>& fs) {
    std::vector<detail::FutureHandle> out;
    out.reserve(fs.size());
    for (const auto& f : fs) out.push_back(f.handle());
    return out;
  }
  // client_ops.cpp
  void fire_and_forget_handles(const std::vector<detail::FutureHandle>& futures);
  void retry_handles(const std::vector<detail::FutureHandle>& futures);
  std::map<std::string, std::uint64_t> nbytes_of(const std::vector<detail::FutureHandle>& futures);
  void replicate_handles(const std::vector<detail::FutureHandle>& futures, std::size_t n);
  void rebalance_handles(const std::vector<detail::FutureHandle>& futures);
  detail::ClusterSnapshot snapshot(const std::vector<std::string>& keys, bool with_story = false);
  friend struct detail::ClientAccess;
  friend detail::CoordinationAnswer detail::coordinate(Client& client, detail::CoordinationCall call);
  friend void detail::subscribe_topic(Client& client, const std::string& topic, detail::TopicHandler handler);
  std::shared_ptr<detail::ClientImpl> impl_;
};

}  // namespace distrib
