#include "journal/journal_codec.hpp"

#include <stdexcept>

#include "comm/message.hpp"
#include "core/task_spec.hpp"
#include "proto/journal.capnp.h"

namespace distrib::detail::journal {

namespace {

using proto::JournalEntry;

template <class List>
void set_texts(List list, const std::vector<std::string>& texts) {
  for (unsigned i = 0; i < texts.size(); ++i) list.set(i, texts[i]);
}

template <class List>
std::vector<std::string> texts(List list) {
  std::vector<std::string> out;
  out.reserve(list.size());
  for (auto t : list) out.emplace_back(t);
  return out;
}

void write_worker(proto::JournalWorker::Builder out, const sched::AddWorker& w) {
  out.setId(w.worker);
  auto info = out.initInfo();
  info.setName(w.name);
  info.setAddress(w.address);
  info.setNthreads(w.nthreads);
  info.setMemoryLimit(w.memory_limit);
  set_texts(info.initFunctions(static_cast<unsigned>(w.functions.size())), w.functions);
  auto res = info.initResources(static_cast<unsigned>(w.resources.size()));
  for (unsigned i = 0; i < w.resources.size(); ++i) {
    res[i].setName(w.resources[i].first);
    res[i].setAmount(w.resources[i].second);
  }
  auto held = info.initHeld(static_cast<unsigned>(w.held.size()));
  for (unsigned i = 0; i < w.held.size(); ++i) {
    held[i].setKey(w.held[i].key);
    held[i].setType(w.held[i].type);
    held[i].setNbytes(w.held[i].nbytes);
  }
}

sched::AddWorker read_worker(proto::JournalWorker::Reader in) {
  sched::AddWorker w;
  w.worker = in.getId();
  auto info = in.getInfo();
  w.name = info.getName();
  w.address = info.getAddress();
  w.nthreads = info.getNthreads();
  w.memory_limit = info.getMemoryLimit();
  w.functions = texts(info.getFunctions());
  for (auto r : info.getResources()) w.resources.emplace_back(r.getName(), r.getAmount());
  for (auto h : info.getHeld()) w.held.push_back({h.getKey(), h.getType(), h.getNbytes()});
  return w;
}

void write_keys(proto::JournalKeys::Builder out, sched::ClientId client, const std::vector<std::string>& keys) {
  out.setClient(client);
  set_texts(out.initKeys(static_cast<unsigned>(keys.size())), keys);
}

struct EventWriter {
  MessageBuilder& mb;
  JournalEntry::Builder entry;
  const std::string& token;

