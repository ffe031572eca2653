#include "scheduler/scheduler_server.hpp"

#include <algorithm>
#include <cstdlib>
#include <future>

#include "comm/security_defaults.hpp"
#include "comm/message.hpp"
#include "dashboard/dashboard.hpp"
#include "core/log.hpp"
#include "distrib/errors.hpp"
#include "scheduler/scheduler_peer.hpp"

namespace distrib::detail {

namespace {
void fill_worker_info(proto::WorkerInfo::Builder out, const sched::SchedulerState::WorkerSnapshot& w,
                      const SchedulerServer::WorkerExtras& extras) {
  out.setName(w.name);
  out.setAddress(w.address);
  out.setNthreads(w.nthreads);
  out.setMemoryLimit(w.memory_limit);
  out.setMemoryBytes(w.memory_bytes);
  out.setProcessing(static_cast<std::uint32_t>(w.processing));
  out.setStored(static_cast<std::uint32_t>(w.stored));
  out.setStoredBytes(w.stored_bytes);
  out.setRestarts(extras.restarts);
  out.setSharedBytesIn(extras.shared_in);
  out.setSharedBytesOut(extras.shared_out);
  out.setManagedBytes(w.managed_bytes);
  out.setSpilledBytes(w.spilled_bytes);
  out.setPaused(w.paused);
}
}  // namespace

SchedulerServer::WorkerExtras SchedulerServer::extras_of(std::uint64_t worker) const {
  auto it = workers_.find(worker);
  if (it == workers_.end()) return {};
  return {it->second->restarts, it->second->shared_in, it->second->shared_out};
}

OutMessage SchedulerServer::cluster_info() const {
  MessageBuilder mb;
  auto info = mb.root().initClusterInfo();
  auto workers = state_.workers();
  info.setWorkers(static_cast<std::uint32_t>(workers.size()));
  info.setThreads(state_.total_threads());
  info.setDashboardPort(dashboard_port_);
  auto members = info.initMembers(static_cast<unsigned>(workers.size()));
  for (unsigned i = 0; i < workers.size(); ++i) fill_worker_info(members[i], workers[i], extras_of(workers[i].id));
  return mb.finish();
}

std::vector<DashboardStoryLine> SchedulerServer::story_lines(const std::string& key) const {
  std::vector<DashboardStoryLine> lines;
  for (const auto& e : state_.story(key))
    lines.push_back({std::string(sched::event_name(e.event)) + "-" + std::to_string(e.stimulus), sched::to_string(e.from),
                     sched::to_string(e.to), e.worker ? state_.worker_address(e.worker) : std::string(), e.time});
  return lines;
}

OutMessage SchedulerServer::info_reply(std::uint64_t client, proto::InfoRequest::Reader req) const {
  MessageBuilder mb;
  auto reply = mb.root().initInfoReply();
  reply.setId(req.getId());
  auto workers = state_.workers(true);
  auto list = reply.initWorkers(static_cast<unsigned>(workers.size()));
  for (unsigned i = 0; i < workers.size(); ++i) fill_worker_info(list[i], workers[i], extras_of(workers[i].id));
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
  if (req.getStory()) {
    std::vector<std::pair<const std::string*, DashboardStoryLine>> lines;
    for (const auto& key : keys)
      for (auto& line : story_lines(key)) lines.emplace_back(&key, std::move(line));
    auto story = reply.initStory(static_cast<unsigned>(lines.size()));
    for (unsigned i = 0; i < lines.size(); ++i) {
      const auto& [key, l] = lines[i];
      story[i].setKey(*key);
      story[i].setStimulus(l.stimulus);
      story[i].setFrom(l.from);
      story[i].setTo(l.to);
      story[i].setWorker(l.worker);
      story[i].setTime(l.time);
    }
  }
  auto counts = state_.task_counts();
  auto tc = reply.initTaskCounts(static_cast<unsigned>(counts.size()));
  for (unsigned i = 0; i < counts.size(); ++i) {
    tc[i].setState(counts[i].first);
    tc[i].setCount(counts[i].second);
  }
  return mb.finish();
}

namespace {
// DISTRIB_ASSIGN_AHEAD_DEPTH overrides the policy's assign_ahead_depth (benchmarks compare
// with and without assigning ahead on one LocalCluster build).
sched::SchedulerConfig with_environment(sched::SchedulerConfig c) {
  if (const char* v = std::getenv("DISTRIB_ASSIGN_AHEAD_DEPTH"); v && *v)
    c.assign_ahead_depth = static_cast<std::uint32_t>(std::strtoul(v, nullptr, 10));
  return c;
}
}  // namespace

std::string SchedulerServer::contact_address() const {
  if (!options_.contact_address.empty()) return options_.contact_address;
  if (!listener_->bound_ip().is_unspecified()) return address_;
  return format_address(default_route_ip(), listener_->port(), address_scheme(address_));
}

SchedulerServer::SchedulerServer(asio::io_context& io, SchedulerOptions options)
    : io_(io),
      options_(std::move(options)),
      accept_backoff_(io.get_executor()),
      local_accept_backoff_(io.get_executor()),
      admission_(options_.connection_caps, "scheduler"),
      heartbeat_timer_(io),
      state_(with_environment(options_.policy)),
      dashboard_timer_(io) {
  if (const char* v = std::getenv("DISTRIB_VALIDATE"); v && std::string(v) == "1") options_.validate = true;
  if (!options_.journal_dir.empty()) recover();  // a damaged journal refuses to start, before listening
  options_.security = with_environment_defaults(std::move(options_.security));
  require_protection(options_.host, options_.security, options_.insecure, "scheduler");
  listener_ = listen(io_, format_address(options_.host, options_.port, listen_scheme(options_.security)),
                     options_.security, "scheduler");
  address_ = listener_->address();
  if (!options_.local_socket.empty()) {
    const bool inproc = address_scheme(options_.local_socket) == "inproc";
    local_listener_ = listen(io_, inproc ? options_.local_socket : unix_address(options_.local_socket),
                             options_.security, "scheduler");
    local_address_ = local_listener_->address();
  }
  auto dash = parse_dashboard_address(options_.dashboard_address, options_.host);
  dash.token = options_.security.token;  // the dashboard wants the cluster's token
  if (dash.enabled) {
    snapshots_ = std::make_shared<SnapshotBox>();
    // /api/v1/story/<key> runs on a dashboard render thread: it asks this thread and waits a little.
    snapshots_->set_story_source([this, alive = std::weak_ptr<bool>(alive_)](const std::string& key)
                                     -> std::optional<std::vector<DashboardStoryLine>> {
      if (alive.expired()) return std::nullopt;
      auto promise = std::make_shared<std::promise<std::vector<DashboardStoryLine>>>();
      auto reply = promise->get_future();
      asio::post(io_, [this, alive, promise, key] {
        if (!alive.expired()) promise->set_value(story_lines(key));
      });
      if (reply.wait_for(std::chrono::seconds(2)) != std::future_status::ready) return std::nullopt;
      try {
        return reply.get();
      } catch (const std::future_error&) {  // the scheduler went away first
        return std::nullopt;
      }
    });
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
      // As Jupyter, the link carries the token: it is the one to open.
      log().info("dashboard at http://{}:{}/status{}", dash.host, dashboard_port_,
                 dashboard_token_query(dash.token));
    } catch (const DashboardUnavailable& e) {
      // Like Dask without bokeh: the scheduler works, only the pages are missing.
      log().error("{}; running without a dashboard", e.what());
    }
  }
}

