#include "scheduler/scheduler_server.hpp"

#include "comm/message.hpp"
#include "dashboard/dashboard.hpp"
#include "core/log.hpp"
#include "distrib/errors.hpp"

namespace distrib::detail {

using Clock = std::chrono::steady_clock;

struct SchedulerServer::Peer {
  enum class Kind { unknown, client, worker_unregistered, worker };
  ConnectionPtr conn;
  Kind kind = Kind::unknown;
  std::uint64_t id = 0;
  std::string name;
  std::string address;  // a worker's data address
  Clock::time_point last_seen = Clock::now();
};

namespace {
void fill_worker_info(proto::WorkerInfo::Builder out, const sched::SchedulerState::WorkerSnapshot& w) {
  out.setName(w.name);
  out.setAddress(w.address);
  out.setNthreads(w.nthreads);
  out.setMemoryLimit(w.memory_limit);
  out.setMemoryBytes(w.memory_bytes);
  out.setProcessing(static_cast<std::uint32_t>(w.processing));
  out.setStored(static_cast<std::uint32_t>(w.stored));
  out.setStoredBytes(w.stored_bytes);
}
}  // namespace

OutMessage SchedulerServer::cluster_info() const {
  MessageBuilder mb;
  auto info = mb.root().initClusterInfo();
  auto workers = state_.workers();
  info.setWorkers(static_cast<std::uint32_t>(workers.size()));
  info.setThreads(state_.total_threads());
  info.setDashboardPort(dashboard_port_);
  auto members = info.initMembers(static_cast<unsigned>(workers.size()));
  for (unsigned i = 0; i < workers.size(); ++i) fill_worker_info(members[i], workers[i]);
  return mb.finish();
}

OutMessage SchedulerServer::info_reply(std::uint64_t client, proto::InfoRequest::Reader req) const {
  MessageBuilder mb;
  auto reply = mb.root().initInfoReply();
  reply.setId(req.getId());
  auto workers = state_.workers(true);
  auto list = reply.initWorkers(static_cast<unsigned>(workers.size()));
  for (unsigned i = 0; i < workers.size(); ++i) fill_worker_info(list[i], workers[i]);
  std::vector<std::string> keys;
  for (auto k : req.getKeys()) keys.emplace_back(k);
  if (keys.empty()) keys = state_.wanted_by(client);
  std::unordered_map<sched::WorkerId, std::string> address_of;
  for (auto& w : workers) address_of[w.id] = w.address;
  auto who = reply.initWhoHas(static_cast<unsigned>(keys.size()));
  for (unsigned i = 0; i < keys.size(); ++i) {
    who[i].setKey(keys[i]);
    auto holders = state_.who_has(keys[i]);
    auto ws = who[i].initWorkers(static_cast<unsigned>(holders.size()));
    for (unsigned j = 0; j < holders.size(); ++j) ws.set(j, address_of[holders[j]]);
  }
  auto has = reply.initHasWhat(static_cast<unsigned>(workers.size()));
  for (unsigned i = 0; i < workers.size(); ++i) {
    has[i].setKey(workers[i].address);
    auto ks = has[i].initWorkers(static_cast<unsigned>(workers[i].keys.size()));
    for (unsigned j = 0; j < workers[i].keys.size(); ++j) ks.set(j, workers[i].keys[j]);
  }
  auto counts = state_.task_counts();
  auto tc = reply.initTaskCounts(static_cast<unsigned>(counts.size()));
  for (unsigned i = 0; i < counts.size(); ++i) {
    tc[i].setState(counts[i].first);
    tc[i].setCount(counts[i].second);
  }
  return mb.finish();
}

SchedulerServer::SchedulerServer(asio::io_context& io, SchedulerOptions options)
    : io_(io),
      options_(std::move(options)),
      acceptor_(io),
      local_acceptor_(io),
      heartbeat_timer_(io),
      state_(options_.policy),
      dashboard_timer_(io) {
  listen_on(acceptor_, options_.host, options_.port, "scheduler");
  address_ = format_address(options_.host, acceptor_.local_endpoint().port());
  if (!options_.local_socket.empty()) {
    listen_on_unix(local_acceptor_, options_.local_socket, "scheduler");
    local_address_ = unix_address(options_.local_socket);
  }
  auto dash = parse_dashboard_address(options_.dashboard_address, options_.host);
  if (dash.enabled) {
    snapshots_ = std::make_shared<SnapshotBox>();
    try {
      try {
        dashboard_ = start_dashboard(dash, snapshots_);
      } catch (const CommError& e) {
        if (!options_.dashboard_fallback || dash.port == 0) throw;
        log().warn("{}; serving the dashboard on another port", e.what());
        dash.port = 0;
        dashboard_ = start_dashboard(dash, snapshots_);
      }
      dashboard_port_ = dashboard_->port();
      log().info("dashboard at http://{}:{}/status", dash.host, dashboard_port_);
    } catch (const DashboardUnavailable& e) {
      // Like Dask without bokeh: the scheduler works, only the pages are missing.
      log().error("{}; running without a dashboard", e.what());
    }
  }
}

SchedulerServer::~SchedulerServer() {
  if (dashboard_) dashboard_->stop();
}

void SchedulerServer::start() {
  accept(acceptor_);
  if (local_acceptor_.is_open()) accept(local_acceptor_);
  check_heartbeats();
  if (dashboard_) refresh_dashboard();
}

void SchedulerServer::refresh_dashboard() {
  snapshots_->publish(recorder_.snapshot(state_, address_));
  dashboard_timer_.expires_after(options_.dashboard_interval);
  dashboard_timer_.async_wait([this](asio::error_code ec) {
    if (!ec && !stopped_) refresh_dashboard();
  });
}

void SchedulerServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  asio::error_code ec;
  acceptor_.close(ec);
  local_acceptor_.close(ec);
  heartbeat_timer_.cancel();
  dashboard_timer_.cancel();
  if (dashboard_) dashboard_->stop();
  auto all = workers_;
  for (auto& [id, p] : clients_) all.emplace(id, p);
  for (auto& [id, p] : all) p->conn->close("scheduler stopping");
}

