// Assigned ahead (scheduler_ahead.cpp): a task's inputs still being computed by peers are
// `pending` here until the producer pushes them (PushTo on its side, PushedData here). A
// push may come before the task it is for, and is then kept for a while; an input still
// pending after two ticks is asked for, in case its push was lost.
#include "worker/worker_state_impl.hpp"

namespace distrib::detail::wrk {

void WorkerState::Impl::push_out(TaskState* ts) {
  const auto v = stored(ts->key);
  for (auto& target : ts->push_to) {
    PushData p{std::move(target), {}, {}};
    if (v.bytes.size() <= kPushResultBytes) p.data.emplace_back(ts->key, v);  // shares the bytes
    else p.available.push_back(ts->key);
    out->push_back(std::move(p));
  }
  ts->push_to.clear();
}

void WorkerState::Impl::on(PushTo& e) {
  auto* ts = find(e.key);
  // Only a result this worker computes: anything else is stale (freed, or never here).
  if (!ts || !ts->assigned || !ts->spec) return;
  for (auto& t : e.targets)
    if (std::find(ts->push_to.begin(), ts->push_to.end(), t) == ts->push_to.end()) ts->push_to.push_back(t);
  if (ts->status == TaskStatus::memory) push_out(ts);
}

void WorkerState::Impl::stash_early(const std::string& key, EarlyPush p) {
  if (p.value && p.value->bytes.size() > kEarlyPushBytes) return;
  if (early.count(key)) return;
  if (p.value) early_bytes += p.value->bytes.size();
  early.emplace(key, std::move(p));
  early_order.push_back(key);
  while (early_order.size() > kEarlyPushes || early_bytes > kEarlyPushBytes) {
    auto it = early.find(early_order.front());
    early_order.pop_front();
    if (it == early.end()) continue;
    if (it->second.value) early_bytes -= it->second.value->bytes.size();
    early.erase(it);  // its task, if it comes, asks the scheduler after a few ticks
  }
}

void WorkerState::Impl::take_early_push(TaskState* dep) {
  auto it = early.find(dep->key);
  if (it == early.end()) return;
  auto p = std::move(it->second);
  early.erase(it);
  std::erase(early_order, dep->key);
  if (p.value) {
    early_bytes -= p.value->bytes.size();
    // Stored by the caller's link: a dependency in memory counts as arrived.
    const std::uint64_t nbytes = p.value->bytes.size();
    data->put(dep->key, std::move(*p.value), nbytes);
    dep->status = TaskStatus::memory;
  } else {
    dep->who_has = {p.worker};
    dep->status = TaskStatus::fetch;
    to_fetch.push_back(dep);
  }
}

void WorkerState::Impl::on(Tick&) {
  tasks.for_each([&](TaskState& ts) {
    if (ts.status != TaskStatus::pending || ++ts.pending_ticks < 2) return;
    ts.pending_ticks = 0;
    out->push_back(SendMissingData{ts.key, ""});  // the scheduler says where it is, once it is
  });
}

void WorkerState::Impl::on(PushedData& e) {
  for (auto& [key, value] : e.data) {
    auto* ts = find(key);
    if (!ts) {
      stash_early(key, EarlyPush{e.worker, std::move(value)});
      continue;
    }
    // Only an input a local task waits for: a push that crossed a free is dropped.
    if (!ts || ts->assigned || ts->dependents.empty()) continue;
    if (ts->status != TaskStatus::pending && ts->status != TaskStatus::fetch && ts->status != TaskStatus::flight &&
        ts->status != TaskStatus::missing)
      continue;
    std::erase(to_fetch, ts);
    store(ts, std::move(value));  // a reply to a fetch in flight is then ignored
  }
  for (const auto& key : e.available) {
    auto* ts = find(key);
    if (!ts) stash_early(key, EarlyPush{e.worker, std::nullopt});
    if (!ts || (ts->status != TaskStatus::pending && ts->status != TaskStatus::missing)) continue;
    ts->who_has = {e.worker};
    ts->status = TaskStatus::fetch;
    to_fetch.push_back(ts);
  }
  ensure_communicating();
  ensure_computing();
}


}  // namespace distrib::detail::wrk
