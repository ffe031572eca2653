#pragma once
// MemoryPolicy: when a worker spills values to disk, pauses, asks to be restarted, or returns
// freed memory to the OS, decided from samples of its memory, as Dask's WorkerMemoryManager
// and NannyMemoryManager (distributed/worker_memory.py) with the thresholds of its
// distributed.worker.memory.* keys: target 0.60, spill 0.70, pause 0.80, terminate 0.95 of
// the memory limit (issue 16, part 3).
//
// Sans-IO, like WorkerState: it reads no memory, touches no disk, keeps no clock and logs
// nothing. The caller samples (core/process_memory.hpp for the RSS, DataStore for managed
// bytes) about every 100 ms (Dask's monitor-interval), passes the time in, and carries out
// the returned MemoryActions: spilling on a thread of its own, never on the io thread or
// under the state's lock (see data_store.hpp). Tests drive it with made-up samples.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace distrib::detail::wrk {

/// Fractions of the memory limit; nullopt disables a threshold (Dask's `False`).
struct MemoryFractions {
  std::optional<double> target = 0.60;     // managed bytes: spill least recently used values above it
  std::optional<double> spill = 0.70;      // process memory: spill until it is under the target
  std::optional<double> pause = 0.80;      // process memory: start no task, fetch nothing
  std::optional<double> terminate = 0.95;  // process memory: the nanny restarts the worker
};

struct MemoryPolicyOptions {
  std::uint64_t memory_limit = 0;  // bytes; 0: no limit, and the policy never acts (as Dask)
  MemoryFractions fractions;
  /// Spill no more than this much in all (Dask's max-spill; nullopt is its `false`).
  std::optional<std::uint64_t> max_spill_bytes;
  /// Ours: Dask trims nothing by itself (its nanny sets MALLOC_TRIM_THRESHOLD_ instead, which
  /// mimalloc ignores). Unmanaged memory above this fraction of the limit, while process
  /// memory is above the lowest threshold, is handed back to the OS before spilling.
  double trim_unmanaged_fraction = 0.10;
  /// Trim at most this often, and let trims take at most this fraction of the time (the
  /// last trim's duration, from trim_took, over the time since it): Dask's ThrottledGC and
  /// its max_in_gc_frac.
  std::chrono::milliseconds trim_min_interval{1'000};
  double trim_max_time_fraction = 0.05;
  /// "Unmanaged memory use is high" at most this often (Dask's RateLimiterFilter, 300 s).
  std::chrono::seconds unmanaged_warning_interval{300};
};

/// One reading of the worker's memory.
struct MemorySample {
  std::uint64_t process_bytes = 0;  // resident set size
  std::uint64_t managed_bytes = 0;  // stored values in memory (DataStore::managed_bytes)
  std::uint64_t spilled_bytes = 0;  // stored values on disk
  /// Of managed_bytes, those already asked to spill that are still in memory (a spill in
  /// progress): not asked for twice, and expected to leave the process soon.
  std::uint64_t spilling_bytes = 0;
};

enum class PauseChange { none, pause, resume };
/// kill: terminate was asked before and the process is still above the threshold (Dask's
/// nanny then sends SIGKILL after its SIGTERM).
enum class TerminateAction { none, terminate, kill };

/// What to do after a sample. Several may be set at once; trim first, it is the cheapest.
struct MemoryActions {
  /// Managed bytes to move to disk now, least recently used first (0: none).
  std::uint64_t spill_bytes = 0;
  /// The managed bytes in memory once they are spilled (the level spilling stops at).
  std::uint64_t spill_until_managed_bytes = 0;
  /// Process memory, not managed bytes, asked for (part of) spill_bytes.
  bool spill_for_process = false;
  /// max_spill_bytes kept back some of what would have been spilled.
  bool spill_capped = false;
  PauseChange pause = PauseChange::none;
  TerminateAction terminate = TerminateAction::none;
  /// Return freed memory to the OS (core/process_memory.hpp release_free_memory); then tell
  /// the policy how long it took (trim_took).
  bool trim = false;
  /// Process memory stays high with nothing left to spill: the memory is not ours.
  bool unmanaged_warning = false;
  /// Lines to log at warning level, as Dask's: pausing, resuming, terminating, unmanaged.
  std::vector<std::string> warnings;

