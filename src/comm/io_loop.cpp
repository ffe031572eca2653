#include "comm/io_loop.hpp"

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

void name_this_thread(const char* name) { pthread_setname_np(pthread_self(), name); }

void run_io(asio::io_context& io, std::chrono::microseconds spin) {
  if (spin.count() <= 0) {
    io.run();
    return;
  }
  using Clock = std::chrono::steady_clock;
  while (!io.stopped()) {
    // Non-blocking passes (each polls the sockets once) until the window passes quietly.
    auto deadline = Clock::now() + spin;
    bool busy = false;
    while (!io.stopped()) {
      if (io.poll() > 0) {
        busy = true;
        break;
      }
      if (Clock::now() >= deadline) break;
      yield_cpu();
    }
    if (busy || io.stopped()) continue;
    io.run_one();  // blocks until something arrives
  }
}

}  // namespace distrib::detail