template <class Acceptor>
void SchedulerServer::accept(Acceptor& acceptor) {
  acceptor.async_accept([this, &acceptor](asio::error_code ec, typename Acceptor::protocol_type::socket socket) {
    if (ec) {
      if (!stopped_ && ec != asio::error::operation_aborted) {
        log().warn("accept failed: {}", ec.message());
        accept(acceptor);
      }
      return;
    }
    on_accepted(StreamSocket(std::move(socket)));
    accept(acceptor);
  });
}

void SchedulerServer::on_accepted(StreamSocket socket) {
  auto peer = std::make_shared<Peer>();
  peer->conn = std::make_shared<Connection>(std::move(socket), options_.limits);
  log().debug("connection from {}", peer->conn->peer());
  peer->conn->start([this, peer](InMessage&& m) { on_message(peer, std::move(m)); },
                    [this, peer](const std::string& reason) { on_closed(peer, reason); });
  peer->conn->send(make_handshake(proto::Role::SCHEDULER, "scheduler"));
}

void SchedulerServer::on_message(const std::shared_ptr<Peer>& peer, InMessage&& m) {
  MessageReader mr(m);
  auto root = mr.root();
  peer->last_seen = Clock::now();
  using Kind = Peer::Kind;
  auto reject = [&](const std::string& why) {
    log().warn("rejected {}: {}", peer->conn->peer(), why);
    peer->conn->send(make_error(why));
    peer->conn->close_after_flush("rejected: " + why);
  };

  if (peer->kind == Kind::unknown) {
    auto why = check_handshake(root, proto::Role::CLIENT, proto::Role::WORKER);
    if (!why.empty()) return reject(why);
    auto hs = root.getHandshake();
    peer->name = hs.getName();
    if (hs.getRole() == proto::Role::WORKER) {
      peer->kind = Kind::worker_unregistered;
      return;
    }
    if (hs.getClientId().size() > ClientSessions::kMaxTokenLength) return reject("client id too long");
    auto session = sessions_.attach(hs.getClientId(), [this] { return next_id_++; });
    if (auto stale = clients_.find(session.id); stale != clients_.end()) {  // its old connection is half-open
      stale->second->kind = Kind::unknown;  // so that its close does not end the session
      stale->second->conn->close("the client re-attached on a new connection");
    }
    peer->kind = Kind::client;
    peer->id = session.id;
    clients_[peer->id] = peer;
    log().info("client '{}' {} from {}", peer->name, session.resumed ? "re-attached" : "connected", peer->conn->peer());
    if (!session.resumed) handle(sched::AddClient{peer->id});
    peer->conn->send(cluster_info());
    if (session.resumed) handle(sched::UpdateGraph{peer->id, {}, state_.wanted_by(peer->id)});  // reports finished keys
    return;
  }

  switch (root.which()) {
    case proto::Message::REGISTER_WORKER: {
      if (peer->kind != Kind::worker_unregistered) return reject("registerWorker from a peer that is not a new worker");
      auto r = root.getRegisterWorker();
      sched::AddWorker ev;
      ev.name = r.getName();
      ev.address = r.getAddress();
      ev.nthreads = r.getNthreads();
      ev.memory_limit = r.getMemoryLimit();
      for (auto f : r.getFunctions()) ev.functions.emplace_back(f);
      for (auto res : r.getResources()) ev.resources.emplace_back(res.getName(), res.getAmount());
      peer->address = ev.address;
      if (ev.nthreads == 0) return reject("a worker must have at least one thread");
      for (auto& [id, w] : workers_)
        if (w->name == ev.name) return reject("a worker named '" + ev.name + "' is already connected");
      peer->kind = Kind::worker;
      peer->id = next_id_++;
      peer->name = ev.name;
      ev.worker = peer->id;
      workers_[peer->id] = peer;
      log().info("worker '{}' registered at {} with {} threads", ev.name, ev.address, ev.nthreads);
      MessageBuilder mb;
      mb.root().initWorkerRegistered().setOk(true);
      peer->conn->send(mb.finish());
      handle(std::move(ev));
      return;
    }
    case proto::Message::HEARTBEAT:
      if (peer->kind != Kind::worker) break;
    {
      auto hb = root.getHeartbeat();
      recorder_.worker_metrics(peer->id, hb.getCpuSeconds(), hb.getExecuting(), hb.getBytesIn(), hb.getBytesOut());
      handle(sched::WorkerMetrics{peer->id, hb.getMemoryBytes()});
      return;
    }
    case proto::Message::TASKS_FINISHED:
      if (peer->kind != Kind::worker) break;
      for (auto t : root.getTasksFinished()) {
        if (dashboard_) recorder_.task_finished(t.getKey(), peer->address, t.getDuration());
        sched::TaskFinished ev{peer->id, t.getKey(), t.getType(), t.getNbytes(), t.getDuration(), std::nullopt};
        if (t.hasValue()) ev.value = mr.value(t.getValue());
        state_.handle(std::move(ev), actions_);
      }
      flush(actions_);
      return;
    case proto::Message::MISSING_DATA: {
      if (peer->kind != Kind::worker) break;
      auto m = root.getMissingData();
      handle(sched::MissingData{peer->id, m.getKey(), m.getWorker()});
      return;
    }
    case proto::Message::STEAL_RESPONSE: {
      if (peer->kind != Kind::worker) break;
      auto r = root.getStealResponse();
      handle(sched::StealResponse{peer->id, r.getKey(), r.getReleased()});
      return;
    }
    case proto::Message::TASK_ERRED:
      if (peer->kind != Kind::worker) break;
      for (auto t : root.getTaskErred()) {
        if (dashboard_) recorder_.task_erred(t.getKey());
        state_.handle(sched::TaskErred{peer->id, t.getKey(), t.getExceptionType(), t.getMessage()}, actions_);
      }
      flush(actions_);
      return;
    case proto::Message::UPDATE_GRAPH: {
      if (peer->kind != Kind::client) break;
      auto g = root.getUpdateGraph();
      sched::UpdateGraph ev{peer->id, {}, {}};
      ev.tasks.reserve(g.getTasks().size());
      for (auto t : g.getTasks()) ev.tasks.push_back(std::make_shared<TaskSpec>(read_task_spec(mr, t)));
      for (auto k : g.getWanted()) ev.wanted.emplace_back(k);
      handle(std::move(ev));
      return;
    }
    case proto::Message::RELEASE_KEYS: {
      if (peer->kind != Kind::client) break;
      sched::ReleaseKeys ev{peer->id, {}};
      for (auto k : root.getReleaseKeys()) ev.keys.emplace_back(k);
      handle(std::move(ev));
      return;
    }
    case proto::Message::SCATTERED: {
      if (peer->kind != Kind::client) break;
      sched::Scattered ev{peer->id, {}};
      for (auto k : root.getScattered()) {
        sched::Scattered::Key key{k.getKey(), k.getType(), k.getNbytes(), {}};
        for (auto address : k.getWorkers())
          for (auto& [id, w] : workers_)
            if (w->address == address.cStr()) key.holders.push_back(id);
        ev.keys.push_back(std::move(key));
      }
      handle(std::move(ev));
      return;
    }
    case proto::Message::CANCEL_KEYS: {
      if (peer->kind != Kind::client) break;
      sched::CancelKeys ev{peer->id, {}};
      for (auto k : root.getCancelKeys()) ev.keys.emplace_back(k);
      handle(std::move(ev));
      return;
    }
    case proto::Message::INFO_REQUEST:
      if (peer->kind != Kind::client) break;
      peer->conn->send(info_reply(peer->id, root.getInfoRequest()));
      return;
    case proto::Message::SHUTDOWN:
      if (peer->kind != Kind::client) break;
      log().info("client '{}' asked for shutdown", peer->name);
      shutdown_cluster();
      return;
    case proto::Message::CLOSE:
      if (peer->kind == Kind::client) sessions_.goodbye(peer->id);
      peer->conn->close("peer closed the connection");
      return;
    case proto::Message::ERROR:
      peer->conn->close("peer reported: " + std::string(root.getError().getReason()));
      return;
    default:
      break;
  }
  throw std::runtime_error("unexpected message (kind " + std::to_string(static_cast<int>(root.which())) + ")");
}

