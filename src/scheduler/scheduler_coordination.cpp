// The scheduler's side of coordination messages: decodes calls for CoordinationState, sends
// its replies and topic events, answers timed-out waiters on a timer of its own (armed for
// the earliest deadline, never polling), and keeps published datasets' keys wanted by a
// client of the scheduler's own. None of this is journaled: a restarted scheduler has no
// queues, variables, events, leases, datasets or topics (clients asking again get fresh ones).
#include <algorithm>

#include "comm/message.hpp"
#include "core/log.hpp"
#include "scheduler/scheduler_peer.hpp"

namespace distrib::detail {

namespace {
using coord::Reply;

coord::Call decode_call(const MessageReader& mr, std::uint64_t client, std::uint64_t id,
                        proto::CoordinationCall::Reader in, coord::Clock::time_point now) {
  coord::Call c;
  c.client = client;
  c.id = id;
  // An op this scheduler does not know is answered as such (not truncated into a known one).
  const auto op = static_cast<std::uint16_t>(in.getOp());
  c.op = static_cast<coord::Op>(op < coord::kOps ? op : coord::kOps);
  c.name = in.getName();
  c.type = in.getType();
  if (in.hasValue()) c.value = mr.value(in.getValue());
  constexpr std::int64_t kLongest = std::int64_t{10} * 365 * 24 * 3600 * 1000;  // no overflow of the deadline
  if (const auto ms = in.getTimeoutMs(); ms >= 0) c.deadline = now + std::chrono::milliseconds(std::min(ms, kLongest));
  c.lease = in.getLease();
  c.limit = in.getLimit();
  c.key = in.getKey();
  c.override = in.getOverride();
  c.lock = in.getLock();
  c.wall_time = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return c;
}

proto::CoordinationFailure wire_failure(coord::Failure f) {
  return static_cast<proto::CoordinationFailure>(static_cast<std::uint16_t>(f));
}

OutMessage encode_reply(const Reply& r) {
  MessageBuilder mb;
  auto m = mb.root().initCoordination();
  m.setId(r.id);
  if (r.kind == Reply::Kind::topic_event) {
    auto t = m.initTopicEvent();
    t.setTopic(r.topic);
    t.setTime(r.events.front().time);
    mb.set_value(t.initValue(), r.events.front().value);
    return mb.finish();
  }
  auto out = m.initReply();
  switch (r.kind) {
    case Reply::Kind::done: out.setDone(); break;
    case Reply::Kind::timed_out: out.setTimedOut(); break;
    case Reply::Kind::value: mb.set_value(out.initValue(), r.value); break;
    case Reply::Kind::count: out.setCount(r.count); break;
    case Reply::Kind::flag: out.setFlag(r.flag); break;
    case Reply::Kind::dataset: {
      auto d = out.initDataset();
      d.setKey(r.key);
      d.setType(r.type);
      break;
    }
    case Reply::Kind::names: {
      auto names = out.initNames(static_cast<unsigned>(r.names.size()));
      for (unsigned i = 0; i < r.names.size(); ++i) names.set(i, r.names[i]);
      break;
    }
    case Reply::Kind::events: {
      auto events = out.initEvents(static_cast<unsigned>(r.events.size()));
      for (unsigned i = 0; i < r.events.size(); ++i) {
        events[i].setTopic(r.topic);
        events[i].setTime(r.events[i].time);
        mb.set_value(events[i].initValue(), r.events[i].value);
      }
      break;
    }
    case Reply::Kind::failed: {
      auto f = out.initFailed();
      f.setKind(wire_failure(r.failure));
      f.setMessage(r.message);
      break;
    }
    case Reply::Kind::topic_event: break;  // above
  }
  return mb.finish();
}
}  // namespace

void SchedulerServer::on_coordination(const Peer& by, MessageReader& mr, proto::Coordination::Reader m) {
  if (!m.isCall()) throw std::runtime_error("a coordination message from a client must be a call");
  const auto now = coord::Clock::now();
  auto call = decode_call(mr, by.id, m.getId(), m.getCall(), now);
  if (call.op == coord::Op::publish_dataset) call.key_known = state_.status(call.key).has_value();
  if (call.op == coord::Op::get_dataset)
    if (auto key = coordination_.dataset_key(call.name)) call.key_known = state_.status(*key).has_value();
  std::vector<Reply> replies;
  coordination_.handle(std::move(call), now, replies);
  after_coordination(replies);
}

void SchedulerServer::after_coordination(std::vector<Reply>& replies) {
  for (const auto& r : replies) send_to_client(r.client, encode_reply(r));
  // After the replies: a client that gets a dataset has its future when the key's report comes.
  for (auto& effect : coordination_.take_key_effects()) {
    switch (effect.kind) {
      case coord::KeyEffect::Kind::keep:
        if (datasets_client_ == 0) {
          datasets_client_ = next_id_++;
          handle(sched::AddClient{datasets_client_});  // no token: a restarted scheduler drops it
        }
        handle(sched::UpdateGraph{datasets_client_, {}, {effect.key}});
        break;
      case coord::KeyEffect::Kind::drop:
        if (datasets_client_ != 0) handle(sched::ReleaseKeys{datasets_client_, {effect.key}});
        break;
      case coord::KeyEffect::Kind::give:
        handle(sched::UpdateGraph{effect.client, {}, {effect.key}});
        break;
    }
  }
  arm_coordination_timer();
}

void SchedulerServer::coordination_client_left(std::uint64_t client, bool removed) {
  coordination_.connection_lost(client);
  if (!removed) return arm_coordination_timer();
  std::vector<Reply> replies;
  coordination_.client_removed(client, replies);  // its leases go to those waiting
  after_coordination(replies);
}

void SchedulerServer::arm_coordination_timer() {
  const auto next = coordination_.next_deadline();
  if (!next || stopped_ || (coordination_armed_ && *coordination_armed_ <= *next)) return;
  coordination_armed_ = *next;
  coordination_timer_.expires_at(*next);
  coordination_timer_.async_wait([this](asio::error_code ec) {
    if (ec || stopped_) return;  // cancelled: re-armed for an earlier deadline
    coordination_armed_.reset();
    std::vector<Reply> replies;
    coordination_.expire(coord::Clock::now(), replies);
    after_coordination(replies);
  });
}

}  // namespace distrib::detail
