#pragma once
// The client's machinery behind the public Client: one io thread with the scheduler
// connection and pooled connections to workers (results are fetched straight from the
// worker that holds them, scattered data is sent straight to workers), plus the table of
// live futures by key.
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "comm/connection.hpp"
#include "comm/data_fetcher.hpp"
#include "distrib/client.hpp"

namespace distrib::detail {

class FutureState {
 public:
  FutureState(std::string key, std::shared_ptr<ClientImpl> client);
  /// The last copy of a Future going away releases the key on the cluster.
  ~FutureState();

  /// `value`: the result itself when the scheduler passed a small one on.
  void set_finished(const std::string& worker, std::optional<Value> value = std::nullopt);
  void set_erred(const std::string& type, const std::string& message);
  void set_lost(const std::string& reason);
  void set_cancelled();
  /// Adds a callback run once the future leaves the pending state (now if it has).
  void on_done(std::function<void()> fn);

  const std::string key;
  const std::weak_ptr<ClientImpl> client;
  const ClientImpl* const owner;

  mutable std::mutex mutex;
  mutable std::condition_variable cv;
  FutureStatus status = FutureStatus::pending;
  mutable std::string worker;  // where the result lives; moves if the result is recomputed elsewhere
  std::optional<Value> value;  // a small result that came with the notice (no fetch needed)
  std::string error_type;
  std::string error_message;
  std::string lost_reason;  // set when the cluster connection was lost
  /// Cancel requests sent before this future was made; later replies do not concern it.
  std::uint64_t epoch = 0;

 private:
  // Moves to `next` if allowed; runs the callbacks when leaving pending.
  template <class Update>
  void transition(Update update);
  std::vector<std::function<void()>> callbacks_;
};

class ClientImpl : public std::enable_shared_from_this<ClientImpl> {
 public:
  explicit ClientImpl(ClientOptions options);
  ~ClientImpl();

  /// Connects and waits for the scheduler's handshake; throws CommError. `address` is the
  /// scheduler's tcp:// address (what address() shows); `via`, if given, is where to connect
  /// instead (a LocalCluster's unix:// socket).
  void connect(const std::string& address, const std::string& via = "");
  std::vector<FutureHandle> submit(std::vector<TaskRequest> batch);
  std::vector<FutureHandle> submit_graph(const Graph& graph, const std::vector<std::string>& targets, bool all);
  std::vector<FutureHandle> scatter(std::vector<Value> values, const ScatterOptions& options);
  /// Waits for every future, then fetches the values from the workers that hold them.
  std::vector<Value> gather(const std::vector<const FutureState*>& futures);
  void cancel(const std::vector<FutureHandle>& futures);
  std::vector<std::pair<std::string, Value>> run(const TaskRequest& request);
  ClusterSnapshot snapshot(const std::vector<std::string>& keys, bool with_story = false);
  void release_key(const std::string& key);
  void close();
  void shutdown();
  void wait_for_workers(std::size_t n, std::chrono::milliseconds timeout);
  std::size_t n_workers() const;
  std::uint16_t dashboard_port() const;
  std::vector<WorkerDescription> workers() const;
  const std::string& address() const { return address_; }
  /// Set for a client made from a LocalCluster: shutdown() also closes the cluster.
  std::function<void()> close_cluster;

 private:
  void on_message(InMessage&& m);
  /// Every few seconds on the io thread: large buffers nobody reused go back to the system.
  void trim_buffers_later();
  void on_lost(const std::string& reason);
  /// Sends what the outbox holds, in order, batching consecutive releases.
  void flush_outbox();
  void schedule_flush();  // with mutex_ held
  std::string next_token();
  void check_open();
  /// Registers a new future for `key`, or returns the live one; `fresh` says which.
  FutureHandle future_for(const std::string& key, bool& fresh);
  void post_message(OutMessage m);
  /// Runs `start(done)` on the io thread, where `done` must be called once per part, and
  /// waits for `parts` calls.
  void on_io_and_wait(std::size_t parts, std::function<void(std::function<void()>)> start);

  ClientOptions options_;
  std::string address_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  ConnectionPtr scheduler_;
  std::unique_ptr<DataFetcher> fetcher_;
  std::unique_ptr<asio::steady_timer> trim_timer_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::unordered_map<std::string, std::weak_ptr<FutureState>> futures_;
  // Messages to the scheduler and released keys, in the order they happened: a release
  // must never overtake a message that still refers to the key.
  std::vector<std::variant<OutMessage, std::string>> outbox_;
  bool flush_posted_ = false;
  bool handshaken_ = false;
  bool has_cluster_info_ = false;
  bool closed_ = false;
  bool closing_ = false;
  std::string lost_reason_;
  std::vector<WorkerDescription> members_;
  std::uint16_t dashboard_port_ = 0;
  std::unordered_map<std::uint64_t, std::promise<ClusterSnapshot>> info_waiting_;
  std::uint64_t next_info_id_ = 1;
  std::uint64_t cancels_sent_ = 0;     // cancel requests queued for the scheduler
  std::uint64_t cancel_replies_ = 0;   // keysCancelled replies received, in the same order
  std::uint64_t token_base_;
  std::atomic<std::uint64_t> counter_{0};
  std::atomic<std::int64_t> sequence_{0};
  std::atomic<bool> io_finished_{false};  // the io thread has been joined
};

}  // namespace distrib::detail
