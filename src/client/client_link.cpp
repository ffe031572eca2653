// The client's scheduler connection: connecting, the handshake with the client's id,
// decoding the scheduler's reports for the core, sending the outbox, and reconnecting with
// backoff when the connection drops, then re-attaching to the client's futures.
#include <algorithm>

#include "client/client_impl.hpp"
#include "comm/transport.hpp"
#include "comm/io_loop.hpp"
#include "comm/message.hpp"
#include "core/log.hpp"
#include "core/task_spec.hpp"

namespace distrib::detail {

namespace {
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(2000);

WorkerDescription describe(proto::WorkerInfo::Reader w) {
  return WorkerDescription{w.getName(),        w.getAddress(),  w.getNthreads(), w.getMemoryLimit(),
                           w.getMemoryBytes(), w.getProcessing(), w.getStored(), w.getStoredBytes(),
                           w.getRestarts(),    w.getSharedBytesIn(), w.getSharedBytesOut(),
                           w.getManagedBytes(), w.getSpilledBytes(), w.getPaused()};
}

OutMessage client_handshake(const std::string& name, const std::string& client_id) {
  MessageBuilder mb;
  auto h = mb.root().initHandshake();
  h.setVersion(proto::PROTOCOL_VERSION);
  h.setRole(proto::Role::CLIENT);
  h.setName(name);
  h.setClientId(client_id);
  return mb.finish();
}

OutMessage key_list_message(Outgoing::Kind kind, const std::vector<std::string>& keys) {
  MessageBuilder mb;
  auto n = static_cast<unsigned>(keys.size());
  auto list = kind == Outgoing::Kind::release ? mb.root().initReleaseKeys(n) : mb.root().initCancelKeys(n);
  for (unsigned i = 0; i < n; ++i) list.set(i, keys[i]);
  return mb.finish();
}

OutMessage resubmit_message(const Outgoing& o) {
  MessageBuilder mb;
  auto update = mb.root().initUpdateGraph();
  auto tasks = update.initTasks(static_cast<unsigned>(o.tasks.size()));
  for (unsigned i = 0; i < o.tasks.size(); ++i) write_task_spec(mb, tasks[i], *o.tasks[i]);
  auto wanted = update.initWanted(static_cast<unsigned>(o.keys.size()));
  for (unsigned i = 0; i < o.keys.size(); ++i) wanted.set(i, o.keys[i]);
  return mb.finish();
}

}

OutMessage info_request(std::uint64_t id, const std::vector<std::string>& keys, bool with_story) {
  MessageBuilder mb;
  auto req = mb.root().initInfoRequest();
  req.setId(id);
  req.setStory(with_story);
  auto list = req.initKeys(static_cast<unsigned>(keys.size()));
  for (unsigned i = 0; i < keys.size(); ++i) list.set(i, keys[i]);
  return mb.finish();
}
  // namespace

void ClientImpl::connect(const std::string& address, const std::string& via) {
  if (is_unix_address(address) || address_scheme(address) == "inproc") {
    address_ = address;
  } else {
    auto [host, port] = parse_address(address);
    address_ = format_address(host, port, address_scheme(address));
  }
  connect_to_ = via.empty() ? address : via;
  auto conn = std::make_shared<Connection>(detail::connect(io_, connect_to_, options_.security, options_.connect_timeout));
  fetcher_ = std::make_unique<DataFetcher>(io_, proto::Role::CLIENT, options_.name, FrameLimits{}, options_.security);
  attach(std::move(conn), false);  // the io thread is not running yet: no race
  trim_timer_ = std::make_unique<asio::steady_timer>(io_);
  trim_buffers_later();
  thread_ = std::thread([this] {
    name_this_thread("distrib-client");
    run_io(io_, default_io_spin());
  });
  std::unique_lock lock(mutex_);
  // The scheduler answers with its handshake then the cluster's size: wait for both, so
  // that n_workers() is right as soon as the constructor returns.
  if (!cv_.wait_for(lock, options_.connect_timeout, [&] { return has_cluster_info_ || !lost_reason_.empty(); })) {
    lock.unlock();
    close();
    throw CommError("no answer from a scheduler at " + address + " within " +
                    std::to_string(options_.connect_timeout.count()) + " ms");
  }
  if (!has_cluster_info_) {
    auto why = lost_reason_;
    lock.unlock();
    close();
    throw CommError("cannot talk to the scheduler at " + address + ": " + why);
  }
}

void ClientImpl::attach(ConnectionPtr conn, bool resume) {
  {
    std::lock_guard lock(mutex_);
    if (closing_) return;  // closed while connecting: the socket closes with `conn`
    handshaken_ = false;
    attached_ = false;  // until the scheduler's handshake: a dead end must not eat the outbox
    resume_ = resume;
  }
  scheduler_ = conn;
  const Connection* raw = conn.get();  // not the pointer itself: the handlers live in `conn`
  conn->start([this, raw](InMessage&& m) { on_message(raw, std::move(m)); },
              [this, raw](const std::string& reason) { on_lost(raw, reason); });
  // A client that never reconnects sends no id: the scheduler then forgets its keys as soon
  // as its connection drops, instead of keeping them for a re-attach that cannot come.
  conn->send(client_handshake(options_.name, options_.reconnect_timeout.count() > 0 ? client_id_ : std::string()));
}

void ClientImpl::on_scheduler_handshake() {
  std::vector<Outgoing> items;
  {
    std::lock_guard lock(mutex_);
    handshaken_ = true;
    attached_ = true;
    flush_posted_ = false;
    if (resume_) {
      items = core_.reattach();
      // Requests that may have crossed the drop are asked again; a second answer is ignored.
      for (auto& [id, w] : info_waiting_) items.push_back(Outgoing{Outgoing::Kind::message, info_request(id, w.keys, w.with_story)});
      for (auto& m : coordination_.resend([this] { return coordination_.next_id(); }))
        items.push_back(Outgoing{Outgoing::Kind::message, std::move(m)});
      log().info("client re-attached to the scheduler at {}", address_);
    } else {
      items = core_.take_outbox();
    }
    disconnected_since_.reset();
    backoff_ = std::chrono::milliseconds(0);  // the next drop is retried at once
  }
  send_all(std::move(items));
}

void ClientImpl::on_message(const Connection* from, InMessage&& m) {
  if (from != scheduler_.get()) return;  // a connection given up on
  MessageReader mr(m);
  auto root = mr.root();
  if (!handshaken_) {
    auto why = check_handshake(root, proto::Role::SCHEDULER, proto::Role::SCHEDULER);
    if (!why.empty()) {
      std::lock_guard lock(mutex_);
      no_reconnect_ = true;  // not a scheduler we can talk to: trying again will not help
      throw std::runtime_error(why);
    }
    on_scheduler_handshake();
    return;
  }
  std::vector<Settlement> settle;
  switch (root.which()) {
    case proto::Message::KEYS_IN_MEMORY: {
      std::vector<KeyInMemoryReport> reports;
      for (auto k : root.getKeysInMemory())
        reports.push_back({k.getKey(), k.getWorker(), k.hasValue() ? std::optional(mr.value(k.getValue())) : std::nullopt});
      std::lock_guard lock(mutex_);
      settle = core_.on_keys_in_memory(std::move(reports));
      break;
    }
    case proto::Message::TASK_ERRED: {
      std::vector<KeyErredReport> reports;
      for (auto e : root.getTaskErred()) reports.push_back({e.getKey(), e.getExceptionType(), e.getMessage()});
      std::lock_guard lock(mutex_);
      settle = core_.on_task_erred(std::move(reports));
      break;
    }
    case proto::Message::KEYS_CANCELLED: {
      std::vector<std::string> keys;
      for (auto k : root.getKeysCancelled()) keys.emplace_back(k);
      std::lock_guard lock(mutex_);
      settle = core_.on_keys_cancelled(keys);
      break;
    }
    case proto::Message::RESTARTED: {
      std::vector<std::string> keys;
      for (auto k : root.getRestarted()) keys.emplace_back(k);
      log().info("client: the cluster restarted; {} of this client's keys were cancelled", keys.size());
      std::lock_guard lock(mutex_);
      settle = core_.on_restarted(keys);
      break;
    }
    case proto::Message::RESTART_REPLY: {
      auto r = root.getRestartReply();
      std::lock_guard lock(mutex_);
      auto it = restart_waiting_.find(r.getId());
      if (it != restart_waiting_.end()) {
        it->second.set_value(RestartOutcome{r.getOk(), r.getReason()});
        restart_waiting_.erase(it);
      }
      return;
    }
    case proto::Message::UPLOAD_RESULT: {
      auto r = root.getUploadResult();
      const std::string error = r.getError();
      std::lock_guard lock(mutex_);
      auto it = restart_waiting_.find(r.getId());
      if (it != restart_waiting_.end()) {
        it->second.set_value(RestartOutcome{error.empty(), error, {}});
        restart_waiting_.erase(it);
      }
      return;
    }
    case proto::Message::RETIRE_REPLY: {
      auto r = root.getRetireReply();
      RestartOutcome outcome{r.getOk(), r.getReason(), {}};
      for (auto w : r.getRetired()) outcome.retired.emplace_back(w);
      std::lock_guard lock(mutex_);
      auto it = restart_waiting_.find(r.getId());
      if (it != restart_waiting_.end()) {
        it->second.set_value(std::move(outcome));
        restart_waiting_.erase(it);
      }
      return;
    }
    case proto::Message::COORDINATION:
      on_coordination(mr, root.getCoordination());
      return;
    case proto::Message::CLIENT_OP:
      on_client_op(mr, root.getClientOp());
      return;
    case proto::Message::CLUSTER_INFO: {
      std::lock_guard lock(mutex_);
      members_.clear();
      for (auto w : root.getClusterInfo().getMembers()) members_.push_back(describe(w));
      dashboard_port_ = root.getClusterInfo().getDashboardPort();
      has_cluster_info_ = true;
      cv_.notify_all();
      return;
    }
    case proto::Message::INFO_REPLY: {
      auto reply = root.getInfoReply();
      ClusterSnapshot snap;
      snap.info.address = address_;
      for (auto w : reply.getWorkers()) snap.info.workers.push_back(describe(w));
      for (auto c : reply.getTaskCounts()) snap.info.tasks[c.getState()] = c.getCount();
      for (auto loc : reply.getWhoHas())
        for (auto w : loc.getWorkers()) snap.who_has[loc.getKey()].emplace_back(w);
      for (auto loc : reply.getHasWhat()) {
        auto& keys = snap.has_what[loc.getKey()];
        for (auto k : loc.getWorkers()) keys.emplace_back(k);
      }
      for (auto line : reply.getStory())
        snap.story.push_back(Transition{line.getKey(), line.getStimulus(), line.getFrom(), line.getTo(),
                                        line.getWorker(), line.getTime()});
      std::lock_guard lock(mutex_);
      auto it = info_waiting_.find(reply.getId());
      if (it != info_waiting_.end()) {
        it->second.promise.set_value(std::move(snap));
        info_waiting_.erase(it);
      }
      return;
    }
    case proto::Message::SHUTDOWN: {
      std::lock_guard lock(mutex_);
      no_reconnect_ = true;  // the scheduler is going away on purpose; on_lost follows when it closes
      return;
    }
    case proto::Message::ERROR: {
      std::lock_guard lock(mutex_);
      no_reconnect_ = true;
      throw std::runtime_error("scheduler reported: " + std::string(root.getError().getReason()));
    }
    default:
      throw std::runtime_error("unexpected message from the scheduler");
  }
  apply(settle);  // outside the lock: dropping the last reference to a future takes it again
}

void ClientImpl::on_lost(const Connection* from, const std::string& reason) {
  if (from != scheduler_.get()) return;
  bool closing = false, reconnect = false;
  {
    std::lock_guard lock(mutex_);
    attached_ = false;
    closing = closing_;
    reconnect = !no_reconnect_ && has_cluster_info_ && lost_reason_.empty() && options_.reconnect_timeout.count() > 0;
  }
  if (closing) return io_.stop();  // close() fails what is pending once the loop is over
  if (reconnect) return start_reconnecting(reason);
  give_up("lost the connection to the scheduler: " + reason);
}

void ClientImpl::start_reconnecting(const std::string& reason) {
  std::thread previous;
  {
    std::lock_guard lock(mutex_);
    if (closing_) return;
    if (!disconnected_since_) {
      disconnected_since_ = std::chrono::steady_clock::now();
      log().warn("client lost the scheduler at {}: {}; reconnecting for up to {} ms", address_, reason,
                 options_.reconnect_timeout.count());
    }
    previous.swap(reconnector_);
  }
  if (previous.joinable()) previous.join();  // it ended right after handing over its connection
  std::lock_guard lock(mutex_);
  if (closing_) return;
  reconnector_ = std::thread([this, reason] {
    name_this_thread("distrib-reconnect");
    reconnect_loop(reason);
  });
}

void ClientImpl::reconnect_loop(std::string reason) {
  std::chrono::steady_clock::time_point deadline;
  {
    std::lock_guard lock(mutex_);
    deadline = *disconnected_since_ + options_.reconnect_timeout;
  }
  std::string last_error = reason;
  while (true) {
    {
      // The backoff carries over attempts that connected but did not get a handshake.
      std::unique_lock lock(mutex_);
      reconnect_cv_.wait_until(lock, std::min(std::chrono::steady_clock::now() + backoff_, deadline),
                               [&] { return closing_; });
      if (closing_) return;
      backoff_ = std::clamp(backoff_ * 2, kFirstBackoff, kMaxBackoff);
    }
    // Checked before each attempt too: a peer that accepts and hangs up is no scheduler.
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      auto why = "lost the connection to the scheduler at " + address_ + " (" + reason + ") and could not reconnect within " +
                 std::to_string(options_.reconnect_timeout.count()) + " ms: " + last_error;
      asio::post(io_, [this, self = weak_from_this(), why] {
        if (auto alive = self.lock()) give_up(why);
      });
      return;
    }
    try {
      auto conn = std::make_shared<Connection>(detail::connect(io_, connect_to_, options_.security, std::chrono::milliseconds(0)));
      asio::post(io_, [this, self = weak_from_this(), conn]() mutable {
        if (auto alive = self.lock()) attach(std::move(conn), true);
      });
      return;
    } catch (const std::exception& e) {
      last_error = e.what();
    }
  }
}

