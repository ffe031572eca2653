// What the scheduler's state looks like from outside: introspection for the server, the
// dashboard and tests, the per-key story, and validate().
#include <map>
#include <stdexcept>

#include "scheduler/scheduler_impl.hpp"

namespace distrib::detail::sched {

std::size_t SchedulerState::n_tasks() const { return impl_->tasks.size(); }
std::size_t SchedulerState::n_workers() const { return impl_->workers.size(); }
std::uint32_t SchedulerState::total_threads() const {
  std::uint32_t n = 0;
  for (auto& [id, w] : impl_->workers) n += w.nthreads;
  return n;
}

std::optional<TaskStatus> SchedulerState::status(const std::string& key) const {
  auto* ts = impl_->find(key);
  if (!ts) return std::nullopt;
  return ts->status;
}

WorkerId SchedulerState::processing_on(const std::string& key) const {
  auto* ts = impl_->find(key);
  return ts ? ts->processing_on : 0;
}

std::vector<WorkerId> SchedulerState::who_has(const std::string& key) const {
  auto* ts = impl_->find(key);
  return ts ? ts->who_has : std::vector<WorkerId>{};
}

std::optional<std::uint64_t> SchedulerState::nbytes(const std::string& key) const {
  auto* ts = impl_->find(key);
  if (!ts || ts->status != TaskStatus::memory) return std::nullopt;
  return ts->nbytes;
}

std::optional<double> SchedulerState::prefix_duration(const std::string& prefix) const {
  auto it = impl_->durations.find(prefix);
  if (it == impl_->durations.end()) return std::nullopt;
  return it->second;
}

std::vector<SchedulerState::WorkerSnapshot> SchedulerState::workers(bool with_keys) const {
  std::vector<WorkerSnapshot> out;
  for (auto& [id, w] : impl_->workers) {
    WorkerSnapshot s{id, w.name, w.address, w.nthreads, w.memory_limit, w.memory_bytes, w.processing.size(),
                     w.has_what.size(), w.stored_bytes(), {}, w.managed_bytes, w.spilled_bytes, w.paused};
    if (with_keys)
      for (auto* ts : w.has_what) s.keys.push_back(ts->key);
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return out;
}

std::vector<std::pair<std::string, std::size_t>> SchedulerState::task_counts() const {
  std::map<std::string, std::size_t> counts;
  for (std::size_t i = 0; i < kStatuses; ++i)
    if (impl_->status_totals[i] > 0) counts[to_string(static_cast<TaskStatus>(i))] = impl_->status_totals[i];
  return {counts.begin(), counts.end()};
}

std::unordered_map<std::string, SchedulerState::PrefixCounts> SchedulerState::prefix_counts() const {
  std::unordered_map<std::string, PrefixCounts> out;
  for (const auto& [prefix, tally] : impl_->tallies) {
    PrefixCounts c;
    for (std::size_t i = 0; i < kStatuses; ++i) {
      auto n = tally.by_status[i];
      switch (static_cast<TaskStatus>(i)) {
        case TaskStatus::processing: c.processing += n; break;
        case TaskStatus::memory: c.memory += n; break;
        case TaskStatus::erred: c.erred += n; break;
        default: c.waiting += n; break;
      }
    }
    if (c.processing + c.memory + c.erred + c.waiting > 0) out.emplace(prefix, c);
  }
  return out;
}

std::vector<std::string> SchedulerState::wanted_by(ClientId client) const {
  std::vector<std::string> out;
  auto c = impl_->clients.find(client);
  if (c != impl_->clients.end())
    for (auto* ts : c->second) out.push_back(ts->key);
  return out;
}

std::vector<std::string> SchedulerState::keys_on(WorkerId worker) const {
  std::vector<std::string> keys;
  auto w = impl_->workers.find(worker);
  if (w == impl_->workers.end()) return keys;
  keys.reserve(w->second.has_what.size());
  for (auto* ts : w->second.has_what) keys.push_back(ts->key);
  return keys;
}

std::size_t SchedulerState::n_processing(WorkerId worker) const {
  auto w = impl_->workers.find(worker);
  return w == impl_->workers.end() ? 0 : w->second.processing.size();
}
std::vector<StoryEntry> SchedulerState::story(const std::string& key) const {
  auto* ts = impl_->find(key);
  return ts ? ts->story : std::vector<StoryEntry>{};
}

std::string SchedulerState::worker_address(WorkerId worker) const {
  auto it = impl_->worker_addresses.find(worker);
  return it == impl_->worker_addresses.end() ? std::string() : it->second;
}

void SchedulerState::validate() const {
  auto fail = [](const std::string& what) { throw std::logic_error("SchedulerState invariant broken: " + what); };
  if (!impl_->violations.empty()) fail(impl_->violations.front());
  std::array<std::size_t, kStatuses> totals{};
  std::unordered_map<std::string, PrefixTally> tallies;
  impl_->tasks.for_each([&](const TaskState& ts) {
    ++totals[static_cast<std::size_t>(ts.status)];
    ++tallies[ts.prefix].by_status[static_cast<std::size_t>(ts.status)];
  });
  if (totals != impl_->status_totals) fail("the per-status totals drifted from the tasks");
  if (tallies.size() != impl_->tallies.size()) fail("a prefix tally is missing, or kept with no live task");
  for (const auto& [prefix, tally] : impl_->tallies)
    if (tally.by_status != tallies[prefix].by_status) fail("the tally of prefix '" + prefix + "' drifted");
  impl_->tasks.for_each([&](TaskState& task) {
    TaskState* ts = &task;
    const std::string& key = task.key;
    if (impl_->find(key) != ts) fail("task " + key + " is not found under its key");
    if (!ts->story.empty() && ts->story.back().to != ts->status) fail(key + "'s story does not end at its status");
    if (ts->status == TaskStatus::processing) {
      auto w = impl_->workers.find(ts->processing_on);
      if (w == impl_->workers.end() || !w->second.processing.count(ts))
        fail(key + " is processing on a worker that does not list it");
      // Assigned ahead, it waits only on inputs that are being computed.
      std::size_t unfinished = 0;
      for (auto* d : ts->dependencies) {
        if (d->status == TaskStatus::memory) continue;
        ++unfinished;
        if (d->status != TaskStatus::processing) fail(key + " is processing, but its input " + d->key + " is " + to_string(d->status));
      }
      if (unfinished != ts->waiting_on) fail(key + " is processing and waits on a wrong number of inputs");
    }
    if (ts->status == TaskStatus::memory && ts->who_has.empty()) fail(key + " is in memory nowhere");
    if (ts->status != TaskStatus::memory && !ts->who_has.empty()) fail(key + " has holders but is " + to_string(ts->status));
    if (ts->status == TaskStatus::waiting) {
      std::size_t missing = 0;
      for (auto* d : ts->dependencies) missing += d->status != TaskStatus::memory;
      if (missing != ts->waiting_on || missing == 0) fail(key + " waits on a wrong number of dependencies");
    }
    if ((ts->status == TaskStatus::no_worker) != (impl_->unrunnable.count(ts) == 1))
      fail(key + " no-worker bookkeeping is inconsistent");
    if ((ts->status == TaskStatus::queued) != (impl_->queued.count(ts) == 1))
      fail(key + " queue bookkeeping is inconsistent");
    for (auto* d : ts->dependencies) {
      if (impl_->find(d->key) != d) fail(key + " depends on a forgotten task");
      if (std::find(d->dependents.begin(), d->dependents.end(), ts) == d->dependents.end())
        fail(key + " is missing from its dependency's dependents");
    }
    if (ts->who_wants.empty() && ts->dependents.empty() &&
        (ts->status == TaskStatus::released || ts->status == TaskStatus::erred))
      fail(key + " should have been forgotten");
  });
  std::size_t free = 0, overloaded = 0;
  for (auto& [id, w] : impl_->workers) {
    free += w.has_free_thread();
    overloaded += w.overloaded();
    if (w.has_free_thread() != w.counted_free || w.overloaded() != w.counted_overloaded)
      fail("worker " + w.address + " is counted with a stale load");
    if (w.load != w.occupancy / w.nthreads || !impl_->by_load.count(&w))
      fail("worker " + w.address + " is filed in the load index under a stale load");
    std::size_t ahead = 0, seceded = 0;
    for (auto* ts : w.processing) {
      seceded += ts->seceded;
      if (ts->status != TaskStatus::processing || ts->processing_on != id)
        fail("worker " + w.address + " lists " + ts->key + ", which is " + to_string(ts->status) + " on " + std::to_string(ts->processing_on));
      ahead += ts->waiting_on > 0;
    }
    if (ahead != w.ahead) fail("worker " + w.address + " counts its tasks assigned ahead wrongly");
    if (seceded != w.seceded) fail("worker " + w.address + " counts its seceded tasks wrongly");
    for (auto* ts : w.has_what)
      if (std::find(ts->who_has.begin(), ts->who_has.end(), id) == ts->who_has.end())
        fail("worker lists a key it does not hold");
  }
  if (free != impl_->free_workers || overloaded != impl_->overloaded_workers)
    fail("the counts of free and overloaded workers are wrong");
  if (impl_->by_load.size() != impl_->workers.size()) fail("the load index lists workers that left");
}

}  // namespace distrib::detail::sched
