#pragma once
// The client's machinery behind the public Client: one io thread with the scheduler
// connection and pooled connections to workers (results are fetched straight from the
// worker that holds them, scattered data is sent straight to workers). The bookkeeping
// (futures by key, cancel epochs, the outbox) is ClientCore's; this class does the I/O,
// the threads and the waiting, and reconnects to the scheduler when the connection drops.
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "client/client_core.hpp"
#include "client/coordination_calls.hpp"
#include "client/continuation_thread.hpp"
#include "client/future_state.hpp"
#include "comm/connection.hpp"
#include "comm/data_fetcher.hpp"
#include "comm/message.hpp"
#include "distrib/client.hpp"

namespace distrib::detail {

/// An infoRequest (sent by snapshot(), and again on re-attach for one not answered yet).
OutMessage info_request(std::uint64_t id, const std::vector<std::string>& keys, bool with_story);

class ClientImpl : public std::enable_shared_from_this<ClientImpl> {
 public:
  explicit ClientImpl(ClientOptions options);
  ~ClientImpl();

  /// Connects and waits for the scheduler's handshake; throws CommError. `address` is the
  /// scheduler's tcp:// address (what address() shows); `via`, if given, is where to connect
  /// instead (a LocalCluster's unix:// socket).
  void connect(const std::string& address, const std::string& via = "");
  /// Tasks submitted later run first (the shared client of a worker's tasks: a recursion
  /// goes depth first). Call before submitting anything.
  void prefer_newest_tasks() { newest_first_ = true; }
  /// Closed, or its connection lost for good: futures made now would fail.
  bool is_lost() const {
    std::lock_guard lock(mutex_);
    return closed_ || !lost_reason_.empty();
  }
  /// The first of `n` consecutive priorities for the next submission (lower runs first).
  std::int64_t take_priorities(std::int64_t n) {
    return newest_first_ ? sequence_.fetch_sub(n) - n + 1 : sequence_.fetch_add(n) + 1;
  }
  std::vector<FutureHandle> submit(std::vector<TaskRequest> batch);
  std::vector<FutureHandle> submit_graph(const Graph& graph, const std::vector<std::string>& targets, bool all);
  std::vector<FutureHandle> scatter(std::vector<Value> values, const ScatterOptions& options);
  /// As scatter of one value whose bytes are the caller's memory, sent without a copy;
  /// returns once no connection refers to that memory (or none can read it any more).
  FutureHandle scatter_lent(const std::string& type, const void* data, std::size_t size, const ScatterOptions& options);
  /// Waits for every future, then fetches the values from the workers that hold them.
  std::vector<Value> gather(const std::vector<const FutureState*>& futures);
  void cancel(const std::vector<FutureHandle>& futures);
  /// Client::run on the workers `only` names (every worker if empty).
  std::vector<std::pair<std::string, Value>> run(const TaskRequest& request, const std::vector<std::string>& only = {});
  ClusterSnapshot snapshot(const std::vector<std::string>& keys, bool with_story = false);
  void release_key(const std::string& key);
  /// Client::restart: asks the scheduler to restart every worker and cancel every key,
  /// waits for its answer. Throws TimeoutError if not every worker came back in time.
  void restart(std::chrono::milliseconds timeout, bool wait_for_workers);
  /// Client::retire_workers: the scheduler moves what only they hold, then closes them.
  std::vector<std::string> retire_workers(const std::vector<std::string>& workers, std::chrono::milliseconds timeout);
  /// Client::upload_file.
  void upload_file(const std::string& path, std::chrono::milliseconds timeout);
  /// A coordination call (client_coordination.cpp): sent through the outbox, answered by the
  /// scheduler; see detail::coordinate for what it throws.
  CoordinationAnswer coordinate(CoordinationCall call);
  void subscribe_topic(const std::string& topic, TopicHandler handler);
  // ---- more of the Client (client_ops.cpp)
  void fire_and_forget(const std::vector<FutureHandle>& futures);
  void retry(const std::vector<FutureHandle>& futures);
  std::map<std::string, std::uint64_t> nbytes(const std::vector<FutureHandle>& futures);
  /// client.replicate (n copies, 0: every worker), or client.rebalance.
  void copy_op(const std::vector<FutureHandle>& futures, std::size_t n, bool rebalance);
  Value run_on_scheduler(const TaskRequest& request);
  /// The thread continuations run on (continuation.hpp), started on first use.
  std::shared_ptr<ContinuationThread> continuation_thread();
  void close();
  void shutdown();
  void wait_for_workers(std::size_t n, std::chrono::milliseconds timeout);
  std::size_t n_workers() const;
  std::uint16_t dashboard_port() const;
  std::vector<WorkerDescription> workers() const;
  const std::string& address() const { return address_; }
  /// The security this client's connections use (the environment's filled in).
  const Security& security() const { return options_.security; }
  /// The unique id this client re-attaches by (sent in every handshake).
  const std::string& client_id() const { return client_id_; }
  /// Set for a client made from a LocalCluster: shutdown() also closes the cluster.
  std::function<void()> close_cluster;
  /// Set when restart() cannot work with this cluster (why), e.g. a LocalCluster whose
  /// workers are threads of this process: restart() raises it before sending anything.
  std::string restart_unsupported;

