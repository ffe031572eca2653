#pragma once
// LocalCluster: a scheduler and workers on this machine, as dask.distributed.LocalCluster.
//
//   int main(int argc, char** argv) {
//     distrib::init(argc, argv);          // required for processes = true (the default)
//     distrib::LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1});
//     distrib::Client client(cluster);
//     ...
//   }
//
// With `processes = true` the scheduler and every worker are child processes that re-run
// this same program in worker mode (distrib::init sees that and never returns), so task
// functions defined in the program work there with no extra build step. The children die
// with this process, even if it is killed with SIGKILL. With `processes = false` the
// scheduler and workers run as threads inside this process.
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "distrib/config.hpp"
#include "distrib/security.hpp"

namespace distrib {

/// Each field's default comes from the configuration (config.hpp: local-cluster.*); a field
/// you set wins.
struct LocalClusterOptions {
  /// Number of workers; 0 chooses as Dask does from the number of cores.
  int n_workers = static_cast<int>(config::get_int("local-cluster.n-workers"));
  /// Threads per worker; 0 chooses as Dask does from the number of cores.
  int threads_per_worker = static_cast<int>(config::get_int("local-cluster.threads-per-worker"));
  /// Child processes (true, as Dask) or threads in this process (false).
  bool processes = config::get_bool("local-cluster.processes");
  /// Interface the scheduler and workers listen on.
  std::string host = config::get("local-cluster.host");
  /// Log level of the scheduler and workers (spdlog names: trace ... off).
  std::string log_level = config::get("local-cluster.log-level");
  /// How long the constructor waits for the scheduler and every worker to be ready.
  std::chrono::milliseconds start_timeout = config::get_duration("local-cluster.start-timeout");
  /// The scheduler's web dashboard, as Dask: ":8787" (on `host`; if that port is taken,
  /// any free port, with a warning), "host:port", "0" (any free port), or "none".
  /// client.dashboard_link() gives its URL.
  std::string dashboard_address = config::get("local-cluster.dashboard-address");
  /// Workers hand large values to each other and to clients on this host through shared
  /// memory instead of loopback sockets (see the user guide). false sets
  /// DISTRIB_SHARED_MEMORY=0 for the worker processes; with processes = false, the
  /// program's own DISTRIB_SHARED_MEMORY decides.
  bool shared_memory = config::get_bool("local-cluster.shared-memory");
  /// Each worker's memory limit, as Dask's LocalCluster(memory_limit=...): "auto" (the
  /// machine's memory times min(1, threads_per_worker / cores), so that the workers share
  /// it), a size ("4GiB", "512MB", bytes), a fraction of the machine ("0.25"), or "0" /
  /// "none" for no limit. Past the thresholds below, a worker spills values to disk,
  /// pauses, or is restarted (see the user guide's "Memory"). The constructor throws
  /// std::invalid_argument for text it cannot read.
  std::string memory_limit = config::get("local-cluster.memory-limit");
  /// Fractions of memory_limit, as Dask's distributed.worker.memory.* (std::nullopt turns one
  /// off): spill stored values past `target` of the limit; by process memory, spill down to
  /// the target past `spill`, start no task past `pause`, restart the worker past
  /// `terminate` (processes = true only; with workers in this process only the target
  /// applies, as their process memory is the program's).
  std::optional<double> memory_target_fraction = config::get_fraction("local-cluster.memory.target");
  std::optional<double> memory_spill_fraction = config::get_fraction("local-cluster.memory.spill");
  std::optional<double> memory_pause_fraction = config::get_fraction("local-cluster.memory.pause");
  std::optional<double> memory_terminate_fraction = config::get_fraction("local-cluster.memory.terminate");
  /// Where workers make their private spill directories (removed when they exit); empty:
  /// $TMPDIR or /tmp.
  std::string local_directory = config::get("local-cluster.local-directory");
  /// TLS files and token for every connection of the cluster (security.hpp), e.g.
  /// `Security::temporary()` for mutual TLS with a throw-away CA, as Dask's
  /// `LocalCluster(security=True)`. Unset parts come from the environment
  /// (DISTRIB_AUTH_TOKEN, DISTRIB_TLS_*). A Client made from the cluster uses the same.
  Security security;
};

/// How LocalCluster::adapt decides, as Dask's Adaptive.
struct AdaptOptions {
  /// How often it looks at the scheduler.
  std::chrono::milliseconds interval{1000};
  /// Checks in a row a worker must have been idle before it is retired.
  int wait_count = 3;
};

class LocalCluster {
 public:
  explicit LocalCluster(LocalClusterOptions options = {});
  /// Stops the workers and the scheduler: no child process outlives the cluster.
  ~LocalCluster();
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  /// "tcp://host:port" of the scheduler.
  const std::string& scheduler_address() const;
  /// The security the cluster's connections use (what a Client of it needs).
  const Security& security() const;
  /// Workers now (scale and adapt change it).
  int n_workers() const;
  int threads_per_worker() const;
  bool processes() const;
  /// Scales to `n` workers, as Dask's cluster.scale(n). New workers (named worker-<k>, k
  /// counting on) are started and registered before it returns. Removed ones, the newest
  /// first, are retired gracefully (Client::retire_workers): what only they hold moves to
  /// the workers that stay, so nothing is recomputed. Throws std::invalid_argument for
  /// n < 0, distrib::Error if a worker does not start or the retirement fails.
  void scale(int n);
  /// Adaptive scaling between `minimum` and `maximum` workers, as Dask's cluster.adapt():
  /// every `options.interval` it starts workers while more tasks are runnable (processing,
  /// queued or waiting for a worker) than there are threads, and retires workers that were
  /// idle for `options.wait_count` checks in a row, down to `minimum`. Replaces an earlier
  /// adapt(); stop_adapting() or close() ends it. Errors of a check are logged and the next
  /// check tries again.
  void adapt(int minimum, int maximum, AdaptOptions options = {});
  void stop_adapting();
  /// Stops everything (idempotent; the destructor calls it).
  void close();

  class Impl;

 private:
  friend class Client;  // a client made from the cluster can shut it down
  std::shared_ptr<Impl> impl_;
};

/// Call first thing in main(). In a process started by LocalCluster to be a scheduler or a
/// worker, it runs that role and exits the process. Started as
/// `./app --distrib-worker ARGS...`, the program is a worker with dworker's command line
/// ARGS (`./app --distrib-worker tcp://head:8786 --nthreads 8`, or `--scheduler-file F`),
/// so its DISTRIB_TASK functions run on any host without a separate library; it exits when
/// the worker stops. Otherwise it returns at once.
void init(int argc, char** argv);

/// True once init() was called in this process.
bool initialized();

}  // namespace distrib
