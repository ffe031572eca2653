// CoordinationState: dispatch, waiting and answering, and the queues, variables and events.
// Locks, semaphores, datasets and topics are in coordination_leases.cpp.
#include "scheduler/coordination_state.hpp"

namespace distrib::detail::coord {

namespace {
std::string quoted(const std::string& s) { return "'" + s + "'"; }
}  // namespace

std::size_t CoordinationState::names() const {
  return queues_.size() + variables_.size() + events_.size() + locks_.size() + semaphores_.size() + datasets_.size() +
         topics_.size();
}

Reply CoordinationState::reply_to(const Call& c, Reply::Kind kind) const {
  Reply r;
  r.client = c.client;
  r.id = c.id;
  r.kind = kind;
  return r;
}

Reply CoordinationState::reply_to(const Waiter& w, Reply::Kind kind) {
  Reply r;
  r.client = w.client;
  r.id = w.id;
  r.kind = kind;
  return r;
}

void CoordinationState::answer(Reply r, std::vector<Reply>& out) {
  unindex({r.client, r.id});
  if (r.id != 0 && limits_.answers_kept > 0) {
    auto& kept = answered_[r.client];
    kept.push_back(r);
    if (kept.size() > limits_.answers_kept) kept.pop_front();
  }
  out.push_back(std::move(r));
}

void CoordinationState::fail(const Call& c, Failure f, std::string message, std::vector<Reply>& out) {
  auto r = reply_to(c, Reply::Kind::failed);
  r.failure = f;
  r.message = std::move(message);
  answer(std::move(r), out);
}

void CoordinationState::fail_waiter(const Waiter& w, Failure f, std::string message, std::vector<Reply>& out) {
  auto r = reply_to(w, Reply::Kind::failed);
  r.failure = f;
  r.message = std::move(message);
  answer(std::move(r), out);
}

void CoordinationState::enqueue(std::deque<Waiter>& q, const Call& c, Waiter w) {
  q.push_back(std::move(w));
  Where where{c.op, c.name, std::nullopt};
  if (c.deadline) where.deadline = deadlines_.emplace(*c.deadline, CallKey{c.client, c.id});
  waiting_[{c.client, c.id}] = std::move(where);
}

void CoordinationState::unindex(const CallKey& k) {
  auto it = waiting_.find(k);
  if (it == waiting_.end()) return;
  if (it->second.deadline) deadlines_.erase(*it->second.deadline);
  waiting_.erase(it);
}

void CoordinationState::remove_waiter(const CallKey& k, const Where& where) {
  auto take = [&](std::deque<Waiter>& q) {
    for (auto it = q.begin(); it != q.end(); ++it)
      if (it->client == k.first && it->id == k.second) {
        if (it->value) held_bytes_ -= it->value->bytes.size();  // a blocked put's value
        q.erase(it);
        return;
      }
  };
  switch (where.op) {
    case Op::queue_get:
    case Op::queue_put:
      if (auto q = queues_.find(where.name); q != queues_.end())
        take(where.op == Op::queue_get ? q->second.getters : q->second.putters);
      break;
    case Op::variable_get:
      if (auto v = variables_.find(where.name); v != variables_.end()) take(v->second.getters);
      break;
    case Op::event_wait:
      if (auto e = events_.find(where.name); e != events_.end()) take(e->second.waiters);
      break;
    case Op::lock_acquire:
      if (auto s = locks_.find(where.name); s != locks_.end()) take(s->second.waiters);
      break;
    case Op::semaphore_acquire:
      if (auto s = semaphores_.find(where.name); s != semaphores_.end()) take(s->second.waiters);
      break;
    default:
      break;
  }
  forget_if_idle(where.op, where.name);
}

void CoordinationState::forget_if_idle(Op op, const std::string& name) {
  switch (op) {
    case Op::queue_put:
    case Op::queue_get:
    case Op::queue_size:
      if (auto q = queues_.find(name);
          q != queues_.end() && q->second.items.empty() && q->second.getters.empty() && q->second.putters.empty())
        queues_.erase(q);
      break;
    case Op::variable_set:
    case Op::variable_get:
    case Op::variable_delete:
      if (auto v = variables_.find(name); v != variables_.end() && !v->second.value && v->second.getters.empty())
        variables_.erase(v);
      break;
    case Op::event_set:
    case Op::event_clear:
    case Op::event_wait:
    case Op::event_is_set:
      if (auto e = events_.find(name); e != events_.end() && !e->second.set && e->second.waiters.empty())
        events_.erase(e);
      break;
    case Op::lock_acquire:
    case Op::lock_release:
      if (auto s = locks_.find(name); s != locks_.end() && s->second.held.empty() && s->second.waiters.empty())
        locks_.erase(s);
      break;
    case Op::semaphore_acquire:
    case Op::semaphore_release:
      if (auto s = semaphores_.find(name); s != semaphores_.end() && s->second.held.empty() && s->second.waiters.empty())
        semaphores_.erase(s);
      break;
    case Op::subscribe_topic:
    case Op::unsubscribe_topic:
    case Op::log_event:
      if (auto t = topics_.find(name); t != topics_.end() && t->second.events.empty() && t->second.subscribers.empty())
        topics_.erase(t);
      break;
    default:
      break;
  }
}

void CoordinationState::handle(Call c, Clock::time_point now, std::vector<Reply>& out) {
  if (c.id != 0) {
    if (waiting_.count({c.client, c.id})) return;  // sent again while it waits: one answer comes
    if (auto it = answered_.find(c.client); it != answered_.end())
      for (const auto& r : it->second)
        if (r.id == c.id) return out.push_back(r);  // its answer was lost with a connection
  }
  if (static_cast<unsigned>(c.op) >= kOps) return fail(c, Failure::invalid_argument, "unknown coordination call", out);
  if (c.name.size() > limits_.max_name_length)
    return fail(c, Failure::invalid_argument,
                "a name of at most " + std::to_string(limits_.max_name_length) + " bytes, not " +
                    std::to_string(c.name.size()),
                out);
  if (c.name.empty() && c.op != Op::list_datasets)
    return fail(c, Failure::invalid_argument, "a coordination primitive needs a name", out);
  const bool may_wait = !c.deadline || *c.deadline > now;
  switch (c.op) {
    case Op::queue_put: return queue_put(c, may_wait, out);
    case Op::queue_get: return queue_get(c, may_wait, out);
    case Op::queue_size: {
      auto r = reply_to(c, Reply::Kind::count);
      if (auto q = queues_.find(c.name); q != queues_.end()) r.count = q->second.items.size();
      return answer(std::move(r), out);
    }
    case Op::variable_set: return variable_set(c, out);
    case Op::variable_get: return variable_get(c, may_wait, out);
    case Op::variable_delete: {
      if (auto v = variables_.find(c.name); v != variables_.end() && v->second.value) {
        held_bytes_ -= v->second.value->bytes.size();
        v->second.value.reset();
        forget_if_idle(c.op, c.name);
      }
      return answer(reply_to(c, Reply::Kind::done), out);
    }
    case Op::event_set:
    case Op::event_clear:
    case Op::event_wait:
    case Op::event_is_set: return event_call(c, may_wait, out);
    case Op::lock_acquire:
    case Op::semaphore_acquire: return acquire(c, may_wait, out);
    case Op::lock_release:
    case Op::semaphore_release: return release(c, out);
    case Op::lease_count: {
      auto r = reply_to(c, Reply::Kind::count);
      auto& table = c.lock ? locks_ : semaphores_;
      if (auto s = table.find(c.name); s != table.end()) r.count = s->second.held.size();
      return answer(std::move(r), out);
    }
    case Op::publish_dataset:
    case Op::get_dataset:
    case Op::list_datasets:
    case Op::unpublish_dataset: return dataset_call(c, out);
    case Op::log_event:
    case Op::subscribe_topic:
    case Op::unsubscribe_topic:
    case Op::get_events: return topic_call(c, out);
  }
}

void CoordinationState::connection_lost(ClientId client) {
  std::vector<std::pair<CallKey, Where>> mine;
  for (auto it = waiting_.lower_bound({client, 0}); it != waiting_.end() && it->first.first == client; ++it)
    mine.emplace_back(it->first, it->second);
  for (auto& [k, where] : mine) {
    unindex(k);
    remove_waiter(k, where);
  }
}

void CoordinationState::expire(Clock::time_point now, std::vector<Reply>& out) {
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    const CallKey k = deadlines_.begin()->second;
    auto it = waiting_.find(k);
    if (it == waiting_.end()) {  // cannot happen: answered waiters are unindexed
      deadlines_.erase(deadlines_.begin());
      continue;
    }
    const Where where = it->second;
    unindex(k);
    remove_waiter(k, where);
    Reply r;
    r.client = k.first;
    r.id = k.second;
    // Waits that answer yes or no say no; the others say they timed out.
    const bool yes_no = where.op == Op::event_wait || where.op == Op::lock_acquire || where.op == Op::semaphore_acquire;
    r.kind = yes_no ? Reply::Kind::flag : Reply::Kind::timed_out;
    answer(std::move(r), out);
  }
}

