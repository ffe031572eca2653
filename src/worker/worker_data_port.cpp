// WorkerServer's data port: peers and clients fetch results (getData), place values
// (putData, scatter) and run functions outside the scheduler (runFunction, Client::run).
// It serves throughout, also while the worker is reconnecting to its scheduler.
#include <thread>

#include "comm/message.hpp"
#include "core/log.hpp"
#include "worker/worker_server.hpp"

namespace distrib::detail {

void WorkerServer::accept() {
  acceptor_.async_accept([this](asio::error_code ec, asio::ip::tcp::socket socket) {
    if (ec) {
      if (!stopped_ && ec != asio::error::operation_aborted) accept();
      return;
    }
    auto conn = std::make_shared<Connection>(StreamSocket(std::move(socket)), options_.limits);
    auto handshaken = std::make_shared<bool>(false);
    peers_.push_back(conn);
    std::weak_ptr<Connection> weak = conn;
    conn->start([this, weak, handshaken](InMessage&& m) {
                  if (auto c = weak.lock()) on_peer_message(c, *handshaken, std::move(m));
                },
                [this, weak](const std::string& reason) {
                  if (is_bad_input_reason(reason)) log().warn("closed peer connection: {}", reason);
                  auto c = weak.lock();
                  std::erase(peers_, c);
                });
    conn->send(make_handshake(proto::Role::WORKER, options_.name));
    accept();
  });
}

void WorkerServer::on_peer_message(const ConnectionPtr& conn, bool& handshaken, InMessage&& m) {
  MessageReader mr(m);
  auto root = mr.root();
  if (!handshaken) {
    auto why = check_handshake(root, proto::Role::PEER, proto::Role::CLIENT);
    if (!why.empty()) {
      log().warn("rejected {}: {}", conn->peer(), why);
      conn->send(make_error(why));
      conn->close_after_flush("rejected: " + why);
      return;
    }
    handshaken = true;
    return;
  }
  if (root.isClose()) return conn->close("peer closed the connection");
  if (root.isPutData()) {  // scatter: a client places values here; or a peer pushes inputs
    auto put = root.getPutData();
    if (put.getPush()) {
      wrk::PushedData ev{put.getFrom(), {}, {}};
      for (auto kv : put.getValues()) ev.data.emplace_back(kv.getKey(), mr.value(kv.getValue()));
      for (auto k : put.getAvailable()) ev.available.emplace_back(k);
      handle(std::move(ev));
    } else {
      wrk::StoreData ev;
      for (auto kv : put.getValues()) ev.data.emplace_back(kv.getKey(), mr.value(kv.getValue()));
      handle(std::move(ev));
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
    std::lock_guard lock(state_mutex_);
    for (auto k : req.getKeys()) {
      std::string key = k;
      if (auto v = state_.get_data(key)) found.emplace_back(std::move(key), std::move(*v));
      else missing.push_back(std::move(key));
    }
  }
  auto values = reply.initValues(static_cast<unsigned>(found.size()));
  for (unsigned i = 0; i < found.size(); ++i) {
    values[i].setKey(found[i].first);
    mb.set_value(values[i].initValue(), found[i].second);
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
