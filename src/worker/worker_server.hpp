#pragma once
// WorkerServer: a worker's I/O. Keeps the connection to the scheduler, serves its data to
// peers and clients on its own port, fetches inputs from peers, and runs tasks on a thread
// pool. A task thread applies its result to the WorkerState itself (under a mutex) and
// goes on with the next ready task; reports to the scheduler leave from the io thread.
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "comm/connection.hpp"
#include "comm/data_fetcher.hpp"
#include "worker/thread_pool.hpp"
#include "worker/worker_state.hpp"

namespace distrib::detail {

struct WorkerOptions {
  std::string scheduler_address;
  std::string host = "127.0.0.1";  // where this worker listens for peers
  std::uint16_t port = 0;
  std::uint32_t nthreads = 1;
  std::string name;                // default: host-pid
  std::uint64_t memory_limit = 0;  // 0: the machine's memory
  std::vector<std::pair<std::string, double>> resources;  // e.g. {"GPU", 2}
  FrameLimits limits;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds heartbeat_interval{1'000};
  bool nanny = false;         // a nanny supervises this process: restartWorker ends it for a restart
  std::uint32_t restarts = 0;  // times the nanny restarted it so far (sent in registerWorker)
};

/// The reason WorkerServer::stop gets when the scheduler asks a nannied worker to restart.
inline constexpr const char* kRestartRequested = "the scheduler asked for a restart";

class WorkerServer {
 public:
  /// Binds the peer port and connects to the scheduler (blocking, up to connect_timeout).
  /// Throws CommError if either fails.
  WorkerServer(asio::io_context& io, WorkerOptions options);
  ~WorkerServer();

  /// Registers with the scheduler and starts serving. Call on the io thread.
  void start();
  /// Closes every connection; running tasks finish but their results are dropped.
  void stop(const std::string& reason);
  const std::string& address() const { return address_; }
  const std::string& name() const { return options_.name; }
  /// Keys and bytes held (thread-safe: task threads update the state too).
  std::size_t n_stored() const;
  std::uint64_t stored_bytes() const;

  /// Called once registered with the scheduler.
  std::function<void()> on_registered;
  /// Called once, when the worker stops: scheduler shutdown, lost connection or rejection.
  std::function<void(const std::string& reason)> on_stopped;

 private:
  void accept();
  void on_scheduler_message(InMessage&& m);
  void on_peer_message(const ConnectionPtr& conn, bool& handshaken, InMessage&& m);
  /// Applies an event on the io thread.
  void handle(wrk::Event e);
  /// Applies an event with state_mutex_ held, from the io thread (`next` null) or from a
  /// task thread, which gets the next task to run in `next` instead of a hand-off.
  /// Work that must run on the io thread (sends, fetches) goes to `io_work`, to be run
  /// once the mutex is released.
  void apply_locked(wrk::Event e, std::optional<wrk::Execute>* next, std::vector<std::function<void()>>& io_work);
  void post_io_work(std::vector<std::function<void()>> io_work);
  /// Runs `ex` on this task thread, then every task the state hands back to it.
  void run_tasks(wrk::Execute ex);
  void execute(wrk::Execute ex);
  void run_function(const ConnectionPtr& conn, std::uint64_t id, TaskSpec spec);
  void send_heartbeat();
  void flush_reports();

  asio::io_context& io_;
  WorkerOptions options_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer heartbeat_timer_;
  std::string address_;
  ConnectionPtr scheduler_;
  bool scheduler_handshaken_ = false;
  // The state and the reports are shared by the io thread and the task threads: a task
  // thread applies its own result and takes the next ready task itself, so short tasks
  // run back to back without two thread hand-offs each.
  mutable std::mutex state_mutex_;
  wrk::WorkerState state_;
  std::vector<wrk::SendTaskFinished> finished_;  // reports not yet sent
  std::vector<wrk::SendTaskErred> erred_;
  bool flush_scheduled_ = false;
  DataFetcher fetcher_;
  std::unique_ptr<ThreadPool> pool_;
  std::vector<ConnectionPtr> peers_;
  bool stopped_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // guards results posted after destruction
};

/// Resident set size of this process in bytes (0 if unknown).
std::uint64_t current_rss_bytes();
/// Physical memory of the machine in bytes.
std::uint64_t total_memory_bytes();

}  // namespace distrib::detail
