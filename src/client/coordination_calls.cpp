#include "client/coordination_calls.hpp"

#include "comm/io_loop.hpp"
#include "core/log.hpp"
#include "distrib/errors.hpp"

namespace distrib::detail {

CoordinationCalls::Begun CoordinationCalls::begin(const CoordinationCall& call) {
  std::lock_guard lock(mutex_);
  if (!closed_reason_.empty()) throw CommError("the client cannot reach the cluster: " + closed_reason_);
  Begun b;
  b.id = next_id_++;
  auto& p = pending_[b.id];
  p.call = call;
  b.answer = p.promise.get_future();
  return b;
}

std::uint64_t CoordinationCalls::next_id() {
  std::lock_guard lock(mutex_);
  return next_id_++;
}

OutMessage CoordinationCalls::message(std::uint64_t id, const CoordinationCall& call) {
  MessageBuilder mb;
  auto m = mb.root().initCoordination();
  m.setId(id);
  auto c = m.initCall();
  c.setOp(static_cast<proto::CoordinationOp>(static_cast<std::uint16_t>(call.op)));
  c.setName(call.name);
  c.setType(call.type);
  if (call.value) mb.set_value(c.initValue(), *call.value);
  c.setTimeoutMs(call.timeout ? call.timeout->count() : -1);
  c.setLease(call.lease);
  c.setLimit(call.limit);
  c.setKey(call.key);
  c.setOverride(call.override);
  c.setLock(call.lock);
  return mb.finish();
}

void CoordinationCalls::abandon(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  if (auto it = pending_.find(id); it != pending_.end()) it->second.abandoned = true;
}

std::optional<CoordinationCall> CoordinationCalls::settle(std::uint64_t id, CoordinationAnswer answer) {
  std::lock_guard lock(mutex_);
  auto it = pending_.find(id);
  if (it == pending_.end()) return std::nullopt;  // answered already (a call sent twice)
  auto p = std::move(it->second);
  pending_.erase(it);
  if (!p.abandoned) {
    p.promise.set_value(std::move(answer));
    return std::nullopt;
  }
  const auto op = p.call.op;
  if (!answer.flag || (op != CoordinationOp::lock_acquire && op != CoordinationOp::semaphore_acquire)) return std::nullopt;
  CoordinationCall release{op == CoordinationOp::lock_acquire ? CoordinationOp::lock_release
                                                               : CoordinationOp::semaphore_release,
                           p.call.name};
  release.lease = p.call.lease;
  return release;
}

void CoordinationCalls::settle_error(std::uint64_t id, std::exception_ptr error) {
  std::lock_guard lock(mutex_);
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  if (!it->second.abandoned) it->second.promise.set_exception(std::move(error));
  pending_.erase(it);
}

std::vector<OutMessage> CoordinationCalls::resend(const std::function<std::uint64_t()>& fresh_id) {
  std::vector<std::pair<std::uint64_t, CoordinationCall>> calls;
  std::vector<std::string> topics;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, p] : pending_) calls.emplace_back(id, p.call);
    for (const auto& [topic, h] : handlers_) topics.push_back(topic);
  }
  std::vector<OutMessage> out;
  for (const auto& [id, call] : calls) out.push_back(message(id, call));
  for (const auto& topic : topics)
    out.push_back(message(fresh_id(), CoordinationCall{CoordinationOp::subscribe_topic, topic}));
  return out;
}

void CoordinationCalls::fail_all(const std::string& reason) {
  std::map<std::uint64_t, Pending> failed;
  {
    std::lock_guard lock(mutex_);
    if (closed_reason_.empty()) closed_reason_ = reason.empty() ? "the client is closed" : reason;
    failed.swap(pending_);
  }
  for (auto& [id, p] : failed)
    if (!p.abandoned) p.promise.set_exception(std::make_exception_ptr(CommError(reason)));
}

void CoordinationCalls::set_handler(const std::string& topic, TopicHandler handler) {
  std::lock_guard lock(mutex_);
  if (!handler) {
    handlers_.erase(topic);
    return;
  }
  handlers_[topic] = std::move(handler);
  if (!topic_thread_.joinable() && !stopping_)
    topic_thread_ = std::thread([this] {
      name_this_thread("distrib-topics");
      run_handlers();
    });
}

void CoordinationCalls::deliver(RawTopicEvent event) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || !handlers_.count(event.topic)) return;
    inbox_.push_back(std::move(event));
  }
  inbox_cv_.notify_one();
}

void CoordinationCalls::run_handlers() {
  std::unique_lock lock(mutex_);
  while (true) {
    inbox_cv_.wait(lock, [&] { return stopping_ || !inbox_.empty(); });
    if (stopping_) return;
    auto event = std::move(inbox_.front());
    inbox_.pop_front();
    auto it = handlers_.find(event.topic);
    if (it == handlers_.end()) continue;  // unsubscribed meanwhile
    auto handler = it->second;
    lock.unlock();
    try {
      handler(event);
    } catch (const std::exception& e) {
      log().warn("client: the handler of topic '{}' raised: {}", event.topic, e.what());
    }
    lock.lock();
  }
}

void CoordinationCalls::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    inbox_.clear();
  }
  inbox_cv_.notify_all();
  if (topic_thread_.joinable()) {
    if (topic_thread_.get_id() == std::this_thread::get_id()) topic_thread_.detach();  // a handler closed its client
    else topic_thread_.join();
  }
}

}  // namespace distrib::detail