 private:
  // ---- the scheduler connection (client_link.cpp)
  /// Starts `conn` as the scheduler connection and sends the handshake; `resume`: also
  /// re-sends what a re-attached scheduler may lack.
  void attach(ConnectionPtr conn, bool resume);
  /// The scheduler answered: sends what waited (on a resume, what it may lack first).
  void on_scheduler_handshake();
  void on_message(const Connection* from, InMessage&& m);
  void on_lost(const Connection* from, const std::string& reason);
  /// A clientOp answer (client_ops.cpp).
  void on_client_op(MessageReader& mr, proto::ClientOp::Reader op);
  /// The keys of `futures`; std::invalid_argument for an empty one or one of another client.
  std::vector<std::string> own_keys(const std::vector<FutureHandle>& futures, const char* what) const;
  /// Tries to connect again with backoff on a thread of its own, until reconnect_timeout.
  void start_reconnecting(const std::string& reason);
  void reconnect_loop(std::string reason);
  /// No scheduler within the timeout (or it shut down): everything pending fails.
  void give_up(const std::string& reason);
  /// Sends what the outbox holds, in order (nothing while disconnected: it waits).
  void flush_outbox();
  void send_all(std::vector<Outgoing> items);
  void schedule_flush();  // with mutex_ held

  /// A `coordination` message from the scheduler (io thread): an answer, or a topic event.
  void on_coordination(MessageReader& mr, proto::Coordination::Reader m);

  // ---- shared helpers (client_impl.cpp)
  /// Every few seconds on the io thread: large buffers nobody reused go back to the system.
  void trim_buffers_later();
  std::string next_token();
  void check_open();
  /// Registers a new future for `key`, or returns the live one; `fresh` says which. With mutex_ held.
  FutureHandle future_for(const std::string& key, bool& fresh);
  void post_message(OutMessage m);
  /// Queues a new graph, kept by the core until its wanted futures are done.
  void post_graph(OutMessage m, std::vector<TaskSpec> tasks, std::vector<std::string> wanted);
  /// Runs `start(done)` on the io thread, where `done` must be called once per part, and
  /// waits for `parts` calls.
  void on_io_and_wait(std::size_t parts, std::function<void(std::function<void()>)> start);

  ClientOptions options_;
  std::string address_;
  std::string connect_to_;  // where to connect (address_, or a LocalCluster's unix socket)
  std::string client_id_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  ConnectionPtr scheduler_;  // io thread only
  std::unique_ptr<DataFetcher> fetcher_;
  std::unique_ptr<asio::steady_timer> trim_timer_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  ClientCore core_;
  bool flush_posted_ = false;
  bool handshaken_ = false;        // the current connection's scheduler handshake arrived
  bool attached_ = false;          // a scheduler connection is up: the outbox may be sent
  bool resume_ = false;            // the current connection re-attaches after a drop
  bool has_cluster_info_ = false;
  bool closed_ = false;
  bool closing_ = false;
  bool no_reconnect_ = false;      // the scheduler shut down or refused us: do not come back
  std::string lost_reason_;        // set once the cluster is out of reach for good
  std::vector<WorkerDescription> members_;
  std::uint16_t dashboard_port_ = 0;
  struct InfoWaiting {
    std::promise<ClusterSnapshot> promise;
    std::vector<std::string> keys;
    bool with_story = false;
  };
  std::unordered_map<std::uint64_t, InfoWaiting> info_waiting_;
  std::uint64_t next_info_id_ = 1;
  struct RestartOutcome {
    bool ok = false;
    std::string reason;
    std::vector<std::string> retired;  // a retireReply's workers
    std::map<std::string, std::uint64_t> sizes;  // clientOp sizes
    std::optional<Value> value;                  // clientOp runResult
    std::string error_type;                      // clientOp runResult: what it raised
  };
  /// Sends the request `build` makes (given its id), through the outbox, and waits up to
  /// `wait` for the scheduler's answer with that id (restart, retire, upload); throws
  /// TimeoutError naming `what` past it.
  RestartOutcome ask_scheduler(const char* what, std::chrono::milliseconds wait,
                               const std::function<void(MessageBuilder&, std::uint64_t)>& build);
  std::unordered_map<std::uint64_t, std::promise<RestartOutcome>> restart_waiting_;
  std::uint64_t next_restart_id_ = 1;  // restart and retire requests share the ids and the map
  std::optional<std::chrono::steady_clock::time_point> disconnected_since_;  // reset by a handshake
  std::chrono::milliseconds backoff_{0};  // before the next reconnection attempt
  std::thread reconnector_;
  std::shared_ptr<ContinuationThread> continuations_;  // under mutex_
  std::condition_variable reconnect_cv_;  // wakes the reconnector's backoff when closing
  CoordinationCalls coordination_;
  std::uint64_t token_base_;
  std::atomic<std::uint64_t> counter_{0};
  std::atomic<std::int64_t> sequence_{0};
  std::atomic<bool> newest_first_{false};
  std::atomic<bool> io_finished_{false};  // the io thread has been joined
};

}  // namespace distrib::detail