std::optional<Clock::time_point> CoordinationState::next_deadline() const {
  if (deadlines_.empty()) return std::nullopt;
  return deadlines_.begin()->first;
}

// ---- queues

void CoordinationState::queue_put(const Call& c, bool may_wait, std::vector<Reply>& out) {
  if (!c.value) return fail(c, Failure::invalid_argument, "a queue put without a value", out);
  if (c.limit > limits_.max_queue_items)
    return fail(c, Failure::invalid_argument,
                "queue " + quoted(c.name) + ": maxsize " + std::to_string(c.limit) + " is more than the scheduler allows (" +
                    std::to_string(limits_.max_queue_items) + ")",
                out);
  const auto bytes = c.value->bytes.size();
  auto it = queues_.find(c.name);
  if (it == queues_.end()) {
    if (!room_for_name()) return fail(c, Failure::full, "the scheduler holds as many coordination primitives as it may", out);
    it = queues_.emplace(c.name, Queue{}).first;
    it->second.maxsize = c.limit ? c.limit : limits_.max_queue_items;
  }
  auto& q = it->second;
  if (c.limit && c.limit != q.maxsize && !(q.items.empty() && q.getters.empty() && q.putters.empty()))
    return fail(c, Failure::invalid_argument,
                "queue " + quoted(c.name) + " has maxsize " + std::to_string(q.maxsize) + ", not " + std::to_string(c.limit),
                out);
  if (c.limit) q.maxsize = c.limit;
  if (!q.items.empty() && q.type != c.type)
    return fail(c, Failure::wrong_type,
                "queue " + quoted(c.name) + " holds values of type " + quoted(q.type) + ", not " + quoted(c.type), out);
  // Gets waiting for another type misused the queue: they hear so, and this value stays.
  while (!q.getters.empty() && q.getters.front().type != c.type) {
    auto w = std::move(q.getters.front());
    q.getters.pop_front();
    fail_waiter(w, Failure::wrong_type,
                "queue " + quoted(c.name) + " was given a value of type " + quoted(c.type) + ", not " + quoted(w.type), out);
  }
  q.type = c.type;
  if (!q.getters.empty()) {  // straight to the first get waiting
    auto w = std::move(q.getters.front());
    q.getters.pop_front();
    auto r = reply_to(w, Reply::Kind::value);
    r.value = *c.value;
    answer(std::move(r), out);
    return answer(reply_to(c, Reply::Kind::done), out);
  }
  if (!room_for(bytes)) {
    forget_if_idle(c.op, c.name);
    return fail(c, Failure::full,
                "the scheduler holds " + std::to_string(held_bytes_) + " bytes of coordination values, its limit is " +
                    std::to_string(limits_.max_bytes),
                out);
  }
  if (q.items.size() < q.maxsize) {
    q.items.push_back(*c.value);
    held_bytes_ += bytes;
    return answer(reply_to(c, Reply::Kind::done), out);
  }
  if (!may_wait) return answer(reply_to(c, Reply::Kind::timed_out), out);  // full; it has items, so it stays
  held_bytes_ += bytes;  // a blocked put's value counts too
  enqueue(q.putters, c, Waiter{c.client, c.id, c.type, 0, c.value});
}

