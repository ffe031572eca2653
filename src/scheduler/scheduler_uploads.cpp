// client.upload_file, as Dask's upload_file: the scheduler keeps each library and sends it to
// every worker, now and when one registers later; each worker writes it to its local
// directory, loads it (its DISTRIB_TASK functions register themselves) and answers with the
// functions it has now, which placement then counts. The client hears once every worker that
// was there has answered. Only a connected client may upload, i.e. one that passed the
// cluster's token or TLS check when the cluster has one.
#include "comm/message.hpp"
#include "core/log.hpp"
#include "scheduler/scheduler_peer.hpp"

namespace distrib::detail {

namespace {
OutMessage upload_message(std::uint64_t id, const std::string& name, const Value& data) {
  MessageBuilder mb;
  auto u = mb.root().initUploadFile();
  u.setId(id);
  u.setName(name);
  mb.set_value(u.initData(), data);
  return mb.finish();
}

OutMessage upload_answer(std::uint64_t id, const std::string& error) {
  MessageBuilder mb;
  auto r = mb.root().initUploadResult();
  r.setId(id);
  r.setError(error);
  return mb.finish();
}
}  // namespace

void SchedulerServer::begin_upload(const Peer& by, MessageReader& mr, proto::UploadFile::Reader request) {
  const std::string name = request.getName();
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
    return send_to_client(by.id, upload_answer(request.getId(), "a file name without directories, not '" + name + "'"));
  auto upload = std::make_unique<Upload>(Upload{name, mr.value(request.getData())});
  log().info("client '{}' uploaded {} ({} bytes) for every worker", by.name, name, upload->data.bytes.size());
  const auto id = next_upload_id_++;
  auto wait = std::make_unique<UploadWait>();
  wait->client = by.id;
  wait->id = request.getId();
  for (auto& [wid, w] : workers_) {
    wait->workers.emplace(wid, w->name);
    w->conn->send(upload_message(id, upload->name, upload->data));
  }
  // A library of the same name replaces the one kept (workers that register later load the new one).
  std::erase_if(uploads_, [&](const auto& u) { return u->name == name; });
  uploads_.push_back(std::move(upload));
  if (wait->workers.empty()) return send_to_client(by.id, upload_answer(request.getId(), ""));
  upload_waits_[id] = std::move(wait);
}

void SchedulerServer::send_uploads(Peer& worker) {
  for (const auto& u : uploads_) worker.conn->send(upload_message(0, u->name, u->data));  // 0: nobody waits
}

void SchedulerServer::on_upload_result(const Peer& worker, proto::UploadResult::Reader result) {
  sched::WorkerFunctions ev{worker.id, {}};
  for (auto f : result.getFunctions()) ev.functions.emplace_back(f);
  handle(std::move(ev));
  const std::string error = result.getError();
  if (!error.empty()) log().warn("worker '{}' could not load an upload: {}", worker.name, error);
  auto it = upload_waits_.find(result.getId());
  if (it == upload_waits_.end()) return;
  auto& wait = *it->second;
  if (!wait.workers.erase(worker.id)) return;
  if (!error.empty()) wait.errors += (wait.errors.empty() ? "" : "; ") + ("worker '" + worker.name + "': " + error);
  if (!wait.workers.empty()) return;
  send_to_client(wait.client, upload_answer(wait.id, wait.errors));
  upload_waits_.erase(it);
}

void SchedulerServer::forget_upload_worker(std::uint64_t worker) {
  for (auto it = upload_waits_.begin(); it != upload_waits_.end();) {
    auto& wait = *it->second;
    if (!wait.workers.erase(worker) || !wait.workers.empty()) {
      ++it;
      continue;
    }
    send_to_client(wait.client, upload_answer(wait.id, wait.errors));
    it = upload_waits_.erase(it);
  }
}

}  // namespace distrib::detail
