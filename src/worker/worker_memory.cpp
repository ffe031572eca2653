// WorkerServer's memory (issue 16): the store that spills, the monitor that samples the
// process every 100 ms and carries out MemoryPolicy's actions (spill, pause and resume,
// trim, terminate), and pausing on a full spill disk. Disk I/O is the store's spill thread's:
// nothing here reads or writes a spill file, and the state's lock is held only to choose.
#include <unistd.h>

#include <cstdlib>
#include <utility>

#include "cluster/worker_exit.hpp"
#include "core/log.hpp"
#include "core/memory_limit.hpp"
#include "core/process_memory.hpp"
#include "worker/worker_server.hpp"
#include "worker/worker_wire.hpp"

namespace distrib::detail {

namespace {
constexpr auto kMonitorInterval = std::chrono::milliseconds(100);  // Dask's memory monitor-interval
// The status message's time to leave before a worker over the terminate threshold exits.
constexpr auto kTerminateFlush = std::chrono::milliseconds(100);
}  // namespace

std::unique_ptr<wrk::DataStore> WorkerServer::make_store() {
  // Without a limit, or with neither the target nor the spill threshold, nothing spills.
  const auto& f = options_.memory_fractions;
  if (options_.memory_limit == 0 || (!f.target && !f.spill)) return std::make_unique<wrk::MemoryStore>();
  wrk::SpillOptions so;
  so.local_directory = options_.local_directory;
  if (f.target) so.target_bytes = static_cast<std::uint64_t>(static_cast<double>(options_.memory_limit) * *f.target);
  auto store = std::make_unique<wrk::SpillingStore>(so);  // throws naming an unusable directory
  spill_ = store.get();  // its on_drained is set in the constructor's body, once alive_ is
  log().info("worker spills to {} past {} of managed memory (limit {})", spill_->directory(),
             so.target_bytes ? format_byte_size(so.target_bytes) : std::string("no target"),
             format_byte_size(options_.memory_limit));
  return store;
}

void WorkerServer::start_memory_monitor() {
  if (stopped_) return;
  const bool watch_process = memory_policy_ && memory_policy_->active();
  if (!watch_process && !spill_) return;  // nothing to sample: no limit
  memory_timer_.expires_after(kMonitorInterval);
  memory_timer_.async_wait([this](asio::error_code ec) {
    if (ec || stopped_) return;
    check_memory();
    start_memory_monitor();
  });
}

void WorkerServer::check_memory() {
  wrk::MemorySample sample;
  std::optional<std::string> disk_error;
  {
    std::lock_guard lock(state_mutex_);
    if (spill_) {
      auto st = spill_->stats();
      sample.managed_bytes = st.memory_bytes;
      sample.spilled_bytes = st.spilled_bytes;
      sample.spilling_bytes = st.pending_bytes;
      disk_error = spill_->last_error();
    } else {
      sample.managed_bytes = state_.stored_bytes();
    }
  }
  const bool watch_process = memory_policy_ && memory_policy_->active();
  sample.process_bytes = watch_process ? current_rss_bytes() : sample.managed_bytes;

  // A spill write failed (disk full, directory gone or read-only): the value stayed in
  // memory; pause so that memory stops growing, and try writing again once it is back
  // under the target (values were released, or the disk freed).
  if (spill_ && disk_error && !disk_paused_) {
    log().error("worker '{}': {}; pausing until memory is back under the target", options_.name, *disk_error);
    disk_paused_ = true;
  } else if (disk_paused_ && sample.managed_bytes <= spill_->target()) {
    log().warn("worker '{}': memory is back under the target: trying {} again", options_.name, spill_->directory());
    std::lock_guard lock(state_mutex_);
    spill_->clear_error();
    disk_paused_ = false;
  }

  if (watch_process) {
    auto actions = memory_policy_->sample(sample, std::chrono::steady_clock::now());
    for (const auto& line : actions.warnings) log().warn("worker '{}': {}", options_.name, line);
    if (actions.trim) {
      auto t0 = std::chrono::steady_clock::now();
      release_free_memory();
      memory_policy_->trim_took(std::chrono::steady_clock::now() - t0);
    }
    if (actions.spill_bytes > 0 && spill_) {
      std::lock_guard lock(state_mutex_);  // choosing only: the spill thread writes
      spill_->spill_lru(actions.spill_bytes);
    }
    if (actions.pause == wrk::PauseChange::pause) memory_paused_ = true;
    if (actions.pause == wrk::PauseChange::resume) memory_paused_ = false;
    if (actions.terminate != wrk::TerminateAction::none) {
      auto why = "process memory " + format_byte_size(sample.process_bytes) + " is past " +
                 std::to_string(static_cast<int>(*memory_policy_->fractions().terminate * 100 + 0.5)) +
                 "% of the memory limit " + format_byte_size(memory_policy_->memory_limit());
      if (options_.nanny) return terminate_for_memory(why);
      static bool said = false;  // without a nanny nobody would start a fresh process
      if (!std::exchange(said, true))
        log().error("worker '{}': {}, but no nanny supervises it: going on", options_.name, why);
    }
  }
  const bool want = memory_paused_ || disk_paused_;
  if (want != paused_) {
    std::string reason = disk_paused_ && disk_error ? *disk_error
                         : want ? "process memory " + format_byte_size(sample.process_bytes) + " is past the pause threshold"
                                : "memory is back under the pause threshold";
    set_paused(want, reason);
  }
}

void WorkerServer::set_paused(bool paused, const std::string& reason) {
  paused_ = paused;  // logged by the caller: MemoryPolicy's warnings, or the disk error
  handle(wrk::Pause{paused});
  if (scheduler_) scheduler_->send(wire::make_worker_status(paused, reason));
}

void WorkerServer::terminate_for_memory(const std::string& reason) {
  log().error("worker '{}': {}: exiting so that its nanny starts a fresh process", options_.name, reason);
  if (scheduler_) scheduler_->send(wire::make_worker_status(true, "restarting: " + reason, true));
  memory_timer_.expires_after(kTerminateFlush);
  memory_timer_.async_wait([](asio::error_code) {
    log().flush();
    // Not stop(): a polite goodbye would tell the scheduler its tasks are not to blame.
    // The spill directory is left to the next worker, which removes it (unlocked).
    std::_Exit(worker_exit::kRestart);
  });
}

}  // namespace distrib::detail
