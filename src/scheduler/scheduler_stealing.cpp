// Work stealing: workers with a free thread take tasks that wait for a thread on the
// busiest worker, and the victim's answer (StealResponse).
#include "scheduler/scheduler_impl.hpp"

namespace distrib::detail::sched {

void SchedulerState::Impl::on(StealResponse& e) {
  auto* ts = find(e.key);
  if (!ts || ts->steal_to == 0) return;  // no steal of it in flight: a stale or forged answer
  WorkerId thief = ts->steal_to;
  clear_steal(ts);
  if (!e.released) ts->steal_refused = true;
  if (!e.released || !is_current_run(ts, e.worker, e.run_id)) return;
  take_back_ahead(ts);  // tasks assigned ahead on it expected it from the victim
  unassign(ts);         // the victim dropped it: it runs elsewhere now
  auto t = workers.find(thief);
  if (t != workers.end() && satisfies(t->second, ts, !ts->spec->allow_other_workers)) {
    assign(ts, t->second);
  } else {
    transition(ts, TaskStatus::released, e.worker);
    recompute(ts);
  }
}

void SchedulerState::Impl::clear_steal(TaskState* ts) {
  if (!ts->steal_to) return;
  auto t = workers.find(ts->steal_to);
  if (t != workers.end() && t->second.incoming_steals > 0) {
    --t->second.incoming_steals;
    recount_load(t->second);
  }
  ts->steal_to = 0;
}

bool SchedulerState::Impl::stealable(const TaskState* ts) const {
  if (ts->steal_to || ts->steal_refused || ts->seceded) return false;  // a seceded one runs
  if (ts->waiting_on > 0) return false;  // assigned ahead: it waits for inputs, not for a thread
  // Tasks assigned ahead on it are taken back if it moves (a few round trips): worth it for
  // a task of a millisecond or more, not for short ones.
  return !(estimate(ts) < 0.001 && std::any_of(ts->dependents.begin(), ts->dependents.end(), [](const TaskState* d) {
    return d->status == TaskStatus::processing;
  }));
}

/// Work stealing: a worker with idle threads asks the busiest worker for tasks it has
/// not started yet, when moving their inputs is cheaper than running them.
void SchedulerState::Impl::balance() {
  if (!config.work_stealing || !queued.empty() || workers.size() < 2) return;
  // This runs after every event: it must cost next to nothing while there is nothing to
  // steal (with 200 workers, a pass over all of them here was most of the scheduler's time).
  if (free_workers == 0 || overloaded_workers == 0) return;  // no thief, or nothing to take
  // The busiest worker with tasks waiting for a thread, from the load index's top. Steals
  // do not change it, so it is found once per event. (It is never a thief itself: with more
  // tasks than threads it has no free one, and a paused one takes no task.)
  WorkerInfo* victim = nullptr;
  for (auto it = by_load.rbegin(); it != by_load.rend() && !victim; ++it)
    if ((*it)->overloaded()) victim = *it;  // a paused one starts nothing: all it has is overload
  if (!victim) return;
  // Only the victim's first tasks are looked at (those further down its queue start later,
  // and a thief takes some every event). Whether any of them may be stolen at all is
  // checked once, not by every thief in vain.
  const std::size_t window = 4 * std::size_t{victim->nthreads} + 16;
  std::size_t looked = 0;
  bool open = false;
  for (auto* ts : victim->processing) {
    if (++looked > window || open) break;
    open = stealable(ts);
  }
  for (auto& [tid, thief] : workers) {
    if (!open) return;
    if (&thief != victim && thief.has_free_thread()) open = steal_for(thief, *victim, window);
  }
}

bool SchedulerState::Impl::steal_for(WorkerInfo& thief, WorkerInfo& victim, std::size_t window) {
  std::size_t wanted = thief.nthreads - (thief.runnable() + thief.incoming_steals);
  bool open_left = false;  // a task this thief could not take, that another one might
  std::size_t looked = 0;
  for (auto* ts : victim.processing) {
    if (++looked > window) break;
    if (!stealable(ts)) continue;
    if (wanted == 0) return true;
    std::uint64_t to_move = 0;
    for (auto* d : ts->dependencies)
      if (!holds(d, thief.id)) to_move += d->nbytes;
    if (!satisfies(thief, ts, !ts->spec->allow_other_workers) || to_move / config.bandwidth > 2 * estimate(ts) + 0.001) {
      open_left = true;
      continue;
    }
    ts->steal_to = thief.id;
    ++thief.incoming_steals;
    recount_load(thief);
    --wanted;
    out->push_back(StealRequest{victim.id, ts->key});
  }
  return open_left;
}

}  // namespace distrib::detail::sched
