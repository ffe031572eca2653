#pragma once
// The whole command line of the two daemons, inside libdistrib: `dscheduler` and `dworker`
// are thin mains around these, and so are `drun` and a program started with
// `--distrib-worker` (your program as the worker, issue 18), which accept exactly the same
// flags.
#include <string>
#include <vector>

namespace distrib::detail {

/// `dscheduler ARGS...`: `program` names it in help and errors; `args` exclude it. Returns
/// the exit code.
int scheduler_main(const std::string& program, const std::vector<std::string>& args);

/// `dworker ARGS...`. Under a nanny (the default) the worker process is started as
/// `relaunch` + `args` + `--no-nanny` (`relaunch`: {"/path/dworker"}, or
/// {"/path/app", "--distrib-worker"}). Returns the exit code, or ends the process with it
/// once the worker has served (a task that ignores its stop request is not waited for).
int worker_main(const std::string& program, const std::vector<std::string>& args,
                const std::vector<std::string>& relaunch);

}  // namespace distrib::detail
