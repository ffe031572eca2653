// SchedulerState's entry point (handle) and the events that come from clients: graphs,
// releases, scatters, cancels and restarts. Worker events are in scheduler_workers.cpp.
#include "scheduler/scheduler_state.hpp"

#include <unordered_set>

#include "scheduler/scheduler_impl.hpp"

namespace distrib::detail::sched {

const char* to_string(TaskStatus s) {
  switch (s) {
    case TaskStatus::released: return "released";
    case TaskStatus::waiting: return "waiting";
    case TaskStatus::no_worker: return "no-worker";
    case TaskStatus::queued: return "queued";
    case TaskStatus::processing: return "processing";
    case TaskStatus::memory: return "memory";
    case TaskStatus::erred: return "erred";
  }
  return "?";
}

SchedulerState::SchedulerState(SchedulerConfig config) : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
}
SchedulerState::~SchedulerState() = default;

void SchedulerState::handle(Event event, std::vector<Action>& out, StimulusId stimulus) {
  auto& s = *impl_;
  s.out = &out;
  s.stimulus = stimulus ? stimulus : s.stimulus + 1;
  s.stimulus_kind = static_cast<std::uint8_t>(event.index());
  s.now = now_seconds(s.config);
  std::visit([&s](auto& e) { s.on(e); }, event);
  while (!s.recheck.empty() || !s.has_room.empty()) {
    auto keys = std::move(s.recheck);
    s.recheck.clear();
    s.release_keys_if_unneeded(keys);
    s.fill_workers();
  }
  s.balance();
  s.out = nullptr;
}

StimulusId SchedulerState::last_stimulus() const { return impl_->stimulus; }

void SchedulerState::Impl::on(AddClient& e) { clients.try_emplace(e.client); }

void SchedulerState::Impl::on(RemoveClient& e) {
  auto it = clients.find(e.client);
  if (it == clients.end()) return;
  std::vector<std::string> wanted;
  for (auto* ts : it->second) {
    ts->who_wants.erase(e.client);
    wanted.push_back(ts->key);
  }
  clients.erase(it);
  release_keys_if_unneeded(wanted);
}

void SchedulerState::Impl::on(UpdateGraph& e) {
  auto& client_wants = clients[e.client];
  std::vector<TaskState*> created;
  created.reserve(e.tasks.size());
  for (auto& spec : e.tasks) {
    if (find(spec->key)) continue;  // a known key keeps its first definition, as in Dask
    auto ts = std::make_unique<TaskState>();
    ts->key = spec->key;
    ts->prefix = key_prefix(spec->key);
    ts->spec = spec;
    ts->retries_left = spec->retries;
    created.push_back(add_task(std::move(ts)));
  }
  std::vector<std::string> missing(created.size());
  for (std::size_t i = 0; i < created.size(); ++i) {
    auto* ts = created[i];
    for (const auto& dep_key : ts->spec->dependencies()) {
      auto* dep = find(dep_key);
      if (!dep) {
        if (missing[i].empty()) missing[i] = dep_key;
        continue;
      }
      ts->dependencies.push_back(dep);
      dep->dependents.push_back(ts);
    }
  }
  std::vector<TaskState*> wanted_again;  // known keys kept only as released records
  for (const auto& key : e.wanted) {
    auto* ts = find(key);
    if (!ts) continue;
    ts->who_wants.insert(e.client);
    client_wants.insert(ts);
    if (ts->status == TaskStatus::memory) report_memory(ts, e.client);
    if (ts->status == TaskStatus::erred) report_erred(ts, e.client);
    if (ts->status == TaskStatus::released) wanted_again.push_back(ts);
  }
  // Missing dependencies first, so that no task of this graph runs on top of one.
  for (std::size_t i = 0; i < created.size(); ++i)
    if (!missing[i].empty() && created[i]->status == TaskStatus::released)
      set_erred(created[i], "distrib::KeyError",
                "dependency '" + missing[i] + "' is unknown to the scheduler (released, or never submitted)");
  // Only what a client wants, and what that needs, is computed: a new task nobody wants is
  // released below without being sent to a worker first (and freed there at once).
  // The walk stays inside this graph's new tasks: older ones were decided when they came,
  // and walking back through them made a submit loop quadratic.
  std::unordered_set<const TaskState*> fresh(created.begin(), created.end());
  std::unordered_set<const TaskState*> useful;
  std::vector<const TaskState*> todo;
  for (auto* ts : created)
    if (needed(ts)) todo.push_back(ts);
  while (!todo.empty()) {
    auto* ts = todo.back();
    todo.pop_back();
    if (!useful.insert(ts).second) continue;
    for (auto* d : ts->dependencies)
      if (fresh.count(d)) todo.push_back(d);
  }
  for (auto* ts : created)
    if (useful.count(ts)) recompute(ts);  // no-op for tasks already erred or on their way
  for (auto* ts : wanted_again) recompute(ts);
  // Keys nobody wants and nothing needs (a client let go before they were submitted).
  std::vector<std::string> created_keys;
  for (auto* ts : created)
    if (!needed(ts)) created_keys.push_back(ts->key);
  release_keys_if_unneeded(created_keys);
}

