// The state's side of the client operations that change a task's status or placement:
// fire_and_forget (the scheduler wants keys itself until they are done), retry (erred tasks
// compute again) and dropped replicas (replicate's surplus and rebalance's moves). The
// requests that only read the state or move copies are the server's
// (scheduler_client_ops.cpp).
#include <unordered_set>

#include "scheduler/scheduler_impl.hpp"

namespace distrib::detail::sched {

void SchedulerState::Impl::on(FireAndForget& e) {
  auto& wants = clients[kFireAndForget];
  for (const auto& key : e.keys) {
    auto* ts = find(key);
    // Done already: there is nothing left to run, and the key goes when its clients let go.
    if (!ts || ts->status == TaskStatus::memory || ts->status == TaskStatus::erred) continue;
    ts->who_wants.insert(kFireAndForget);
    wants.insert(ts);
  }
}

void SchedulerState::Impl::fire_and_forget_done(TaskState* ts) {
  if (!ts->who_wants.count(kFireAndForget)) return;
  ts->who_wants.erase(kFireAndForget);
  if (auto it = clients.find(kFireAndForget); it != clients.end()) it->second.erase(ts);
  recheck.push_back(ts->key);  // released at the end of the event unless a client wants it
}

void SchedulerState::Impl::on(RetryKeys& e) {
  // As Dask's stimulus_retry: from each erred key down through its erred inputs to those
  // whose own inputs did not err; every erred task met, and the erred tasks that depend on
  // them, compute again.
  std::vector<TaskState*> stack;
  for (const auto& key : e.keys)
    if (auto* ts = find(key); ts && ts->status == TaskStatus::erred) stack.push_back(ts);
  std::unordered_set<TaskState*> seen;
  std::vector<TaskState*> reset;
  while (!stack.empty()) {
    auto* ts = stack.back();
    stack.pop_back();
    if (!seen.insert(ts).second) continue;
    reset.push_back(ts);
    for (auto* d : ts->dependencies)
      if (d->status == TaskStatus::erred) stack.push_back(d);
    for (auto* d : ts->dependents)
      if (d->status == TaskStatus::erred) stack.push_back(d);
  }
  // All released first: whether an input is needed depends on its dependents being active.
  for (auto* ts : reset) {
    transition(ts, TaskStatus::released);
    ts->clear_error();
  }
  std::unordered_map<ClientId, std::vector<std::string>> told;
  told[e.client];  // the requester hears back even when nothing was erred
  for (auto* ts : reset)
    for (auto c : ts->who_wants)
      if (c != kFireAndForget) told[c].push_back(ts->key);
  // Told before anything that follows: an input lost since errs the task again at once.
  for (auto& [client, keys] : told)
    out->push_back(KeysRetried{client, client == e.client ? e.request : 0, std::move(keys)});
  for (auto* ts : reset)
    if (ts->status == TaskStatus::released && needed(ts)) recompute(ts);
  for (auto* ts : reset)
    if (ts->status == TaskStatus::released) recheck.push_back(ts->key);  // wanted by nothing now
}

void SchedulerState::Impl::on(DropReplicas& e) {
  auto w = workers.find(e.worker);
  if (w == workers.end()) return;
  std::vector<std::string> dropped;
  for (const auto& key : e.keys) {
    auto* ts = find(key);
    if (!ts || ts->status != TaskStatus::memory || ts->who_has.size() < 2 || !holds(ts, e.worker)) continue;
    erase_one(ts->who_has, e.worker);
    w->second.has_what.erase(ts);
    dropped.push_back(key);
  }
  if (!dropped.empty()) out->push_back(FreeKeys{e.worker, std::move(dropped)});
}

}  // namespace distrib::detail::sched
