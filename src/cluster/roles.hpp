#pragma once
// Running a scheduler or a worker as the whole life of a process: used by the dscheduler
// and dworker daemons and by programs that LocalCluster re-runs in worker mode.
#include <chrono>
#include <functional>
#include <string>

#include "scheduler/scheduler_server.hpp"
#include "worker/worker_server.hpp"

namespace distrib::detail {

/// Serves until a client asks for shutdown or SIGINT/SIGTERM arrives. `on_ready` gets the
/// listening address. Returns the process exit code; throws CommError if it cannot listen.
int run_scheduler(const SchedulerOptions& options, const std::function<void(const std::string&)>& on_ready);

/// --lifetime: the worker stops on its own after `after` (0: never).
struct WorkerLifetime {
  std::chrono::milliseconds after{0};
  /// Under a nanny, ask it for a fresh process then (else just stop, as without a nanny).
  bool restart = true;
};

/// Serves until the scheduler shuts the cluster down (exit code 0), a signal arrives (0),
/// the scheduler is lost for longer than options.death_timeout (1), or, under a nanny, a
/// restart is due (restartWorker or the lifetime: worker_exit::kRestart). Running tasks are
/// then asked to stop and get options.close_timeout to return; a task still running after
/// that is left behind, so the caller must end the process after this returns. `on_ready`
/// runs once registered. Throws CommError if the scheduler cannot be reached at first.
int run_worker(const WorkerOptions& options, const std::function<void(const std::string&)>& on_ready,
               const WorkerLifetime& lifetime = {});

}  // namespace distrib::detail