void ClientImpl::give_up(const std::string& reason) {
  std::vector<Settlement> pending;
  {
    std::lock_guard lock(mutex_);
    if (closing_ || !lost_reason_.empty()) return;
    lost_reason_ = reason;
    attached_ = false;
    pending = core_.fail_pending(lost_reason_);
    for (auto& [id, w] : info_waiting_) w.promise.set_exception(std::make_exception_ptr(CommError(lost_reason_)));
    info_waiting_.clear();
    for (auto& [id, p] : restart_waiting_) p.set_exception(std::make_exception_ptr(CommError(lost_reason_)));
    restart_waiting_.clear();
    cv_.notify_all();
  }
  coordination_.fail_all(reason);
  log().warn("client gave up on the scheduler at {}: {}", address_, reason);
  apply(pending);
  if (fetcher_) fetcher_->close_all();
}

void ClientImpl::schedule_flush() {
  if (flush_posted_ || !attached_) return;  // while disconnected, the outbox waits for attach()
  flush_posted_ = true;
  asio::post(io_, [self = weak_from_this(), this] {
    if (auto alive = self.lock()) flush_outbox();  // held for the whole flush
  });
}

void ClientImpl::flush_outbox() {
  std::vector<Outgoing> items;
  {
    std::lock_guard lock(mutex_);
    flush_posted_ = false;
    if (!attached_ || !scheduler_ || !scheduler_->is_open()) return;  // kept for the next connection
    items = core_.take_outbox();
  }
  send_all(std::move(items));
}

void ClientImpl::send_all(std::vector<Outgoing> items) {
  for (auto& o : items) {
    switch (o.kind) {
      case Outgoing::Kind::message: scheduler_->send(std::move(o.message)); break;
      // Nothing waits on a release: it goes with the next message.
      case Outgoing::Kind::release: scheduler_->send_later(key_list_message(o.kind, o.keys)); break;
      case Outgoing::Kind::cancel: scheduler_->send(key_list_message(o.kind, o.keys)); break;
      case Outgoing::Kind::resubmit: scheduler_->send(resubmit_message(o)); break;
    }
  }
}

}  // namespace distrib::detail
