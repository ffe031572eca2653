// The client's side of the coordination primitives, datasets and topics: calls go through
// the outbox (after everything submitted before them) and wait for the scheduler's answer;
// answers and topic events come in on the I/O thread.
#include <atomic>
#include <random>

#include "client/client_impl.hpp"
#include "comm/message.hpp"
#include "core/log.hpp"

namespace distrib::detail {

namespace {
const char* op_name(CoordinationOp op) {
  switch (op) {
    case CoordinationOp::queue_put: return "Queue::put";
    case CoordinationOp::queue_get: return "Queue::get";
    case CoordinationOp::queue_size: return "Queue::qsize";
    case CoordinationOp::variable_set: return "Variable::set";
    case CoordinationOp::variable_get: return "Variable::get";
    case CoordinationOp::variable_delete: return "Variable::erase";
    case CoordinationOp::event_set: return "Event::set";
    case CoordinationOp::event_clear: return "Event::clear";
    case CoordinationOp::event_wait: return "Event::wait";
    case CoordinationOp::event_is_set: return "Event::is_set";
    case CoordinationOp::lock_acquire: return "Lock::acquire";
    case CoordinationOp::lock_release: return "Lock::release";
    case CoordinationOp::semaphore_acquire: return "Semaphore::acquire";
    case CoordinationOp::semaphore_release: return "Semaphore::release";
    case CoordinationOp::lease_count: return "lease count";
    case CoordinationOp::publish_dataset: return "Client::publish_dataset";
    case CoordinationOp::get_dataset: return "Client::get_dataset";
    case CoordinationOp::list_datasets: return "Client::list_datasets";
    case CoordinationOp::unpublish_dataset: return "Client::unpublish_dataset";
    case CoordinationOp::log_event: return "Client::log_event";
    case CoordinationOp::subscribe_topic: return "Client::subscribe_topic";
    case CoordinationOp::unsubscribe_topic: return "Client::unsubscribe_topic";
    case CoordinationOp::get_events: return "Client::get_events";
  }
  return "coordination";
}

std::exception_ptr failure(proto::CoordinationError::Reader f) {
  const std::string message = "distrib: " + std::string(f.getMessage());
  switch (f.getKind()) {
    case proto::CoordinationFailure::INVALID_ARGUMENT: return std::make_exception_ptr(std::invalid_argument(message));
    case proto::CoordinationFailure::NOT_FOUND:
    case proto::CoordinationFailure::EXISTS: return std::make_exception_ptr(KeyError(message));
    case proto::CoordinationFailure::NOT_HELD: return std::make_exception_ptr(NotHeldError(message));
    case proto::CoordinationFailure::WRONG_TYPE: return std::make_exception_ptr(DecodeError(message));
    case proto::CoordinationFailure::FULL: return std::make_exception_ptr(Error(message));
  }
  return std::make_exception_ptr(Error(message));
}

RawTopicEvent topic_event(const MessageReader& mr, proto::TopicEvent::Reader e) {
  return RawTopicEvent{e.getTopic(), e.getTime(), e.hasValue() ? mr.value(e.getValue()) : Value{}};
}

// A marker the answer carries until coordinate() turns it into TimeoutError with its context.
struct TimedOut {};
}  // namespace

void ClientImpl::on_coordination(MessageReader& mr, proto::Coordination::Reader m) {
  if (m.isTopicEvent()) return coordination_.deliver(topic_event(mr, m.getTopicEvent()));
  if (!m.isReply()) throw std::runtime_error("a coordination call from the scheduler");
  const auto id = m.getId();
  auto r = m.getReply();
  CoordinationAnswer answer;
  switch (r.which()) {
    case proto::CoordinationReply::DONE: break;
    case proto::CoordinationReply::TIMED_OUT:
      return coordination_.settle_error(id, std::make_exception_ptr(TimedOut{}));
    case proto::CoordinationReply::VALUE: answer.value = mr.value(r.getValue()); break;
    case proto::CoordinationReply::COUNT: answer.count = r.getCount(); break;
    case proto::CoordinationReply::FLAG: answer.flag = r.getFlag(); break;
    case proto::CoordinationReply::DATASET: {
      // Made here, before the key's report (which follows this answer) is read.
      bool fresh = false;
      std::lock_guard lock(mutex_);
      answer.future = future_for(r.getDataset().getKey(), fresh);
      break;
    }
    case proto::CoordinationReply::NAMES:
      for (auto n : r.getNames()) answer.names.emplace_back(n);
      break;
    case proto::CoordinationReply::EVENTS:
      for (auto e : r.getEvents()) answer.events.push_back(topic_event(mr, e));
      break;
    case proto::CoordinationReply::FAILED: return coordination_.settle_error(id, failure(r.getFailed()));
  }
  if (auto release = coordination_.settle(id, std::move(answer)))  // a lease nobody waits for any more
    post_message(CoordinationCalls::message(coordination_.next_id(), *release));
}

CoordinationAnswer ClientImpl::coordinate(CoordinationCall call) {
  check_open();
  auto begun = coordination_.begin(call);
  post_message(CoordinationCalls::message(begun.id, call));
  // The scheduler answers by the call's timeout; allow for the way there and back, and for
  // a reconnection meanwhile (the call is sent again on the new connection).
  if (call.timeout) {
    const auto wait = std::min<std::chrono::milliseconds>(*call.timeout, std::chrono::hours(24 * 365)) +
                      std::max(options_.connect_timeout, options_.reconnect_timeout);
    if (begun.answer.wait_for(wait) != std::future_status::ready) {
      coordination_.abandon(begun.id);
      throw TimeoutError(std::string("distrib::") + op_name(call.op) + " '" + call.name +
                         "': the scheduler did not answer within " + std::to_string(wait.count()) + " ms");
    }
  }
  try {
    return begun.answer.get();
  } catch (const TimedOut&) {
    throw TimeoutError(std::string("distrib::") + op_name(call.op) + " '" + call.name + "': timed out after " +
                       std::to_string(call.timeout ? call.timeout->count() : 0) + " ms");
  }
}

void ClientImpl::subscribe_topic(const std::string& topic, TopicHandler handler) {
  if (topic.empty()) throw std::invalid_argument("distrib::Client::subscribe_topic: a topic name is required");
  if (!handler) {
    coordinate({CoordinationOp::unsubscribe_topic, topic});
    coordination_.set_handler(topic, nullptr);
    return;
  }
  // The handler first: events logged right after the scheduler took the subscription find it.
  coordination_.set_handler(topic, std::move(handler));
  try {
    coordinate({CoordinationOp::subscribe_topic, topic});
  } catch (...) {
    coordination_.set_handler(topic, nullptr);
    throw;
  }
}

CoordinationAnswer coordinate(Client& client, CoordinationCall call) { return client.impl_->coordinate(std::move(call)); }

void subscribe_topic(Client& client, const std::string& topic, TopicHandler handler) {
  client.impl_->subscribe_topic(topic, std::move(handler));
}

std::uint64_t new_lease_id() {
  static const std::uint64_t base = [] {
    std::random_device rd;
    return (std::uint64_t{rd()} << 32) ^ rd();
  }();
  static std::atomic<std::uint64_t> counter{0};
  const auto id = base + (++counter) * 0x9e3779b97f4a7c15ull;  // distinct for 2^64 calls
  return id == 0 ? new_lease_id() : id;
}

void check_timeout(const char* what, const std::optional<std::chrono::milliseconds>& timeout) {
  if (timeout && timeout->count() < 0)
    throw std::invalid_argument(std::string("distrib::") + what + ": a negative timeout (" +
                                std::to_string(timeout->count()) + " ms)");
}

}  // namespace distrib::detail

namespace distrib {

std::vector<std::string> Client::list_datasets() {
  return detail::coordinate(*this, {detail::CoordinationOp::list_datasets}).names;
}

void Client::unpublish_dataset(const std::string& name) {
  detail::coordinate(*this, {detail::CoordinationOp::unpublish_dataset, name});
}

void Client::unsubscribe_topic(const std::string& topic) { detail::subscribe_topic(*this, topic, nullptr); }

}  // namespace distrib
