#include "scheduler/scheduler_state.hpp"

#include <algorithm>
#include <stdexcept>

namespace distrib::detail::sched {

const char* to_string(TaskStatus s) {
  switch (s) {
    case TaskStatus::released: return "released";
    case TaskStatus::waiting: return "waiting";
    case TaskStatus::no_worker: return "no-worker";
    case TaskStatus::processing: return "processing";
    case TaskStatus::memory: return "memory";
    case TaskStatus::erred: return "erred";
  }
  return "?";
}

namespace {

struct TaskState {
  std::string key;
  TaskSpecPtr spec;
  TaskStatus status = TaskStatus::released;
  std::vector<TaskState*> dependencies;
  std::vector<TaskState*> dependents;
  std::size_t waiting_on = 0;  // dependencies not in memory
  WorkerId processing_on = 0;
  std::vector<WorkerId> who_has;
  std::string type;
  std::uint64_t nbytes = 0;
  std::unordered_set<ClientId> who_wants;
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
  std::unordered_set<TaskState*> processing;
  std::unordered_set<TaskState*> has_what;
};

template <class T>
void erase_one(std::vector<T>& v, const T& x) {
  auto it = std::find(v.begin(), v.end(), x);
  if (it != v.end()) v.erase(it);
}

bool is_active(TaskStatus s) {
  return s == TaskStatus::waiting || s == TaskStatus::no_worker || s == TaskStatus::processing;
}

}  // namespace

struct SchedulerState::Impl {
  std::unordered_map<std::string, std::unique_ptr<TaskState>> tasks;
  std::unordered_map<WorkerId, WorkerInfo> workers;
  std::unordered_map<ClientId, std::unordered_set<TaskState*>> clients;
  std::unordered_set<TaskState*> unrunnable;  // no-worker: waiting for a worker to join
  std::vector<std::string> recheck;            // keys to release if unneeded once the event is applied
  std::vector<Action>* out = nullptr;

  TaskState* find(const std::string& key) {
    auto it = tasks.find(key);
    return it == tasks.end() ? nullptr : it->second.get();
  }

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
    cluster_changed();
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
      ts->status = TaskStatus::released;
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
      ts->spec = spec;
      created.push_back(ts.get());
      tasks.emplace(spec->key, std::move(ts));
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
    for (auto* ts : created) created_keys.push_back(ts->key);
    release_keys_if_unneeded(created_keys);
  }

  void on(TaskFinished& e) {
    auto* ts = find(e.key);
    auto w = workers.find(e.worker);
    if (w == workers.end()) return;
    if (!ts || ts->status != TaskStatus::processing || ts->processing_on != e.worker) {
      // The result is not wanted any more (released or already computed elsewhere).
      out->push_back(FreeKeys{e.worker, {e.key}});
      return;
    }
    w->second.processing.erase(ts);
    ts->processing_on = 0;
    ts->status = TaskStatus::memory;
    ts->who_has = {e.worker};
    ts->type = e.type;
    ts->nbytes = e.nbytes;
    w->second.has_what.insert(ts);
    for (auto c : ts->who_wants) report_memory(ts, c);
    for (auto* dep : ts->dependents) {
      if (dep->status == TaskStatus::waiting && --dep->waiting_on == 0) schedule(dep);
    }
    auto key = ts->key;
    release_keys_if_unneeded(keys_of(ts->dependencies));
    release_keys_if_unneeded({key});
  }

