// client.upload_file, as Dask's upload_file: the scheduler keeps each library and sends it to
// every worker, now and when one registers later; each worker writes it to its local
// directory, loads it (its DISTRIB_TASK functions register themselves) and answers with the
// functions it has now, which placement then counts. The client hears once every worker that
// was there has answered. Only a connected client may upload, i.e. one that passed the
// cluster's token or TLS check when the cluster has one. With --journal each library is also
// kept on disk, for the workers that register with a restarted scheduler.
#include <filesystem>
#include <fstream>
#include <map>

#include "comm/message.hpp"
#include "core/durable_file.hpp"
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
namespace fs = std::filesystem;

fs::path uploads_dir(const std::string& journal_dir) { return fs::path(journal_dir) / "uploads"; }

/// "<sequence>-<name>" -> (sequence, name); nullopt for anything else (a temporary file).
std::optional<std::pair<std::uint64_t, std::string>> parse_kept(const std::string& file) {
  const auto dash = file.find('-');
  if (dash == 0 || dash == std::string::npos || dash + 1 == file.size() || file.find(".tmp-") != std::string::npos)
    return std::nullopt;
  std::uint64_t seq = 0;
  for (std::size_t i = 0; i < dash; ++i) {
    if (file[i] < '0' || file[i] > '9') return std::nullopt;
    seq = seq * 10 + static_cast<std::uint64_t>(file[i] - '0');
  }
  return std::pair{seq, file.substr(dash + 1)};
}
}  // namespace

void SchedulerServer::keep_upload_on_disk(const Upload& upload) {
  if (options_.journal_dir.empty()) return;
  try {
    const auto dir = uploads_dir(options_.journal_dir);
    fs::create_directories(dir);
    const auto seq = next_kept_upload_++;
    const auto& bytes = upload.data.bytes;
    write_file_durably((dir / (std::to_string(seq) + "-" + upload.name)).string(), bytes.data(), bytes.size());
    // The new one is on disk first: a crash in between leaves both, and loading keeps the later.
    for (const auto& entry : fs::directory_iterator(dir)) {
      auto kept = parse_kept(entry.path().filename().string());
      if (kept && kept->second == upload.name && kept->first != seq) fs::remove(entry.path());
    }
  } catch (const std::exception& e) {
    log().warn("upload {} is not kept in the journal directory ({}): a restarted scheduler will not have it",
               upload.name, e.what());
  }
}

void SchedulerServer::load_kept_uploads() {
  const auto dir = uploads_dir(options_.journal_dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  std::map<std::string, std::pair<std::uint64_t, fs::path>> latest;  // by name
  for (const auto& entry : fs::directory_iterator(dir)) {
    auto kept = parse_kept(entry.path().filename().string());
    if (!kept) continue;
    next_kept_upload_ = std::max(next_kept_upload_, kept->first + 1);
    auto& slot = latest[kept->second];
    if (slot.second.empty() || kept->first > slot.first) slot = {kept->first, entry.path()};
  }
  std::vector<std::pair<std::uint64_t, std::string>> order;  // uploaded first, loaded first
  for (const auto& [name, kept] : latest) order.emplace_back(kept.first, name);
  std::sort(order.begin(), order.end());
  for (const auto& [seq, name] : order) {
    const auto& path = latest[name].second;
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    const auto end = in ? static_cast<std::streamoff>(in.tellg()) : -1;
    Bytes content = Bytes::allocate(end > 0 ? static_cast<std::size_t>(end) : 0);
    in.seekg(0);
    if (end < 0 || (end > 0 && !in.read(reinterpret_cast<char*>(content.mutable_data()), end))) {
      log().warn("journal {}: cannot read the kept upload {}; skipped", options_.journal_dir, path.string());
      continue;
    }
    uploads_.push_back(std::make_unique<Upload>(Upload{name, Value{"bytes", std::move(content)}}));
  }
  if (!uploads_.empty())
    log().info("journal {}: {} upload(s) kept for the workers that register", options_.journal_dir, uploads_.size());
}

void SchedulerServer::forget_kept_uploads() {
  if (options_.journal_dir.empty()) return;
  std::error_code ec;
  fs::remove_all(uploads_dir(options_.journal_dir), ec);
}

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
  keep_upload_on_disk(*upload);
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
