#include "scheduler/scheduler_state.hpp"

#include <array>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>

#include "core/keyed_table.hpp"
#include "core/pointer_set.hpp"

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

namespace {

constexpr std::size_t kStatuses = 7;  // TaskStatus values

/// The clients that want a key: almost always one, so a small vector (no allocation per
/// task for a hash table) with set operations.
class ClientSet {
 public:
  void insert(ClientId c) {
    if (!count(c)) ids_.push_back(c);
  }
  void erase(ClientId c) { std::erase(ids_, c); }
  bool count(ClientId c) const { return std::find(ids_.begin(), ids_.end(), c) != ids_.end(); }
  bool empty() const { return ids_.empty(); }
  auto begin() const { return ids_.begin(); }
  auto end() const { return ids_.end(); }

 private:
  std::vector<ClientId> ids_;
};

/// Live tasks of one prefix by status, kept as statuses change (the dashboard reads them
/// every refresh; counting over every task each time cost a fifth of the scheduler's CPU).
struct PrefixTally {
  std::array<std::size_t, kStatuses> by_status{};
};

struct TaskState {
  std::string key;
  std::string prefix;
  PrefixTally* tally = nullptr;
  TaskSpecPtr spec;
  std::uint32_t retries_left = 0;
  double estimate = 0;  // expected duration counted in its worker's occupancy
  bool scattered = false;  // placed by a client: cannot be recomputed
  WorkerId steal_to = 0;   // a steal request for it is in flight, for this worker
  bool steal_refused = false;  // its worker said no (it started it): do not ask again
  TaskStatus status = TaskStatus::released;
  std::vector<TaskState*> dependencies;
  std::vector<TaskState*> dependents;
  std::size_t waiting_on = 0;  // dependencies not in memory
  WorkerId processing_on = 0;
  std::vector<WorkerId> who_has;
  std::string type;
  std::uint64_t nbytes = 0;
  ClientSet who_wants;
  std::string exception_type;
  std::string exception_message;
};

struct WorkerInfo {
  WorkerId id = 0;
  std::string name;
  std::string address;
  std::uint32_t nthreads = 1;
  std::uint64_t memory_limit = 0;
  std::uint64_t memory_bytes = 0;
  std::unordered_set<std::string> functions;
  std::unordered_map<std::string, double> resources;
  PointerSet<TaskState> processing;
  PointerSet<TaskState> has_what;
  double occupancy = 0;  // expected seconds of work assigned, summed over its tasks
  std::size_t incoming_steals = 0;
  std::uint64_t stored_bytes() const {
    std::uint64_t n = 0;
    for (auto* ts : has_what) n += ts->nbytes;
    return n;
  }
};

struct ByPriority {
  bool operator()(const TaskState* a, const TaskState* b) const {
    return a->spec->priority != b->spec->priority ? a->spec->priority < b->spec->priority : a->key < b->key;
  }
};

template <class T>
void erase_one(std::vector<T>& v, const T& x) {
  auto it = std::find(v.begin(), v.end(), x);
  if (it != v.end()) v.erase(it);
}

bool is_active(TaskStatus s) {
  return s == TaskStatus::waiting || s == TaskStatus::no_worker || s == TaskStatus::processing ||
         s == TaskStatus::queued;
}

}  // namespace

struct SchedulerState::Impl {
  SchedulerConfig config;
  KeyedTable<TaskState> tasks;  // owns every task, by key
  std::set<TaskState*, ByPriority> queued;           // root tasks withheld from saturated workers
  std::unordered_map<std::string, double> durations;  // per prefix, seconds
  std::vector<WorkerId> has_room;                     // workers that may take queued tasks
  std::unordered_map<WorkerId, WorkerInfo> workers;
  std::unordered_map<ClientId, PointerSet<TaskState>> clients;
  PointerSet<TaskState> unrunnable;  // no-worker: waiting for a worker to join
  std::vector<std::string> recheck;            // keys to release if unneeded once the event is applied
  std::vector<std::string> to_release;         // worklist of release_keys_if_unneeded
  bool releasing = false;
  std::vector<Action>* out = nullptr;
  std::unordered_map<std::string, PrefixTally> tallies;  // prefixes with live tasks
  std::array<std::size_t, kStatuses> status_totals{};
  PrefixTally* last_tally = nullptr;
  std::string last_tally_prefix;

