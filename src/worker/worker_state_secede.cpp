// Tasks that launch tasks (distrib::secede / rejoin, worker_client): a seceded task keeps
// running on its thread but no longer counts against nthreads, so that the tasks it waits
// for can run here; rejoining waits for a thread to be free again. As Dask's worker
// "long-running" state.
#include "worker/worker_state_impl.hpp"

namespace distrib::detail::wrk {

void WorkerState::Impl::on(Secede& e) {
  auto* ts = find(e.key);
  if (!ts || !running(ts) || ts->seceded) return;
  ts->seceded = true;
  --executing;
  // The scheduler stops counting it against this worker's threads (a cancelled one is no
  // longer the scheduler's business).
  if (ts->assigned && ts->status == TaskStatus::executing) out->push_back(SendLongRunning{ts->key, ts->run_id});
  ensure_computing();
}

void WorkerState::Impl::on(Rejoin& e) {
  auto* ts = find(e.key);
  if (!ts || !ts->seceded) {  // never seceded: nothing to wait for
    out->push_back(Rejoined{e.key});
    return;
  }
  rejoining.push_back(e.key);
  admit_rejoiners();
}

void WorkerState::Impl::release_thread(TaskState* ts) {
  if (ts->seceded) ts->seceded = false;
  else --executing;
}

void WorkerState::Impl::admit_rejoiners() {
  while (executing < nthreads && !rejoining.empty()) {
    auto key = std::move(rejoining.front());
    rejoining.pop_front();
    auto* ts = find(key);
    if (ts && ts->seceded && running(ts)) {
      ts->seceded = false;
      ++executing;
    }
    out->push_back(Rejoined{std::move(key)});
  }
}

}  // namespace distrib::detail::wrk
