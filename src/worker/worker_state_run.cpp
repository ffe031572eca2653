// Starting work on a worker: tasks whose inputs are here go to a thread
// (ensure_computing), inputs held by peers are fetched (ensure_communicating), and a new
// life with a scheduler drops this life's work (drop_work).
#include "worker/worker_state_impl.hpp"

namespace distrib::detail::wrk {

void WorkerState::Impl::drop_work(bool keep_stored) {
  std::vector<TaskState*> all;
  all.reserve(tasks.size());
  tasks.for_each([&](TaskState& t) { all.push_back(&t); });
  for (auto* ts : all) {  // every link goes first, so that nothing points at a forgotten task
    ts->dependencies.clear();
    ts->dependents.clear();
    ts->waiting_on = 0;
    ts->push_to.clear();  // the tasks waiting for them were this life's
  }
  to_fetch.clear();
  ready = {};
  early.clear();
  early_order.clear();
  early_bytes = 0;
  for (auto* ts : all) {
    if (running(ts)) {
      ts->status = TaskStatus::cancelled;
      ts->assigned = false;
      ts->who_has.clear();
      ts->inputs_who_has.clear();
      request_stop(ts);
    } else if (!(keep_stored && ts->assigned && ts->status == TaskStatus::memory)) {
      forget(ts);
    }
  }
}

void WorkerState::Impl::ensure_computing() {
  admit_rejoiners();  // a task already under way comes first, paused or not
  if (paused || data->backlogged()) return;  // a backlog: StoreDrained starts them again
  std::vector<ReadyEntry> waiting_for_resources;
  while (executing < nthreads && !ready.empty()) {
    auto* ts = find(ready.top().key);
    bool live = ts && ts->status == TaskStatus::ready && ts->sequence == ready.top().sequence;
    auto entry = ready.top();
    ready.pop();
    if (!live) continue;
    if (!take_resources(ts)) {
      waiting_for_resources.push_back(std::move(entry));
      continue;
    }
    ts->status = TaskStatus::executing;
    ++executing;
    ts->stop = std::stop_source();
    Execute ex{ts->spec, {}, ts->stop.get_token()};
    ex.args.reserve(ts->spec->args.size());
    // The inputs are read from the store here, under the state mutex, on whichever thread
    // handled the event (a task thread when it took this task after its last one). A
    // spilled input comes back as a mapping of its file (SpillingStore): its pages are
    // read later, by the task, outside the lock.
    try {
      for (const auto& a : ts->spec->args) {
        if (a.is_key()) {
          ex.args.push_back(stored(a.key()));
        } else if (a.is_key_list()) {
          std::vector<Value> values;
          values.reserve(a.key_list().keys.size());
          for (const auto& k : a.key_list().keys) values.push_back(stored(k));
          std::vector<const Value*> elements;
          elements.reserve(values.size());
          for (const auto& v : values) elements.push_back(&v);
          ex.args.push_back(assemble_vector(a.key_list(), elements));
        } else {
          ex.args.push_back(a.value());
        }
      }
    } catch (const std::exception& err) {  // a list whose elements have the wrong type
      --executing;
      give_back_resources(ts);
      fail_with_dependents(ts, "distrib::DecodeError", err.what());
      continue;
    }
    out->push_back(std::move(ex));
  }
  for (auto& e : waiting_for_resources) ready.push(std::move(e));
}

void WorkerState::Impl::ensure_communicating() {
  if (paused) return;
  std::unordered_map<std::string, std::vector<TaskState*>> by_worker;
  std::vector<TaskState*> still_waiting;
  for (auto* ts : to_fetch) {
    if (ts->status != TaskStatus::fetch) continue;
    const std::string* chosen = nullptr;
    for (const auto& w : ts->who_has)
      if (!gathering_from.count(w) && (by_worker.count(w) || gathering_from.size() + by_worker.size() < max_gathers)) {
        chosen = &w;
        break;
      }
    if (!chosen) {
      still_waiting.push_back(ts);
      continue;
    }
    by_worker[*chosen].push_back(ts);
  }
  to_fetch = std::move(still_waiting);
  for (auto& [worker, list] : by_worker) {
    GatherDep g{worker, {}};
    for (auto* ts : list) {
      ts->status = TaskStatus::flight;
      g.keys.push_back(ts->key);
    }
    gathering_from.insert(worker);
    out->push_back(std::move(g));
  }
}

}  // namespace distrib::detail::wrk
