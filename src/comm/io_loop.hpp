#pragma once
// Running an io_context with a short busy-poll before each sleep.
//
// Why: on virtual machines an idle vCPU is halted, and waking a thread on it costs far more
// than the work it is woken for (about 55 us per wake-up on the 2-vCPU VMs we measure on,
// against about 5 us when the thread is still polling; a plain-socket ping-pong measured
// 117 us blocking and 11 us polling). A trivial task's round trip crosses about eight such
// wake-ups. So each io thread keeps polling its sockets for a short window after its last
// piece of work before it blocks: back-to-back messages find it awake, and a quiet process
// still sleeps after the window (it burns at most the window's CPU per burst). No thread
// polls while tasks run on every core the process may use (comm/cpu_occupancy.hpp): there
// the poll would take its time from a task.
#include <asio/io_context.hpp>

#include <chrono>
#include <mutex>

namespace distrib::detail {

/// The default window: DISTRIB_IO_SPIN_US from the environment (0 turns polling off), else
/// 200 us. Read once per process.
std::chrono::microseconds default_io_spin();

/// How long a thread polls before it blocks, learned from the idle gaps it saw: polling
/// pays only when the next piece of work comes within the window. It polls while at least
/// half of the recent gaps (an average over about 8) ended within `max`, for twice the
/// usual such gap plus 20 us; otherwise not at all, until short gaps come back (a gap that
/// ended after blocking counts too). A thread woken by work every few milliseconds thus
/// stops burning a window of CPU after each piece of it.
class AdaptiveSpin {
 public:
  explicit AdaptiveSpin(std::chrono::microseconds max) : max_(max), typical_us_(static_cast<double>(max.count()) / 4) {}
  std::chrono::microseconds window() const;
  /// An idle gap ended after `gap`, found by polling or after blocking.
  void record(std::chrono::nanoseconds gap);

 private:
  std::chrono::microseconds max_;
  double hit_rate_ = 1.0;  // share of recent gaps that ended within max_
  double typical_us_;      // average of those gaps
};

/// Runs `io` until it is stopped or runs out of work (as io_context::run), polling for up to
/// `spin` (at most; AdaptiveSpin) after each handler before blocking. `spin` of zero is a
/// plain run().
void run_io(asio::io_context& io, std::chrono::microseconds spin);

void yield_cpu();
/// Every core this process may use runs a task (comm/cpu_occupancy.hpp): do not poll.
bool spinning_takes_a_task_core();

/// Names the calling thread (shown by top, ps -L and perf), at most 15 characters.
void name_this_thread(const char* name);

/// Calls `done()` until it returns true or `spin` has passed, yielding the CPU in between;
/// returns its last answer. For threads about to block on a condition that another thread
/// sets within microseconds.
template <class Done>
bool spin_until(Done done, std::chrono::microseconds spin) {
  if (done()) return true;
  if (spin.count() <= 0 || spinning_takes_a_task_core()) return false;
  auto deadline = std::chrono::steady_clock::now() + spin;
  unsigned pass = 0;
  do {
    yield_cpu();
    if (done()) return true;
    if (++pass % 16 == 0 && spinning_takes_a_task_core()) return false;
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

/// spin_until for a condition guarded by `mutex` (taken for each look), before the caller
/// blocks on its condition variable.
template <class Done>
bool spin_until_locked(std::mutex& mutex, Done done, std::chrono::microseconds spin) {
  return spin_until(
      [&] {
        std::lock_guard lock(mutex);
        return done();
      },
      spin);
}

}  // namespace distrib::detail
