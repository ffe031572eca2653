// The scheduler's side of the client operations that are requests (clientOp): nbytes,
// run_on_scheduler, replicate and rebalance. fire_and_forget and retry change the state
// and come as events (scheduler_wire.cpp, scheduler_state_client_ops.cpp).
//
// replicate and rebalance move copies with the machinery of retire_workers: a holder is
// told to `replicate` a key to a target (putData), says `replicated`, and the state gains
// the holder (Replicated); a surplus copy, or a moved one once its new copy is stored, is
// dropped (DropReplicas). The client hears `done` once every copy is reported. What is under
// way lives here, not in the journal: a scheduler restart forgets it (the copies made stay).
#include <algorithm>
#include <map>
#include <unordered_set>

#include "comm/message.hpp"
#include "core/log.hpp"
#include "core/task_spec.hpp"
#include "distrib/task.hpp"
#include "scheduler/scheduler_peer.hpp"
#include "worker/task_executor.hpp"

namespace distrib::detail {

namespace {
OutMessage op_done(std::uint64_t id, const std::string& error) {
  MessageBuilder mb;
  auto op = mb.root().initClientOp();
  op.setId(id);
  op.getOp().setDone(error);
  return mb.finish();
}

std::vector<std::string> texts(capnp::List<capnp::Text>::Reader list) {
  std::vector<std::string> out;
  for (auto t : list) out.emplace_back(t);
  return out;
}
}  // namespace

void SchedulerServer::on_client_op(const Peer& by, MessageReader& mr, proto::ClientOp::Reader op) {
  const auto id = op.getId();
  auto request = op.getOp();
  switch (request.which()) {
    case proto::ClientOp::Op::NBYTES: {
      MessageBuilder mb;
      auto reply = mb.root().initClientOp();
      reply.setId(id);
      std::vector<std::pair<std::string, std::uint64_t>> sizes;
      for (auto k : request.getNbytes())
        if (auto n = state_.nbytes(k)) sizes.emplace_back(k, *n);
      auto list = reply.getOp().initSizes(static_cast<unsigned>(sizes.size()));
      for (unsigned i = 0; i < sizes.size(); ++i) {
        list[i].setKey(sizes[i].first);
        list[i].setNbytes(sizes[i].second);
      }
      return send_to_client(by.id, mb.finish());
    }
    case proto::ClientOp::Op::RUN_ON_SCHEDULER:
      return send_to_client(by.id, run_here(id, mr, request.getRunOnScheduler()));
    case proto::ClientOp::Op::REPLICATE: {
      auto r = request.getReplicate();
      return begin_copies(by, id, texts(r.getKeys()), r.getN(), false);
    }
    case proto::ClientOp::Op::REBALANCE:
      return begin_copies(by, id, texts(request.getRebalance()), 0, true);
    default:
      throw std::runtime_error("a clientOp the scheduler does not take from a client");
  }
}

OutMessage SchedulerServer::run_here(std::uint64_t id, MessageReader& mr, proto::TaskSpec::Reader spec_reader) {
  MessageBuilder mb;
  auto op = mb.root().initClientOp();
  op.setId(id);
  auto result = op.getOp().initRunResult();
  result.setId(id);
  auto spec = std::make_shared<TaskSpec>(read_task_spec(mr, spec_reader));
  wrk::Execute ex{spec, {}, {}};
  for (const auto& a : spec->args) {
    if (!std::holds_alternative<Value>(a.v)) {
      auto e = result.initError();
      e.setExceptionType("std::invalid_argument");
      e.setMessage("run_on_scheduler takes plain values, not futures");
      return mb.finish();
    }
    ex.args.push_back(a.value());
  }
  if (!TaskRegistry::instance().find(spec->function)) {
    auto e = result.initError();
    e.setExceptionType("distrib::UnknownFunction");
    e.setMessage("the scheduler does not have the task function '" + spec->function +
                 "' (a dscheduler has those of the libraries it loads with --preload)");
    return mb.finish();
  }
  log().info("running {} on the scheduler", spec->function);
  auto outcome = run_task(ex);  // on this event loop, which waits for it (as Dask's)
  if (auto* ok = std::get_if<wrk::ExecuteSuccess>(&outcome)) {
    mb.set_value(result.initValue(), ok->value);
  } else if (auto* failed = std::get_if<wrk::ExecuteFailure>(&outcome)) {
    auto e = result.initError();
    e.setExceptionType(failed->exception_type);
    e.setMessage(failed->message);
  }
  return mb.finish();
}

void SchedulerServer::begin_copies(const Peer& by, std::uint64_t id, const std::vector<std::string>& keys,
                                   std::uint32_t n, bool rebalance) {
  // The workers that may take copies: not paused, not retiring.
  std::vector<sched::SchedulerState::WorkerSnapshot> targets;
  for (auto& w : state_.workers(true)) {
    auto peer = workers_.find(w.id);
    if (peer != workers_.end() && !peer->second->retiring && !w.paused) targets.push_back(std::move(w));
  }
  std::vector<std::string> chosen = keys;
  if (rebalance && chosen.empty())  // every key in memory
    for (const auto& w : targets) chosen.insert(chosen.end(), w.keys.begin(), w.keys.end());
  std::sort(chosen.begin(), chosen.end());
  chosen.erase(std::unique(chosen.begin(), chosen.end()), chosen.end());
  if (!rebalance && n > targets.size())
    return send_to_client(by.id, op_done(id, "cannot keep " + std::to_string(n) + " copies on " +
                                               std::to_string(targets.size()) + " workers"));
  auto plan = rebalance ? plan_rebalance(chosen, targets) : plan_replicate(chosen, targets, n == 0 ? targets.size() : n);
  auto copies = std::make_unique<CopyOp>();
  copies->client = by.id;
  copies->id = id;
  std::map<std::uint64_t, std::vector<std::pair<std::string, std::string>>> by_holder;  // holder -> (key, target)
  for (auto& m : plan) {
    if (m.to == 0) {
      handle(sched::DropReplicas{m.from, {m.key}});  // a surplus copy: no copy needed first
      continue;
    }
    auto target = workers_.find(m.to);
    if (target == workers_.end()) continue;
    by_holder[m.from].emplace_back(m.key, target->second->address);
    copies->pending.push_back({m.key, m.from, m.to, rebalance});
  }
  for (auto& [holder, list] : by_holder) {
    MessageBuilder mb;
    auto msg = mb.root().initReplicate(static_cast<unsigned>(list.size()));
    for (unsigned i = 0; i < list.size(); ++i) {
      msg[i].setKey(list[i].first);
      msg[i].initWorkers(1).set(0, list[i].second);
    }
    workers_.at(holder)->conn->send(mb.finish());
  }
  log().info("client '{}': {} of {} keys, {} copies to make", by.name, rebalance ? "rebalance" : "replicate",
             chosen.size(), copies->pending.size());
  if (copies->pending.empty()) return send_to_client(by.id, op_done(id, ""));
  copy_ops_.push_back(std::move(copies));
}

std::vector<SchedulerServer::CopyMove> SchedulerServer::plan_replicate(
    const std::vector<std::string>& keys, const std::vector<sched::SchedulerState::WorkerSnapshot>& targets,
    std::size_t n) const {
  std::vector<CopyMove> plan;
  std::map<std::uint64_t, std::uint64_t> bytes;  // what each target will store
  for (const auto& w : targets) bytes[w.id] = w.stored_bytes;
  for (const auto& key : keys) {
    auto holders = state_.who_has(key);
    if (holders.empty()) continue;  // not in memory: nothing to copy
    const auto size = state_.nbytes(key).value_or(0);
    std::vector<std::uint64_t> kept;  // holders among the targets
    for (auto h : holders)
      if (bytes.count(h)) kept.push_back(h);
    // Copies to the targets storing least, from the first holder.
    while (kept.size() < n) {
      std::uint64_t best = 0;
      for (const auto& [w, b] : bytes)
        if (std::find(kept.begin(), kept.end(), w) == kept.end() && (best == 0 || b < bytes[best])) best = w;
      if (best == 0) break;
      plan.push_back({key, holders.front(), best});
      bytes[best] += size;
      kept.push_back(best);
    }
    // Surplus copies go from the targets storing most.
    std::sort(kept.begin(), kept.end(), [&](auto a, auto b) { return bytes[a] > bytes[b]; });
    for (std::size_t i = 0; kept.size() - i > n && holders.size() - i > 1; ++i) {
      plan.push_back({key, kept[i], 0});
      bytes[kept[i]] -= std::min(bytes[kept[i]], size);
    }
  }
  return plan;
}

std::vector<SchedulerServer::CopyMove> SchedulerServer::plan_rebalance(
    const std::vector<std::string>& keys, const std::vector<sched::SchedulerState::WorkerSnapshot>& targets) const {
  // Greedy, as a simple form of Dask's rebalance: while the worker storing most and the one
  // storing least differ, move the largest of the chosen keys the first holds and the other
  // does not that narrows the gap (smaller than the gap), and count it as moved.
  std::vector<CopyMove> plan;
  if (targets.size() < 2) return plan;
  std::unordered_set<std::string> movable(keys.begin(), keys.end());
  std::map<std::uint64_t, std::uint64_t> bytes;
  std::map<std::uint64_t, std::vector<std::pair<std::uint64_t, std::string>>> held;  // worker -> (size, key)
  for (const auto& w : targets) {
    bytes[w.id] = w.stored_bytes;
    for (const auto& k : w.keys)
      if (movable.count(k)) held[w.id].emplace_back(state_.nbytes(k).value_or(0), k);
  }
  std::unordered_set<std::string> moved;
  for (std::size_t step = 0; step < keys.size(); ++step) {
    auto [lo, hi] = std::minmax_element(bytes.begin(), bytes.end(), [](auto& a, auto& b) { return a.second < b.second; });
    const auto gap = hi->second - lo->second;
    const std::pair<std::uint64_t, std::string>* pick = nullptr;
    for (const auto& candidate : held[hi->first]) {
      if (candidate.first == 0 || candidate.first >= gap || moved.count(candidate.second)) continue;
      auto holders = state_.who_has(candidate.second);
      if (std::find(holders.begin(), holders.end(), lo->first) != holders.end()) continue;
      if (!pick || candidate.first > pick->first) pick = &candidate;
    }
    if (!pick) break;
    plan.push_back({pick->second, hi->first, lo->first});
    moved.insert(pick->second);
    hi->second -= pick->first;
    lo->second += pick->first;
  }
  return plan;
}

void SchedulerServer::on_copy_reported(const std::string& key, const std::string& target_address) {
  for (auto it = copy_ops_.begin(); it != copy_ops_.end();) {
    auto& op = **it;
    auto pending = std::find_if(op.pending.begin(), op.pending.end(), [&](const CopyOp::Copy& c) {
      if (c.key != key) return false;
      if (target_address.empty()) return true;  // a failure names no target: the first of the key
      auto w = workers_.find(c.to);
      return w != workers_.end() && w->second->address == target_address;
    });
    if (pending == op.pending.end()) {
      ++it;
      continue;
    }
    if (target_address.empty()) op.errors += (op.errors.empty() ? "" : "; ") + ("could not copy '" + key + "'");
    else if (pending->move) handle(sched::DropReplicas{pending->from, {key}});  // moved: the old copy goes
    op.pending.erase(pending);
    if (!op.pending.empty()) {
      ++it;
      continue;
    }
    send_to_client(op.client, op_done(op.id, op.errors));
    it = copy_ops_.erase(it);
  }
}

void SchedulerServer::forget_copy_worker(std::uint64_t worker) {
  for (auto it = copy_ops_.begin(); it != copy_ops_.end();) {
    auto& op = **it;
    auto before = op.pending.size();
    std::erase_if(op.pending, [&](const CopyOp::Copy& c) { return c.to == worker || c.from == worker; });
    if (op.pending.size() != before) op.errors += (op.errors.empty() ? "" : "; ") + std::string("a worker left");
    if (!op.pending.empty() || before == 0) {
      ++it;
      continue;
    }
    send_to_client(op.client, op_done(op.id, op.errors));
    it = copy_ops_.erase(it);
  }
}

}  // namespace distrib::detail
