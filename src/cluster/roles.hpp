#pragma once
// Running a scheduler or a worker as the whole life of a process: used by the dscheduler
// and dworker daemons and by programs that LocalCluster re-runs in worker mode.
#include <functional>
#include <string>

#include "scheduler/scheduler_server.hpp"
#include "worker/worker_server.hpp"

namespace distrib::detail {

/// Serves until a client asks for shutdown or SIGINT/SIGTERM arrives. `on_ready` gets the
/// listening address. Returns the process exit code; throws CommError if it cannot listen.
int run_scheduler(const SchedulerOptions& options, const std::function<void(const std::string&)>& on_ready);

/// Serves until the scheduler shuts the cluster down (exit code 0), a signal arrives (0) or
/// the scheduler is lost for longer than options.death_timeout (1). Running tasks are then
/// asked to stop and get options.close_timeout to return; a task still running after that
/// is left behind, so the caller must end the process after this returns. `on_ready` runs
/// once registered. Throws CommError if the scheduler cannot be reached at first.
int run_worker(const WorkerOptions& options, const std::function<void(const std::string&)>& on_ready);

}  // namespace distrib::detail