  void on(TaskErred& e) {
    auto* ts = find(e.key);
    if (!ts || ts->status != TaskStatus::processing || ts->processing_on != e.worker) return;
    unassign(ts);
    set_erred(ts, e.exception_type, e.message);
    auto key = ts->key;
    release_keys_if_unneeded(keys_of(ts->dependencies));
    release_keys_if_unneeded({key});
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
  void recompute(TaskState* ts) {
    if (ts->status != TaskStatus::released) return;
    ts->waiting_on = 0;
    for (auto* d : ts->dependencies) {
      if (d->status == TaskStatus::erred) {
        set_erred(ts, d->exception_type, d->exception_message);
        return;
      }
    }
    ts->status = TaskStatus::waiting;
    for (auto* d : ts->dependencies) {
      if (d->status != TaskStatus::memory) ++ts->waiting_on;
      if (d->status == TaskStatus::released) recompute(d);
    }
    if (ts->status == TaskStatus::waiting && ts->waiting_on == 0) schedule(ts);
  }

  void schedule(TaskState* ts) {
    if (workers.empty()) {
      ts->status = TaskStatus::no_worker;
      unrunnable.insert(ts);
      return;
    }
    WorkerInfo* best = nullptr;
    std::uint64_t best_bytes = 0;
    double best_occupancy = 0;
    for (auto& [id, w] : workers) {
      if (!w.functions.count(ts->spec->function)) continue;
      std::uint64_t local = 0;
      for (auto* d : ts->dependencies)
        if (std::find(d->who_has.begin(), d->who_has.end(), id) != d->who_has.end()) local += d->nbytes;
      double occupancy = static_cast<double>(w.processing.size()) / w.nthreads;
      bool better = !best || local > best_bytes ||
                    (local == best_bytes && (occupancy < best_occupancy || (occupancy == best_occupancy && id < best->id)));
      if (better) {
        best = &w;
        best_bytes = local;
        best_occupancy = occupancy;
      }
    }
    if (!best) {
      set_erred(ts, "distrib::NoWorkerCanRun",
                "no connected worker can run task function '" + ts->spec->function +
                    "' (register it with DISTRIB_TASK and load it in the workers, e.g. with dworker --preload)");
      return;
    }
    ts->status = TaskStatus::processing;
    ts->processing_on = best->id;
    best->processing.insert(ts);
    ComputeTask ct{best->id, ts->spec, {}};
    for (auto* d : ts->dependencies) {
      std::vector<std::string> addresses;
      for (auto wid : d->who_has) addresses.push_back(workers.at(wid).address);
      ct.who_has.emplace_back(d->key, std::move(addresses));
    }
    out->push_back(std::move(ct));
  }

  /// Takes a processing task off its worker (the worker is told to drop it).
  void unassign(TaskState* ts) {
    if (ts->status != TaskStatus::processing) return;
    auto w = workers.find(ts->processing_on);
    if (w != workers.end()) w->second.processing.erase(ts);
    ts->processing_on = 0;
  }

  void set_erred(TaskState* ts, const std::string& type, const std::string& message) {
    if (ts->status == TaskStatus::no_worker) unrunnable.erase(ts);
    ts->status = TaskStatus::erred;
    ts->exception_type = type;
    ts->exception_message = message;
    for (auto* d : ts->dependencies) recheck.push_back(d->key);  // an erred task needs no inputs
    recheck.push_back(ts->key);
    for (auto c : ts->who_wants) report_erred(ts, c);
    for (auto* d : ts->dependents) {
      if (d->status == TaskStatus::memory || d->status == TaskStatus::erred) continue;
      if (d->status == TaskStatus::processing) {
        out->push_back(FreeKeys{d->processing_on, {d->key}});
        unassign(d);
      }
      set_erred(d, type, message);
    }
  }

  /// A key's only copy was lost with its worker.
  void lose(TaskState* ts) {
    ts->status = TaskStatus::released;
    for (auto* d : ts->dependents) {
      if (d->status == TaskStatus::waiting) {
        ++d->waiting_on;
      } else if (d->status == TaskStatus::processing) {
        // It can no longer fetch this input: take it back and wait for the recomputation.
        out->push_back(FreeKeys{d->processing_on, {d->key}});
        unassign(d);
        d->status = TaskStatus::waiting;
        d->waiting_on = 0;
        for (auto* x : d->dependencies) d->waiting_on += x->status != TaskStatus::memory;
      }
    }
  }

  /// Frees a key's memory once no client wants it and no unfinished task needs it, and
  /// forgets it once nothing depends on it at all.
  void release_if_unneeded(TaskState* ts) {
    if (needed(ts)) return;
    switch (ts->status) {
      case TaskStatus::memory:
        for (auto wid : ts->who_has) {
          auto w = workers.find(wid);
          if (w != workers.end()) w->second.has_what.erase(ts);
          out->push_back(FreeKeys{wid, {ts->key}});
        }
        ts->who_has.clear();
        ts->status = TaskStatus::released;
        break;
      case TaskStatus::processing:
        out->push_back(FreeKeys{ts->processing_on, {ts->key}});
        unassign(ts);
        ts->status = TaskStatus::released;
        break;
      case TaskStatus::no_worker:
        unrunnable.erase(ts);
        ts->status = TaskStatus::released;
        break;
      case TaskStatus::waiting:
        ts->status = TaskStatus::released;
        break;
      case TaskStatus::released:
      case TaskStatus::erred:
        break;
    }
    if (ts->status == TaskStatus::released || ts->status == TaskStatus::erred) {
      // Its inputs may have been kept only for it (forget() checks them too).
      if (ts->dependents.empty()) forget(ts);
      else release_keys_if_unneeded(keys_of(ts->dependencies));
    }
  }

  void release_keys_if_unneeded(const std::vector<std::string>& keys) {
    for (const auto& k : keys)
      if (auto* ts = find(k)) release_if_unneeded(ts);
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
    tasks.erase(ts->key);  // destroys ts
    // Inputs looked up again by key: releasing one may forget others.
    release_keys_if_unneeded(dep_keys);
  }

  void report_memory(TaskState* ts, ClientId c) {
    const auto& address = ts->who_has.empty() ? std::string() : workers.at(ts->who_has.front()).address;
    out->push_back(KeyInMemory{c, ts->key, address, ts->type, ts->nbytes});
  }

  void report_erred(TaskState* ts, ClientId c) {
    out->push_back(KeyErred{c, ts->key, ts->exception_type, ts->exception_message});
  }
};

SchedulerState::SchedulerState() : impl_(std::make_unique<Impl>()) {}
SchedulerState::~SchedulerState() = default;

void SchedulerState::handle(Event event, std::vector<Action>& out) {
  impl_->out = &out;
  std::visit([this](auto& e) { impl_->on(e); }, event);
  while (!impl_->recheck.empty()) {
    auto keys = std::move(impl_->recheck);
    impl_->recheck.clear();
    impl_->release_keys_if_unneeded(keys);
  }
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

std::size_t SchedulerState::n_processing(WorkerId worker) const {
  auto w = impl_->workers.find(worker);
  return w == impl_->workers.end() ? 0 : w->second.processing.size();
}

void SchedulerState::validate() const {
  auto fail = [](const std::string& what) { throw std::logic_error("SchedulerState invariant broken: " + what); };
  for (auto& [key, ts] : impl_->tasks) {
    if (ts->key != key) fail("task stored under the wrong key " + key);
    if (ts->status == TaskStatus::processing) {
      auto w = impl_->workers.find(ts->processing_on);
      if (w == impl_->workers.end() || !w->second.processing.count(ts.get()))
        fail(key + " is processing on a worker that does not list it");
    }
    if (ts->status == TaskStatus::memory && ts->who_has.empty()) fail(key + " is in memory nowhere");
    if (ts->status != TaskStatus::memory && !ts->who_has.empty()) fail(key + " has holders but is " + to_string(ts->status));
    if (ts->status == TaskStatus::waiting) {
      std::size_t missing = 0;
      for (auto* d : ts->dependencies) missing += d->status != TaskStatus::memory;
      if (missing != ts->waiting_on || missing == 0) fail(key + " waits on a wrong number of dependencies");
    }
    if ((ts->status == TaskStatus::no_worker) != (impl_->unrunnable.count(ts.get()) == 1))
      fail(key + " no-worker bookkeeping is inconsistent");
    for (auto* d : ts->dependencies) {
      if (impl_->find(d->key) != d) fail(key + " depends on a forgotten task");
      if (std::find(d->dependents.begin(), d->dependents.end(), ts.get()) == d->dependents.end())
        fail(key + " is missing from its dependency's dependents");
    }
    if (ts->who_wants.empty() && ts->dependents.empty() &&
        (ts->status == TaskStatus::released || ts->status == TaskStatus::erred))
      fail(key + " should have been forgotten");
  }
  for (auto& [id, w] : impl_->workers) {
    for (auto* ts : w.processing)
      if (ts->status != TaskStatus::processing || ts->processing_on != id) fail("worker lists a task it is not processing");
    for (auto* ts : w.has_what)
      if (std::find(ts->who_has.begin(), ts->who_has.end(), id) == ts->who_has.end())
        fail("worker lists a key it does not hold");
  }
}

}  // namespace distrib::detail::sched
