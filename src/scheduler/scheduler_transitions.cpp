// The scheduler's one transition function and its table, the per-key story, and the
// releasing and forgetting of keys nobody needs.
#include <chrono>

#include "scheduler/scheduler_impl.hpp"

namespace distrib::detail::sched {

namespace {

using S = TaskStatus;
constexpr std::size_t idx(TaskStatus s) { return static_cast<std::size_t>(s); }

// The allowed (from, to) pairs, as Dask's SchedulerState._TRANSITIONS_TABLE. memory is
// reached from waiting, no-worker, queued and released too: a re-registering worker may
// bring a result the scheduler was about to recompute.
constexpr std::array<std::array<bool, kStatuses>, kStatuses> make_table() {
  std::array<std::array<bool, kStatuses>, kStatuses> t{};
  auto allow = [&t](S from, std::initializer_list<S> tos) {
    for (auto to : tos) t[idx(from)][idx(to)] = true;
  };
  allow(S::released, {S::waiting, S::memory, S::erred});
  allow(S::waiting, {S::released, S::no_worker, S::queued, S::processing, S::memory, S::erred});
  allow(S::no_worker, {S::released, S::queued, S::processing, S::memory, S::erred});
  allow(S::queued, {S::released, S::processing, S::memory, S::erred});
  // processing -> processing: stolen by another worker; -> waiting: an input was lost.
  allow(S::processing, {S::released, S::waiting, S::processing, S::memory, S::erred});
  allow(S::memory, {S::released});
  allow(S::erred, {S::released});
  return t;
}
constexpr auto kTable = make_table();

double system_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

bool transition_allowed(TaskStatus from, TaskStatus to) { return kTable[idx(from)][idx(to)]; }

const char* event_name(std::size_t index) {
  static constexpr const char* kNames[] = {"add-client",   "remove-client", "add-worker",  "remove-worker",
                                           "update-graph", "task-finished", "task-erred",  "release-keys",
                                           "worker-metrics", "scattered",   "cancel-keys", "steal-response",
                                           "missing-data",   "restart",     "push-failed", "worker-paused", "replicated",
                                           "worker-functions", "task-seceded", "fire-and-forget", "retry",
                                           "drop-replicas", "restore"};
  // One name per event kind, and the last for a state rebuilt from a snapshot.
  static_assert(std::size(kNames) == std::variant_size_v<Event> + 1, "one name per event kind");
  return index < std::size(kNames) ? kNames[index] : "?";
}

double now_seconds(const SchedulerConfig& config) { return config.clock ? config.clock() : system_seconds(); }

void SchedulerState::Impl::transition(TaskState* ts, TaskStatus to, WorkerId worker) {
  const TaskStatus from = ts->status;
  if (from == to && to != TaskStatus::processing) return;  // e.g. no-worker, still no worker
  if (!transition_allowed(from, to) && violations.size() < 16)
    violations.push_back("illegal transition of '" + ts->key + "': " + to_string(from) + " -> " + to_string(to) +
                         " (stimulus " + event_name(stimulus_kind) + "-" + std::to_string(stimulus) + ")");
  count_out(ts);
  ts->status = to;
  count_in(ts);
  if (to == TaskStatus::memory || to == TaskStatus::erred) fire_and_forget_done(ts);
  if (config.story_length == 0) return;
  auto& story = ts->story;
  if (story.size() >= config.story_length) story.erase(story.begin());
  else if (story.empty()) story.reserve(std::min<std::size_t>(4, config.story_length));  // a task's usual life
  story.push_back(StoryEntry{stimulus, stimulus_kind, from, to, worker, now});
}

/// Counts `ts`, at its current status, into its prefix's tally and the totals.
void SchedulerState::Impl::count_in(TaskState* ts) {
  ++ts->tally->by_status[idx(ts->status)];
  ++status_totals[idx(ts->status)];
}

void SchedulerState::Impl::count_out(TaskState* ts) {
  --ts->tally->by_status[idx(ts->status)];
  --status_totals[idx(ts->status)];
}

/// Adds a new task (status released) to the table and the tallies.
TaskState* SchedulerState::Impl::add_task(std::unique_ptr<TaskState> owned) {
  auto* ts = owned.get();
  // Tasks come in runs of one prefix: look the tally up again only when the prefix changes.
  if (!last_tally || last_tally_prefix != ts->prefix) {
    last_tally = &tallies[ts->prefix];
    last_tally_prefix = ts->prefix;
  }
  ts->tally = last_tally;
  count_in(ts);
  tasks.insert(std::move(owned));
  return ts;
}

/// A task is needed while a client wants it or an unfinished task depends on it.
bool SchedulerState::Impl::needed(const TaskState* ts) const {
  if (!ts->who_wants.empty()) return true;
  for (auto* d : ts->dependents)
    if (is_active(d->status)) return true;
  return false;
}

/// Brings a released task (and the released inputs it needs, transitively) back to
/// waiting, and schedules those whose inputs are all in memory. A worklist, not
/// recursion: a lost result at the end of a long chain recomputes every link.
void SchedulerState::Impl::recompute(TaskState* root) {
  std::vector<TaskState*> todo{root}, revived;
  while (!todo.empty()) {
    auto* ts = todo.back();
    todo.pop_back();
    if (ts->status != TaskStatus::released) continue;  // reached twice, or already back
    if (ts->scattered) {
      set_erred(ts, "distrib::LostData", "the scattered value of '" + ts->key + "' was lost with its worker");
      continue;
    }
    auto erred = std::find_if(ts->dependencies.begin(), ts->dependencies.end(),
                              [](const TaskState* d) { return d->status == TaskStatus::erred; });
    if (erred != ts->dependencies.end()) {
      set_erred(ts, (*erred)->exception_type(), (*erred)->exception_message());
      continue;
    }
    transition(ts, TaskStatus::waiting);
    ts->waiting_on = 0;
    for (auto* d : ts->dependencies) {
      if (d->status != TaskStatus::memory) ++ts->waiting_on;
      if (d->status == TaskStatus::released) todo.push_back(d);
    }
    revived.push_back(ts);
  }
  // Inputs were revived after the tasks needing them: schedule them first. One whose inputs
  // are being computed may be assigned ahead of them.
  for (auto it = revived.rbegin(); it != revived.rend(); ++it) {
    if ((*it)->status != TaskStatus::waiting) continue;
    if ((*it)->waiting_on == 0) schedule(*it);
    else if (config.assign_ahead_depth > 0) try_assign_ahead(*it);
  }
}

/// Marks `ts` erred, and every dependent not yet computed (a worklist: chains can be long).
void SchedulerState::Impl::set_erred(TaskState* ts, const std::string& type, const std::string& message) {
  std::vector<TaskState*> todo{ts};
  while (!todo.empty()) {
    auto* t = todo.back();
    todo.pop_back();
    if (t != ts && (t->status == TaskStatus::memory || t->status == TaskStatus::erred)) continue;
    WorkerId on = t->processing_on;
    if (t != ts && t->status == TaskStatus::processing) {
      out->push_back(FreeKeys{t->processing_on, {t->key}, true});
      unassign(t);
    }
    if (t->status == TaskStatus::no_worker) unrunnable.erase(t);
    if (t->status == TaskStatus::queued) queued.erase(t);
    transition(t, TaskStatus::erred, on);
    t->set_error(type, message);
    for (auto* d : t->dependencies) recheck.push_back(d->key);  // an erred task needs no inputs
    recheck.push_back(t->key);
    for (auto c : t->who_wants) report_erred(t, c);
    for (auto* d : t->dependents)
      if (d->status != TaskStatus::memory && d->status != TaskStatus::erred) todo.push_back(d);
  }
}

/// A key's only copy was lost with its worker.
void SchedulerState::Impl::lose(TaskState* ts) {
  transition(ts, TaskStatus::released);
  for (auto* d : ts->dependents) {
    if (d->status == TaskStatus::waiting) {
      // Counted afresh: one taken back as assigned ahead just now has a fresh count already.
      d->waiting_on = 0;
      for (auto* x : d->dependencies) d->waiting_on += x->status != TaskStatus::memory;
    } else if (d->status == TaskStatus::no_worker) {
      // Found no worker (all paused, or none can run it), and now lacks an input too: it
      // waits for the recomputation (through released, as Dask).
      unrunnable.erase(d);
      transition(d, TaskStatus::released);
      transition(d, TaskStatus::waiting);
      d->waiting_on = 0;
      for (auto* x : d->dependencies) d->waiting_on += x->status != TaskStatus::memory;
    } else if (d->status == TaskStatus::processing) {
      // It can no longer fetch this input: take it back and wait for the recomputation.
      take_back_ahead(d);
      WorkerId on = d->processing_on;
      out->push_back(FreeKeys{d->processing_on, {d->key}, true});
      unassign(d);
      transition(d, TaskStatus::waiting, on);
      d->waiting_on = 0;
      for (auto* x : d->dependencies) d->waiting_on += x->status != TaskStatus::memory;
    }
  }
}

/// Frees a key's memory once no client wants it and no unfinished task needs it, and
/// forgets it once nothing depends on it at all.
void SchedulerState::Impl::release_if_unneeded(TaskState* ts) {
  if (needed(ts)) return;
  bool was_settled = ts->status == TaskStatus::released || ts->status == TaskStatus::erred;
  switch (ts->status) {
    case TaskStatus::memory:
      for (auto wid : ts->who_has) {
        auto w = workers.find(wid);
        if (w != workers.end()) w->second.has_what.erase(ts);
        out->push_back(FreeKeys{wid, {ts->key}});
      }
      ts->who_has.clear();
      transition(ts, TaskStatus::released);
      break;
    case TaskStatus::processing: {
      WorkerId on = ts->processing_on;
      out->push_back(FreeKeys{ts->processing_on, {ts->key}, true});
      unassign(ts);
      transition(ts, TaskStatus::released, on);
      break;
    }
    case TaskStatus::no_worker:
      unrunnable.erase(ts);
      transition(ts, TaskStatus::released);
      break;
    case TaskStatus::queued:
      queued.erase(ts);
      transition(ts, TaskStatus::released);
      break;
    case TaskStatus::waiting:
      transition(ts, TaskStatus::released);
      break;
    case TaskStatus::released:
    case TaskStatus::erred:
      break;
  }
  if (ts->status == TaskStatus::released || ts->status == TaskStatus::erred) {
    // Its inputs may have been kept only for it (forget() checks them too).
    if (ts->dependents.empty()) forget(ts);
    // Only a task released just now frees its inputs: one released earlier already did,
    // and walking back through a long chain of them each time would be quadratic.
    else if (!was_settled) release_keys_if_unneeded(keys_of(ts->dependencies));
  }
}

/// After `ts` finished or erred: its inputs may be unneeded now, and so may `ts` itself.
void SchedulerState::Impl::release_inputs_then_self(TaskState* ts) {
  // Releasing inputs changes neither who wants this task nor its dependents, so whether
  // it is still needed is known now (a wanted result, the usual case, copies no key).
  const bool release_self = !needed(ts);
  auto key = release_self ? ts->key : std::string();
  release_keys_if_unneeded(keys_of(ts->dependencies));  // may forget ts: keep its key
  if (release_self) release_keys_if_unneeded({key});
}

/// Releases (and forgets) keys no longer needed. A worklist, not recursion: releasing
/// the end of a long chain cascades through every link, deeper than any stack.
void SchedulerState::Impl::release_keys_if_unneeded(const std::vector<std::string>& keys) {
  to_release.insert(to_release.end(), keys.begin(), keys.end());
  if (releasing) return;  // the outer call drains the list
  releasing = true;
  while (!to_release.empty()) {
    auto key = std::move(to_release.back());
    to_release.pop_back();
    if (auto* ts = find(key)) release_if_unneeded(ts);
  }
  releasing = false;
}

std::vector<std::string> SchedulerState::Impl::keys_of(const std::vector<TaskState*>& v) {
  std::vector<std::string> keys;
  keys.reserve(v.size());
  for (auto* ts : v) keys.push_back(ts->key);
  return keys;
}

void SchedulerState::Impl::forget(TaskState* ts) {
  for (auto* d : ts->dependencies) erase_one(d->dependents, ts);
  auto dep_keys = keys_of(ts->dependencies);
  count_out(ts);
  const auto& counts = ts->tally->by_status;
  if (std::all_of(counts.begin(), counts.end(), [](std::size_t n) { return n == 0; })) {
    if (last_tally == ts->tally) last_tally = nullptr;
    tallies.erase(ts->prefix);  // the last task of its prefix: unique prefixes do not pile up
  }
  tasks.erase(ts->key);  // destroys ts
  // Inputs looked up again by key: releasing one may forget others.
  release_keys_if_unneeded(dep_keys);
}

}  // namespace distrib::detail::sched
