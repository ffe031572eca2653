// CoordinationState: locks and semaphores (leases held by clients), datasets (names for
// futures whose keys the scheduler keeps) and topics (logged events and subscribers).
#include "scheduler/coordination_state.hpp"

namespace distrib::detail::coord {

namespace {
std::string quoted(const std::string& s) { return "'" + s + "'"; }
}  // namespace

// ---- locks and semaphores

void CoordinationState::acquire(const Call& c, bool may_wait, std::vector<Reply>& out) {
  const bool lock = c.op == Op::lock_acquire;
  auto& table = lock ? locks_ : semaphores_;
  if (c.lease == 0) return fail(c, Failure::invalid_argument, "an acquire without a lease id", out);
  if (!lock && c.limit == 0)
    return fail(c, Failure::invalid_argument, "semaphore " + quoted(c.name) + ": max_leases must be at least 1", out);
  auto it = table.find(c.name);
  if (it == table.end()) {
    if (!room_for_name()) return fail(c, Failure::full, "the scheduler holds as many coordination primitives as it may", out);
    it = table.emplace(c.name, Leases{}).first;
    it->second.max = lock ? 1 : c.limit;
  }
  auto& s = it->second;
  if (!lock && s.max != c.limit)
    return fail(c, Failure::invalid_argument,
                "semaphore " + quoted(c.name) + " has max_leases " + std::to_string(s.max) + ", not " +
                    std::to_string(c.limit) + " (every Semaphore of one name must say the same)",
                out);
  auto flag = [&](bool f) {
    auto r = reply_to(c, Reply::Kind::flag);
    r.flag = f;
    answer(std::move(r), out);
  };
  if (auto h = s.held.find(c.lease); h != s.held.end()) {
    if (h->second == c.client) return flag(true);  // asked again: it has it
    return fail(c, Failure::invalid_argument, "lease id " + std::to_string(c.lease) + " is another client's", out);
  }
  if (s.held.size() < s.max && s.waiters.empty()) {  // first come, first served
    s.held.emplace(c.lease, c.client);
    return flag(true);
  }
  if (!may_wait) return flag(false);
  enqueue(s.waiters, c, Waiter{c.client, c.id, {}, c.lease, std::nullopt});
}

void CoordinationState::grant(Leases& s, std::vector<Reply>& out) {
  while (s.held.size() < s.max && !s.waiters.empty()) {
    auto w = std::move(s.waiters.front());
    s.waiters.pop_front();
    s.held.emplace(w.lease, w.client);
    auto r = reply_to(w, Reply::Kind::flag);
    r.flag = true;
    answer(std::move(r), out);
  }
}

void CoordinationState::release(const Call& c, std::vector<Reply>& out) {
  const bool lock = c.op == Op::lock_release;
  auto& table = lock ? locks_ : semaphores_;
  auto it = table.find(c.name);
  auto held = it == table.end() ? nullptr : &it->second.held;
  auto h = held ? held->find(c.lease) : std::unordered_map<std::uint64_t, ClientId>::iterator{};
  if (!held || h == held->end() || h->second != c.client)
    return fail(c, Failure::not_held,
                std::string(lock ? "lock " : "semaphore ") + quoted(c.name) + " holds no lease of this " +
                    (lock ? "Lock" : "Semaphore") +
                    " (never acquired, released already, or dropped: its client was removed or the scheduler restarted)",
                out);
  held->erase(h);
  answer(reply_to(c, Reply::Kind::done), out);
  grant(it->second, out);
  forget_if_idle(c.op, c.name);
}

void CoordinationState::client_removed(ClientId client, std::vector<Reply>& out) {
  connection_lost(client);
  for (auto* table : {&locks_, &semaphores_}) {
    std::vector<std::string> idle;
    for (auto& [name, s] : *table) {
      if (std::erase_if(s.held, [&](const auto& lease) { return lease.second == client; }) == 0) continue;
      grant(s, out);
      if (s.held.empty() && s.waiters.empty()) idle.push_back(name);
    }
    for (const auto& name : idle) table->erase(name);
  }
  std::vector<std::string> idle_topics;
  for (auto& [name, t] : topics_)
    if (t.subscribers.erase(client) && t.subscribers.empty() && t.events.empty()) idle_topics.push_back(name);
  for (const auto& name : idle_topics) topics_.erase(name);
  answered_.erase(client);
}

// ---- datasets

void CoordinationState::drop_dataset_key(const std::string& key) {
  auto it = dataset_keys_.find(key);
  if (it == dataset_keys_.end() || --it->second > 0) return;
  dataset_keys_.erase(it);
  key_effects_.push_back({KeyEffect::Kind::drop, key, 0});
}

void CoordinationState::dataset_call(const Call& c, std::vector<Reply>& out) {
  auto it = datasets_.find(c.name);
  switch (c.op) {
    case Op::publish_dataset: {
      if (c.key.empty()) return fail(c, Failure::invalid_argument, "publish_dataset of an empty future", out);
      if (!c.key_known)
        return fail(c, Failure::not_found,
                    "cannot publish dataset " + quoted(c.name) + ": the scheduler does not know key " + quoted(c.key) +
                        " (released, or never submitted)",
                    out);
      if (it != datasets_.end() && !c.override)
        return fail(c, Failure::exists,
                    "dataset " + quoted(c.name) + " already exists (publish with override = true to replace it)", out);
      if (it == datasets_.end()) {
        if (!room_for_name()) return fail(c, Failure::full, "the scheduler holds as many coordination primitives as it may", out);
        it = datasets_.emplace(c.name, Dataset{}).first;
      }
      // The new key is counted before the replaced one is let go: re-publishing a key
      // under its own name never releases it in between.
      if (++dataset_keys_[c.key] == 1) key_effects_.push_back({KeyEffect::Kind::keep, c.key, 0});
      if (!it->second.key.empty()) drop_dataset_key(it->second.key);
      it->second = Dataset{c.key, c.type};
      return answer(reply_to(c, Reply::Kind::done), out);
    }
    case Op::get_dataset: {
      if (it == datasets_.end()) return fail(c, Failure::not_found, "no dataset named " + quoted(c.name), out);
      if (it->second.type != c.type)
        return fail(c, Failure::wrong_type,
                    "dataset " + quoted(c.name) + " is a future of type " + quoted(it->second.type) + ", not " +
                        quoted(c.type),
                    out);
      if (!c.key_known)
        return fail(c, Failure::not_found,
                    "dataset " + quoted(c.name) + " names key " + quoted(it->second.key) +
                        ", which the scheduler no longer has (a client.restart() forgot it)",
                    out);
      auto r = reply_to(c, Reply::Kind::dataset);
      r.key = it->second.key;
      r.type = it->second.type;
      answer(std::move(r), out);
      key_effects_.push_back({KeyEffect::Kind::give, it->second.key, c.client});
      return;
    }
    case Op::list_datasets: {
      auto r = reply_to(c, Reply::Kind::names);
      for (const auto& [name, d] : datasets_) r.names.push_back(name);
      return answer(std::move(r), out);
    }
    case Op::unpublish_dataset: {
      if (it == datasets_.end()) return fail(c, Failure::not_found, "no dataset named " + quoted(c.name), out);
      const auto key = it->second.key;
      datasets_.erase(it);
      drop_dataset_key(key);
      return answer(reply_to(c, Reply::Kind::done), out);
    }
    default:
      return;
  }
}

// ---- topics

void CoordinationState::topic_call(const Call& c, std::vector<Reply>& out) {
  auto it = topics_.find(c.name);
  switch (c.op) {
    case Op::log_event: {
      if (!c.value) return fail(c, Failure::invalid_argument, "log_event without a message", out);
      const auto bytes = c.value->bytes.size();
      if (!room_for(bytes))
        return fail(c, Failure::full,
                    "the scheduler holds " + std::to_string(held_bytes_) + " bytes of coordination values, its limit is " +
                        std::to_string(limits_.max_bytes),
                    out);
      if (it == topics_.end()) {
        if (!room_for_name()) return fail(c, Failure::full, "the scheduler holds as many coordination primitives as it may", out);
        it = topics_.emplace(c.name, Topic{}).first;
      }
      auto& t = it->second;
      const TopicRecord record{c.wall_time, *c.value};
      for (auto client : t.subscribers) {
        Reply r;
        r.client = client;
        r.kind = Reply::Kind::topic_event;
        r.topic = c.name;
        r.events.push_back(record);
        out.push_back(std::move(r));  // not an answer: nothing to remember
      }
      t.events.push_back(record);
      held_bytes_ += bytes;
      while (t.events.size() > limits_.max_topic_events) {
        held_bytes_ -= t.events.front().value.bytes.size();
        t.events.pop_front();
      }
      forget_if_idle(c.op, c.name);
      return answer(reply_to(c, Reply::Kind::done), out);
    }
    case Op::subscribe_topic:
      if (it == topics_.end()) {
        if (!room_for_name()) return fail(c, Failure::full, "the scheduler holds as many coordination primitives as it may", out);
        it = topics_.emplace(c.name, Topic{}).first;
      }
      it->second.subscribers.insert(c.client);
      return answer(reply_to(c, Reply::Kind::done), out);
    case Op::unsubscribe_topic:
      if (it != topics_.end()) it->second.subscribers.erase(c.client);
      forget_if_idle(c.op, c.name);
      return answer(reply_to(c, Reply::Kind::done), out);
    case Op::get_events: {
      auto r = reply_to(c, Reply::Kind::events);
      r.topic = c.name;
      if (it != topics_.end()) r.events.assign(it->second.events.begin(), it->second.events.end());
      return answer(std::move(r), out);
    }
    default:
      return;
  }
}

}  // namespace distrib::detail::coord
