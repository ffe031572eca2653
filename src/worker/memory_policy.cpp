#include "worker/memory_policy.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/memory_limit.hpp"

namespace distrib::detail::wrk {

namespace {
std::uint64_t saturating_sub(std::uint64_t a, std::uint64_t b) { return a > b ? a - b : 0; }

int percent(std::uint64_t bytes, std::uint64_t limit) {
  return static_cast<int>(static_cast<double>(bytes) / static_cast<double>(limit) * 100);  // Dask's int(frac * 100)
}

std::string usage(const MemorySample& s, std::uint64_t limit) {
  return "Process memory: " + format_byte_size(s.process_bytes) + " -- Worker memory limit: " + format_byte_size(limit);
}

void check_fraction(const std::optional<double>& f, const char* name) {
  if (f && !(*f > 0 && *f <= 1))
    throw std::invalid_argument(std::string("memory ") + name + " fraction " + std::to_string(*f) +
                                ": expected a fraction in (0, 1], or none to disable it");
}
}  // namespace

MemoryPolicy::MemoryPolicy(MemoryPolicyOptions options) : options_(std::move(options)) {
  check_fraction(options_.fractions.target, "target");
  check_fraction(options_.fractions.spill, "spill");
  check_fraction(options_.fractions.pause, "pause");
  check_fraction(options_.fractions.terminate, "terminate");
  if (!(options_.trim_unmanaged_fraction >= 0) || !(options_.trim_max_time_fraction > 0) ||
      options_.trim_min_interval.count() < 0)
    throw std::invalid_argument("memory trim settings: expected a fraction >= 0, a time fraction > 0, an interval >= 0");
}

std::optional<std::uint64_t> MemoryPolicy::level(const std::optional<double>& fraction) const {
  if (!fraction || options_.memory_limit == 0) return std::nullopt;
  // Integer levels compare as Dask's fractions do: bytes > floor(limit * f) iff bytes / limit > f.
  return static_cast<std::uint64_t>(std::floor(static_cast<double>(options_.memory_limit) * *fraction));
}

std::optional<std::uint64_t> MemoryPolicy::spill_goal_bytes() const {
  if (!spill_bytes()) return std::nullopt;
  // Dask's _spill: `target = memory_limit * (target_fraction or spill_fraction)`.
  return target_bytes() ? target_bytes() : spill_bytes();
}

bool MemoryPolicy::active() const {
  const auto& f = options_.fractions;
  return options_.memory_limit > 0 && (f.spill || f.pause || f.terminate);
}

std::uint64_t MemoryPolicy::managed_excess(std::uint64_t managed_bytes, std::uint64_t spilling_bytes) const {
  // Dask's SpillBuffer is a zict LRU of capacity limit * target: an insert evicts the least
  // recently used values while the total is above it. No target, no limit: Dask keeps a
  // buffer of unbounded capacity, or a plain dict.
  const auto target = target_bytes();
  if (!target) return 0;
  return saturating_sub(saturating_sub(managed_bytes, spilling_bytes), *target);
}

void MemoryPolicy::process_restarted() {
  paused_ = false;
  terminate_asked_ = false;
  spilling_ = false;
  run_need_ = run_asked_ = 0;
}

void MemoryPolicy::check_terminate(const MemorySample& s, MemoryActions& out) {
  // Dask's NannyMemoryManager.memory_monitor: above terminate (memory / limit > fraction) it
  // sends SIGTERM once per process, and SIGKILL on a later tick if the process is still
  // there and still above. Below the threshold nothing is forgotten: a process asked to
  // stop stays asked.
  const auto terminate = terminate_bytes();
  if (!terminate || s.process_bytes <= *terminate) return;
  const int frac = static_cast<int>(std::lround(*options_.fractions.terminate * 100));
  if (!terminate_asked_) {
    terminate_asked_ = true;
    out.terminate = TerminateAction::terminate;
    out.warnings.push_back("Worker exceeded " + std::to_string(frac) + "% memory budget. Restarting... " +
                           usage(s, options_.memory_limit));
  } else {
    out.terminate = TerminateAction::kill;
    out.warnings.push_back("Worker is still above " + std::to_string(frac) +
                           "% memory budget after being asked to stop; killing it. " + usage(s, options_.memory_limit));
  }
}

void MemoryPolicy::check_pause(const MemorySample& s, MemoryActions& out, bool& trim_wanted) {
  // Dask's _maybe_pause_or_unpause: pause while memory / limit > pause, and resume on the
  // first sample at or below it; no band in between (the spill threshold below pause, with
  // its own hysteresis, is what brings memory down). While above, Dask runs a throttled
  // garbage collection on each tick; we trim.
  const auto pause = pause_bytes();
  if (!pause) return;
  if (s.process_bytes > *pause) {
    trim_wanted = true;
    if (!paused_) {
      paused_ = true;
      out.pause = PauseChange::pause;
      out.warnings.push_back("Worker is at " + std::to_string(percent(s.process_bytes, options_.memory_limit)) +
                             "% memory usage. Pausing worker.  " + usage(s, options_.memory_limit));
    }
  } else if (paused_) {
    paused_ = false;
    out.pause = PauseChange::resume;
    out.warnings.push_back("Worker is at " + std::to_string(percent(s.process_bytes, options_.memory_limit)) +
                           "% memory usage. Resuming worker. " + usage(s, options_.memory_limit));
  }
}

std::uint64_t MemoryPolicy::check_process_spill(const MemorySample& s, Clock::time_point now, MemoryActions& out,
                                                bool& trim_wanted) {
  // Dask's _maybe_spill and _spill: above the spill threshold, evict until process memory is
  // under the goal (the target), re-measuring after each value. Here the loop is spread over
  // samples: a run starts above spill and goes on, sample after sample, down to the goal.
  const auto spill = spill_bytes();
  if (!spill) return 0;
  const std::uint64_t goal = *spill_goal_bytes();
  if (!spilling_ && s.process_bytes > *spill) {
    spilling_ = true;
    run_need_ = s.process_bytes - goal;  // Dask's `need = memory - target`
    run_asked_ = 0;
  }
  if (!spilling_) return 0;
  if (s.process_bytes <= goal) {  // Dask's `while memory > target`
    spilling_ = false;
    return 0;
  }
  if (s.managed_bytes == 0) {
    // Dask: `if not data.fast:` warn and stop; the next tick starts again only above spill.
    // Values being spilled still count in managed_bytes: their memory is about to go.
    spilling_ = false;
    const bool due = !last_unmanaged_warning_ || now - *last_unmanaged_warning_ >= options_.unmanaged_warning_interval;
    if (due) {
      last_unmanaged_warning_ = now;
      out.unmanaged_warning = true;
      out.warnings.push_back(
          "Unmanaged memory use is high. This may indicate a memory leak or the memory may not be released to "
          "the OS; see the Memory section of docs/user-guide.md. -- Unmanaged memory: " +
          format_byte_size(unmanaged_bytes(s)) + " -- Worker memory limit: " + format_byte_size(options_.memory_limit));
    }
    return 0;
  }
  // Dask: `if total_spilled > need and memory > target: gc.collect()`: spilled enough and
  // memory did not follow, so it is freed but not returned. Spilled: asked, and no longer
  // in progress.
  if (saturating_sub(run_asked_, s.spilling_bytes) > run_need_) trim_wanted = true;
  // What is being spilled will leave memory: ask only for the rest.
  return saturating_sub(s.process_bytes - goal, s.spilling_bytes);
}

bool MemoryPolicy::trim_allowed(Clock::time_point now) const {
  if (!last_trim_) return true;
  // ThrottledGC: skip when collecting now would take more than max_in_gc_frac of the time.
  const auto busy = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double, std::nano>(static_cast<double>(last_trim_duration_.count()) /
                                               options_.trim_max_time_fraction));
  return now - *last_trim_ >= std::max<Clock::duration>(options_.trim_min_interval, busy);
}

