#include "worker/worker_wire.hpp"

#include <memory>
#include <stdexcept>

namespace distrib::detail::wire {

namespace {
wrk::WhoHas read_who_has(capnp::List<proto::KeyLocation>::Reader list) {
  wrk::WhoHas out;
  out.reserve(list.size());
  for (auto loc : list) {
    std::vector<std::string> workers;
    for (auto w : loc.getWorkers()) workers.emplace_back(w);
    out.emplace_back(loc.getKey(), std::move(workers));
  }
  return out;
}
}  // namespace

SchedulerMessage read_scheduler_message(MessageReader& mr) {
  auto root = mr.root();
  switch (root.which()) {
    case proto::Message::WORKER_REGISTERED:
      return Registered{root.getWorkerRegistered().getOk(), root.getWorkerRegistered().getReason()};
    case proto::Message::COMPUTE_TASKS: {
      StateEvents out;
      out.events.reserve(root.getComputeTasks().size());
      for (auto ct : root.getComputeTasks()) {
        wrk::ComputeTask ev{std::make_shared<TaskSpec>(read_task_spec(mr, ct.getSpec())), read_who_has(ct.getWhoHas()),
                            ct.getRunId(), {}};
        for (auto k : ct.getPending()) ev.pending.emplace_back(k);
        out.events.emplace_back(std::move(ev));
      }
      return out;
    }
    case proto::Message::PUSH_TO: {
      StateEvents out;
      for (auto [key, targets] : read_who_has(root.getPushTo()))
        out.events.emplace_back(wrk::PushTo{std::move(key), std::move(targets)});
      return out;
    }
    case proto::Message::FREE_KEYS: {
      wrk::FreeKeys ev;
      for (auto k : root.getFreeKeys()) ev.keys.emplace_back(k);
      return StateEvents{{std::move(ev)}};
    }
    case proto::Message::KEY_LOCATIONS: {
      wrk::KeyLocations ev{root.getKeyLocations().getKey(), {}};
      for (auto w : root.getKeyLocations().getWorkers()) ev.addresses.emplace_back(w);
      return StateEvents{{std::move(ev)}};
    }
    case proto::Message::STEAL_REQUEST:
      return StateEvents{{wrk::StealRequest{root.getStealRequest()}}};
    case proto::Message::REREGISTER:
      return Reregister{root.getReregister()};
    case proto::Message::SHUTDOWN:
      return Shutdown{};
    case proto::Message::RESTART_WORKER:
      return RestartRequested{};
    case proto::Message::UPLOAD_FILE: {
      auto u = root.getUploadFile();
      return Upload{u.getId(), u.getName(), mr.value(u.getData())};
    }
    case proto::Message::REPLICATE: {
      Replicate r;
      for (auto c : root.getReplicate()) {
        std::vector<std::string> targets;
        for (auto t : c.getWorkers()) targets.emplace_back(t);
        r.copies.emplace_back(c.getKey(), std::move(targets));
      }
      return r;
    }
    case proto::Message::ERROR:
      return SchedulerError{root.getError().getReason()};
    default:
      throw std::runtime_error("unexpected message from the scheduler (kind " +
                               std::to_string(static_cast<int>(root.which())) + ")");
  }
}

OutMessage make_register_worker(const Registration& r) {
  MessageBuilder mb;
  auto reg = mb.root().initRegisterWorker();
  reg.setName(r.name);
  reg.setAddress(r.address);
  reg.setNthreads(r.nthreads);
  reg.setMemoryLimit(r.memory_limit);
  reg.setNanny(r.nanny);
  reg.setRestarts(r.restarts);
  auto fns = reg.initFunctions(static_cast<unsigned>(r.functions.size()));
  for (unsigned i = 0; i < r.functions.size(); ++i) fns.set(i, r.functions[i]);
  auto res = reg.initResources(static_cast<unsigned>(r.resources.size()));
  for (unsigned i = 0; i < r.resources.size(); ++i) {
    res[i].setName(r.resources[i].first);
    res[i].setAmount(r.resources[i].second);
  }
  auto held = reg.initHeld(static_cast<unsigned>(r.held.size()));
  for (unsigned i = 0; i < r.held.size(); ++i) {
    held[i].setKey(r.held[i].key);
    held[i].setType(r.held[i].type);
    held[i].setNbytes(r.held[i].nbytes);
  }
  return mb.finish();
}

OutMessage make_tasks_finished(const std::vector<wrk::SendTaskFinished>& finished) {
  MessageBuilder mb;
  auto list = mb.root().initTasksFinished(static_cast<unsigned>(finished.size()));
  for (unsigned i = 0; i < finished.size(); ++i) {
    list[i].setKey(finished[i].key);
    list[i].setType(finished[i].type);
    list[i].setNbytes(finished[i].nbytes);
    list[i].setDuration(finished[i].duration);
    list[i].setRunId(finished[i].run_id);
    if (finished[i].value) mb.set_value(list[i].initValue(), *finished[i].value);
  }
  return mb.finish();
}

OutMessage make_task_erred(const std::vector<wrk::SendTaskErred>& erred) {
  MessageBuilder mb;
  auto list = mb.root().initTaskErred(static_cast<unsigned>(erred.size()));
  for (unsigned i = 0; i < erred.size(); ++i) {
    list[i].setKey(erred[i].key);
    list[i].setExceptionType(erred[i].exception_type);
    list[i].setMessage(erred[i].message);
    list[i].setRunId(erred[i].run_id);
  }
  return mb.finish();
}

OutMessage make_steal_response(const wrk::SendStealResponse& s) {
  MessageBuilder mb;
  auto r = mb.root().initStealResponse();
  r.setKey(s.key);
  r.setReleased(s.released);
  r.setRunId(s.run_id);
  return mb.finish();
}

OutMessage make_long_running(const wrk::SendLongRunning& l) {
  MessageBuilder mb;
  auto r = mb.root().initLongRunning();
  r.setKey(l.key);
  r.setRunId(l.run_id);
  return mb.finish();
}

OutMessage make_push_failed(const std::string& key, const std::string& target) {
  MessageBuilder mb;
  auto p = mb.root().initPushFailed();
  p.setKey(key);
  p.initWorkers(1).set(0, target);
  return mb.finish();
}

OutMessage make_worker_status(bool paused, const std::string& reason, bool restarting) {
  MessageBuilder mb;
  auto s = mb.root().initWorkerStatus();
  s.setPaused(paused);
  s.setReason(reason);
  s.setRestarting(restarting);
  return mb.finish();
}

OutMessage make_missing_data(const wrk::SendMissingData& m) {
  MessageBuilder mb;
  auto md = mb.root().initMissingData();
  md.setKey(m.key);
  md.setWorker(m.worker);
  return mb.finish();
}

}  // namespace distrib::detail::wire