SchedulerServer::~SchedulerServer() {
  if (snapshots_) snapshots_->set_story_source(nullptr);
  if (dashboard_) dashboard_->stop();
}

void SchedulerServer::start() {
  accept(*listener_, accept_backoff_);
  if (local_listener_) accept(*local_listener_, local_accept_backoff_);
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
  if (journal_) commit_journal();
  listener_->close();
  if (local_listener_) local_listener_->close();
  accept_backoff_.cancel();
  local_accept_backoff_.cancel();
  heartbeat_timer_.cancel();
  dashboard_timer_.cancel();
  coordination_timer_.cancel();
  if (snapshots_) snapshots_->set_story_source(nullptr);
  if (dashboard_) dashboard_->stop();
  auto all = workers_;
  for (auto& [id, p] : clients_) all.emplace(id, p);
  for (auto& [id, p] : all) p->conn->close("scheduler stopping");
}

void SchedulerServer::accept(Listener& listener, AcceptBackoff& backoff) {
  listener.async_accept([this, &listener, &backoff](asio::error_code ec, ByteStreamPtr stream) {
    if (ec) {
      if (!stopped_ && ec != asio::error::operation_aborted)
        backoff.failed(ec, "scheduler", [this, &listener, &backoff] {
          if (!stopped_) accept(listener, backoff);
        });
      return;
    }
    backoff.succeeded();
    on_accepted(std::move(stream));
    accept(listener, backoff);
  });
}