void SchedulerServer::on_closed(const std::shared_ptr<Peer>& peer, const std::string& reason) {
  if (is_bad_input_reason(reason)) log().warn("closed connection from {}: {}", peer->conn->peer(), reason);
  else log().debug("connection from {} closed: {}", peer->conn->peer(), reason);
  if (peer->kind == Peer::Kind::client && clients_.erase(peer->id)) {
    log().info("client '{}' disconnected", peer->name);
    if (sessions_.detach(peer->id, Clock::now()) && !stopped_) handle(sched::RemoveClient{peer->id});
  } else if (peer->kind == Peer::Kind::worker && workers_.erase(peer->id)) {
    log().info("worker '{}' left: {}", peer->name, reason);
    recorder_.worker_removed(peer->id);
    if (!stopped_) handle(sched::RemoveWorker{peer->id});
  }
  if (stopped_ && workers_.empty() && clients_.empty() && on_shutdown) {
    auto done = std::move(on_shutdown);
    on_shutdown = nullptr;
    done();
  }
}

void SchedulerServer::handle(sched::Event e) {
  state_.handle(std::move(e), actions_);
  flush(actions_);
}

// Turns actions into messages, one message per destination and kind.
void SchedulerServer::flush(std::vector<sched::Action>& actions) {
  if (actions.empty()) return;
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
  const sched::ClusterChanged* cluster = nullptr;
  for (const auto& a : actions) {
    if (auto* c = std::get_if<sched::ComputeTask>(&a)) compute[c->worker].push_back(c);
    else if (auto* f = std::get_if<sched::FreeKeys>(&a)) {
      auto& frees = free[f->worker];
      for (const auto& k : f->keys) frees.keys.push_back(&k);
      frees.stops_work = frees.stops_work || f->stops_work;
    } else if (auto* m = std::get_if<sched::KeyInMemory>(&a)) in_memory[m->client].push_back(m);
    else if (auto* e = std::get_if<sched::KeyErred>(&a)) erred[e->client].push_back(e);
    else if (auto* cc = std::get_if<sched::ClusterChanged>(&a)) cluster = cc;
    else if (auto* kc = std::get_if<sched::KeysCancelled>(&a)) {
      auto& list = cancelled[kc->client];  // present even when empty: one reply per request
      for (const auto& k : kc->keys) list.push_back(&k);
    } else if (auto* st = std::get_if<sched::StealRequest>(&a)) {
      steals[st->worker].push_back(&st->key);
    } else if (auto* kl = std::get_if<sched::KeyLocations>(&a)) {
      locations.push_back(kl);
    }
  }
  // `later`: the message may wait for the connection's next write (Connection::send_later).
  auto send_to = [](auto& peers, std::uint64_t id, OutMessage m, bool later = false) {
    auto it = peers.find(id);
    if (it == peers.end()) return;
    if (later) it->second->conn->send_later(std::move(m));
    else it->second->conn->send(std::move(m));
  };
  // Frees go first: a key freed and recomputed in one step must be dropped before it is
  // rebuilt. Nothing waits on a free of stored results, so it rides along with the worker's
  // next message; one that takes back unstarted work goes at once, before the worker starts it.
  for (auto& [wid, frees] : free) {
    MessageBuilder mb;
    auto list = mb.root().initFreeKeys(static_cast<unsigned>(frees.keys.size()));
    for (unsigned i = 0; i < frees.keys.size(); ++i) list.set(i, *frees.keys[i]);
    send_to(workers_, wid, mb.finish(), /*later=*/!frees.stops_work);
  }
  for (auto& [wid, tasks] : compute) {
    MessageBuilder mb;
    auto list = mb.root().initComputeTasks(static_cast<unsigned>(tasks.size()));
    for (unsigned i = 0; i < tasks.size(); ++i) {
      write_task_spec(mb, list[i].initSpec(), *tasks[i]->spec);
      auto wh = list[i].initWhoHas(static_cast<unsigned>(tasks[i]->who_has.size()));
      for (unsigned j = 0; j < tasks[i]->who_has.size(); ++j) {
        const auto& [key, addresses] = tasks[i]->who_has[j];
        wh[j].setKey(key);
        auto ws = wh[j].initWorkers(static_cast<unsigned>(addresses.size()));
        for (unsigned k = 0; k < addresses.size(); ++k) ws.set(k, addresses[k]);
      }
    }
    send_to(workers_, wid, mb.finish());
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
    send_to(clients_, cid, mb.finish());
  }
  for (auto& [cid, keys] : erred) {
    MessageBuilder mb;
    auto list = mb.root().initTaskErred(static_cast<unsigned>(keys.size()));
    for (unsigned i = 0; i < keys.size(); ++i) {
      list[i].setKey(keys[i]->key);
      list[i].setExceptionType(keys[i]->exception_type);
      list[i].setMessage(keys[i]->message);
    }
    send_to(clients_, cid, mb.finish());
  }
  for (auto& [wid, keys] : steals) {  // after the computeTasks above, on the same connection
    for (const auto* k : keys) {
      MessageBuilder mb;
      mb.root().setStealRequest(*k);
      send_to(workers_, wid, mb.finish());
    }
  }
  for (const auto* kl : locations) {
    MessageBuilder mb;
    auto loc = mb.root().initKeyLocations();
    loc.setKey(kl->key);
    auto ws = loc.initWorkers(static_cast<unsigned>(kl->addresses.size()));
    for (unsigned i = 0; i < kl->addresses.size(); ++i) ws.set(i, kl->addresses[i]);
    send_to(workers_, kl->worker, mb.finish());
  }
  for (auto& [cid, keys] : cancelled) {
    MessageBuilder mb;
    auto list = mb.root().initKeysCancelled(static_cast<unsigned>(keys.size()));
    for (unsigned i = 0; i < keys.size(); ++i) list.set(i, *keys[i]);
    send_to(clients_, cid, mb.finish());
  }
  if (cluster) {
    for (auto& [cid, peer] : clients_) peer->conn->send(cluster_info());
  }
  actions.clear();
}