  bool any() const {
    return spill_bytes > 0 || pause != PauseChange::none || terminate != TerminateAction::none || trim ||
           unmanaged_warning;
  }
};

class MemoryPolicy {
 public:
  using Clock = std::chrono::steady_clock;

  /// Throws std::invalid_argument for a fraction outside (0, 1] or a negative trim setting.
  explicit MemoryPolicy(MemoryPolicyOptions options);

  /// The monitor's tick: pause or resume, terminate, spill for process memory (and for
  /// managed bytes above the target, should the store have missed it), trim, warn.
  MemoryActions sample(const MemorySample& sample, Clock::time_point now);

  /// Managed bytes above the target, to spill at once: Dask's SpillBuffer checks the
  /// target on every insert, so the store calls this after each put, not just each tick.
  std::uint64_t managed_excess(std::uint64_t managed_bytes, std::uint64_t spilling_bytes = 0) const;

  /// How long the trim sample() asked for took: the next waits so that trims take at most
  /// trim_max_time_fraction of the time.
  void trim_took(std::chrono::nanoseconds duration) { last_trim_duration_ = duration; }

  /// A fresh process (the nanny restarted the worker): forgets pause and terminate.
  void process_restarted();

  /// Whether samples are needed at all: a limit and some process threshold (Dask runs its
  /// monitor only then).
  bool active() const;
  bool paused() const { return paused_; }
  std::uint64_t memory_limit() const { return options_.memory_limit; }
  const MemoryFractions& fractions() const { return options_.fractions; }
  /// Each threshold in bytes (floor of limit x fraction); nullopt when disabled or no limit.
  std::optional<std::uint64_t> target_bytes() const { return level(options_.fractions.target); }
  std::optional<std::uint64_t> spill_bytes() const { return level(options_.fractions.spill); }
  std::optional<std::uint64_t> pause_bytes() const { return level(options_.fractions.pause); }
  std::optional<std::uint64_t> terminate_bytes() const { return level(options_.fractions.terminate); }
  /// Where spilling for process memory stops: the target, or the spill threshold itself
  /// when the target is disabled (Dask: "If target=False, disable hysteresis").
  std::optional<std::uint64_t> spill_goal_bytes() const;

 private:
  std::optional<std::uint64_t> level(const std::optional<double>& fraction) const;
  void check_pause(const MemorySample& s, MemoryActions& out, bool& trim_wanted);
  void check_terminate(const MemorySample& s, MemoryActions& out);
  std::uint64_t check_process_spill(const MemorySample& s, Clock::time_point now, MemoryActions& out,
                                    bool& trim_wanted);
  bool trim_allowed(Clock::time_point now) const;

  MemoryPolicyOptions options_;
  bool paused_ = false;
  bool terminate_asked_ = false;
  // A spill run (Dask's _spill loop, here spread over samples): starts above the spill
  // threshold, ends under the goal or when nothing is left to spill.
  bool spilling_ = false;
  std::uint64_t run_need_ = 0;   // process bytes over the goal when the run started
  std::uint64_t run_asked_ = 0;  // bytes asked to spill so far in the run
  std::optional<Clock::time_point> last_trim_;
  std::chrono::nanoseconds last_trim_duration_{0};
  std::optional<Clock::time_point> last_unmanaged_warning_;
};

/// Process memory that is not stored values: RSS minus managed bytes in memory (0 if less),
/// the "unmanaged" of Dask's dashboard.
inline std::uint64_t unmanaged_bytes(const MemorySample& s) {
  return s.process_bytes > s.managed_bytes ? s.process_bytes - s.managed_bytes : 0;
}

}  // namespace distrib::detail::wrk
