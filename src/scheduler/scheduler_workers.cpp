// The events that come from workers: joining (possibly with results it kept), leaving or
// dying, finished and failed tasks, missing data, metrics.
#include "scheduler/scheduler_impl.hpp"

namespace distrib::detail::sched {

void SchedulerState::Impl::cluster_changed() {
  ClusterChanged c;
  c.workers = static_cast<std::uint32_t>(workers.size());
  for (auto& [id, w] : workers) c.threads += w.nthreads;
  out->push_back(c);
}

bool SchedulerState::Impl::is_current_run(const TaskState* ts, WorkerId worker, std::uint64_t run_id) const {
  // run_id 0: a worker that does not echo run ids yet; its key and worker must do.
  return ts->status == TaskStatus::processing && ts->processing_on == worker && (run_id == 0 || run_id == ts->run_id);
}

void SchedulerState::Impl::on(AddWorker& e) {
  ++functions_epoch;  // workers_with() looks again
  auto& w = workers[e.worker];
  w.id = e.worker;
  w.name = e.name;
  w.address = e.address;
  w.nthreads = std::max<std::uint32_t>(1, e.nthreads);
  w.memory_limit = e.memory_limit;
  w.functions = {e.functions.begin(), e.functions.end()};
  w.resources = {e.resources.begin(), e.resources.end()};
  set_occupancy(w, w.occupancy);  // files it in the load index, or again under its thread count
  recount_load(w);
  worker_addresses[e.worker] = e.address;
  cluster_changed();
  has_room.push_back(e.worker);
  // Results it kept from before (it lost its scheduler, or the scheduler restarted): a key
  // in memory gains a holder; one on its way to being computed is in memory now; one the
  // scheduler does not know or no longer needs is freed on the worker.
  std::vector<std::string> unknown;
  // Dependents made ready are scheduled once every held key is placed: one of them may be
  // held here too, and must not be sent to this worker to compute and then be freed on it.
  std::vector<TaskState*> ready;
  for (auto& h : e.held) {
    auto* ts = find(h.key);
    if (!ts || ts->status == TaskStatus::erred) {
      unknown.push_back(h.key);
      continue;
    }
    if (holds(ts, e.worker)) continue;
    if (ts->status != TaskStatus::memory) {
      if (ts->status == TaskStatus::processing) {
        take_back_ahead(ts);  // they wait for a push from the worker computing it now
        out->push_back(FreeKeys{ts->processing_on, {ts->key}, true});
        unassign(ts);
      }
      if (ts->status == TaskStatus::no_worker) unrunnable.erase(ts);
      if (ts->status == TaskStatus::queued) queued.erase(ts);
      ts->type = h.type;
      ts->nbytes = h.nbytes;
      ts->who_has = {e.worker};
      w.has_what.insert(ts);
      transition(ts, TaskStatus::memory, e.worker);
      for (auto c : ts->who_wants) report_memory(ts, c);
      for (auto* d : ts->dependents)
        if (d->status == TaskStatus::waiting && --d->waiting_on == 0) ready.push_back(d);
      recheck.push_back(ts->key);  // kept only if someone needs it
      continue;
    }
    ts->who_has.push_back(e.worker);
    w.has_what.insert(ts);
    recheck.push_back(ts->key);
  }
  if (!unknown.empty()) out->push_back(FreeKeys{e.worker, std::move(unknown)});
  for (auto* d : ready)
    if (d->status == TaskStatus::waiting && d->waiting_on == 0) schedule(d);
  retry_unrunnable();
}

void SchedulerState::Impl::retry_unrunnable() {
  std::vector<TaskState*> pending(unrunnable.begin(), unrunnable.end());
  std::sort(pending.begin(), pending.end(), by_priority);
  unrunnable.clear();
  for (auto* ts : pending) schedule(ts);
}

void SchedulerState::Impl::on(RemoveWorker& e) {
  auto it = workers.find(e.worker);
  if (it == workers.end()) return;
  const std::string address = it->second.address;
  std::vector<TaskState*> processing(it->second.processing.begin(), it->second.processing.end());
  std::vector<TaskState*> held(it->second.has_what.begin(), it->second.has_what.end());
  ++functions_epoch;  // workers_with() holds pointers to workers
  forget_load(it->second);
  workers.erase(it);
  cluster_changed();
  std::sort(processing.begin(), processing.end(), by_priority);
  for (auto* ts : held) {
    erase_one(ts->who_has, e.worker);
    if (ts->who_has.empty()) lose(ts);
  }
  std::vector<std::string> unneeded;
  for (auto* ts : processing) {
    // Already moved by lose(), or taken back as assigned ahead and placed again elsewhere.
    if (ts->status != TaskStatus::processing || ts->processing_on != e.worker) continue;
    take_back_ahead(ts);
    clear_steal(ts);
    ts->processing_on = 0;
    const bool could_run = ts->waiting_on == 0;  // one assigned ahead never started there
    transition(ts, TaskStatus::released, e.worker);
    if (!e.safe && could_run && ++ts->suspicious >= config.allowed_failures) {
      // As Dask's KilledWorker: it may be what kills its workers, so it is not tried again.
      set_erred(ts, "distrib::KilledWorker",
                "task '" + ts->key + "' was processing on " + std::to_string(ts->suspicious) +
                    " workers that died while running it (allowed_failures = " +
                    std::to_string(config.allowed_failures) + "); the last one was " + address +
                    (e.reason.empty() ? std::string() : ", which was restarted: " + e.reason));
      continue;
    }
    if (needed(ts)) recompute(ts);
    else unneeded.push_back(ts->key);
  }
  for (auto* ts : held) {
    if (ts->status != TaskStatus::released) continue;
    if (needed(ts)) recompute(ts);
    else unneeded.push_back(ts->key);
  }
  release_keys_if_unneeded(unneeded);
}

void SchedulerState::Impl::on(TaskFinished& e) {
  auto* ts = find(e.key);
  auto w = workers.find(e.worker);
  if (w == workers.end()) return;
  if (ts && ts->status == TaskStatus::memory && holds(ts, e.worker))
    return;  // a second report of a result this worker holds (it ran the key twice): keep it
  if (ts && ts->status == TaskStatus::processing && ts->processing_on == e.worker && e.run_id != 0 &&
      e.run_id != ts->run_id)
    return;  // an earlier assignment's report: the worker runs the key again, and reports that
  if (!ts || !is_current_run(ts, e.worker, e.run_id)) {
    // The result is not wanted any more (released or already computed elsewhere).
    out->push_back(FreeKeys{e.worker, {e.key}});
    return;
  }
  auto& known = durations[ts->prefix];
  known = known == 0 ? e.duration : 0.5 * known + 0.5 * e.duration;  // follows drifts quickly
  if (config.assign_ahead_depth > 0) result_sizes[ts->prefix] = e.nbytes;
  unassign(ts);
  // An input still processing has finished too: its producer pushed the result before
  // reporting, and this report overtook that one. It no longer occupies its worker;
  // counting it made that worker look busy and the next step's tasks all went elsewhere.
  for (auto* d : ts->dependencies) {
    if (d->status != TaskStatus::processing || d->estimate == 0) continue;
    if (auto on = workers.find(d->processing_on); on != workers.end())
      set_occupancy(on->second, std::max(0.0, on->second.occupancy - d->estimate));
    d->estimate = 0;
  }
  ts->who_has = {e.worker};
  ts->type = e.type;
  ts->nbytes = e.nbytes;
  transition(ts, TaskStatus::memory, e.worker);
  w->second.has_what.insert(ts);
  for (auto c : ts->who_wants) report_memory(ts, c, e.value);
  // Every dependent counts it first, so that none is placed on a stale count. Those
  // assigned ahead have it already, or get it pushed.
  std::vector<TaskState*> ready;
  for (auto* dep : ts->dependents) {
    if (dep->status == TaskStatus::waiting) {
      if (--dep->waiting_on == 0) ready.push_back(dep);
    } else if (dep->status == TaskStatus::processing && dep->waiting_on > 0 && --dep->waiting_on == 0) {
      auto on = workers.find(dep->processing_on);
      if (on != workers.end() && on->second.ahead > 0) {
        --on->second.ahead;
        recount_load(on->second);
      }
    }
  }
  for (auto* dep : ready)
    if (dep->status == TaskStatus::waiting && dep->waiting_on == 0) schedule(dep);
  consider_dependents(ts);
  release_inputs_then_self(ts);
}

void SchedulerState::Impl::on(TaskErred& e) {
  auto* ts = find(e.key);
  if (!ts || !is_current_run(ts, e.worker, e.run_id)) return;
  if (ts->retries_left > 0) take_back_ahead(ts);  // its retry may run elsewhere
  unassign(ts);
  if (ts->retries_left > 0) {  // submit(..., retries = n): run it again, maybe elsewhere
    --ts->retries_left;
    transition(ts, TaskStatus::released, e.worker);
    recompute(ts);
    return;
  }
  set_erred(ts, e.exception_type, e.message);
  release_inputs_then_self(ts);
}

void SchedulerState::Impl::on(MissingData& e) {
  auto* ts = find(e.key);
  if (!ts || ts->status != TaskStatus::memory) return;  // it will come back through ComputeTask
  for (auto wid : std::vector<WorkerId>(ts->who_has)) {
    auto w = workers.find(wid);
    if (w == workers.end() || w->second.address != e.holder_address) continue;
    w->second.has_what.erase(ts);
    erase_one(ts->who_has, wid);
  }
  if (ts->who_has.empty()) {
    lose(ts);  // takes back the tasks that needed it; they run again once it is recomputed
    if (needed(ts)) recompute(ts);
    else recheck.push_back(ts->key);
    return;
  }
  std::vector<std::string> addresses;
  for (auto wid : ts->who_has) addresses.push_back(workers.at(wid).address);
  out->push_back(KeyLocations{e.worker, ts->key, std::move(addresses)});
}

void SchedulerState::Impl::on(WorkerMetrics& e) {
  auto w = workers.find(e.worker);
  if (w == workers.end()) return;
  w->second.memory_bytes = e.memory_bytes;
  w->second.managed_bytes = e.managed_bytes;
  w->second.spilled_bytes = e.spilled_bytes;
}

void SchedulerState::Impl::on(WorkerPaused& e) {
  if (auto w = workers.find(e.worker); w != workers.end()) set_paused(w->second, e.paused);
}

void SchedulerState::Impl::on(Replicated& e) {
  auto w = workers.find(e.holder);
  if (w == workers.end()) return;
  for (const auto& key : e.keys) {
    auto* ts = find(key);
    // A key released (or lost) while it was copied is not held by anyone any more.
    if (!ts || ts->status != TaskStatus::memory || holds(ts, e.holder)) continue;
    ts->who_has.push_back(e.holder);
    w->second.has_what.insert(ts);
  }
}

void SchedulerState::Impl::on(WorkerFunctions& e) {
  auto w = workers.find(e.worker);
  if (w == workers.end()) return;
  w->second.functions.insert(e.functions.begin(), e.functions.end());
  ++functions_epoch;
  retry_unrunnable();  // a task only this worker may run may wait for these
}

void SchedulerState::Impl::on(TaskSeceded& e) {
  auto* ts = find(e.key);
  if (!ts || ts->seceded || !is_current_run(ts, e.worker, e.run_id)) return;  // stale, or said twice
  auto& w = workers.at(e.worker);
  ts->seceded = true;
  if (ts->waiting_on == 0) ++w.seceded;  // one assigned ahead cannot have started: it never secedes
  else ts->seceded = false;
  // Its thread is free for other tasks: its expected duration leaves the worker's queue.
  set_occupancy(w, w.processing.size() <= 1 ? 0.0 : std::max(0.0, w.occupancy - ts->estimate));
  ts->estimate = 0;
  recount_load(w);
  has_room.push_back(w.id);  // queued root tasks may go to it now
}

void SchedulerState::Impl::set_paused(WorkerInfo& w, bool paused) {
  if (w.paused == paused) return;
  w.paused = paused;
  recount_load(w);
  if (paused) return;  // satisfies() now passes it over; balance() lets idle workers steal from it
  has_room.push_back(w.id);  // queued root tasks may go to it again
  retry_unrunnable();
}

}  // namespace distrib::detail::sched