void SchedulerServer::on_accepted(ByteStreamPtr stream) {
  auto peer = std::make_shared<Peer>();
  peer->conn = std::make_shared<Connection>(std::move(stream), options_.limits, auth::Side::acceptor);
  if (!admission_.admit(peer->conn)) return;  // dropped: closed, never started
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
    if (bad_input_log_.allow()) log().warn("rejected {}: {}{}", peer->conn->peer(), why, bad_input_log_.note());
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
    if (!session.resumed) handle(sched::AddClient{peer->id}, std::string(hs.getClientId()));
    peer->conn->send(cluster_info());
    if (session.resumed) handle(sched::UpdateGraph{peer->id, {}, state_.wanted_by(peer->id)});  // reports finished keys
    return;
  }

  if (peer->kind == Kind::worker || peer->kind == Kind::client) {
    auto kind = peer->kind == Kind::worker ? wire::PeerKind::worker : wire::PeerKind::client;
    std::vector<sched::Event> events;
    auto by_address = [this](const std::string& address) -> std::optional<sched::WorkerId> {
      for (auto& [id, w] : workers_)
        if (w->address == address) return id;
      return std::nullopt;
    };
    if (wire::decode_events(mr, kind, peer->id, by_address, events)) {
      if (root.isHeartbeat()) {
        auto hb = root.getHeartbeat();
        recorder_.worker_metrics(peer->id, hb.getCpuSeconds(), hb.getExecuting(), hb.getBytesIn(), hb.getBytesOut());
        peer->shared_in = hb.getSharedBytesIn();
        peer->shared_out = hb.getSharedBytesOut();
        // Heartbeats repeat the status: one that differs (a status message lost with a
        // connection, or a scheduler restarted since) counts as the change.
        // A retiring worker stays paused whatever it says (it does not know it retires).
        if (!peer->retiring && hb.getPaused() != peer->paused)
          events.push_back(sched::WorkerPaused{peer->id, hb.getPaused()});
      }
      if (peer->retiring) std::erase_if(events, [](const sched::Event& e) { return std::holds_alternative<sched::WorkerPaused>(e); });
      for (const auto& e : events)
        if (auto* p = std::get_if<sched::WorkerPaused>(&e)) {
          if (p->paused != peer->paused)
            log().info("scheduler: worker '{}' {}{}", peer->name, p->paused ? "paused" : "resumed",
                       root.isWorkerStatus() && root.getWorkerStatus().hasReason()
                           ? std::string(": ") + std::string(root.getWorkerStatus().getReason())
                           : std::string());
          peer->paused = p->paused;
          if (root.isWorkerStatus() && root.getWorkerStatus().getRestarting())
            peer->farewell = root.getWorkerStatus().getReason();
        }
      for (auto& e : events) {
        if (dashboard_) record_for_dashboard(e, *peer);
        apply(std::move(e));
      }
      flush(actions_);
      return;
    }
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
      for (auto h : r.getHeld()) ev.held.push_back({h.getKey(), h.getType(), h.getNbytes()});
      peer->address = ev.address;
      if (ev.nthreads == 0) return reject("a worker must have at least one thread");
      for (auto& [id, w] : workers_)
        if (w->name == ev.name) return reject("a worker named '" + ev.name + "' is already connected");
      peer->kind = Kind::worker;
      peer->id = next_id_++;
      peer->name = ev.name;
      peer->restarts = r.getRestarts();
      peer->nanny = r.getNanny();
      ev.worker = peer->id;
      workers_[peer->id] = peer;
      recorder_.worker_registered(peer->id, r.getRestarts(), r.getNanny());
      log().info("worker '{}' registered at {} with {} threads{}", ev.name, ev.address, ev.nthreads,
                 r.getRestarts() ? " (restart " + std::to_string(r.getRestarts()) + " by its nanny)" : "");
      MessageBuilder mb;
      mb.root().initWorkerRegistered().setOk(true);
      peer->conn->send(mb.finish());
      handle(std::move(ev));
      send_uploads(*peer);  // before any task: it may need their functions
      if (!ghosts_.empty()) forget_ghost(peer->name, "registered again");
      restart_.workers_changed();  // a restart may have waited for it
      return;
    }
    case proto::Message::RESTART:
      if (peer->kind != Kind::client) break;
      restart_cluster(*peer, root.getRestart());
      return;
    case proto::Message::UPLOAD_FILE:
      if (peer->kind != Kind::client) break;
      begin_upload(*peer, mr, root.getUploadFile());
      return;
    case proto::Message::UPLOAD_RESULT:
      if (peer->kind != Kind::worker) break;
      on_upload_result(*peer, root.getUploadResult());
      return;
    case proto::Message::RETIRE_WORKERS:
      if (peer->kind != Kind::client) break;
      begin_retire(*peer, root.getRetireWorkers());
      return;
    case proto::Message::REPLICATED:
      if (peer->kind != Kind::worker) break;
      on_replicated(root.getReplicated());
      return;
    case proto::Message::COORDINATION:
      if (peer->kind != Kind::client) break;
      on_coordination(*peer, mr, root.getCoordination());
      return;
    case proto::Message::CLIENT_OP:
      if (peer->kind != Kind::client) break;
      on_client_op(*peer, mr, root.getClientOp());
      return;
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
      peer->said_goodbye = true;
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
  admission_.closed();
  if (is_bad_input_reason(reason)) {
    if (bad_input_log_.allow())
      log().warn("closed connection from {}: {}{}", peer->conn->peer(), reason, bad_input_log_.note());
  } else log().debug("connection from {} closed: {}", peer->conn->peer(), reason);
  if (peer->kind == Peer::Kind::client && clients_.erase(peer->id)) {
    log().info("client '{}' disconnected", peer->name);
    const bool removed = sessions_.detach(peer->id, Clock::now());
    if (removed && !stopped_) handle(sched::RemoveClient{peer->id});
    if (!stopped_) coordination_client_left(peer->id, removed);
  } else if (peer->kind == Peer::Kind::worker && workers_.erase(peer->id)) {
    log().info("worker '{}' left: {}", peer->name, reason);
    forget_upload_worker(peer->id);
    forget_copy_worker(peer->id);
    recorder_.worker_removed(peer->id);
    if (!stopped_) handle(sched::RemoveWorker{peer->id, peer->said_goodbye, peer->farewell});
  }
  if (stopped_ && workers_.empty() && clients_.empty() && on_shutdown) {
    auto done = std::move(on_shutdown);
    on_shutdown = nullptr;
    done();
  }
}

