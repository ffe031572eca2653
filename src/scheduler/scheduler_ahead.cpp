// Assigning ahead: a task whose inputs are being computed goes to a worker before they
// finish, so that it starts the moment the last one arrives there instead of after a round
// through the scheduler (a report, a compute message, a fetch from the peer). Its producers
// on other workers are told to push their results to it (PushTo). The task is processing
// on that worker with waiting_on > 0 (its unfinished inputs), and is taken back if one of
// those inputs leaves processing without a result.
#include "scheduler/scheduler_impl.hpp"

namespace distrib::detail::sched {

std::uint32_t SchedulerState::Impl::ahead_level_of(const TaskState* ts) const {
  std::uint32_t level = 0;
  for (const auto* d : ts->dependencies) {
    if (d->status == TaskStatus::memory) continue;
    // (A worker being removed still lists what it processed until the removal reaches it.)
    if (d->status != TaskStatus::processing || !workers.count(d->processing_on))
      return std::numeric_limits<std::uint32_t>::max();
    level = std::max(level, d->ahead_level + 1);
  }
  return level;
}

void SchedulerState::Impl::consider_dependents(TaskState* ts) {
  if (config.assign_ahead_depth == 0) return;
  // A worklist: each task assigned ahead or waiting on fewer levels passes it on, at most
  // assign_ahead_depth levels down.
  std::vector<TaskState*> todo{ts};
  while (!todo.empty()) {
    auto* t = todo.back();
    todo.pop_back();
    for (auto* d : t->dependents) {
      if (d->status == TaskStatus::waiting) {
        try_assign_ahead(d);
        if (d->status == TaskStatus::processing) todo.push_back(d);
      } else if (d->status == TaskStatus::processing && d->ahead_level > 0) {
        auto level = d->waiting_on == 0 ? 0 : ahead_level_of(d);
        if (level < d->ahead_level) {
          d->ahead_level = level;
          todo.push_back(d);
        }
      }
    }
  }
}

namespace {
constexpr std::size_t kConsiderAllWorkersUpTo = 32;  // beyond, a walk per task costs too much
}  // namespace

void SchedulerState::Impl::try_assign_ahead(TaskState* ts) {
  if (ts->waiting_on == 0 || ts->dependencies.empty()) return;  // runnable ones are scheduled
  // Called while an event updates counts too: a task whose count is not settled waits.
  std::size_t unfinished = 0;
  for (auto* d : ts->dependencies) unfinished += d->status != TaskStatus::memory;
  if (unfinished != ts->waiting_on) return;
  auto level = ahead_level_of(ts);
  if (level == 0 || level > config.assign_ahead_depth) return;
  // The worker where it could start soonest (start_cost): one that holds or computes an
  // input, or on a small cluster any, so that a step whose tasks all ended on one worker
  // (a root that finished before the next was submitted, a report overtaken by its
  // dependent's) spreads again once another worker is idle.
  WorkerInfo* best = nullptr;
  double best_cost = 0;
  const double ready = inputs_ready(ts);
  auto consider = [&](WorkerInfo& w) {
    if (!satisfies(w, ts, !ts->spec->allow_other_workers)) return;
    double cost = start_cost(ts, w, ready);
    if (!best || cost < best_cost || (cost == best_cost && w.id < best->id)) {
      best = &w;
      best_cost = cost;
    }
  };
  if (workers.size() <= kConsiderAllWorkersUpTo) {
    for (auto& [id, w] : workers) consider(w);
  } else {
    for (auto* d : ts->dependencies) {
      if (d->status == TaskStatus::processing) {
        auto w = workers.find(d->processing_on);
        if (w != workers.end()) consider(w->second);
      } else {
        for (auto wid : d->who_has)
          if (auto w = workers.find(wid); w != workers.end()) consider(w->second);
      }
    }
  }
  if (!best) return;  // it waits, and is scheduled as usual once its inputs are in memory
  ts->ahead_level = level;
  assign(ts, *best);
}

void SchedulerState::Impl::take_back_ahead(TaskState* ts) {
  std::vector<TaskState*> todo{ts};
  while (!todo.empty()) {
    auto* t = todo.back();
    todo.pop_back();
    for (auto* d : t->dependents) {
      if (d->status != TaskStatus::processing || d->waiting_on == 0) continue;
      WorkerId on = d->processing_on;
      if (workers.count(on)) out->push_back(FreeKeys{on, {d->key}, true});
      unassign(d);
      transition(d, TaskStatus::waiting, on);
      d->ahead_level = 0;
      d->waiting_on = 0;
      for (auto* x : d->dependencies) d->waiting_on += x->status != TaskStatus::memory;
      todo.push_back(d);
    }
  }
}

void SchedulerState::Impl::on(PushFailed& e) {
  auto* ts = find(e.key);
  if (!ts || ts->status != TaskStatus::memory) return;
  std::vector<std::string> addresses;
  for (auto wid : ts->who_has) addresses.push_back(workers.at(wid).address);
  for (auto* d : ts->dependents) {
    if (d->status != TaskStatus::processing) continue;
    auto w = workers.find(d->processing_on);
    if (w == workers.end() || w->second.address != e.target) continue;
    out->push_back(KeyLocations{w->first, ts->key, addresses});  // it fetches the input instead
    return;
  }
}

}  // namespace distrib::detail::sched
