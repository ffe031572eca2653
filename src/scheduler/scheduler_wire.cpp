#include "scheduler/scheduler_wire.hpp"

#include <unordered_map>

#include "core/task_spec.hpp"

namespace distrib::detail::wire {

namespace {

bool decode_worker_message(MessageReader& mr, sched::WorkerId id, std::vector<sched::Event>& out) {
  auto root = mr.root();
  switch (root.which()) {
    case proto::Message::HEARTBEAT: {
      // SchedulerServer compares its `paused` with what it saw last: a change becomes a
      // WorkerPaused, which is journaled; the figures are not.
      auto hb = root.getHeartbeat();
      out.push_back(sched::WorkerMetrics{id, hb.getMemoryBytes(), hb.getManagedBytes(), hb.getSpilledBytes()});
      return true;
    }
    case proto::Message::WORKER_STATUS:
      out.push_back(sched::WorkerPaused{id, root.getWorkerStatus().getPaused()});
      return true;
    case proto::Message::TASKS_FINISHED:
      for (auto t : root.getTasksFinished()) {
        sched::TaskFinished ev{id, t.getKey(), t.getType(), t.getNbytes(), t.getDuration(), std::nullopt, t.getRunId()};
        if (t.hasValue()) ev.value = mr.value(t.getValue());
        out.push_back(std::move(ev));
      }
      return true;
    case proto::Message::TASK_ERRED:
      for (auto t : root.getTaskErred())
        out.push_back(sched::TaskErred{id, t.getKey(), t.getExceptionType(), t.getMessage(), t.getRunId()});
      return true;
    case proto::Message::MISSING_DATA: {
      auto m = root.getMissingData();
      out.push_back(sched::MissingData{id, m.getKey(), m.getWorker()});
      return true;
    }
    case proto::Message::STEAL_RESPONSE: {
      auto r = root.getStealResponse();
      out.push_back(sched::StealResponse{id, r.getKey(), r.getReleased(), r.getRunId()});
      return true;
    }
    case proto::Message::LONG_RUNNING: {
      auto l = root.getLongRunning();
      out.push_back(sched::TaskSeceded{id, l.getKey(), l.getRunId()});
      return true;
    }
    case proto::Message::PUSH_FAILED: {
      auto p = root.getPushFailed();
      for (auto target : p.getWorkers()) out.push_back(sched::PushFailed{id, p.getKey(), target});
      return true;
    }
    default:
      return false;
  }
}

bool decode_client_message(MessageReader& mr, sched::ClientId id, const WorkerByAddress& worker_by_address,
                           std::vector<sched::Event>& out) {
  auto root = mr.root();
  switch (root.which()) {
    case proto::Message::UPDATE_GRAPH: {
      auto g = root.getUpdateGraph();
      sched::UpdateGraph ev{id, {}, {}};
      ev.tasks.reserve(g.getTasks().size());
      for (auto t : g.getTasks()) ev.tasks.push_back(std::make_shared<TaskSpec>(read_task_spec(mr, t)));
      for (auto k : g.getWanted()) ev.wanted.emplace_back(k);
      out.push_back(std::move(ev));
      return true;
    }
    case proto::Message::RELEASE_KEYS: {
      sched::ReleaseKeys ev{id, {}};
      for (auto k : root.getReleaseKeys()) ev.keys.emplace_back(k);
      out.push_back(std::move(ev));
      return true;
    }
    case proto::Message::SCATTERED: {
      sched::Scattered ev{id, {}};
      for (auto k : root.getScattered()) {
        sched::Scattered::Key key{k.getKey(), k.getType(), k.getNbytes(), {}};
        for (auto address : k.getWorkers())
          if (auto w = worker_by_address(address)) key.holders.push_back(*w);
        ev.keys.push_back(std::move(key));
      }
      out.push_back(std::move(ev));
      return true;
    }
    case proto::Message::CANCEL_KEYS: {
      sched::CancelKeys ev{id, {}};
      for (auto k : root.getCancelKeys()) ev.keys.emplace_back(k);
      out.push_back(std::move(ev));
      return true;
    }
    case proto::Message::CLIENT_OP: {
      // Only the operations that change the state are events; the server answers the rest.
      auto op = root.getClientOp();
      if (op.getOp().isFireAndForget()) {
        sched::FireAndForget ev{id, {}};
        for (auto k : op.getOp().getFireAndForget()) ev.keys.emplace_back(k);
        out.push_back(std::move(ev));
        return true;
      }
      if (op.getOp().isRetry()) {
        sched::RetryKeys ev{id, op.getId(), {}};
        for (auto k : op.getOp().getRetry()) ev.keys.emplace_back(k);
        out.push_back(std::move(ev));
        return true;
      }
      return false;
    }
    default:
      return false;
  }
}

template <class Builder>
void set_texts(Builder list, const std::vector<const std::string*>& texts) {
  for (unsigned i = 0; i < texts.size(); ++i) list.set(i, *texts[i]);
}

}  // namespace

bool decode_events(MessageReader& mr, PeerKind kind, std::uint64_t id, const WorkerByAddress& worker_by_address,
                   std::vector<sched::Event>& out) {
  return kind == PeerKind::worker ? decode_worker_message(mr, id, out)
                                  : decode_client_message(mr, id, worker_by_address, out);
}

std::vector<Outgoing> encode_actions(const std::vector<sched::Action>& actions) {
  std::vector<Outgoing> out;
  if (actions.empty()) return out;
  // Grouped by destination, in the order each destination was first named.
  std::unordered_map<std::uint64_t, std::vector<const sched::ComputeTask*>> compute;
  struct Frees {
    std::vector<const std::string*> keys;
    bool stops_work = false;  // any of them takes back unstarted work
  };
  std::unordered_map<std::uint64_t, Frees> free;
  std::unordered_map<std::uint64_t, std::vector<const sched::KeyInMemory*>> in_memory;
  std::unordered_map<std::uint64_t, std::vector<const sched::KeyErred*>> erred;
  std::unordered_map<std::uint64_t, std::vector<const std::string*>> cancelled;
  std::unordered_map<std::uint64_t, std::vector<const std::string*>> steals;
  std::vector<const sched::KeyLocations*> locations;
  std::unordered_map<std::uint64_t, std::vector<const sched::PushTo*>> pushes;
  std::vector<const sched::RestartCancelled*> restarted;
  std::vector<const sched::KeysRetried*> retried;
  bool cluster_changed = false;
  for (const auto& a : actions) {
    if (auto* c = std::get_if<sched::ComputeTask>(&a)) compute[c->worker].push_back(c);
    else if (auto* f = std::get_if<sched::FreeKeys>(&a)) {
      auto& frees = free[f->worker];
      for (const auto& k : f->keys) frees.keys.push_back(&k);
      frees.stops_work = frees.stops_work || f->stops_work;
    } else if (auto* m = std::get_if<sched::KeyInMemory>(&a)) in_memory[m->client].push_back(m);
    else if (auto* e = std::get_if<sched::KeyErred>(&a)) erred[e->client].push_back(e);
    else if (std::holds_alternative<sched::ClusterChanged>(a)) cluster_changed = true;
    else if (auto* kc = std::get_if<sched::KeysCancelled>(&a)) {
      auto& list = cancelled[kc->client];  // present even when empty: one reply per request
      for (const auto& k : kc->keys) list.push_back(&k);
    } else if (auto* st = std::get_if<sched::StealRequest>(&a)) {
      steals[st->worker].push_back(&st->key);
    } else if (auto* kl = std::get_if<sched::KeyLocations>(&a)) {
      locations.push_back(kl);
    } else if (auto* rc = std::get_if<sched::RestartCancelled>(&a)) {
      restarted.push_back(rc);
    } else if (auto* p = std::get_if<sched::PushTo>(&a)) {
      pushes[p->worker].push_back(p);
    } else if (auto* r = std::get_if<sched::KeysRetried>(&a)) {
      retried.push_back(r);
    }
  }
  using To = Outgoing::To;
  // Nothing waits on a free of stored results, so it rides along with the worker's next
  // message; one that takes back unstarted work goes at once, before the worker starts it.
  for (auto& [wid, frees] : free) {
    MessageBuilder mb;
    set_texts(mb.root().initFreeKeys(static_cast<unsigned>(frees.keys.size())), frees.keys);
    out.push_back({To::worker, wid, mb.finish(), !frees.stops_work});
  }
  for (auto& [wid, tasks] : compute) {
    MessageBuilder mb;
    auto list = mb.root().initComputeTasks(static_cast<unsigned>(tasks.size()));
    for (unsigned i = 0; i < tasks.size(); ++i) {
      write_task_spec(mb, list[i].initSpec(), *tasks[i]->spec);
      list[i].setRunId(tasks[i]->run_id);
      auto wh = list[i].initWhoHas(static_cast<unsigned>(tasks[i]->who_has.size()));
      for (unsigned j = 0; j < tasks[i]->who_has.size(); ++j) {
        const auto& [key, addresses] = tasks[i]->who_has[j];
        wh[j].setKey(key);
        auto ws = wh[j].initWorkers(static_cast<unsigned>(addresses.size()));
        for (unsigned k = 0; k < addresses.size(); ++k) ws.set(k, addresses[k]);
      }
      const auto& pending = tasks[i]->pending;
      if (!pending.empty()) {
        auto list_pending = list[i].initPending(static_cast<unsigned>(pending.size()));
        for (unsigned j = 0; j < pending.size(); ++j) list_pending.set(j, pending[j]);
      }
    }
    out.push_back({To::worker, wid, mb.finish(), false});
  }
  // After the computes: a producer is told to push a key it was told to compute before.
  for (auto& [wid, list] : pushes) {
    MessageBuilder mb;
    auto msg = mb.root().initPushTo(static_cast<unsigned>(list.size()));
    for (unsigned i = 0; i < list.size(); ++i) {
      msg[i].setKey(list[i]->key);
      auto ws = msg[i].initWorkers(static_cast<unsigned>(list[i]->targets.size()));
      for (unsigned k = 0; k < list[i]->targets.size(); ++k) ws.set(k, list[i]->targets[k]);
    }
    out.push_back({To::worker, wid, mb.finish(), false});
  }
  // Before the client notices: a retried key that errs again at once is pending first.
  for (const auto* r : retried) {
    MessageBuilder mb;
    auto op = mb.root().initClientOp();
    op.setId(r->request);
    auto list = op.getOp().initRetried(static_cast<unsigned>(r->keys.size()));
    for (unsigned i = 0; i < r->keys.size(); ++i) list.set(i, r->keys[i]);
    out.push_back({To::client, r->client, mb.finish(), false});
  }
  for (auto& [cid, keys] : in_memory) {
    MessageBuilder mb;
    auto list = mb.root().initKeysInMemory(static_cast<unsigned>(keys.size()));
    for (unsigned i = 0; i < keys.size(); ++i) {
      list[i].setKey(keys[i]->key);
      list[i].setWorker(keys[i]->worker_address);
      list[i].setType(keys[i]->type);
      list[i].setNbytes(keys[i]->nbytes);
      if (keys[i]->value) mb.set_value(list[i].initValue(), *keys[i]->value);
    }
    out.push_back({To::client, cid, mb.finish(), false});
  }
  for (auto& [cid, keys] : erred) {
    MessageBuilder mb;
    auto list = mb.root().initTaskErred(static_cast<unsigned>(keys.size()));
    for (unsigned i = 0; i < keys.size(); ++i) {
      list[i].setKey(keys[i]->key);
      list[i].setExceptionType(keys[i]->exception_type);
      list[i].setMessage(keys[i]->message);
    }
    out.push_back({To::client, cid, mb.finish(), false});
  }
  for (auto& [wid, keys] : steals) {
    for (const auto* k : keys) {
      MessageBuilder mb;
      mb.root().setStealRequest(*k);
      out.push_back({To::worker, wid, mb.finish(), false});
    }
  }
  for (const auto* kl : locations) {
    MessageBuilder mb;
    auto loc = mb.root().initKeyLocations();
    loc.setKey(kl->key);
    auto ws = loc.initWorkers(static_cast<unsigned>(kl->addresses.size()));
    for (unsigned i = 0; i < kl->addresses.size(); ++i) ws.set(i, kl->addresses[i]);
    out.push_back({To::worker, kl->worker, mb.finish(), false});
  }
  for (auto& [cid, keys] : cancelled) {
    MessageBuilder mb;
    set_texts(mb.root().initKeysCancelled(static_cast<unsigned>(keys.size())), keys);
    out.push_back({To::client, cid, mb.finish(), false});
  }
  for (const auto* rc : restarted) {
    MessageBuilder mb;
    auto list = mb.root().initRestarted(static_cast<unsigned>(rc->keys.size()));
    for (unsigned i = 0; i < rc->keys.size(); ++i) list.set(i, rc->keys[i]);
    out.push_back({To::client, rc->client, mb.finish(), false});
  }
  if (cluster_changed) out.push_back({To::every_client, 0, OutMessage{}, false});
  return out;
}

}  // namespace distrib::detail::wire