void SchedulerServer::apply(sched::Event e, const std::string& client_token) {
  const auto stimulus = state_.last_stimulus() + 1;
  if (journal_) {
    journal_->append(e, stimulus, client_token);
    if (auto* c = std::get_if<sched::AddClient>(&e)) client_tokens_[c->client] = client_token;
    else if (auto* r = std::get_if<sched::RemoveClient>(&e)) client_tokens_.erase(r->client);
  }
  state_.handle(std::move(e), actions_, stimulus);
  if (!options_.validate) return;
  try {
    state_.validate();
  } catch (const std::exception& ex) {
    // A broken invariant is a bug: stop here, where the story of the last event is fresh.
    log().critical("after stimulus {}: {}", state_.last_stimulus(), ex.what());
    log().flush();
    std::abort();
  }
}

void SchedulerServer::handle(sched::Event e, const std::string& client_token) {
  apply(std::move(e), client_token);
  flush(actions_);
}

void SchedulerServer::record_for_dashboard(const sched::Event& e, const Peer& peer) {
  if (auto* f = std::get_if<sched::TaskFinished>(&e)) recorder_.task_finished(f->key, peer.address, f->duration);
  else if (auto* x = std::get_if<sched::TaskErred>(&e)) recorder_.task_erred(x->key);
}

void SchedulerServer::flush(std::vector<sched::Action>& actions) {
  if (actions.empty()) return;
  bool hold_for_clients = false;
  if (journal_ && journal_->pending()) {
    schedule_commit();
    // What a client is told waits until the client events behind it are on disk; workers
    // may start at once (a crash before the sync loses nothing a client was told: the
    // client still holds its graph and sends it again on re-attaching).
    hold_for_clients = journal_->sync_pending();
  }
  for (auto& o : wire::encode_actions(actions)) {
    if (o.to != wire::Outgoing::To::worker && (hold_for_clients || !held_for_sync_.empty())) {
      held_for_sync_.push_back(std::move(o));  // in order, behind those already held
      continue;
    }
    send(o);
  }
  actions.clear();
}

