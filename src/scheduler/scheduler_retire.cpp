// client.retire_workers, as Dask's Scheduler.retire_workers: the workers are paused for the
// state (no new work; idle workers may steal what is queued on them); once none of them runs
// a task, each value only they hold is copied to a worker that stays (the holder sends it,
// putData, and reports `replicated`), and a worker with nothing left to copy is closed for
// good (shutdown: its nanny does not restart it). Runs on the scheduler's io thread, driven
// by a 50 ms timer while a retirement is under way and by each `replicated`.
#include <algorithm>
#include <unordered_set>

#include "comm/message.hpp"
#include "core/log.hpp"
#include "scheduler/scheduler_peer.hpp"

namespace distrib::detail {

namespace {
constexpr std::chrono::milliseconds kRetireTick{50};

OutMessage retire_reply(std::uint64_t id, bool ok, const std::vector<std::string>& retired, const std::string& reason) {
  MessageBuilder mb;
  auto r = mb.root().initRetireReply();
  r.setId(id);
  r.setOk(ok);
  r.setReason(reason);
  auto list = r.initRetired(static_cast<unsigned>(retired.size()));
  for (unsigned i = 0; i < retired.size(); ++i) list.set(i, retired[i]);
  return mb.finish();
}
}  // namespace

void SchedulerServer::begin_retire(const Peer& by, proto::RetireRequest::Reader request) {
  auto r = std::make_unique<Retirement>();
  r->client = by.id;
  r->id = request.getId();
  constexpr std::uint64_t kLongest = 10ull * 365 * 24 * 3600 * 1000;
  r->deadline = Clock::now() + std::chrono::milliseconds(std::min<std::uint64_t>(request.getTimeoutMs(), kLongest));
  std::string unknown;
  for (auto name : request.getWorkers()) {
    bool found = false;
    for (auto& [id, w] : workers_) {
      if (w->name != name.cStr() && w->address != name.cStr()) continue;
      found = true;
      if (std::find(r->workers.begin(), r->workers.end(), id) != r->workers.end()) continue;
      r->workers.push_back(id);
      w->retiring = true;
      w->paused = true;
      handle(sched::WorkerPaused{id, true});  // no new work from here on
    }
    if (!found) unknown += (unknown.empty() ? "" : ", ") + std::string(name.cStr());
  }
  if (!unknown.empty()) {
    finish_retirement(*r, false, "no such worker: " + unknown);
    return;
  }
  log().info("client '{}' retires {} workers", by.name, r->workers.size());
  retirements_.push_back(std::move(r));
  advance_retirements();
}

void SchedulerServer::on_replicated(capnp::List<proto::KeyLocation>::Reader copies) {
  for (auto c : copies) {
    const std::string key = c.getKey();
    for (auto& r : retirements_) r->copying.erase(key);  // copied, or to be asked again
    for (auto address : c.getWorkers())
      for (auto& [id, w] : workers_)
        if (w->address == address.cStr()) handle(sched::Replicated{id, {key}});
    // client.replicate and rebalance copy the same way (scheduler_client_ops.cpp).
    if (c.getWorkers().size() == 0) on_copy_reported(key, "");
    for (auto address : c.getWorkers()) on_copy_reported(key, address);
  }
  advance_retirements();
}

void SchedulerServer::advance_retirements() {
  const auto now = Clock::now();
  std::unordered_set<std::uint64_t> leaving;
  for (auto& r : retirements_) leaving.insert(r->workers.begin(), r->workers.end());
  // Where copies go: the workers that stay and are not paused, least loaded first.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> staying;  // stored bytes, worker
  for (const auto& w : state_.workers())  // without their keys: only the leaving ones' are read
    if (!leaving.count(w.id) && !w.paused) staying.emplace_back(w.stored_bytes, w.id);
  for (auto it = retirements_.begin(); it != retirements_.end();) {
    auto& r = **it;
    if (now >= r.deadline) {
      finish_retirement(r, false, "not done within the timeout: " + std::to_string(r.workers.size()) +
                                      " workers still had tasks running or values to copy");
      it = retirements_.erase(it);
      continue;
    }
    for (auto w = r.workers.begin(); w != r.workers.end();) {
      auto peer = workers_.find(*w);
      if (peer == workers_.end()) {  // it left by itself: what it held is recomputed as usual
        w = r.workers.erase(w);
        continue;
      }
      if (state_.n_processing(*w) > 0) {  // its running tasks finish first
        ++w;
        continue;
      }
      std::vector<std::pair<std::string, std::uint64_t>> to_copy;  // key, target
      bool waiting = false;
      for (const auto& key : state_.keys_on(*w)) {
        if (r.copying.count(key)) {
          waiting = true;
          continue;
        }
        auto holders = state_.who_has(key);
        const bool kept = std::any_of(holders.begin(), holders.end(), [&](auto h) { return !leaving.count(h); });
        if (kept) continue;
        if (staying.empty()) {
          finish_retirement(r, false, "no worker that stays can take the values of the workers retired");
          break;
        }
        auto target = std::min_element(staying.begin(), staying.end());
        to_copy.emplace_back(key, target->second);
        target->first += 1;  // spread a burst of keys over the targets
        r.copying[key] = target->second;
        waiting = true;
      }
      if (r.workers.empty()) break;  // finished above (no target)
      if (!to_copy.empty()) {
        MessageBuilder mb;
        auto list = mb.root().initReplicate(static_cast<unsigned>(to_copy.size()));
        for (unsigned i = 0; i < to_copy.size(); ++i) {
          list[i].setKey(to_copy[i].first);
          list[i].initWorkers(1).set(0, workers_.at(to_copy[i].second)->address);
        }
        peer->second->conn->send(mb.finish());
      }
      if (waiting) {
        ++w;
        continue;
      }
      // Nothing runs there and every value it holds is held elsewhere too: close it.
      auto p = peer->second;
      log().info("worker '{}' retired", p->name);
      r.retired.push_back(p->address);
      p->conn->send(make_shutdown());
      p->conn->close_after_flush("retired");
      workers_.erase(peer);
      recorder_.worker_removed(*w);
      handle(sched::RemoveWorker{*w, true});
      w = r.workers.erase(w);
    }
    if (r.workers.empty() && r.client != 0) {
      finish_retirement(r, true, "");
      it = retirements_.erase(it);
      continue;
    }
    if (r.client == 0) {  // finished with an error above
      it = retirements_.erase(it);
      continue;
    }
    ++it;
  }
  flush(actions_);
  if (retirements_.empty() || retire_timer_armed_) return;
  retire_timer_armed_ = true;
  retire_timer_.expires_after(kRetireTick);
  retire_timer_.async_wait([this](asio::error_code ec) {
    retire_timer_armed_ = false;
    if (!ec) advance_retirements();
  });
}

void SchedulerServer::finish_retirement(Retirement& r, bool ok, const std::string& reason) {
  if (!ok) log().warn("retire_workers failed: {}", reason);
  for (auto id : r.workers) {  // back into service
    auto w = workers_.find(id);
    if (w == workers_.end()) continue;
    w->second->retiring = false;
    w->second->paused = false;
    handle(sched::WorkerPaused{id, false});
  }
  r.workers.clear();
  send_to_client(r.client, retire_reply(r.id, ok, r.retired, reason));
  r.client = 0;  // answered
}

}  // namespace distrib::detail