void SchedulerState::Impl::on(ReleaseKeys& e) {
  auto c = clients.find(e.client);
  for (const auto& key : e.keys) {
    auto* ts = find(key);
    if (!ts) continue;  // unknown or already forgotten: nothing to do
    ts->who_wants.erase(e.client);
    if (c != clients.end()) c->second.erase(ts);
    release_if_unneeded(ts);
  }
}

void SchedulerState::Impl::on(Scattered& e) {
  auto& client_wants = clients[e.client];
  for (auto& k : e.keys) {
    auto* ts = find(k.key);
    if (!ts) {
      auto spec = std::make_shared<TaskSpec>();
      spec->key = k.key;
      spec->function = "distrib::scatter";
      auto owned = std::make_unique<TaskState>();
      owned->key = k.key;
      owned->prefix = key_prefix(k.key);
      owned->spec = std::move(spec);
      owned->scattered = true;
      ts = add_task(std::move(owned));
    }
    ts->who_wants.insert(e.client);
    client_wants.insert(ts);
    if (ts->status != TaskStatus::memory && ts->status != TaskStatus::released) continue;  // being computed
    bool was_in_memory = ts->status == TaskStatus::memory;  // scattered again: only more holders
    std::vector<WorkerId> holders;
    for (auto wid : k.holders)
      if (workers.count(wid) && !holds(ts, wid) && std::find(holders.begin(), holders.end(), wid) == holders.end())
        holders.push_back(wid);
    if (!was_in_memory && holders.empty()) {
      set_erred(ts, "distrib::LostData", "no live worker holds scattered key '" + ts->key + "'");
      continue;
    }
    ts->type = k.type;
    ts->nbytes = k.nbytes;
    for (auto wid : holders) {
      ts->who_has.push_back(wid);
      workers.at(wid).has_what.insert(ts);
    }
    if (was_in_memory) continue;
    transition(ts, TaskStatus::memory, holders.front());
    for (auto* d : ts->dependents)
      if (d->status == TaskStatus::waiting && --d->waiting_on == 0) schedule(d);
  }
}

void SchedulerState::Impl::on(CancelKeys& e) {
  std::vector<std::string> cancelled;
  for (const auto& key : e.keys)
    if (auto* ts = find(key)) cancel(ts, e.client, cancelled);
  out->push_back(KeysCancelled{e.client, cancelled});  // always: the client pairs replies with requests
  auto c = clients.find(e.client);
  for (const auto& key : cancelled) {
    auto* ts = find(key);
    if (!ts) continue;
    ts->who_wants.erase(e.client);
    if (c != clients.end()) c->second.erase(ts);
  }
  release_keys_if_unneeded(cancelled);
}

void SchedulerState::Impl::on(Restart&) {
  for (auto& [client, wanted] : clients) {
    RestartCancelled told{client, {}};
    told.keys.reserve(wanted.size());
    for (auto* ts : wanted) {
      ts->who_wants.erase(client);
      told.keys.push_back(ts->key);
    }
    wanted.clear();
    out->push_back(std::move(told));
  }
  // Nobody wants anything now: releasing every key frees what is running or stored and
  // forgets each task once nothing depends on it (the whole graph, in the end).
  std::vector<std::string> keys;
  keys.reserve(tasks.size());
  tasks.for_each([&](const TaskState& ts) { keys.push_back(ts.key); });
  release_keys_if_unneeded(keys);
}

// Cancels `ts` for `client`, and its dependents first (as Dask's cancel_key).
void SchedulerState::Impl::cancel(TaskState* root, ClientId client, std::vector<std::string>& cancelled) {
  std::unordered_set<std::string> seen(cancelled.begin(), cancelled.end());
  std::vector<TaskState*> todo{root};  // a worklist: chains can be long
  while (!todo.empty()) {
    auto* ts = todo.back();
    todo.pop_back();
    if (!ts->who_wants.count(client) && ts->dependents.empty()) continue;
    if (!seen.insert(ts->key).second) continue;
    cancelled.push_back(ts->key);
    for (auto* d : ts->dependents)
      if (d->status != TaskStatus::memory) todo.push_back(d);
  }
}

void SchedulerState::Impl::report_memory(TaskState* ts, ClientId c, const std::optional<Value>& value) {
  const auto& address = ts->who_has.empty() ? std::string() : workers.at(ts->who_has.front()).address;
  out->push_back(KeyInMemory{c, ts->key, address, ts->type, ts->nbytes, value});
}

void SchedulerState::Impl::report_erred(TaskState* ts, ClientId c) {
  out->push_back(KeyErred{c, ts->key, ts->exception_type(), ts->exception_message()});
}

}  // namespace distrib::detail::sched