  void operator()(const sched::AddClient& e) {
    auto c = entry.initAddClient();
    c.setId(e.client);
    c.setToken(token);
  }
  void operator()(const sched::RemoveClient& e) { entry.setRemoveClient(e.client); }
  void operator()(const sched::AddWorker& e) { write_worker(entry.initAddWorker(), e); }
  void operator()(const sched::RemoveWorker& e) {
    auto w = entry.initRemoveWorker();
    w.setId(e.worker);
    w.setSafe(e.safe);
    w.setReason(e.reason);
  }
  void operator()(const sched::UpdateGraph& e) {
    auto g = entry.initUpdateGraph();
    g.setClient(e.client);
    auto graph = g.initGraph();
    auto tasks = graph.initTasks(static_cast<unsigned>(e.tasks.size()));
    for (unsigned i = 0; i < e.tasks.size(); ++i) write_task_spec(mb, tasks[i], *e.tasks[i]);
    set_texts(graph.initWanted(static_cast<unsigned>(e.wanted.size())), e.wanted);
  }
  void operator()(const sched::TaskFinished& e) {
    auto f = entry.initTaskFinished();
    f.setWorker(e.worker);
    auto r = f.initReport();
    r.setKey(e.key);
    r.setType(e.type);
    r.setNbytes(e.nbytes);
    r.setDuration(e.duration);
    r.setRunId(e.run_id);
  }
  void operator()(const sched::TaskErred& e) {
    auto x = entry.initTaskErred();
    x.setWorker(e.worker);
    auto r = x.initReport();
    r.setKey(e.key);
    r.setExceptionType(e.exception_type);
    r.setMessage(e.message);
    r.setRunId(e.run_id);
  }
  void operator()(const sched::ReleaseKeys& e) { write_keys(entry.initReleaseKeys(), e.client, e.keys); }
  void operator()(const sched::WorkerMetrics&) { throw std::logic_error("worker metrics are not journaled"); }
  void operator()(const sched::PushFailed&) { throw std::logic_error("push failures are not journaled"); }
  void operator()(const sched::WorkerFunctions&) { throw std::logic_error("functions of an upload are not journaled"); }
  void operator()(const sched::Scattered& e) {
    auto s = entry.initScattered();
    s.setClient(e.client);
    auto keys = s.initKeys(static_cast<unsigned>(e.keys.size()));
    for (unsigned i = 0; i < e.keys.size(); ++i) {
      keys[i].setKey(e.keys[i].key);
      keys[i].setType(e.keys[i].type);
      keys[i].setNbytes(e.keys[i].nbytes);
      auto h = keys[i].initHolders(static_cast<unsigned>(e.keys[i].holders.size()));
      for (unsigned j = 0; j < e.keys[i].holders.size(); ++j) h.set(j, e.keys[i].holders[j]);
    }
  }
  void operator()(const sched::CancelKeys& e) { write_keys(entry.initCancelKeys(), e.client, e.keys); }
  void operator()(const sched::StealResponse& e) {
    auto s = entry.initStealResponse();
    s.setWorker(e.worker);
    auto r = s.initReport();
    r.setKey(e.key);
    r.setReleased(e.released);
    r.setRunId(e.run_id);
  }
  void operator()(const sched::Restart&) { entry.setRestart(); }
  void operator()(const sched::WorkerPaused& e) {
    auto p = entry.initWorkerPaused();
    p.setWorker(e.worker);
    p.setPaused(e.paused);
  }
  void operator()(const sched::TaskSeceded& e) {
    auto s = entry.initTaskSeceded();
    s.setWorker(e.worker);
    auto r = s.initReport();
    r.setKey(e.key);
    r.setRunId(e.run_id);
  }
  void operator()(const sched::Replicated& e) {
    auto r = entry.initReplicated();
    r.setHolder(e.holder);
    auto keys = r.initKeys(static_cast<unsigned>(e.keys.size()));
    for (unsigned i = 0; i < e.keys.size(); ++i) keys.set(i, e.keys[i]);
  }
  void operator()(const sched::DropReplicas& e) {
    auto r = entry.initDropReplicas();
    r.setHolder(e.worker);
    set_texts(r.initKeys(static_cast<unsigned>(e.keys.size())), e.keys);
  }
  void operator()(const sched::FireAndForget& e) { write_keys(entry.initFireAndForget(), e.client, e.keys); }
  void operator()(const sched::RetryKeys& e) {
    auto r = entry.initRetry();
    r.setClient(e.client);
    r.setId(e.request);
    set_texts(r.initKeys(static_cast<unsigned>(e.keys.size())), e.keys);
  }
  void operator()(const sched::MissingData& e) {
    auto m = entry.initMissingData();
    m.setWorker(e.worker);
    m.setKey(e.key);
    m.setHolder(e.holder_address);
  }
};

void write_snapshot_task(MessageBuilder& mb, proto::SnapshotTask::Builder out, const sched::DurableTask& t) {
  out.setKey(t.key);
  write_task_spec(mb, out.initSpec(), *t.spec);
  out.setStatus(static_cast<std::uint8_t>(t.status));
  out.setScattered(t.scattered);
  auto wanted = out.initWantedBy(static_cast<unsigned>(t.wanted_by.size()));
  for (unsigned i = 0; i < t.wanted_by.size(); ++i) wanted.set(i, t.wanted_by[i]);
  auto holders = out.initHolders(static_cast<unsigned>(t.holders.size()));
  for (unsigned i = 0; i < t.holders.size(); ++i) holders.set(i, t.holders[i]);
  out.setType(t.type);
  out.setNbytes(t.nbytes);
  out.setProcessingOn(t.processing_on);
  out.setRunId(t.run_id);
  out.setExceptionType(t.exception_type);
  out.setExceptionMessage(t.exception_message);
  out.setRetriesLeft(t.retries_left);
  out.setSuspicious(t.suspicious);
}

sched::DurableTask read_snapshot_task(const MessageReader& mr, proto::SnapshotTask::Reader in) {
  sched::DurableTask t;
  t.key = in.getKey();
  t.spec = std::make_shared<TaskSpec>(read_task_spec(mr, in.getSpec()));
  if (in.getStatus() > static_cast<std::uint8_t>(sched::TaskStatus::erred))
    throw std::invalid_argument("snapshot task '" + t.key + "' has an unknown status");
  t.status = static_cast<sched::TaskStatus>(in.getStatus());
  t.scattered = in.getScattered();
  for (auto c : in.getWantedBy()) t.wanted_by.push_back(c);
  for (auto w : in.getHolders()) t.holders.push_back(w);
  t.type = in.getType();
  t.nbytes = in.getNbytes();
  t.processing_on = in.getProcessingOn();
  t.run_id = in.getRunId();
  t.exception_type = in.getExceptionType();
  t.exception_message = in.getExceptionMessage();
  t.retries_left = in.getRetriesLeft();
  t.suspicious = in.getSuspicious();
  return t;
}

}  // namespace

// Events that change no task's status or placement are not journaled: metrics, and failed
// pushes (the state only tells a worker where to fetch a key instead). WorkerPaused is.
bool is_journaled(const sched::Event& e) {
  return !std::holds_alternative<sched::WorkerMetrics>(e) && !std::holds_alternative<sched::PushFailed>(e) &&
         !std::holds_alternative<sched::WorkerFunctions>(e);
}

bool needs_sync(const sched::Event& e) {
  return std::holds_alternative<sched::AddClient>(e) || std::holds_alternative<sched::RemoveClient>(e) ||
         std::holds_alternative<sched::UpdateGraph>(e) || std::holds_alternative<sched::ReleaseKeys>(e) ||
         std::holds_alternative<sched::Scattered>(e) || std::holds_alternative<sched::CancelKeys>(e) ||
         std::holds_alternative<sched::Restart>(e) || std::holds_alternative<sched::FireAndForget>(e) ||
         std::holds_alternative<sched::RetryKeys>(e);
}

OutMessage encode_event(const sched::Event& e, sched::StimulusId stimulus, const std::string& token) {
  // Most events are a key or two: a small first segment (the builder grows for graphs).
  MessageBuilder mb(std::holds_alternative<sched::UpdateGraph>(e) ? 1024 : 64);
  auto entry = mb.root_as<JournalEntry>();
  entry.setStimulus(stimulus);
  std::visit(EventWriter{mb, entry, token}, e);
  return mb.finish();
}

void encode_snapshot(const sched::DurableState& state, const std::vector<ClientToken>& clients, std::uint64_t next_id,
                     const std::function<void(OutMessage)>& emit) {
  {
    MessageBuilder mb;
    auto entry = mb.root_as<JournalEntry>();
    entry.setStimulus(state.last_stimulus);
    auto h = entry.initSnapshotHeader();
    auto cs = h.initClients(static_cast<unsigned>(clients.size()));
    for (unsigned i = 0; i < clients.size(); ++i) {
      cs[i].setId(clients[i].id);
      cs[i].setToken(clients[i].token);
    }
    auto ws = h.initWorkers(static_cast<unsigned>(state.workers.size()));
    for (unsigned i = 0; i < state.workers.size(); ++i) write_worker(ws[i], state.workers[i]);
    h.setNextId(next_id);
    h.setNextRunId(state.next_run_id);
    auto ds = h.initDurations(static_cast<unsigned>(state.durations.size()));
    for (unsigned i = 0; i < state.durations.size(); ++i) {
      ds[i].setPrefix(state.durations[i].first);
      ds[i].setSeconds(state.durations[i].second);
    }
    h.setTasks(state.tasks.size());
    emit(mb.finish());
  }
  for (std::size_t begin = 0; begin < state.tasks.size(); begin += kSnapshotTasksPerRecord) {
    auto n = std::min(kSnapshotTasksPerRecord, state.tasks.size() - begin);
    MessageBuilder mb;
    auto entry = mb.root_as<JournalEntry>();
    entry.setStimulus(state.last_stimulus);
    auto list = entry.initSnapshotTasks(static_cast<unsigned>(n));
    for (unsigned i = 0; i < n; ++i) write_snapshot_task(mb, list[i], state.tasks[begin + i]);
    emit(mb.finish());
  }
}

DecodedEntry decode_entry(const InMessage& m, SnapshotParts& snapshot) {
  MessageReader mr(m);
  auto entry = mr.root_as<JournalEntry>();
  DecodedEntry out;
  out.stimulus = entry.getStimulus();
  switch (entry.which()) {
    case JournalEntry::ADD_CLIENT:
      out.event = sched::AddClient{entry.getAddClient().getId()};
      out.token = entry.getAddClient().getToken();
      break;
    case JournalEntry::REMOVE_CLIENT:
      out.event = sched::RemoveClient{entry.getRemoveClient()};
      break;
    case JournalEntry::ADD_WORKER:
      out.event = read_worker(entry.getAddWorker());
      break;
    case JournalEntry::REMOVE_WORKER:
      out.event = sched::RemoveWorker{entry.getRemoveWorker().getId(), entry.getRemoveWorker().getSafe(),
                                      entry.getRemoveWorker().getReason()};
      break;
    case JournalEntry::UPDATE_GRAPH: {
      auto g = entry.getUpdateGraph();
      sched::UpdateGraph ev{g.getClient(), {}, texts(g.getGraph().getWanted())};
      for (auto t : g.getGraph().getTasks()) ev.tasks.push_back(std::make_shared<TaskSpec>(read_task_spec(mr, t)));
      out.event = std::move(ev);
      break;
    }
    case JournalEntry::TASK_FINISHED: {
      auto f = entry.getTaskFinished();
      auto r = f.getReport();
      out.event = sched::TaskFinished{f.getWorker(), r.getKey(),      r.getType(), r.getNbytes(),
                                      r.getDuration(), std::nullopt, r.getRunId()};
      break;
    }
    case JournalEntry::TASK_ERRED: {
      auto x = entry.getTaskErred();
      auto r = x.getReport();
      out.event = sched::TaskErred{x.getWorker(), r.getKey(), r.getExceptionType(), r.getMessage(), r.getRunId()};
      break;
    }
    case JournalEntry::RELEASE_KEYS:
      out.event = sched::ReleaseKeys{entry.getReleaseKeys().getClient(), texts(entry.getReleaseKeys().getKeys())};
      break;
    case JournalEntry::SCATTERED: {
      auto s = entry.getScattered();
      sched::Scattered ev{s.getClient(), {}};
      for (auto k : s.getKeys()) {
        sched::Scattered::Key key{k.getKey(), k.getType(), k.getNbytes(), {}};
        for (auto h : k.getHolders()) key.holders.push_back(h);
        ev.keys.push_back(std::move(key));
      }
      out.event = std::move(ev);
      break;
    }
    case JournalEntry::CANCEL_KEYS:
      out.event = sched::CancelKeys{entry.getCancelKeys().getClient(), texts(entry.getCancelKeys().getKeys())};
      break;
    case JournalEntry::STEAL_RESPONSE: {
      auto s = entry.getStealResponse();
      auto r = s.getReport();
      out.event = sched::StealResponse{s.getWorker(), r.getKey(), r.getReleased(), r.getRunId()};
      break;
    }
    case JournalEntry::MISSING_DATA: {
      auto d = entry.getMissingData();
      out.event = sched::MissingData{d.getWorker(), d.getKey(), d.getHolder()};
      break;
    }
    case JournalEntry::RESTART:
      out.event = sched::Restart{};
      break;
    case JournalEntry::WORKER_PAUSED: {
      auto p = entry.getWorkerPaused();
      out.event = sched::WorkerPaused{p.getWorker(), p.getPaused()};
      break;
    }
    case JournalEntry::TASK_SECEDED: {
      auto s = entry.getTaskSeceded();
      out.event = sched::TaskSeceded{s.getWorker(), s.getReport().getKey(), s.getReport().getRunId()};
      break;
    }
    case JournalEntry::REPLICATED: {
      auto r = entry.getReplicated();
      sched::Replicated ev{r.getHolder(), {}};
      for (auto k : r.getKeys()) ev.keys.emplace_back(k);
      out.event = std::move(ev);
      break;
    }
    case JournalEntry::DROP_REPLICAS: {
      auto r = entry.getDropReplicas();
      out.event = sched::DropReplicas{r.getHolder(), texts(r.getKeys())};
      break;
    }
    case JournalEntry::FIRE_AND_FORGET:
      out.event = sched::FireAndForget{entry.getFireAndForget().getClient(), texts(entry.getFireAndForget().getKeys())};
      break;
    case JournalEntry::RETRY: {
      auto r = entry.getRetry();
      out.event = sched::RetryKeys{r.getClient(), r.getId(), texts(r.getKeys())};
      break;
    }
    case JournalEntry::SNAPSHOT_HEADER: {
      if (snapshot.has_header) throw std::invalid_argument("a second snapshot header");
      auto h = entry.getSnapshotHeader();
      snapshot.has_header = true;
      for (auto c : h.getClients()) {
        snapshot.clients.push_back({c.getId(), c.getToken()});
        snapshot.state.clients.push_back(c.getId());
      }
      for (auto w : h.getWorkers()) snapshot.state.workers.push_back(read_worker(w));
      snapshot.next_id = h.getNextId();
      snapshot.state.next_run_id = h.getNextRunId();
      snapshot.state.last_stimulus = out.stimulus;
      for (auto d : h.getDurations()) snapshot.state.durations.emplace_back(d.getPrefix(), d.getSeconds());
      snapshot.expected_tasks = h.getTasks();
      break;
    }
    case JournalEntry::SNAPSHOT_TASKS:
      if (!snapshot.has_header) throw std::invalid_argument("snapshot tasks before the snapshot's header");
      for (auto t : entry.getSnapshotTasks()) snapshot.state.tasks.push_back(read_snapshot_task(mr, t));
      if (snapshot.state.tasks.size() > snapshot.expected_tasks)
        throw std::invalid_argument("more snapshot tasks than its header announced");
      break;
    default:
      throw std::invalid_argument("a journal record of an unknown kind (written by a newer distrib?)");
  }
  return out;
}

}  // namespace distrib::detail::journal
