#pragma once
// WorkerServer: a worker's I/O. Keeps the connection to the scheduler (and makes a new one
// when it goes away), serves its data to peers and clients on its own port, fetches inputs
// from peers, and runs tasks on a TaskExecutor. Messages are converted by worker_wire. A task thread applies its result to the
// WorkerState itself (under a mutex) and goes on with the next ready task; reports to the
// scheduler leave from the io thread.
//
// Lives: each connection to a scheduler is one life. When the connection drops, the worker
// drops the work of that life (the scheduler reschedules it), asks its running tasks to
// stop, and tries to connect again with backoff for `death_timeout`; it registers again with
// the results it still holds. A scheduler that removed it (reregister) gets it back as a new
// worker, holding nothing. Nothing of an old life is reported in a new one.
#include <asio/io_context.hpp>
#include <condition_variable>
#include <unordered_set>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "comm/accept_backoff.hpp"
#include "comm/admission.hpp"
#include "comm/connection.hpp"
#include "comm/transport.hpp"
#include "comm/data_fetcher.hpp"
#include "worker/memory_policy.hpp"
#include "worker/spilling_store.hpp"
#include "worker/task_executor.hpp"
#include "worker/worker_state.hpp"

namespace distrib::detail {

namespace wire {
struct Upload;
}

struct WorkerOptions {
  std::string scheduler_address;
  std::string host = "127.0.0.1";  // where this worker listens for peers
  /// TLS files and token for every connection (dworker --tls-*, --auth-token-file); with TLS
  /// the data port is tls:// too.
  Security security;
  /// Listen on a non-loopback host with neither TLS nor a token (--insecure); otherwise the
  /// constructor refuses with SecurityError (protected mode).
  bool insecure = false;
  std::uint16_t port = 0;
  /// Listen here instead of host:port when set: "inproc://name" for a worker that serves
  /// only its own process (LocalCluster processes = false).
  std::string listen_address;
  /// The address peers and the scheduler are told to use for this worker's data port
  /// (dworker --contact-address), when it is not where it listens; "": found as below.
  std::string contact_address;
  std::uint32_t nthreads = 1;
  std::string name;                // default: host-pid
  /// Bytes the worker keeps within (dworker --memory-limit; 0: none, and it reports the
  /// machine's memory). Against it: spill at memory_fractions.target of managed bytes, and
  /// by process memory spill, pause and terminate (worker_memory.cpp).
  std::uint64_t memory_limit = 0;
  wrk::MemoryFractions memory_fractions;
  /// Whether the process's resident memory is this worker's alone. false for workers in
  /// one process (LocalCluster processes = false): only the target applies, by managed bytes.
  bool process_memory_is_own = true;
  /// Parent of the private spill directory (--local-directory); empty: $TMPDIR or /tmp.
  std::string local_directory;
  std::vector<std::pair<std::string, double>> resources;  // e.g. {"GPU", 2}
  FrameLimits limits;
  /// The data port's caps on open connections and on those without their handshake
  /// (dworker --max-connections, --max-unauthenticated-connections).
  ConnectionCaps connection_caps;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds heartbeat_interval{1'000};
  bool nanny = false;         // a nanny supervises this process: restartWorker ends it for a restart
  std::uint32_t restarts = 0;  // times the nanny restarted it so far (sent in registerWorker)
  /// How long to keep trying to reach a scheduler that went away before giving up (0: at
  /// once). As Dask's --death-timeout.
  std::chrono::milliseconds death_timeout{60'000};
  /// When the worker stops, how long running tasks get to return after being asked to stop.
  std::chrono::milliseconds close_timeout{5'000};
};

/// The reason WorkerServer::stop gets when the scheduler asks a nannied worker to restart.
inline constexpr const char* kRestartRequested = "the scheduler asked for a restart";

/// Waits between attempts to reach a lost scheduler: 0.1 s, doubling up to 2 s.
inline constexpr std::chrono::milliseconds kReconnectFirstDelay{100};
inline constexpr std::chrono::milliseconds kReconnectMaxDelay{2'000};

class WorkerServer : private TaskServices {
 public:
  /// Binds the peer port and connects to the scheduler (blocking, up to connect_timeout).
  /// Throws CommError if either fails.
  WorkerServer(asio::io_context& io, WorkerOptions options);
  /// Asks running tasks to stop and waits for them.
  ~WorkerServer();

  /// Registers with the scheduler and starts serving. Call on the io thread.
  void start();
  /// Closes every connection and asks running tasks to stop; their results are dropped.
  void stop(const std::string& reason);
  /// After stop: waits up to `timeout` for running tasks to return; true if none runs.
  bool wait_for_tasks(std::chrono::milliseconds timeout);
  const std::string& address() const { return address_; }
  const std::string& name() const { return options_.name; }
  /// Keys and bytes held (thread-safe: task threads update the state too).
  std::size_t n_stored() const;
  std::uint64_t stored_bytes() const;

  /// Called once, when first registered with the scheduler.
  std::function<void()> on_registered;
  /// Called once, when the worker stops: scheduler shutdown, a scheduler that did not come
  /// back within death_timeout, or rejection.
  std::function<void(const std::string& reason)> on_stopped;

 private:
  // ---- the scheduler (worker_server.cpp) ----
  void connect_scheduler(ByteStreamPtr stream);
  void on_scheduler_message(InMessage&& m);
  /// The connection is gone (`removed`: the scheduler removed this worker): a new life.
  void lose_scheduler(const std::string& reason, bool removed);
  void try_reconnect();
  void send_heartbeat();
  void flush_reports();
  // ---- memory (worker_memory.cpp) ----
  /// The store the state keeps its values in: a SpillingStore under a memory limit.
  std::unique_ptr<wrk::DataStore> make_store();
  void start_memory_monitor();
  void check_memory();
  /// Pauses or resumes the state, and tells the scheduler.
  void set_paused(bool paused, const std::string& reason);
  /// Past the terminate threshold under a nanny: tell the scheduler why, and exit at once so
  /// that the nanny starts a fresh process (the scheduler takes it as a death: its tasks
  /// are suspected, as when Dask's nanny kills a worker for memory).
  void terminate_for_memory(const std::string& reason);
  // ---- the state ----
  /// Applies an event on the io thread.
  /// The scheduler's uploadFile (client.upload_file): writes and loads the library.
  void load_upload(const wire::Upload& upload);
  /// The scheduler's replicate (client.retire_workers): copies stored values to peers.
  void replicate(std::vector<std::pair<std::string, std::vector<std::string>>> copies);
  void handle(wrk::Event e);
  /// Applies an event with state_mutex_ held, from the io thread (`next` null) or from a
  /// task thread, which gets the next task to run in `next` instead of a hand-off.
  /// Work that must run on the io thread (sends, fetches) goes to `io_work`, to be run
  /// once the mutex is released.
  void apply_locked(wrk::Event e, std::optional<wrk::Execute>* next, std::vector<std::function<void()>>& io_work);
  void post_io_work(std::vector<std::function<void()>> io_work);
  // ---- tasks that launch tasks (worker_task_services.cpp) ----
  Client& task_client() override;
  void secede(const std::string& key) override;
  void rejoin(const std::string& key) override;
  TaskWorker identity() const override;
  /// Closes the shared client: tasks waiting on its futures get an error and return.
  void close_task_client();
  // ---- the data port (worker_data_port.cpp) ----
  void accept();
  /// What the data port knows about one connection.
  struct DataPortPeer {
    bool handshaken = false;
    bool same_host = false;  // its handshake offered shared memory with us
    /// Values of dataReply `id` handed over as shared memory, held until its sharedDone.
    std::unordered_map<std::uint64_t, std::vector<Bytes>> lent;
  };
  void on_peer_message(const ConnectionPtr& conn, DataPortPeer& peer, InMessage&& m);
  void run_function(const ConnectionPtr& conn, std::uint64_t id, TaskSpec spec);

  asio::io_context& io_;
  WorkerOptions options_;
  std::unique_ptr<Listener> listener_;  // the data port
  AcceptBackoff accept_backoff_;
  Admission admission_;
  LogLimiter bad_input_log_;  // the data port's "rejected ..." and "closed peer connection" lines
  asio::steady_timer heartbeat_timer_;
  asio::steady_timer reconnect_timer_;
  std::string address_;
  ByteStreamPtr first_stream_;  // connected by the constructor, used by start()
  ConnectionPtr scheduler_;                   // null while reconnecting
  bool scheduler_handshaken_ = false;
  bool ever_registered_ = false;
  // Reconnecting: until when, and the next wait between attempts.
  std::chrono::steady_clock::time_point reconnect_deadline_;
  std::chrono::milliseconds reconnect_delay_{kReconnectFirstDelay};
  bool reconnecting_ = false;
  // The state and the reports are shared by the io thread and the task threads: a task
  // thread applies its own result and takes the next ready task itself, so short tasks
  // run back to back without two thread hand-offs each. The state's DataStore (a MemoryStore
  // today) is called only through the state, so under this mutex too.
  mutable std::mutex state_mutex_;
  wrk::SpillingStore* spill_ = nullptr;  // the state's store when it spills (owned by state_)
  wrk::WorkerState state_;
  std::uint64_t life_ = 0;  // one per scheduler connection; work queued in an older one is dropped
  std::vector<wrk::SendTaskFinished> finished_;  // reports not yet sent
  std::vector<wrk::SendTaskErred> erred_;
  bool flush_scheduled_ = false;
  DataFetcher fetcher_;
  std::unique_ptr<TaskExecutor> executor_;
  std::vector<ConnectionPtr> peers_;
  bool stopped_ = false;
  // Seceded tasks waiting in rejoin() for a thread (state_mutex_; woken by Rejoined or stop).
  std::unordered_set<std::string> rejoin_waiting_;
  std::condition_variable rejoin_cv_;
  // The client that tasks share (get_client), made on first use; destroyed only after the
  // task threads are joined, as tasks hold references to it.
  std::mutex task_client_mutex_;
  std::unique_ptr<Client> task_client_;
  std::vector<std::unique_ptr<Client>> lost_task_clients_;  // of earlier lives
  bool stopped_tasks_client_ = false;  // the worker stopped: no new client
  // Memory: the policy (none without a limit), its sampling timer, and the pause state.
  std::optional<wrk::MemoryPolicy> memory_policy_;
  asio::steady_timer memory_timer_;
  bool paused_ = false;          // as last told to the state and the scheduler
  bool memory_paused_ = false;   // by the policy
  bool disk_paused_ = false;     // by a spill write that failed
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // guards results posted after destruction
};

/// Resident set size of this process in bytes (0 if unknown).
std::uint64_t current_rss_bytes();
/// Physical memory of the machine in bytes.
std::uint64_t total_memory_bytes();

}  // namespace distrib::detail
