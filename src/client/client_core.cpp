#include "client/client_core.hpp"

#include <algorithm>
#include <unordered_set>

namespace distrib::detail {

void apply(Settlement& s) {
  switch (s.kind) {
    case Settlement::Kind::finished: s.future->set_finished(s.worker, std::move(s.value)); break;
    case Settlement::Kind::erred: s.future->set_erred(s.type, s.message); break;
    case Settlement::Kind::cancelled: s.future->set_cancelled(); break;
    case Settlement::Kind::lost: s.future->set_lost(s.message); break;
    case Settlement::Kind::retried: s.future->set_pending(); break;
  }
}

void apply(std::vector<Settlement>& settlements) {
  for (auto& s : settlements) apply(s);
  settlements.clear();  // may drop the last reference to a future: its release is queued
}

std::shared_ptr<FutureState> ClientCore::live_future(const std::string& key) const {
  auto it = futures_.find(key);
  return it == futures_.end() ? nullptr : it->second.lock();
}

FutureHandle ClientCore::find(const std::string& key) const { return live_future(key); }

FutureHandle ClientCore::future_for(const std::string& key, bool& fresh, const std::function<FutureHandle()>& make) {
  auto& slot = futures_[key];
  if (auto existing = slot.lock()) {
    std::lock_guard lock(existing->mutex);
    if (existing->status != FutureStatus::cancelled) {
      fresh = false;
      return existing;
    }
  }
  fresh = true;
  auto f = make();
  f->epoch = cancels_queued_;
  slot = f;
  return f;
}

void ClientCore::forget(const std::string& key) {
  auto it = futures_.find(key);
  if (it != futures_.end() && it->second.expired()) futures_.erase(it);
}

std::vector<FutureHandle> ClientCore::live() const {
  std::vector<FutureHandle> out;
  out.reserve(futures_.size());
  for (const auto& [key, weak] : futures_)
    if (auto f = weak.lock()) out.push_back(std::move(f));
  return out;
}

std::vector<Settlement> ClientCore::on_keys_in_memory(std::vector<KeyInMemoryReport> reports) {
  std::vector<Settlement> out;
  for (auto& r : reports)
    if (auto f = live_future(r.key)) {
      Settlement s{std::move(f), Settlement::Kind::finished};
      s.worker = std::move(r.worker);
      s.value = std::move(r.value);
      out.push_back(std::move(s));
    }
  return out;
}

std::vector<Settlement> ClientCore::on_task_erred(std::vector<KeyErredReport> reports) {
  std::vector<Settlement> out;
  for (auto& r : reports)
    if (auto f = live_future(r.key)) {
      Settlement s{std::move(f), Settlement::Kind::erred};
      s.type = std::move(r.type);
      s.message = std::move(r.message);
      out.push_back(std::move(s));
    }
  return out;
}

std::vector<Settlement> ClientCore::on_keys_cancelled(const std::vector<std::string>& keys) {
  auto request = ++cancel_replies_;
  if (!unanswered_cancels_.empty()) unanswered_cancels_.pop_front();
  std::vector<Settlement> out;
  for (const auto& k : keys)
    if (auto f = live_future(k); f && f->epoch < request)  // made after that cancel: not concerned
      out.push_back(Settlement{std::move(f), Settlement::Kind::cancelled});
  return out;
}

std::vector<Settlement> ClientCore::on_restarted(const std::vector<std::string>& keys) {
  std::vector<Settlement> out;
  for (const auto& k : keys)
    if (auto f = live_future(k)) out.push_back(Settlement{std::move(f), Settlement::Kind::cancelled});
  // Graphs the scheduler had are gone: nothing of theirs is sent again on a re-attach.
  // (One sent after the restart reached it is not among `keys`, and stays.)
  std::unordered_set<std::string> forgotten(keys.begin(), keys.end());
  std::erase_if(graphs_, [&](const std::shared_ptr<Graph>& g) {
    return g->sent && std::all_of(g->wanted.begin(), g->wanted.end(), [&](const std::string& k) { return forgotten.count(k) > 0; });
  });
  return out;
}

std::vector<Settlement> ClientCore::on_retried(const std::vector<std::string>& keys) {
  std::vector<Settlement> out;
  for (const auto& k : keys)
    if (auto f = live_future(k)) out.push_back(Settlement{std::move(f), Settlement::Kind::retried});
  return out;
}

std::vector<Settlement> ClientCore::fail_pending(const std::string& reason) {
  std::vector<Settlement> out;
  for (auto& f : live()) {
    Settlement s{std::move(f), Settlement::Kind::lost};
    s.message = reason;
    out.push_back(std::move(s));
  }
  outbox_.clear();
  graphs_.clear();
  unanswered_cancels_.clear();
  return out;
}

void ClientCore::queue_message(OutMessage m) { outbox_.push_back(Item{Outgoing::Kind::message, std::move(m), {}, {}}); }

void ClientCore::queue_graph(OutMessage message, std::vector<TaskSpec> tasks, std::vector<std::string> wanted) {
  auto g = std::make_shared<Graph>();
  g->tasks.reserve(tasks.size());
  for (auto& t : tasks) g->tasks.push_back(std::make_shared<const TaskSpec>(std::move(t)));
  g->wanted = std::move(wanted);
  // Finished graphs are dropped once in a while, so keeping them costs O(1) per graph.
  if (graphs_.size() >= 2 * graphs_after_last_prune_ + 16) drop_finished_graphs();
  graphs_.push_back(g);
  outbox_.push_back(Item{Outgoing::Kind::message, std::move(message), {}, std::move(g)});
}

void ClientCore::queue_release(std::string key) {
  outbox_.push_back(Item{Outgoing::Kind::release, {}, {std::move(key)}, {}});
}

void ClientCore::queue_cancel(std::vector<std::string> keys) {
  ++cancels_queued_;
  unanswered_cancels_.push_back(keys);
  outbox_.push_back(Item{Outgoing::Kind::cancel, {}, std::move(keys), {}});
}

std::vector<Outgoing> ClientCore::take_outbox() {
  std::vector<Outgoing> out;
  for (auto& item : outbox_) {
    if (item.kind == Outgoing::Kind::release) {
      auto& key = item.keys.front();
      if (live_future(key)) continue;  // submitted again since: wanted again
      if (!out.empty() && out.back().kind == Outgoing::Kind::release) {
        out.back().keys.push_back(std::move(key));
        continue;
      }
    }
    if (item.kind == Outgoing::Kind::cancel) ++cancels_sent_;
    if (item.graph) item.graph->sent = true;
    Outgoing o;
    o.kind = item.kind;
    o.message = std::move(item.message);
    o.keys = std::move(item.keys);
    out.push_back(std::move(o));
  }
  outbox_.clear();
  return out;
}

bool ClientCore::pending(const Graph& g) const {
  for (const auto& k : g.wanted)
    if (auto f = live_future(k); f && f->is_pending()) return true;
  return false;
}

void ClientCore::drop_finished_graphs() {
  std::erase_if(graphs_, [&](const std::shared_ptr<Graph>& g) { return !pending(*g); });
  graphs_after_last_prune_ = graphs_.size();
}

std::vector<Outgoing> ClientCore::reattach() {
  std::vector<Outgoing> out;
  // Cancels first: one that crossed the drop must not take a key submitted again after it.
  auto sent_unanswered = cancels_sent_ - cancel_replies_;
  for (std::size_t i = 0; i < sent_unanswered && i < unanswered_cancels_.size(); ++i) {
    Outgoing o;
    o.kind = Outgoing::Kind::cancel;
    o.keys = unanswered_cancels_[i];
    out.push_back(std::move(o));
  }
  // The re-sent cancels are answered on the new connection, in the same order.
  cancels_sent_ = cancel_replies_ + out.size();
  drop_finished_graphs();
  Outgoing resubmit;
  resubmit.kind = Outgoing::Kind::resubmit;
  std::unordered_set<std::string> have;
  for (const auto& g : graphs_) {
    if (!g->sent) continue;  // still in the outbox, which follows
    for (const auto& t : g->tasks)
      if (have.insert(t->key).second) resubmit.tasks.push_back(t);
  }
  for (const auto& f : live()) {
    std::lock_guard lock(f->mutex);
    if (f->status != FutureStatus::cancelled) resubmit.keys.push_back(f->key);
  }
  if (!resubmit.keys.empty() || !resubmit.tasks.empty()) out.push_back(std::move(resubmit));
  for (auto& o : take_outbox()) out.push_back(std::move(o));
  return out;
}

}  // namespace distrib::detail
