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
  if (t != workers.end() && t->second.incoming_steals > 0) --t->second.incoming_steals;
  ts->steal_to = 0;
}

/// Work stealing: a worker with idle threads asks the busiest worker for tasks it has
/// not started yet, when moving their inputs is cheaper than running them.
void SchedulerState::Impl::balance() {
  if (!config.work_stealing || !queued.empty() || workers.size() < 2) return;
  // The busiest worker with tasks waiting for a thread, and the next busiest (for a thief
  // that is itself the busiest: a paused one). Asking for steals changes neither, so they are
  // found once per event, not once per idle worker (that was O(workers^2) on every event
  // while the queue is empty: most of the scheduler's time with 200 idle workers).
  // One pass finds both the thieves (workers with a free thread, in `workers` order) and the
  // victims. A steal changes only its thief's incoming_steals, so the thieves can be listed
  // before any of them steals.
  thieves.clear();
  WorkerInfo *busiest = nullptr, *runner_up = nullptr;
  auto load = [](const WorkerInfo* w) { return w->occupancy / w->nthreads; };
  for (auto& [vid, w] : workers) {
    if (w.runnable() + w.incoming_steals < w.nthreads) thieves.push_back(&w);
    if (w.runnable() <= (w.paused ? 0 : w.nthreads)) continue;  // a paused one starts nothing
    if (!busiest || load(&w) > load(busiest)) {
      runner_up = busiest;
      busiest = &w;
    } else if (!runner_up || load(&w) > load(runner_up)) {
      runner_up = &w;
    }
  }
  if (!busiest || thieves.empty()) return;
  // How many of a victim's first tasks were found that no thief may take (a steal in
  // flight, refused, waiting for inputs, or too short to move): a thief that would look at
  // no more of them need not look (every idle worker did, in vain, on every event).
  std::size_t barren_busiest = 0, barren_runner_up = 0;
  for (auto* thief_ptr : thieves) {
    auto& thief = *thief_ptr;
    const WorkerId tid = thief.id;
    std::size_t busy = thief.runnable() + thief.incoming_steals;
    std::size_t wanted = thief.nthreads - busy;
    WorkerInfo* victim = busiest->id != tid ? busiest : runner_up;
    if (!victim) return;
    const std::size_t window = 4 * thief.nthreads + 16;
    std::size_t& barren = victim == busiest ? barren_busiest : barren_runner_up;
    if (window <= barren) continue;
    bool any_open = false;
    std::size_t looked = 0;
    for (auto* ts : victim->processing) {
      if (wanted == 0 || ++looked > window) break;
      if (ts->steal_to || ts->steal_refused) continue;
      if (ts->waiting_on > 0) continue;  // assigned ahead: it waits for inputs, not for a thread
      // Tasks assigned ahead on it are taken back if it moves (a few round trips): worth it
      // for a task of a millisecond or more, not for short ones.
      if (estimate(ts) < 0.001 && std::any_of(ts->dependents.begin(), ts->dependents.end(), [](const TaskState* d) {
            return d->status == TaskStatus::processing;
          }))
        continue;
      any_open = true;
      if (!satisfies(thief, ts, !ts->spec->allow_other_workers)) continue;
      std::uint64_t to_move = 0;
      for (auto* d : ts->dependencies)
        if (!holds(d, tid)) to_move += d->nbytes;
      if (to_move / config.bandwidth > 2 * estimate(ts) + 0.001) continue;
      ts->steal_to = tid;
      ++thief.incoming_steals;
      --wanted;
      out->push_back(StealRequest{victim->id, ts->key});
    }
    if (!any_open) barren = std::max(barren, window);
  }
}

}  // namespace distrib::detail::sched
