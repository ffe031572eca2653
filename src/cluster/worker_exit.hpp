#pragma once
// How a worker process tells its nanny what to do next: its exit code. Defined once here
// for the worker side (run_worker) and the nanny side (Nanny), which must agree.
namespace distrib::detail::worker_exit {

/// Stopped on purpose (the scheduler shut the cluster down, or a signal): the nanny exits 0.
inline constexpr int kStopped = 0;
/// Gave up on the scheduler (unreachable, lost, or it rejected the worker), or bad options:
/// the nanny exits with this code too instead of restarting against a dead scheduler.
inline constexpr int kGaveUp = 1;
/// "Restart me" (restartWorker from the scheduler, or --lifetime reached): the nanny starts
/// a fresh worker at once, without backoff. 75 is EX_TEMPFAIL ("try again") in sysexits.h.
inline constexpr int kRestart = 75;
/// exec failed in the child (ChildProcess::spawn): restarting would fail the same way.
inline constexpr int kCannotExecute = 127;
// Anything else, and any death by a signal (abort, segfault, SIGKILL, the OOM killer),
// is a crash: the nanny restarts the worker with exponential backoff.

}  // namespace distrib::detail::worker_exit
