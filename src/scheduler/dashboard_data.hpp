#pragma once
// What the dashboard shows, gathered on the scheduler's thread and published as immutable
// snapshots: the dashboard's threads only ever read the latest snapshot, so viewing the pages
// never touches (or locks) the scheduler's state.
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "scheduler/scheduler_state.hpp"

namespace distrib::detail {

struct DashboardWorker {
  std::string name, address;
  std::uint32_t nthreads = 0;
  std::uint64_t memory_bytes = 0, memory_limit_bytes = 0;
  std::uint64_t managed_bytes = 0, spilled_bytes = 0;  // unmanaged = memory - managed
  bool paused = false;
  double cpu_percent = 0;
  std::uint32_t executing = 0;
  std::size_t processing = 0, stored = 0;
  std::uint64_t stored_bytes = 0, bytes_in = 0, bytes_out = 0;
  std::uint32_t restarts = 0;  // times its nanny restarted it
  bool nanny = false;          // a nanny supervises it
};

struct DashboardPrefix {
  std::string name;
  std::size_t waiting = 0, processing = 0, memory = 0, erred = 0, released = 0;
  std::size_t total() const { return waiting + processing + memory + erred + released; }
};

struct DashboardTaskEvent {
  std::string key, prefix, worker;
  double start = 0, stop = 0;  // seconds since the epoch
};

struct DashboardSnapshot {
  double time = 0;
  std::string scheduler;
  std::vector<DashboardWorker> workers;
  std::vector<DashboardPrefix> prefixes;  // in the order first seen
  std::vector<DashboardTaskEvent> stream;  // oldest first
  std::map<std::string, std::size_t> task_states;  // tasks in the scheduler per state
  double tasks_per_second = 0;
  std::uint64_t tasks_completed = 0, tasks_erred = 0, bytes_transferred = 0;
  std::uint64_t worker_restarts = 0;  // restarted worker processes that registered since the scheduler started
};

/// Collects events on the scheduler's thread and builds snapshots there.
class DashboardRecorder {
 public:
  static constexpr std::size_t kStreamCapacity = 10000;
  static constexpr std::size_t kMaxPrefixes = 1000;

  void task_finished(const std::string& key, const std::string& worker_address, double duration);
  void task_erred(const std::string& key);
  void worker_metrics(std::uint64_t worker, double cpu_seconds, std::uint32_t executing, std::uint64_t bytes_in,
                      std::uint64_t bytes_out);
  void worker_removed(std::uint64_t worker);
  /// A worker registered; `restarts` is its nanny's count so far.
  void worker_registered(std::uint64_t worker, std::uint32_t restarts, bool nanny);
  /// A snapshot of the state now (call on the scheduler's thread).
  std::shared_ptr<const DashboardSnapshot> snapshot(const sched::SchedulerState& state, const std::string& address);

 private:
  struct WorkerSide {
    double cpu_seconds = 0, cpu_percent = 0, last_time = 0;
    std::uint32_t executing = 0;
    std::uint64_t bytes_in = 0, bytes_out = 0;
    std::uint32_t restarts = 0;
    bool nanny = false;
  };
  struct PrefixSide {
    std::size_t order = 0;
    std::size_t finished = 0;  // tasks that reached memory, ever
  };
  std::deque<DashboardTaskEvent> stream_;
  std::unordered_map<std::uint64_t, WorkerSide> workers_;
  std::unordered_map<std::string, PrefixSide> prefixes_;
  std::size_t next_order_ = 0;
  std::uint64_t completed_ = 0, erred_ = 0, removed_bytes_ = 0;
  std::uint64_t restarts_total_ = 0;  // registrations of restarted worker processes
  double last_time_ = 0;
  std::uint64_t last_completed_ = 0;
  double rate_ = 0;
};

/// The latest snapshot, shared between the scheduler's thread (writer) and the dashboard's threads.
/// One transition of a task, for /api/v1/story/<key>.
struct DashboardStoryLine {
  std::string stimulus, from, to, worker;
  double time = 0;
};

class SnapshotBox {
 public:
  /// Answers /api/v1/story/<key> from the scheduler's thread: posts there and waits up to a
  /// timeout; nullopt if the scheduler did not answer (stopping, or busy for that long).
  using StorySource = std::function<std::optional<std::vector<DashboardStoryLine>>(const std::string& key)>;
  void set_story_source(StorySource source) {
    std::lock_guard lock(story_mutex_);
    story_source_ = std::move(source);
  }
  std::optional<std::vector<DashboardStoryLine>> story(const std::string& key) const {
    StorySource source;
    {
      std::lock_guard lock(story_mutex_);
      source = story_source_;
    }
    if (!source) return std::nullopt;
    return source(key);
  }

  void publish(std::shared_ptr<const DashboardSnapshot> s) {
    std::lock_guard lock(mutex_);
    latest_ = std::move(s);
  }
  std::shared_ptr<const DashboardSnapshot> latest() const {
    std::lock_guard lock(mutex_);
    return latest_;
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const DashboardSnapshot> latest_ = std::make_shared<DashboardSnapshot>();
  mutable std::mutex story_mutex_;
  StorySource story_source_;
};

double wall_seconds();

}  // namespace distrib::detail
