// The durable part of the scheduler's state: taken for a journal snapshot, and rebuilt
// from one when a journaled scheduler restarts (dscheduler --journal).
#include <stdexcept>

#include "scheduler/scheduler_impl.hpp"

namespace distrib::detail::sched {

DurableState SchedulerState::durable_state() const {
  const auto& s = *impl_;
  DurableState d;
  for (const auto& [id, wants] : s.clients) d.clients.push_back(id);
  for (const auto& [id, w] : s.workers) {
    AddWorker a;
    a.worker = id;
    a.name = w.name;
    a.address = w.address;
    a.nthreads = w.nthreads;
    a.memory_limit = w.memory_limit;
    a.functions.assign(w.functions.begin(), w.functions.end());
    a.resources.assign(w.resources.begin(), w.resources.end());
    d.workers.push_back(std::move(a));
  }
  d.next_run_id = s.next_run_id;
  d.last_stimulus = s.stimulus;
  d.durations.assign(s.durations.begin(), s.durations.end());
  d.tasks.reserve(s.tasks.size());
  s.tasks.for_each([&](const TaskState& ts) {
    DurableTask t;
    t.key = ts.key;
    t.spec = ts.spec;
    t.status = ts.status;
    t.scattered = ts.scattered;
    t.wanted_by.assign(ts.who_wants.begin(), ts.who_wants.end());
    t.holders = ts.who_has;
    t.type = ts.type;
    t.nbytes = ts.nbytes;
    t.processing_on = ts.processing_on;
    t.run_id = ts.run_id;
    t.exception_type = ts.exception_type();
    t.exception_message = ts.exception_message();
    t.retries_left = ts.retries_left;
    t.suspicious = ts.suspicious;
    d.tasks.push_back(std::move(t));
  });
  return d;
}

void SchedulerState::restore(DurableState d) {
  auto& s = *impl_;
  if (s.tasks.size() != 0 || !s.workers.empty() || !s.clients.empty())
    throw std::logic_error("SchedulerState::restore needs an empty state");
  std::vector<Action> ignored;  // nobody to tell: the clients and workers reconnect later
  s.out = &ignored;
  s.stimulus = d.last_stimulus;
  s.stimulus_kind = static_cast<std::uint8_t>(std::variant_size_v<Event>);  // "restore"
  s.now = now_seconds(s.config);
  for (auto c : d.clients) s.clients.try_emplace(c);
  for (auto& w : d.workers) s.on(w);
  s.has_room.clear();
  s.durations.insert(d.durations.begin(), d.durations.end());
  s.next_run_id = d.next_run_id;

  std::vector<std::pair<TaskState*, DurableTask*>> restored;
  restored.reserve(d.tasks.size());
  for (auto& t : d.tasks) {
    if (!t.spec) throw std::invalid_argument("snapshot task '" + t.key + "' has no definition");
    if (s.find(t.key)) throw std::invalid_argument("snapshot task '" + t.key + "' appears twice");
    auto owned = std::make_unique<TaskState>();
    owned->key = t.key;
    owned->prefix = key_prefix(t.key);
    owned->spec = t.spec;
    owned->scattered = t.scattered;
    owned->retries_left = t.retries_left;
    owned->suspicious = t.suspicious;
    owned->type = t.type;
    owned->nbytes = t.nbytes;
    auto* ts = s.add_task(std::move(owned));
    for (auto c : t.wanted_by) {
      ts->who_wants.insert(c);
      s.clients[c].insert(ts);
    }
    restored.emplace_back(ts, &t);
  }
  for (auto& [ts, t] : restored) {
    if (ts->scattered) continue;
    for (const auto& dep_key : ts->spec->dependencies()) {
      auto* dep = s.find(dep_key);
      if (!dep) throw std::invalid_argument("snapshot task '" + ts->key + "' depends on unknown '" + dep_key + "'");
      ts->dependencies.push_back(dep);
      dep->dependents.push_back(ts);
    }
  }
  // Results first: whether a task waits depends on its inputs being in memory.
  for (auto& [ts, t] : restored) {
    if (t->status == TaskStatus::memory) {
      for (auto w : t->holders) {
        auto it = s.workers.find(w);
        if (it == s.workers.end() || holds(ts, w)) continue;
        ts->who_has.push_back(w);
        it->second.has_what.insert(ts);
      }
      if (!ts->who_has.empty()) s.transition(ts, TaskStatus::memory, ts->who_has.front());
    } else if (t->status == TaskStatus::erred) {
      ts->set_error(t->exception_type, t->exception_message);
      s.transition(ts, TaskStatus::erred);
    }
  }
  std::vector<TaskState*> runnable;
  for (auto& [ts, t] : restored) {
    if (ts->status != TaskStatus::released || !is_active(t->status)) continue;
    if (std::any_of(ts->dependencies.begin(), ts->dependencies.end(),
                    [](const TaskState* dep) { return dep->status == TaskStatus::erred; }))
      continue;  // erred with its input, below
    s.transition(ts, TaskStatus::waiting);
    for (auto* dep : ts->dependencies) ts->waiting_on += dep->status != TaskStatus::memory;
    if (ts->waiting_on != 0) continue;
    auto w = s.workers.find(t->processing_on);
    if (t->status == TaskStatus::processing && w != s.workers.end()) {
      s.assign(ts, w->second);  // where it was, under the same run id
      ts->run_id = t->run_id;
    } else {
      runnable.push_back(ts);
    }
  }
  // Inputs that were lost (a result nobody holds any more) are computed again, and what
  // needs them waits; a lost scattered value errs its dependents.
  for (auto& [ts, t] : restored) {
    if (ts->status != TaskStatus::released || t->status == TaskStatus::released) continue;
    if (s.needed(ts)) s.recompute(ts);
  }
  std::sort(runnable.begin(), runnable.end(), ByPriority{});
  for (auto* ts : runnable)
    if (ts->status == TaskStatus::waiting) s.schedule(ts);
  std::vector<std::string> keys;
  for (auto& [ts, t] : restored) keys.push_back(ts->key);
  s.release_keys_if_unneeded(keys);
  while (!s.recheck.empty() || !s.has_room.empty()) {
    auto again = std::move(s.recheck);
    s.recheck.clear();
    s.release_keys_if_unneeded(again);
    s.fill_workers();
  }
  s.out = nullptr;
}

}  // namespace distrib::detail::sched