void CoordinationState::admit_putters(Queue& q, std::vector<Reply>& out) {
  while (!q.putters.empty() && q.items.size() < q.maxsize) {
    auto w = std::move(q.putters.front());
    q.putters.pop_front();
    q.items.push_back(std::move(*w.value));  // its bytes were counted when it blocked
    auto r = reply_to(w, Reply::Kind::done);
    answer(std::move(r), out);
  }
}

void CoordinationState::queue_get(const Call& c, bool may_wait, std::vector<Reply>& out) {
  auto it = queues_.find(c.name);
  if (it != queues_.end()) {
    auto& q = it->second;
    const bool busy = !q.items.empty() || !q.getters.empty();
    if (busy && q.type != c.type)
      return fail(c, Failure::wrong_type,
                  "queue " + quoted(c.name) + (q.items.empty() ? " is awaited by other gets as " : " holds values of type ") +
                      quoted(q.type) + ", not " + quoted(c.type),
                  out);
    if (!q.items.empty()) {
      auto r = reply_to(c, Reply::Kind::value);
      r.value = std::move(q.items.front());
      q.items.pop_front();
      held_bytes_ -= r.value.bytes.size();
      answer(std::move(r), out);
      admit_putters(q, out);
      return forget_if_idle(c.op, c.name);
    }
  }
  if (!may_wait) return answer(reply_to(c, Reply::Kind::timed_out), out);
  if (it == queues_.end()) {
    if (!room_for_name()) return fail(c, Failure::full, "the scheduler holds as many coordination primitives as it may", out);
    if (c.limit > limits_.max_queue_items)
      return fail(c, Failure::invalid_argument,
                  "queue " + quoted(c.name) + ": maxsize " + std::to_string(c.limit) +
                      " is more than the scheduler allows (" + std::to_string(limits_.max_queue_items) + ")",
                  out);
    it = queues_.emplace(c.name, Queue{}).first;
    it->second.maxsize = c.limit ? c.limit : limits_.max_queue_items;
  }
  it->second.type = c.type;
  enqueue(it->second.getters, c, Waiter{c.client, c.id, c.type, 0, std::nullopt});
}