MemoryActions MemoryPolicy::sample(const MemorySample& s, Clock::time_point now) {
  MemoryActions out;
  if (options_.memory_limit == 0) return out;  // Dask: no limit, no monitor
  bool trim_wanted = false;
  check_terminate(s, out);
  check_pause(s, out, trim_wanted);
  const std::uint64_t for_process = check_process_spill(s, now, out, trim_wanted);
  const std::uint64_t for_managed = managed_excess(s.managed_bytes, s.spilling_bytes);

  // Ours: process memory above the lowest threshold with a sizeable part of it not ours is
  // likely freed memory the allocators keep; handing it back costs no disk write.
  const auto& f = options_.fractions;
  std::optional<std::uint64_t> lowest;
  for (const auto& fraction : {f.target, f.spill, f.pause, f.terminate})
    if (auto l = level(fraction)) lowest = lowest ? std::min(*lowest, *l) : *l;
  const auto unmanaged_high = static_cast<double>(options_.memory_limit) * options_.trim_unmanaged_fraction;
  if (lowest && s.process_bytes > *lowest && static_cast<double>(unmanaged_bytes(s)) >= unmanaged_high)
    trim_wanted = true;
  if (trim_wanted && trim_allowed(now)) {
    out.trim = true;
    last_trim_ = now;
  }

  // Trimming may bring process memory down by itself: the spill it would need waits for the
  // next sample, which measures after the trim. Spills for managed bytes do not wait.
  const std::uint64_t process_part = out.trim ? 0 : for_process;
  const std::uint64_t in_memory = saturating_sub(s.managed_bytes, s.spilling_bytes);
  std::uint64_t bytes = std::min(std::max(process_part, for_managed), in_memory);
  if (options_.max_spill_bytes) {
    // Dask's max-spill: the store refuses to spill past it and keeps the value in memory.
    const auto room = saturating_sub(*options_.max_spill_bytes, s.spilled_bytes + s.spilling_bytes);
    if (bytes > room) {
      bytes = room;
      out.spill_capped = true;
    }
  }
  out.spill_bytes = bytes;
  out.spill_for_process = bytes > 0 && process_part > for_managed;
  out.spill_until_managed_bytes = in_memory - bytes;
  if (out.spill_for_process) run_asked_ += bytes;
  return out;
}

}  // namespace distrib::detail::wrk
