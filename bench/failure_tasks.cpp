// Task functions for bench_failure_recovery, in a library that its dworkers load with
// --preload (the benchmark links it too, so that its client can name them).
#include <distrib/task.hpp>

#include <unistd.h>

#include <chrono>
#include <thread>

/// Sleeps `ms` milliseconds, then returns the id of the process that ran it.
int sleep_then_pid(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return static_cast<int>(getpid());
}
DISTRIB_TASK(sleep_then_pid);
