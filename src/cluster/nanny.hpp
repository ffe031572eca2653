#pragma once
// Nanny: supervises one worker process, as Dask's Nanny. A worker that crashes (a signal,
// abort, the OOM killer) is started again with exponential backoff; one that asks for a
// restart (restartWorker, --lifetime) is started again at once; one that stopped on purpose
// or gave up on its scheduler is not (worker_exit.hpp has the codes). Used by dworker (the
// nanny is the dworker process itself) and by LocalCluster(processes = true) (a thread of
// the user's program per worker).
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cluster/process.hpp"

namespace distrib::detail {

struct NannyOptions {
  /// How the logs name the worker, e.g. "worker 'alice'".
  std::string name = "worker";
  /// After a stop request: how long the worker has between SIGTERM and SIGKILL.
  std::chrono::milliseconds close_timeout{6'000};
  /// Backoff before restarting a crashed worker: first_backoff, doubling up to max_backoff.
  std::chrono::milliseconds first_backoff{100};
  std::chrono::milliseconds max_backoff{10'000};
  /// A worker that ran at least this long before it crashed counts as stable: the backoff
  /// starts again from first_backoff.
  std::chrono::milliseconds stable_after{30'000};
  /// A worker whose resident memory stays above this for a second is killed (SIGKILL) and
  /// restarted: the backstop for a worker whose own memory monitor (terminate threshold)
  /// cannot act, as Dask's nanny. 0: never.
  std::uint64_t memory_kill_bytes = 0;
};

/// What a worker's end asks of its nanny (see worker_exit.hpp).
enum class WorkerEnd { stopped, gave_up, restart, crashed };
/// Classifies a reaped worker process.
WorkerEnd classify_worker_exit(const ChildProcess& exited);

/// Starts one worker process. `restarts` counts the nanny's restarts so far (0 for the
/// first process). Called on the thread that runs the nanny.
using SpawnWorker = std::function<ChildProcess(std::uint32_t restarts)>;

class Nanny {
 public:
  Nanny(NannyOptions options, SpawnWorker spawn);
  ~Nanny();
  Nanny(const Nanny&) = delete;
  Nanny& operator=(const Nanny&) = delete;

  /// Supervises until the worker ends for good and returns the nanny's exit code: 0 if it
  /// stopped on purpose or request_stop() was called, else the code of the worker that gave
  /// up. `first` is a worker the caller already started (restart count 0); without it,
  /// run() starts one. Call once.
  int run(std::optional<ChildProcess> first = std::nullopt);
  /// Makes run() stop the worker (SIGTERM, then SIGKILL after close_timeout) and return 0.
  /// Thread-safe and async-signal-safe; before run() it makes run() stop at once.
  void request_stop() noexcept;
  /// Restarts so far (thread-safe).
  std::uint32_t restarts() const { return restarts_.load(); }
  /// The current worker process, 0 between processes (thread-safe).
  pid_t worker_pid() const { return pid_.load(); }

 private:
  enum class Wake { exited, stop_requested, timed_out };
  /// Blocks until `child` exits (if given), a stop is requested, or `until` passes.
  Wake wait(ChildProcess* child, std::optional<std::chrono::steady_clock::time_point> until);
  void stop_worker(ChildProcess& child);

  NannyOptions options_;
  SpawnWorker spawn_;
  int wake_read_ = -1, wake_write_ = -1;  // request_stop writes a byte: safe in a signal handler
  std::atomic<bool> stop_requested_{false};
  std::atomic<std::uint32_t> restarts_{0};
  std::atomic<pid_t> pid_{0};
};

/// The variables a nanny adds to its worker's environment: OMP_NUM_THREADS,
/// OPENBLAS_NUM_THREADS and MKL_NUM_THREADS = 1, each only if this process's environment
/// does not set it already (the user's value wins, as in Dask, where variables already in
/// the environment take precedence over distributed.nanny.pre-spawn-environ); and the
/// restart count for take_nanny_context.
std::vector<std::pair<std::string, std::string>> nanny_worker_environment(std::uint32_t restarts);

/// What a worker process knows of its nanny.
struct NannyContext {
  bool nanny = false;          // a nanny started this process
  std::uint32_t restarts = 0;  // times it restarted the worker before this process
};
/// In a worker process: reads DISTRIB_NANNY_RESTARTS, which nanny_worker_environment set,
/// and removes it, so that processes the worker's tasks start do not inherit it. Call
/// before starting threads (it changes the environment).
NannyContext take_nanny_context();

/// dworker's nanny: runs `worker_argv` (dworker's own command line plus --no-nanny) under a
/// Nanny on this thread until the worker ends for good. SIGTERM and SIGINT stop it. The
/// worker dies with this process, even on SIGKILL (PR_SET_PDEATHSIG). Returns the exit code.
int run_nanny(const std::vector<std::string>& worker_argv, NannyOptions options);

}  // namespace distrib::detail