  /// Counts `ts`, at its current status, into its prefix's tally and the totals.
  void count_in(TaskState* ts) {
    ++ts->tally->by_status[static_cast<std::size_t>(ts->status)];
    ++status_totals[static_cast<std::size_t>(ts->status)];
  }
  void count_out(TaskState* ts) {
    --ts->tally->by_status[static_cast<std::size_t>(ts->status)];
    --status_totals[static_cast<std::size_t>(ts->status)];
  }

  void set_status(TaskState* ts, TaskStatus s) {
    count_out(ts);
    ts->status = s;
    count_in(ts);
  }

  /// Adds a new task (status released) to the table and the tallies.
  TaskState* add_task(std::unique_ptr<TaskState> owned) {
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

  TaskState* find(const std::string& key) { return tasks.find(key); }

  // ---- events ----
  void on(AddClient& e) { clients.try_emplace(e.client); }

  void on(RemoveClient& e) {
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

  void on(AddWorker& e) {
    auto& w = workers[e.worker];
    w.id = e.worker;
    w.name = e.name;
    w.address = e.address;
    w.nthreads = std::max<std::uint32_t>(1, e.nthreads);
    w.memory_limit = e.memory_limit;
    w.functions = {e.functions.begin(), e.functions.end()};
    w.resources = {e.resources.begin(), e.resources.end()};
    cluster_changed();
    has_room.push_back(e.worker);
    std::vector<TaskState*> pending(unrunnable.begin(), unrunnable.end());
    std::sort(pending.begin(), pending.end(), by_priority);
    unrunnable.clear();
    for (auto* ts : pending) schedule(ts);
  }

  void on(RemoveWorker& e) {
    auto it = workers.find(e.worker);
    if (it == workers.end()) return;
    std::vector<TaskState*> processing(it->second.processing.begin(), it->second.processing.end());
    std::vector<TaskState*> held(it->second.has_what.begin(), it->second.has_what.end());
    workers.erase(it);
    cluster_changed();
    std::sort(processing.begin(), processing.end(), by_priority);
    for (auto* ts : held) {
      erase_one(ts->who_has, e.worker);
      if (ts->who_has.empty()) lose(ts);
    }
    std::vector<std::string> unneeded;
    for (auto* ts : processing) {
      if (ts->status != TaskStatus::processing) continue;  // already moved by lose()
      ts->processing_on = 0;
      set_status(ts, TaskStatus::released);
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

  void on(UpdateGraph& e) {
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
    for (auto* ts : created) recompute(ts);  // no-op for tasks already erred or on their way
    for (auto* ts : wanted_again) recompute(ts);
    // Keys nobody wants and nothing needs (a client let go before they were submitted).
    std::vector<std::string> created_keys;
    for (auto* ts : created)
      if (!needed(ts)) created_keys.push_back(ts->key);
    release_keys_if_unneeded(created_keys);
  }

  void on(TaskFinished& e) {
    auto* ts = find(e.key);
    auto w = workers.find(e.worker);
    if (w == workers.end()) return;
    if (ts && ts->status == TaskStatus::memory &&
        std::find(ts->who_has.begin(), ts->who_has.end(), e.worker) != ts->who_has.end())
      return;  // a second report of a result this worker holds (it ran the key twice): keep it
    if (!ts || ts->status != TaskStatus::processing || ts->processing_on != e.worker) {
      // The result is not wanted any more (released or already computed elsewhere).
      out->push_back(FreeKeys{e.worker, {e.key}});
      return;
    }
    auto& known = durations[ts->prefix];
    known = known == 0 ? e.duration : 0.5 * known + 0.5 * e.duration;  // follows drifts quickly
    unassign(ts);
    set_status(ts, TaskStatus::memory);
    ts->who_has = {e.worker};
    ts->type = e.type;
    ts->nbytes = e.nbytes;
    w->second.has_what.insert(ts);
    for (auto c : ts->who_wants) report_memory(ts, c, e.value);
    for (auto* dep : ts->dependents) {
      if (dep->status == TaskStatus::waiting && --dep->waiting_on == 0) schedule(dep);
    }
    release_inputs_then_self(ts);
  }

  void on(TaskErred& e) {
    auto* ts = find(e.key);
    if (!ts || ts->status != TaskStatus::processing || ts->processing_on != e.worker) return;
    unassign(ts);
    if (ts->retries_left > 0) {  // submit(..., retries = n): run it again, maybe elsewhere
      --ts->retries_left;
      set_status(ts, TaskStatus::released);
      recompute(ts);
      return;
    }
    set_erred(ts, e.exception_type, e.message);
    release_inputs_then_self(ts);
  }

  void on(ReleaseKeys& e) {
    auto c = clients.find(e.client);
    for (const auto& key : e.keys) {
      auto* ts = find(key);
      if (!ts) continue;  // unknown or already forgotten: nothing to do
      ts->who_wants.erase(e.client);
      if (c != clients.end()) c->second.erase(ts);
      release_if_unneeded(ts);
    }
  }

  void on(Scattered& e) {
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
      set_status(ts, TaskStatus::memory);
      ts->type = k.type;
      ts->nbytes = k.nbytes;
      for (auto wid : k.holders) {
        auto w = workers.find(wid);
        if (w == workers.end() || std::find(ts->who_has.begin(), ts->who_has.end(), wid) != ts->who_has.end()) continue;
        ts->who_has.push_back(wid);
        w->second.has_what.insert(ts);
      }
      if (ts->who_has.empty()) set_erred(ts, "distrib::LostData", "no live worker holds scattered key '" + ts->key + "'");
      else if (!was_in_memory)
        for (auto* d : ts->dependents)
          if (d->status == TaskStatus::waiting && --d->waiting_on == 0) schedule(d);
    }
  }

  void on(CancelKeys& e) {
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

  // Cancels `ts` for `client`, and its dependents first (as Dask's cancel_key).
  void cancel(TaskState* root, ClientId client, std::vector<std::string>& cancelled) {
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

  void on(MissingData& e) {
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

  void on(StealResponse& e) {
    auto* ts = find(e.key);
    if (!ts || ts->steal_to == 0) return;  // no steal of it in flight: a stale or forged answer
    WorkerId thief = ts->steal_to;
    clear_steal(ts);
    if (!e.released) ts->steal_refused = true;
    if (!e.released || ts->status != TaskStatus::processing || ts->processing_on != e.worker) return;
    unassign(ts);  // the victim dropped it: it runs elsewhere now
    auto t = workers.find(thief);
    if (t != workers.end() && satisfies(t->second, ts, !ts->spec->allow_other_workers)) {
      assign(ts, t->second);
    } else {
      set_status(ts, TaskStatus::released);
      recompute(ts);
    }
  }

  void clear_steal(TaskState* ts) {
    if (!ts->steal_to) return;
    auto t = workers.find(ts->steal_to);
    if (t != workers.end() && t->second.incoming_steals > 0) --t->second.incoming_steals;
    ts->steal_to = 0;
  }

  /// Work stealing: a worker with idle threads asks the busiest worker for tasks it has
  /// not started yet, when moving their inputs is cheaper than running them.
  void balance() {
    if (!config.work_stealing || !queued.empty() || workers.size() < 2) return;
    for (auto& [tid, thief] : workers) {
      std::size_t busy = thief.processing.size() + thief.incoming_steals;
      if (busy >= thief.nthreads) continue;
      std::size_t wanted = thief.nthreads - busy;
      WorkerInfo* victim = nullptr;
      for (auto& [vid, w] : workers)
        if (vid != tid && w.processing.size() > w.nthreads &&
            (!victim || w.occupancy / w.nthreads > victim->occupancy / victim->nthreads))
          victim = &w;
      if (!victim) return;
      std::size_t looked = 0;
      for (auto* ts : victim->processing) {
        if (wanted == 0 || ++looked > 4 * thief.nthreads + 16) break;
        if (ts->steal_to || ts->steal_refused || !satisfies(thief, ts, !ts->spec->allow_other_workers)) continue;
        std::uint64_t to_move = 0;
        for (auto* d : ts->dependencies)
          if (std::find(d->who_has.begin(), d->who_has.end(), tid) == d->who_has.end()) to_move += d->nbytes;
        if (to_move / config.bandwidth > 2 * estimate(ts) + 0.001) continue;
        ts->steal_to = tid;
        ++thief.incoming_steals;
        --wanted;
        out->push_back(StealRequest{victim->id, ts->key});
      }
    }
  }

  void on(WorkerMetrics& e) {
    auto w = workers.find(e.worker);
    if (w != workers.end()) w->second.memory_bytes = e.memory_bytes;
  }

  // ---- transitions ----
  static bool by_priority(const TaskState* a, const TaskState* b) {
    return a->spec->priority < b->spec->priority || (a->spec->priority == b->spec->priority && a->key < b->key);
  }

  void cluster_changed() {
    ClusterChanged c;
    c.workers = static_cast<std::uint32_t>(workers.size());
    for (auto& [id, w] : workers) c.threads += w.nthreads;
    out->push_back(c);
  }

  /// A task is needed while a client wants it or an unfinished task depends on it.
  bool needed(const TaskState* ts) const {
    if (!ts->who_wants.empty()) return true;
    for (auto* d : ts->dependents)
      if (is_active(d->status)) return true;
    return false;
  }

  /// Brings a released task back towards memory: waits for (and recomputes) missing
  /// dependencies, or schedules it at once.
  /// Brings a released task (and the released inputs it needs, transitively) back to
  /// waiting, and schedules those whose inputs are all in memory. A worklist, not
  /// recursion: a lost result at the end of a long chain recomputes every link.
  void recompute(TaskState* root) {
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
        set_erred(ts, (*erred)->exception_type, (*erred)->exception_message);
        continue;
      }
      set_status(ts, TaskStatus::waiting);
      ts->waiting_on = 0;
      for (auto* d : ts->dependencies) {
        if (d->status != TaskStatus::memory) ++ts->waiting_on;
        if (d->status == TaskStatus::released) todo.push_back(d);
      }
      revived.push_back(ts);
    }
    // Inputs were revived after the tasks needing them: schedule them first.
    for (auto it = revived.rbegin(); it != revived.rend(); ++it)
      if ((*it)->status == TaskStatus::waiting && (*it)->waiting_on == 0) schedule(*it);
  }

  double estimate(const TaskState* ts) const {
    auto it = durations.find(ts->prefix);
    return it == durations.end() ? config.unknown_task_duration : it->second;
  }

  bool satisfies(const WorkerInfo& w, const TaskState* ts, bool strict_restrictions) const {
    if (!w.functions.count(ts->spec->function)) return false;
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
  std::size_t saturation_limit(const WorkerInfo& w, const TaskState* ts) const {
    if (!(config.worker_saturation < 1e9)) return std::numeric_limits<std::size_t>::max();  // queuing off
    auto limit = static_cast<std::size_t>(std::ceil(w.nthreads * config.worker_saturation));
    auto known = durations.find(ts->prefix);
    if (known != durations.end() && known->second > 0) {
      double keep_busy = w.nthreads * config.saturation_seconds / known->second;
      limit = std::max(limit, static_cast<std::size_t>(std::min(keep_busy, 1e6)));
    }
    return std::max<std::size_t>(limit, 1);
  }

  bool saturated(const WorkerInfo& w, const TaskState* ts) const {
    return w.processing.size() >= saturation_limit(w, ts);
  }

  void schedule(TaskState* ts) {
    if (workers.empty()) {
      set_status(ts, TaskStatus::no_worker);
      unrunnable.insert(ts);
      return;
    }
    bool any_has_function = false;
    for (auto& [id, w] : workers) any_has_function |= w.functions.count(ts->spec->function) > 0;
    if (!any_has_function) {
      set_erred(ts, "distrib::NoWorkerCanRun",
                "no connected worker can run task function '" + ts->spec->function +
                    "' (register it with DISTRIB_TASK and load it in the workers, e.g. with dworker --preload)");
      return;
    }
    std::vector<WorkerInfo*> candidates;
    for (auto& [id, w] : workers)
      if (satisfies(w, ts, true)) candidates.push_back(&w);
    if (candidates.empty() && ts->spec->allow_other_workers)
      for (auto& [id, w] : workers)
        if (satisfies(w, ts, false)) candidates.push_back(&w);
    if (candidates.empty()) {  // restrictions or resources no worker meets yet
      set_status(ts, TaskStatus::no_worker);
      unrunnable.insert(ts);
      return;
    }
    bool root = ts->dependencies.empty();
    WorkerInfo* best = nullptr;
    std::uint64_t best_bytes = 0;
    double best_load = 0;
    for (auto* w : candidates) {
      if (root && saturated(*w, ts)) continue;
      std::uint64_t local = 0;
      for (auto* d : ts->dependencies)
        if (std::find(d->who_has.begin(), d->who_has.end(), w->id) != d->who_has.end()) local += d->nbytes;
      double load = w->occupancy / w->nthreads;
      bool better = !best || local > best_bytes ||
                    (local == best_bytes && (load < best_load || (load == best_load && w->id < best->id)));
      if (better) {
        best = w;
        best_bytes = local;
        best_load = load;
      }
    }
    if (!best) {  // every worker is saturated: wait on the scheduler, in priority order
      set_status(ts, TaskStatus::queued);
      queued.insert(ts);
      return;
    }
    assign(ts, *best);
  }

  void assign(TaskState* ts, WorkerInfo& w) {
    ts->steal_refused = false;
    set_status(ts, TaskStatus::processing);
    ts->processing_on = w.id;
    ts->estimate = estimate(ts);
    w.processing.insert(ts);
    w.occupancy += ts->estimate;
    ComputeTask ct{w.id, ts->spec, {}};
    for (auto* d : ts->dependencies) {
      std::vector<std::string> addresses;
      for (auto wid : d->who_has) addresses.push_back(workers.at(wid).address);
      ct.who_has.emplace_back(d->key, std::move(addresses));
    }
    out->push_back(std::move(ct));
  }

  /// Gives queued root tasks to workers that have room again.
  void fill_workers() {
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

  /// Takes a processing task off its worker (the worker is told to drop it).
  void unassign(TaskState* ts) {
    if (ts->status != TaskStatus::processing) return;
    clear_steal(ts);
    auto w = workers.find(ts->processing_on);
    if (w != workers.end()) {
      w->second.processing.erase(ts);
      w->second.occupancy = std::max(0.0, w->second.occupancy - ts->estimate);
      if (w->second.processing.empty()) w->second.occupancy = 0;  // no drift from rounding
      has_room.push_back(w->first);
    }
    ts->processing_on = 0;
  }

  /// Marks `ts` erred, and every dependent not yet computed (a worklist: chains can be long).
  void set_erred(TaskState* ts, const std::string& type, const std::string& message) {
    std::vector<TaskState*> todo{ts};
    while (!todo.empty()) {
      auto* t = todo.back();
      todo.pop_back();
      if (t != ts && (t->status == TaskStatus::memory || t->status == TaskStatus::erred)) continue;
      if (t != ts && t->status == TaskStatus::processing) {
        out->push_back(FreeKeys{t->processing_on, {t->key}, true});
        unassign(t);
      }
      if (t->status == TaskStatus::no_worker) unrunnable.erase(t);
      if (t->status == TaskStatus::queued) queued.erase(t);
      set_status(t, TaskStatus::erred);
      t->exception_type = type;
      t->exception_message = message;
      for (auto* d : t->dependencies) recheck.push_back(d->key);  // an erred task needs no inputs
      recheck.push_back(t->key);
      for (auto c : t->who_wants) report_erred(t, c);
      for (auto* d : t->dependents)
        if (d->status != TaskStatus::memory && d->status != TaskStatus::erred) todo.push_back(d);
    }
  }

  /// A key's only copy was lost with its worker.
  void lose(TaskState* ts) {
    set_status(ts, TaskStatus::released);
    for (auto* d : ts->dependents) {
      if (d->status == TaskStatus::waiting) {
        ++d->waiting_on;
      } else if (d->status == TaskStatus::processing) {
        // It can no longer fetch this input: take it back and wait for the recomputation.
        out->push_back(FreeKeys{d->processing_on, {d->key}, true});
        unassign(d);
        set_status(d, TaskStatus::waiting);
        d->waiting_on = 0;
        for (auto* x : d->dependencies) d->waiting_on += x->status != TaskStatus::memory;
      }
    }
  }

  /// Frees a key's memory once no client wants it and no unfinished task needs it, and
  /// forgets it once nothing depends on it at all.
  void release_if_unneeded(TaskState* ts) {
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
        set_status(ts, TaskStatus::released);
        break;
      case TaskStatus::processing:
        out->push_back(FreeKeys{ts->processing_on, {ts->key}, true});
        unassign(ts);
        set_status(ts, TaskStatus::released);
        break;
      case TaskStatus::no_worker:
        unrunnable.erase(ts);
        set_status(ts, TaskStatus::released);
        break;
      case TaskStatus::queued:
        queued.erase(ts);
        set_status(ts, TaskStatus::released);
        break;
      case TaskStatus::waiting:
        set_status(ts, TaskStatus::released);
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
  void release_inputs_then_self(TaskState* ts) {
    // Releasing inputs changes neither who wants this task nor its dependents, so whether
    // it is still needed is known now (a wanted result, the usual case, copies no key).
    const bool release_self = !needed(ts);
    auto key = release_self ? ts->key : std::string();
    release_keys_if_unneeded(keys_of(ts->dependencies));  // may forget ts: keep its key
    if (release_self) release_keys_if_unneeded({key});
  }

  /// Releases (and forgets) keys no longer needed. A worklist, not recursion: releasing
  /// the end of a long chain cascades through every link, deeper than any stack.
  void release_keys_if_unneeded(const std::vector<std::string>& keys) {
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

  static std::vector<std::string> keys_of(const std::vector<TaskState*>& v) {
    std::vector<std::string> keys;
    keys.reserve(v.size());
    for (auto* ts : v) keys.push_back(ts->key);
    return keys;
  }

  void forget(TaskState* ts) {
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

  void report_memory(TaskState* ts, ClientId c, const std::optional<Value>& value = std::nullopt) {
    const auto& address = ts->who_has.empty() ? std::string() : workers.at(ts->who_has.front()).address;
    out->push_back(KeyInMemory{c, ts->key, address, ts->type, ts->nbytes, value});
  }

  void report_erred(TaskState* ts, ClientId c) {
    out->push_back(KeyErred{c, ts->key, ts->exception_type, ts->exception_message});
  }
};

SchedulerState::SchedulerState(SchedulerConfig config) : impl_(std::make_unique<Impl>()) { impl_->config = config; }
SchedulerState::~SchedulerState() = default;

void SchedulerState::handle(Event event, std::vector<Action>& out) {
  impl_->out = &out;
  std::visit([this](auto& e) { impl_->on(e); }, event);
  while (!impl_->recheck.empty() || !impl_->has_room.empty()) {
    auto keys = std::move(impl_->recheck);
    impl_->recheck.clear();
    impl_->release_keys_if_unneeded(keys);
    impl_->fill_workers();
  }
  impl_->balance();
  impl_->out = nullptr;
}

std::size_t SchedulerState::n_tasks() const { return impl_->tasks.size(); }
std::size_t SchedulerState::n_workers() const { return impl_->workers.size(); }
std::uint32_t SchedulerState::total_threads() const {
  std::uint32_t n = 0;
  for (auto& [id, w] : impl_->workers) n += w.nthreads;
  return n;
}

std::optional<TaskStatus> SchedulerState::status(const std::string& key) const {
  auto* ts = impl_->find(key);
  if (!ts) return std::nullopt;
  return ts->status;
}

WorkerId SchedulerState::processing_on(const std::string& key) const {
  auto* ts = impl_->find(key);
  return ts ? ts->processing_on : 0;
}

std::vector<WorkerId> SchedulerState::who_has(const std::string& key) const {
  auto* ts = impl_->find(key);
  return ts ? ts->who_has : std::vector<WorkerId>{};
}

std::optional<double> SchedulerState::prefix_duration(const std::string& prefix) const {
  auto it = impl_->durations.find(prefix);
  if (it == impl_->durations.end()) return std::nullopt;
  return it->second;
}

std::vector<SchedulerState::WorkerSnapshot> SchedulerState::workers(bool with_keys) const {
  std::vector<WorkerSnapshot> out;
  for (auto& [id, w] : impl_->workers) {
    WorkerSnapshot s{id, w.name, w.address, w.nthreads, w.memory_limit, w.memory_bytes, w.processing.size(),
                     w.has_what.size(), w.stored_bytes(), {}};
    if (with_keys)
      for (auto* ts : w.has_what) s.keys.push_back(ts->key);
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return out;
}

std::vector<std::pair<std::string, std::size_t>> SchedulerState::task_counts() const {
  std::map<std::string, std::size_t> counts;
  for (std::size_t i = 0; i < kStatuses; ++i)
    if (impl_->status_totals[i] > 0) counts[to_string(static_cast<TaskStatus>(i))] = impl_->status_totals[i];
  return {counts.begin(), counts.end()};
}

std::unordered_map<std::string, SchedulerState::PrefixCounts> SchedulerState::prefix_counts() const {
  std::unordered_map<std::string, PrefixCounts> out;
  for (const auto& [prefix, tally] : impl_->tallies) {
    PrefixCounts c;
    for (std::size_t i = 0; i < kStatuses; ++i) {
      auto n = tally.by_status[i];
      switch (static_cast<TaskStatus>(i)) {
        case TaskStatus::processing: c.processing += n; break;
        case TaskStatus::memory: c.memory += n; break;
        case TaskStatus::erred: c.erred += n; break;
        default: c.waiting += n; break;
      }
    }
    if (c.processing + c.memory + c.erred + c.waiting > 0) out.emplace(prefix, c);
  }
  return out;
}

std::vector<std::string> SchedulerState::wanted_by(ClientId client) const {
  std::vector<std::string> out;
  auto c = impl_->clients.find(client);
  if (c != impl_->clients.end())
    for (auto* ts : c->second) out.push_back(ts->key);
  return out;
}

std::size_t SchedulerState::n_processing(WorkerId worker) const {
  auto w = impl_->workers.find(worker);
  return w == impl_->workers.end() ? 0 : w->second.processing.size();
}

void SchedulerState::validate() const {
  auto fail = [](const std::string& what) { throw std::logic_error("SchedulerState invariant broken: " + what); };
  std::array<std::size_t, kStatuses> totals{};
  std::unordered_map<std::string, PrefixTally> tallies;
  impl_->tasks.for_each([&](const TaskState& ts) {
    ++totals[static_cast<std::size_t>(ts.status)];
    ++tallies[ts.prefix].by_status[static_cast<std::size_t>(ts.status)];
  });
  if (totals != impl_->status_totals) fail("the per-status totals drifted from the tasks");
  if (tallies.size() != impl_->tallies.size()) fail("a prefix tally is missing, or kept with no live task");
  for (const auto& [prefix, tally] : impl_->tallies)
    if (tally.by_status != tallies[prefix].by_status) fail("the tally of prefix '" + prefix + "' drifted");
  impl_->tasks.for_each([&](TaskState& task) {
    TaskState* ts = &task;
    const std::string& key = task.key;
    if (impl_->find(key) != ts) fail("task " + key + " is not found under its key");
    if (ts->status == TaskStatus::processing) {
      auto w = impl_->workers.find(ts->processing_on);
      if (w == impl_->workers.end() || !w->second.processing.count(ts))
        fail(key + " is processing on a worker that does not list it");
    }
    if (ts->status == TaskStatus::memory && ts->who_has.empty()) fail(key + " is in memory nowhere");
    if (ts->status != TaskStatus::memory && !ts->who_has.empty()) fail(key + " has holders but is " + to_string(ts->status));
    if (ts->status == TaskStatus::waiting) {
      std::size_t missing = 0;
      for (auto* d : ts->dependencies) missing += d->status != TaskStatus::memory;
      if (missing != ts->waiting_on || missing == 0) fail(key + " waits on a wrong number of dependencies");
    }
    if ((ts->status == TaskStatus::no_worker) != (impl_->unrunnable.count(ts) == 1))
      fail(key + " no-worker bookkeeping is inconsistent");
    if ((ts->status == TaskStatus::queued) != (impl_->queued.count(ts) == 1))
      fail(key + " queue bookkeeping is inconsistent");
    for (auto* d : ts->dependencies) {
      if (impl_->find(d->key) != d) fail(key + " depends on a forgotten task");
      if (std::find(d->dependents.begin(), d->dependents.end(), ts) == d->dependents.end())
        fail(key + " is missing from its dependency's dependents");
    }
    if (ts->who_wants.empty() && ts->dependents.empty() &&
        (ts->status == TaskStatus::released || ts->status == TaskStatus::erred))
      fail(key + " should have been forgotten");
  });
  for (auto& [id, w] : impl_->workers) {
    for (auto* ts : w.processing)
      if (ts->status != TaskStatus::processing || ts->processing_on != id) fail("worker lists a task it is not processing");
    for (auto* ts : w.has_what)
      if (std::find(ts->who_has.begin(), ts->who_has.end(), id) == ts->who_has.end())
        fail("worker lists a key it does not hold");
  }
}

}  // namespace distrib::detail::sched