void SchedulerServer::check_heartbeats() {
  if (stopped_) return;
  auto now = Clock::now();
  std::vector<std::shared_ptr<Peer>> silent;
  for (auto& [id, w] : workers_)
    if (now - w->last_seen > options_.worker_timeout) silent.push_back(w);
  for (auto& w : silent) w->conn->close("no heartbeat for " + std::to_string(options_.worker_timeout.count()) + " ms");
  for (auto id : sessions_.expired(now)) handle(sched::RemoveClient{id});  // their grace ran out
  heartbeat_timer_.expires_after(std::chrono::seconds(1));
  heartbeat_timer_.async_wait([this](asio::error_code ec) {
    if (!ec) check_heartbeats();
  });
}

void SchedulerServer::shutdown_cluster() {
  if (stopped_) return;
  stopped_ = true;
  asio::error_code ec;
  acceptor_.close(ec);
  local_acceptor_.close(ec);
  heartbeat_timer_.cancel();
  for (auto& [id, w] : workers_) {
    w->conn->send(make_shutdown());
    w->conn->close_after_flush("cluster shutdown");
  }
  for (auto& [id, c] : clients_) {
    c->conn->send(make_shutdown());
    c->conn->close_after_flush("cluster shutdown");
  }
  if (workers_.empty() && clients_.empty() && on_shutdown) {
    auto done = std::move(on_shutdown);
    on_shutdown = nullptr;
    done();
  }
}

}  // namespace distrib::detail
