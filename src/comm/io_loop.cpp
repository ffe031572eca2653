#include "comm/io_loop.hpp"

#include "comm/cpu_occupancy.hpp"

#include <pthread.h>
#include <sched.h>

#include <cstdlib>
#include <string>

namespace distrib::detail {

std::chrono::microseconds default_io_spin() {
  static const std::chrono::microseconds spin = [] {
    const char* env = std::getenv("DISTRIB_IO_SPIN_US");
    if (!env || !*env) return std::chrono::microseconds(200);
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end == env || v < 0) return std::chrono::microseconds(200);
    return std::chrono::microseconds(v);
  }();
  return spin;
}

// Lets a runnable thread on this CPU go first.
void yield_cpu() { sched_yield(); }

bool spinning_takes_a_task_core() { return cores_taken_by_tasks(); }

void name_this_thread(const char* name) { pthread_setname_np(pthread_self(), name); }

void run_io(asio::io_context& io, std::chrono::microseconds spin) {
  if (spin.count() <= 0) {
    io.run();
    return;
  }
  using Clock = std::chrono::steady_clock;
  while (!io.stopped()) {
    // Non-blocking passes (each polls the sockets once) until the window passes quietly,
    // but none while tasks hold every core: polling would only slow them down.
    auto deadline = Clock::now() + spin;
    bool busy = false;
    bool may_poll = !cores_taken_by_tasks();
    for (unsigned pass = 1; !io.stopped(); ++pass) {
      if (io.poll() > 0) {
        busy = true;
        break;
      }
      if (!may_poll || Clock::now() >= deadline) break;
      if (pass % 16 == 0 && cores_taken_by_tasks()) break;  // a task started meanwhile
      yield_cpu();
    }
    if (busy || io.stopped()) continue;
    io.run_one();  // blocks until something arrives
  }
}

}  // namespace distrib::detail