void SchedulerServer::send(wire::Outgoing& o) {
  using To = wire::Outgoing::To;
  if (o.to == To::every_client) {
    for (auto& [cid, peer] : clients_) peer->conn->send(cluster_info());
    return;
  }
  auto& peers = o.to == To::worker ? workers_ : clients_;
  auto it = peers.find(o.id);
  if (it == peers.end()) return;  // it left meanwhile
  if (o.later) it->second->conn->send_later(std::move(o.message));
  else it->second->conn->send(std::move(o.message));
}

void SchedulerServer::check_heartbeats() {
  if (stopped_) return;
  trim_pooled_buffers();  // large buffers and blocks idle for 10 s go back to the system
  auto now = Clock::now();
  std::vector<std::shared_ptr<Peer>> silent;
  for (auto& [id, w] : workers_)
    if (now - w->last_seen > options_.worker_timeout) silent.push_back(w);
  for (auto& w : silent) {
    // If it was only paused (SIGSTOP, a swapping host), it reads this when it wakes up and
    // registers anew from scratch; nothing it reports from its old life is believed, since
    // that connection is gone.
    auto why = "no heartbeat for " + std::to_string(options_.worker_timeout.count()) + " ms";
    log().warn("removing worker '{}': {}", w->name, why);
    MessageBuilder mb;
    mb.root().setReregister(why);
    w->conn->send(mb.finish());
    w->conn->close_after_flush(why);
    if (workers_.erase(w->id)) {  // removed now, not when the (paused) peer's socket drains
      recorder_.worker_removed(w->id);
      handle(sched::RemoveWorker{w->id, false});
    }
  }
  for (auto id : sessions_.expired(now)) {  // their grace ran out
    handle(sched::RemoveClient{id});
    coordination_client_left(id, true);
  }
  if (!ghosts_.empty()) remove_late_ghosts(now);
  // Often enough that a short TTL (tests, or an operator's choice) is kept to within a quarter.
  auto interval = std::clamp<std::chrono::milliseconds>(options_.worker_timeout / 4, std::chrono::milliseconds(50),
                                                        std::chrono::milliseconds(1000));
  heartbeat_timer_.expires_after(interval);
  heartbeat_timer_.async_wait([this](asio::error_code ec) {
    if (!ec) check_heartbeats();
  });
}

void SchedulerServer::shutdown_cluster() {
  if (stopped_) return;
  stopped_ = true;
  // The cluster ends on purpose: a scheduler started on this journal again starts empty.
  if (journal_) {
    try {
      journal_->snapshot(sched::DurableState{}, {}, next_id_);
      forget_kept_uploads();
    } catch (const std::exception& e) {  // the cluster stops anyway; a restart would find the old state
      log().error("could not empty the journal in {}: {}", options_.journal_dir, e.what());
    }
  }
  listener_->close();
  if (local_listener_) local_listener_->close();
  accept_backoff_.cancel();
  local_accept_backoff_.cancel();
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

// As Dask's Scheduler.restart: every key of every client is cancelled and every task
// forgotten, then each worker leaves the scheduler at once (a departure on purpose: none of
// its tasks becomes suspicious) and is told to restart, which its nanny does, or, without a
// nanny, to close, in the hope that whatever started it starts it again.
void SchedulerServer::restart_cluster(const Peer& by, proto::RestartRequest::Reader request) {
  const auto before = static_cast<std::uint32_t>(workers_.size());
  log().info("client '{}' asked for a restart of {} workers", by.name, before);
  handle(sched::Restart{});  // every client hears which of its keys were cancelled
  auto leaving = workers_;
  for (auto& [id, w] : leaving) {
    if (w->nanny) {
      MessageBuilder mb;
      mb.root().setRestartWorker();
      w->conn->send(mb.finish());
    } else {
      w->conn->send(make_shutdown());
    }
    w->conn->close_after_flush(w->nanny ? "restarting" : "closed by a restart (no nanny)");
    workers_.erase(id);  // removed now: its successor registers under the same name
    recorder_.worker_removed(id);
    handle(sched::RemoveWorker{id, true});
  }
  constexpr std::uint64_t kLongest = 10ull * 365 * 24 * 3600 * 1000;  // no overflow of the deadline
  restart_.begin(by.id, request.getId(), before,
                 std::chrono::milliseconds(std::min(request.getTimeoutMs(), kLongest)), request.getWaitForWorkers());
}

void SchedulerServer::send_to_client(std::uint64_t client, OutMessage m) {
  auto it = clients_.find(client);
  if (it != clients_.end()) it->second->conn->send(std::move(m));
}

}  // namespace distrib::detail
