// WorkerServer's data port: peers and clients fetch results (getData), place values
// (putData, scatter) and run functions outside the scheduler (runFunction, Client::run).
// It serves throughout, also while the worker is reconnecting to its scheduler.
//
// With a peer on the same host (comm/same_host.hpp), large values go both ways as shared
// memory: a getData with `shared` is answered with SharedBuffer values, kept referenced
// here until the peer's sharedDone (so their fds stay open until it has mapped them; a
// closed connection drops them too); a putData's SharedBuffer values are mapped here, and
// those that fail are named in putDataUnmapped for the sender to send again as frames.
#include <thread>
#include <unordered_map>

#include "comm/message.hpp"
#include "comm/same_host.hpp"
#include "core/log.hpp"
#include "worker/worker_server.hpp"

namespace distrib::detail {

void WorkerServer::accept() {
  listener_->async_accept([this](asio::error_code ec, ByteStreamPtr stream) {
    if (ec) {
      if (!stopped_ && ec != asio::error::operation_aborted)
        accept_backoff_.failed(ec, "worker '" + options_.name + "' data port", [this] {
          if (!stopped_) accept();
        });
      return;
    }
    accept_backoff_.succeeded();
    auto conn = std::make_shared<Connection>(std::move(stream), options_.limits, auth::Side::acceptor);
    if (!admission_.admit(conn)) return accept();  // dropped: closed, never started
    auto peer = std::make_shared<DataPortPeer>();
    peers_.push_back(conn);
    std::weak_ptr<Connection> weak = conn;
    conn->start([this, weak, peer](InMessage&& m) {
                  if (auto c = weak.lock()) on_peer_message(c, *peer, std::move(m));
                },
                [this, weak, peer](const std::string& reason) {
                  admission_.closed();
                  if (is_bad_input_reason(reason) && bad_input_log_.allow())
                    log().warn("closed peer connection: {}{}", reason, bad_input_log_.note());
                  peer->lent.clear();  // the peer maps nothing more from this connection
                  auto c = weak.lock();
                  std::erase(peers_, c);
                });
    conn->send(make_handshake(proto::Role::WORKER, options_.name, true));
    accept();
  });
}

void WorkerServer::on_peer_message(const ConnectionPtr& conn, DataPortPeer& peer, InMessage&& m) {
  MessageReader mr(m);
  auto root = mr.root();
  if (!peer.handshaken) {
    auto why = check_handshake(root, proto::Role::PEER, proto::Role::CLIENT);
    if (!why.empty()) {
      if (bad_input_log_.allow()) log().warn("rejected {}: {}{}", conn->peer(), why, bad_input_log_.note());
      conn->send(make_error(why));
      conn->close_after_flush("rejected: " + why);
      return;
    }
    peer.handshaken = true;
    peer.same_host = same_host_peer(root.getHandshake());
    return;
  }
  if (root.isClose()) return conn->close("peer closed the connection");
  if (root.isSharedDone()) {
    peer.lent.erase(root.getSharedDone());
    return;
  }
  if (root.isPutData()) {  // scatter: a client places values here; or a peer pushes inputs
    auto put = root.getPutData();
    if (put.getPush()) {
      wrk::PushedData ev{put.getFrom(), {}, {}};
      for (auto kv : put.getValues()) ev.data.emplace_back(kv.getKey(), mr.value(kv.getValue()));
      for (auto k : put.getAvailable()) ev.available.emplace_back(k);
      handle(std::move(ev));
    } else {
      wrk::StoreData ev;
      std::vector<std::string> unmapped;
      std::string why;
      for (auto kv : put.getValues()) {
        auto v = kv.getValue();
        if (!v.isShared()) {
          ev.data.emplace_back(kv.getKey(), mr.value(v));
          continue;
        }
        auto mapped = shm::map(read_descriptor(v.getShared()));
        if (mapped.error.empty()) ev.data.emplace_back(kv.getKey(), Value{v.getType(), std::move(mapped.bytes)});
        else unmapped.emplace_back(kv.getKey()), why = std::move(mapped.error);
      }
      handle(std::move(ev));
      if (!unmapped.empty()) {
        note_shared_fallback(conn->peer(), why);
        MessageBuilder mb;
        auto un = mb.root().initPutDataUnmapped();
        un.setId(put.getId());
        un.setReason(why);
        auto keys = un.initKeys(static_cast<unsigned>(unmapped.size()));
        for (unsigned i = 0; i < unmapped.size(); ++i) keys.set(i, unmapped[i]);
        return conn->send(mb.finish());
      }
    }
    MessageBuilder mb;
    mb.root().setPutDataDone(put.getId());
    conn->send(mb.finish());
    return;
  }
  if (root.isRunFunction()) {
    auto run = root.getRunFunction();
    return run_function(conn, run.getId(), read_task_spec(mr, run.getSpec()));
  }
  if (!root.isGetData()) throw std::runtime_error("unexpected message on the data port");
  auto req = root.getGetData();
  MessageBuilder mb;
  auto reply = mb.root().initDataReply();
  reply.setId(req.getId());
  std::vector<std::pair<std::string, Value>> found;
  std::vector<std::string> missing;
  {
    // The store is read here on the io thread, under the state mutex. A store that spills
    // must not read values back from disk in this call: it would stall the io thread and
    // every task thread waiting for the lock. Spilled values will have to be read after the
    // lock is released, off the io thread.
    std::lock_guard lock(state_mutex_);
    for (auto k : req.getKeys()) {
      std::string key = k;
      if (auto v = state_.get_data(key)) found.emplace_back(std::move(key), std::move(*v));
      else missing.push_back(std::move(key));
    }
  }
  const bool share = req.getShared() && peer.same_host;
  auto values = reply.initValues(static_cast<unsigned>(found.size()));
  for (unsigned i = 0; i < found.size(); ++i) {
    values[i].setKey(found[i].first);
    auto out = values[i].initValue();
    if (share && set_shared_value(out, found[i].second, false)) peer.lent[req.getId()].push_back(found[i].second.bytes);
    else mb.set_value(out, found[i].second);
  }
  auto miss = reply.initMissing(static_cast<unsigned>(missing.size()));
  for (unsigned i = 0; i < missing.size(); ++i) miss.set(i, missing[i]);
  conn->send(mb.finish());
}

// Client::run: calls a function on this worker now, outside the scheduler, on a thread of
// its own so that it neither waits for nor blocks the task threads. Nothing asks it to stop.
void WorkerServer::run_function(const ConnectionPtr& conn, std::uint64_t id, TaskSpec spec) {
  std::weak_ptr<Connection> weak = conn;
  auto alive = std::weak_ptr<bool>(alive_);
  auto reply = [this, weak, alive, id](wrk::Event result) {
    asio::post(io_, [weak, alive, id, result = std::move(result)] {
      auto c = weak.lock();
      if (!c || alive.expired()) return;
      MessageBuilder mb;
      auto r = mb.root().initRunResult();
      r.setId(id);
      if (auto* ok = std::get_if<wrk::ExecuteSuccess>(&result)) {
        mb.set_value(r.initValue(), ok->value);
      } else if (auto* failed = std::get_if<wrk::ExecuteFailure>(&result)) {
        auto e = r.initError();
        e.setExceptionType(failed->exception_type);
        e.setMessage(failed->message);
      }
      c->send(mb.finish());
    });
  };
  wrk::Execute ex{std::make_shared<TaskSpec>(std::move(spec)), {}, {}};
  for (const auto& a : ex.spec->args) {
    if (a.is_key() || a.is_key_list())
      return reply(wrk::ExecuteFailure{ex.spec->key, "std::invalid_argument", "Client::run takes plain values, not futures"});
    ex.args.push_back(a.value());
  }
  std::thread([ex = std::move(ex), reply]() mutable { reply(run_task(ex)); }).detach();
}

}  // namespace distrib::detail
