// Where tasks run: choosing a worker, withholding root tasks from saturated workers
// (queuing). Work stealing is in scheduler_stealing.cpp.
#include <cmath>
#include <limits>

#include "scheduler/scheduler_impl.hpp"

namespace distrib::detail::sched {

double SchedulerState::Impl::estimate(const TaskState* ts) const {
  auto it = durations.find(ts->prefix);
  return it == durations.end() ? config.unknown_task_duration : it->second;
}

bool SchedulerState::Impl::satisfies(const WorkerInfo& w, const TaskState* ts, bool strict_restrictions) const {
  return w.functions.count(ts->spec->function) && meets_restrictions(w, ts, strict_restrictions);
}

bool SchedulerState::Impl::meets_restrictions(const WorkerInfo& w, const TaskState* ts, bool strict_restrictions) const {
  if (w.paused) return false;  // as Dask: only running workers get tasks
  for (const auto& [name, amount] : ts->spec->resources) {
    auto r = w.resources.find(name);
    if (r == w.resources.end() || r->second < amount) return false;
  }
  if (strict_restrictions && !ts->spec->workers.empty()) {
    const auto& allowed = ts->spec->workers;
    if (std::find(allowed.begin(), allowed.end(), w.name) == allowed.end() &&
        std::find(allowed.begin(), allowed.end(), w.address) == allowed.end())
      return false;
  }
  return true;
}

/// How many tasks a worker may hold before root tasks of this kind wait on the scheduler.
namespace {
/// saturation_limit for a worker of `nthreads`, given the prefix's known duration (0: none).
std::size_t limit_for(const SchedulerConfig& config, std::uint32_t nthreads, double known_duration) {
  if (!(config.worker_saturation < 1e9)) return std::numeric_limits<std::size_t>::max();  // queuing off
  auto limit = static_cast<std::size_t>(std::ceil(nthreads * config.worker_saturation));
  if (known_duration > 0) {
    double keep_busy = nthreads * config.saturation_seconds / known_duration;
    limit = std::max(limit, static_cast<std::size_t>(std::min(keep_busy, 1e6)));
  }
  return std::max<std::size_t>(limit, 1);
}
}  // namespace

std::size_t SchedulerState::Impl::saturation_limit(const WorkerInfo& w, const TaskState* ts) const {
  auto known = durations.find(ts->prefix);
  return limit_for(config, w.nthreads, known != durations.end() ? known->second : 0.0);
}

bool SchedulerState::Impl::saturated(const WorkerInfo& w, const TaskState* ts) const {
  return w.runnable() >= saturation_limit(w, ts);
}

const std::vector<WorkerInfo*>& SchedulerState::Impl::workers_with(const std::string& function) {
  auto& m = function_memo;
  if (m.epoch == functions_epoch && m.function == function) return m.holders;
  m.function = function;
  m.epoch = functions_epoch;
  m.holders.clear();
  for (auto& [id, w] : workers)
    if (w.functions.count(function)) m.holders.push_back(&w);
  return m.holders;
}

void SchedulerState::Impl::schedule(TaskState* ts) {
  if (workers.empty()) {
    transition(ts, TaskStatus::no_worker);
    unrunnable.insert(ts);
    return;
  }
  if (ts->dependencies.empty()) {
    switch (place_without_inputs(ts)) {
      case Placement::assigned: return;
      case Placement::queued:
        transition(ts, TaskStatus::queued);
        queued.insert(ts);
        return;
      case Placement::look_further: break;  // no worker may run it: the pass below says why
    }
  }
  // The workers with the function (remembered across tasks), then one pass for the
  // restrictions: this runs for every task, and there may be hundreds of workers.
  const auto& able = workers_with(ts->spec->function);
  const bool any_has_function = !able.empty();
  std::vector<WorkerInfo*> candidates;
  for (auto* w : able)
    if (meets_restrictions(*w, ts, true)) candidates.push_back(w);  // the function is checked: satisfies()
  if (!any_has_function) {
    set_erred(ts, "distrib::NoWorkerCanRun",
              "no connected worker can run task function '" + ts->spec->function +
                  "' (register it with DISTRIB_TASK and load it in the workers, e.g. with dworker --preload)");
    return;
  }
  if (candidates.empty() && ts->spec->allow_other_workers)
    for (auto& [id, w] : workers)
      if (satisfies(w, ts, false)) candidates.push_back(&w);
  if (candidates.empty()) {  // restrictions or resources no worker meets yet
    transition(ts, TaskStatus::no_worker);
    unrunnable.insert(ts);
    return;
  }
  bool root = ts->dependencies.empty();
  WorkerInfo* best = nullptr;
  double best_cost = 0;
  const double ready = inputs_ready(ts);
  const auto known = durations.find(ts->prefix);  // once, not once per worker
  const double known_duration = known != durations.end() ? known->second : 0.0;
  // The limit depends on the worker only through its thread count, mostly the same for all.
  std::uint32_t limit_threads = 0;
  std::size_t limit = 0;
  for (auto* w : candidates) {
    if (root && w->nthreads != limit_threads) {
      limit_threads = w->nthreads;
      limit = limit_for(config, limit_threads, known_duration);
    }
    if (root && w->runnable() >= limit) continue;  // saturated()
    double cost = start_cost(ts, *w, ready);
    if (!best || cost < best_cost || (cost == best_cost && w->id < best->id)) {
      best = w;
      best_cost = cost;
    }
  }
  if (!best) {  // every worker is saturated: wait on the scheduler, in priority order
    transition(ts, TaskStatus::queued);
    queued.insert(ts);
    return;
  }
  assign(ts, *best);
}

/// For a task without inputs, start_cost() is the worker's load: the first worker in
/// by_load that may run it and is not saturated is the one the pass over all would pick
/// (lowest cost, then lowest id). Mostly the first one looked at.
SchedulerState::Impl::Placement SchedulerState::Impl::place_without_inputs(TaskState* ts) {
  const auto& able = workers_with(ts->spec->function);
  const bool all_able = able.size() == workers.size();  // the usual case: no lookup per worker
  const auto known = durations.find(ts->prefix);
  const double known_duration = known != durations.end() ? known->second : 0.0;
  std::uint32_t limit_threads = 0;
  std::size_t limit = 0;
  bool any_may_run = false;
  for (auto* w : by_load) {
    if (!all_able && !w->functions.count(ts->spec->function)) continue;
    if (!meets_restrictions(*w, ts, true)) continue;
    any_may_run = true;
    if (w->nthreads != limit_threads) {
      limit_threads = w->nthreads;
      limit = limit_for(config, limit_threads, known_duration);
    }
    if (w->runnable() >= limit) continue;  // saturated()
    assign(ts, *w);
    return Placement::assigned;
  }
  return any_may_run ? Placement::queued : Placement::look_further;
}

void SchedulerState::Impl::set_occupancy(WorkerInfo& w, double occupancy) {
  auto node = by_load.extract(&w);  // found under the load it was filed with
  w.occupancy = occupancy;
  w.load = occupancy / w.nthreads;
  if (node) by_load.insert(std::move(node));  // the same node: no allocation per task
  else by_load.insert(&w);
}

void SchedulerState::Impl::forget_load(WorkerInfo& w) {
  by_load.erase(&w);
  free_workers -= w.counted_free;
  overloaded_workers -= w.counted_overloaded;
  w.counted_free = w.counted_overloaded = false;
}

void SchedulerState::Impl::recount_load(WorkerInfo& w) {
  const bool free = w.has_free_thread(), over = w.overloaded();
  free_workers += static_cast<std::size_t>(free) - static_cast<std::size_t>(w.counted_free);
  overloaded_workers += static_cast<std::size_t>(over) - static_cast<std::size_t>(w.counted_overloaded);
  w.counted_free = free;
  w.counted_overloaded = over;
}

namespace {
// What fetching an input costs, for placement: a hop between workers on one host takes
// about 50 us here, and loopback moves 2-4 GB/s. A small input is not worth waiting for a
// busy worker; a large one is.
constexpr double kFetchSeconds = 50e-6;
constexpr double kFetchBytesPerSecond = 2e9;
}  // namespace

double SchedulerState::Impl::inputs_ready(const TaskState* ts) const {
  // An input being computed is done its estimate after its own latest input: optimistic
  // (the queue ahead of it on its worker is not counted), and bounded, as a processing
  // task waits on at most assign_ahead_depth levels of others. Inputs in memory are ready.
  double ready = 0;
  for (auto* d : ts->dependencies)
    if (d->status == TaskStatus::processing) ready = std::max(ready, inputs_ready(d) + d->estimate);
  return ready;
}

double SchedulerState::Impl::start_cost(const TaskState* ts, const WorkerInfo& w, double inputs_ready) const {
  double fetch = 0;
  for (auto* d : ts->dependencies) {
    std::uint64_t bytes = 0;
    if (d->status == TaskStatus::memory) {
      if (holds(d, w.id)) continue;
      bytes = d->nbytes;
    } else {
      if (d->processing_on == w.id) continue;
      auto size = result_sizes.find(d->prefix);
      bytes = size == result_sizes.end() ? 0 : size->second;
    }
    fetch += kFetchSeconds + static_cast<double>(bytes) / kFetchBytesPerSecond;
  }
  return std::max(w.occupancy / w.nthreads, inputs_ready) + fetch;
}

void SchedulerState::Impl::assign(TaskState* ts, WorkerInfo& w) {
  ts->steal_refused = false;
  ts->seceded = false;
  ts->processing_on = w.id;
  ts->run_id = next_run_id++;
  transition(ts, TaskStatus::processing, w.id);
  ts->estimate = estimate(ts);
  w.processing.insert(ts);
  set_occupancy(w, w.occupancy + ts->estimate);
  ComputeTask ct{w.id, ts->spec, {}, ts->run_id, {}};
  for (auto* d : ts->dependencies) {
    if (d->status != TaskStatus::memory) {  // assigned ahead: it comes from its producer
      ct.pending.push_back(d->key);
      if (d->processing_on != w.id) out->push_back(PushTo{d->processing_on, d->key, {w.address}});
      continue;
    }
    std::vector<std::string> addresses;
    for (auto wid : d->who_has) addresses.push_back(workers.at(wid).address);
    ct.who_has.emplace_back(d->key, std::move(addresses));
  }
  if (ts->waiting_on > 0) ++w.ahead;
  else ts->ahead_level = 0;
  recount_load(w);
  out->push_back(std::move(ct));
  consider_dependents(ts);
}

/// Gives queued root tasks to workers that have room again.
void SchedulerState::Impl::fill_workers() {
  auto ids = std::move(has_room);
  has_room.clear();
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  for (auto id : ids) {
    auto it = workers.find(id);
    if (it == workers.end()) continue;
    auto& w = it->second;
    std::size_t skipped = 0;
    for (auto q = queued.begin(); q != queued.end() && skipped < 64;) {
      auto* ts = *q;
      if (saturated(w, ts)) break;
      if (!satisfies(w, ts, !ts->spec->allow_other_workers)) {
        ++q;
        ++skipped;
        continue;
      }
      q = queued.erase(q);
      assign(ts, w);
    }
  }
}

/// Takes a processing task off its worker (the worker is told to drop it). Its status is
/// left to the caller's transition.
void SchedulerState::Impl::unassign(TaskState* ts) {
  if (ts->status != TaskStatus::processing) return;
  clear_steal(ts);
  auto w = workers.find(ts->processing_on);
  if (w != workers.end()) {
    w->second.processing.erase(ts);
    if (ts->waiting_on > 0 && w->second.ahead > 0) --w->second.ahead;
    if (ts->seceded && w->second.seceded > 0) --w->second.seceded;
    ts->seceded = false;
    // None left: exactly 0, no drift from rounding.
    set_occupancy(w->second, w->second.processing.empty() ? 0.0 : std::max(0.0, w->second.occupancy - ts->estimate));
    recount_load(w->second);
    has_room.push_back(w->first);
  }
  ts->processing_on = 0;
}

}  // namespace distrib::detail::sched