// ---- variables

void CoordinationState::variable_set(const Call& c, std::vector<Reply>& out) {
  if (!c.value) return fail(c, Failure::invalid_argument, "a variable set without a value", out);
  auto it = variables_.find(c.name);
  const std::uint64_t old = it != variables_.end() && it->second.value ? it->second.value->bytes.size() : 0;
  const std::uint64_t bytes = c.value->bytes.size();
  if (bytes > old && !room_for(bytes - old))
    return fail(c, Failure::full,
                "the scheduler holds " + std::to_string(held_bytes_) + " bytes of coordination values, its limit is " +
                    std::to_string(limits_.max_bytes),
                out);
  if (it == variables_.end()) {
    if (!room_for_name()) return fail(c, Failure::full, "the scheduler holds as many coordination primitives as it may", out);
    it = variables_.emplace(c.name, Variable{}).first;
  }
  auto& v = it->second;
  held_bytes_ = held_bytes_ - old + bytes;
  v.value = *c.value;
  for (auto& w : std::exchange(v.getters, {})) {
    if (w.type != c.type) {
      fail_waiter(w, Failure::wrong_type,
                  "variable " + quoted(c.name) + " was set to a value of type " + quoted(c.type) + ", not " + quoted(w.type),
                  out);
      continue;
    }
    auto r = reply_to(w, Reply::Kind::value);
    r.value = *c.value;
    answer(std::move(r), out);
  }
  answer(reply_to(c, Reply::Kind::done), out);
}

void CoordinationState::variable_get(const Call& c, bool may_wait, std::vector<Reply>& out) {
  auto it = variables_.find(c.name);
  if (it != variables_.end() && it->second.value) {
    const auto& value = *it->second.value;
    if (value.type != c.type)
      return fail(c, Failure::wrong_type,
                  "variable " + quoted(c.name) + " holds a value of type " + quoted(value.type) + ", not " + quoted(c.type),
                  out);
    auto r = reply_to(c, Reply::Kind::value);
    r.value = value;
    return answer(std::move(r), out);
  }
  if (!may_wait) return answer(reply_to(c, Reply::Kind::timed_out), out);
  if (it == variables_.end()) {
    if (!room_for_name()) return fail(c, Failure::full, "the scheduler holds as many coordination primitives as it may", out);
    it = variables_.emplace(c.name, Variable{}).first;
  }
  enqueue(it->second.getters, c, Waiter{c.client, c.id, c.type, 0, std::nullopt});
}

// ---- events

void CoordinationState::event_call(const Call& c, bool may_wait, std::vector<Reply>& out) {
  auto it = events_.find(c.name);
  const bool is_set = it != events_.end() && it->second.set;
  auto flag = [&](bool f) {
    auto r = reply_to(c, Reply::Kind::flag);
    r.flag = f;
    answer(std::move(r), out);
  };
  switch (c.op) {
    case Op::event_is_set: return flag(is_set);
    case Op::event_clear:
      if (it != events_.end()) it->second.set = false;
      forget_if_idle(c.op, c.name);
      return answer(reply_to(c, Reply::Kind::done), out);
    case Op::event_set: {
      if (it == events_.end()) {
        if (!room_for_name()) return fail(c, Failure::full, "the scheduler holds as many coordination primitives as it may", out);
        it = events_.emplace(c.name, EventState{}).first;
      }
      it->second.set = true;
      for (auto& w : std::exchange(it->second.waiters, {})) {
        auto r = reply_to(w, Reply::Kind::flag);
        r.flag = true;
        answer(std::move(r), out);
      }
      return answer(reply_to(c, Reply::Kind::done), out);
    }
    case Op::event_wait: {
      if (is_set) return flag(true);
      if (!may_wait) return flag(false);
      if (it == events_.end()) {
        if (!room_for_name()) return fail(c, Failure::full, "the scheduler holds as many coordination primitives as it may", out);
        it = events_.emplace(c.name, EventState{}).first;
      }
      return enqueue(it->second.waiters, c, Waiter{c.client, c.id, {}, 0, std::nullopt});
    }
    default:
      return;
  }
}

static_assert(kOps == 23, "a new Op needs a case in handle() and, if it waits, in remove_waiter()");

}  // namespace distrib::detail::coord
