#include "comm/io_loop.hpp"

#include "comm/cpu_occupancy.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
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

namespace {
// DISTRIB_IO_SPIN_ADAPTIVE=0 polls for the whole window every time (benchmarks compare).
bool adaptive_spin_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("DISTRIB_IO_SPIN_ADAPTIVE");
    return !(env && std::string(env) == "0");
  }();
  return enabled;
}
}  // namespace

std::chrono::microseconds AdaptiveSpin::window() const {
  if (!adaptive_spin_enabled()) return max_;
  if (max_.count() <= 0 || hit_rate_ < 0.5) return std::chrono::microseconds(0);
  auto w = static_cast<long>(2 * typical_us_ + 20);
  return std::min(max_, std::chrono::microseconds(w));
}

void AdaptiveSpin::record(std::chrono::nanoseconds gap) {
  constexpr double kWeight = 1.0 / 8;
  const double us = static_cast<double>(gap.count()) / 1000;
  const bool hit = us <= static_cast<double>(max_.count());
  hit_rate_ += ((hit ? 1.0 : 0.0) - hit_rate_) * kWeight;
  if (hit) typical_us_ += (us - typical_us_) * kWeight;
}

void run_io(asio::io_context& io, std::chrono::microseconds spin) {
  if (spin.count() <= 0) {
    io.run();
    return;
  }
  using Clock = std::chrono::steady_clock;
  AdaptiveSpin adaptive(spin);
  bool idle = false;  // the last pass found nothing: a gap is being timed
  Clock::time_point idle_since;
  while (!io.stopped()) {
    // Non-blocking passes (each polls the sockets once) until the window passes quietly,
    // but none while tasks hold every core: polling would only slow them down.
    if (io.poll() > 0) {
      if (idle) adaptive.record(Clock::now() - idle_since);
      idle = false;
      continue;
    }
    if (!idle) {
      idle = true;
      idle_since = Clock::now();
    }
    const auto window = adaptive.window();
    bool found = false;
    if (window.count() > 0 && !cores_taken_by_tasks()) {
      auto deadline = idle_since + window;
      for (unsigned pass = 1; !io.stopped() && Clock::now() < deadline; ++pass) {
        if (pass % 16 == 0 && cores_taken_by_tasks()) break;  // a task started meanwhile
        yield_cpu();
        if (io.poll() > 0) {
          found = true;
          break;
        }
      }
    }
    if (io.stopped()) break;
    if (!found) io.run_one();  // blocks until something arrives
    adaptive.record(Clock::now() - idle_since);
    idle = false;
  }
}

}  // namespace distrib::detail
