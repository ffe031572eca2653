// Unit tests of the scheduler's wire adapter: messages of registered workers and clients
// become the right SchedulerState events, and actions become messages for the right
// peers, in the order the protocol needs. No sockets.
#include <gtest/gtest.h>

#include "core/task_spec.hpp"
#include "scheduler/scheduler_wire.hpp"
#include "worker/worker_wire.hpp"

namespace distrib::detail::wire {
namespace {

InMessage received(OutMessage m) { return InMessage{std::move(m.header), std::move(m.frames)}; }

std::vector<sched::Event> decode(OutMessage m, PeerKind kind, std::uint64_t id, bool* handled = nullptr) {
  auto in = received(std::move(m));
  MessageReader mr(in);
  std::vector<sched::Event> events;
  auto by_address = [](const std::string& a) -> std::optional<sched::WorkerId> {
    if (a == "tcp://w7") return 7;
    return std::nullopt;
  };
  bool ok = decode_events(mr, kind, id, by_address, events);
  if (handled) *handled = ok;
  return events;
}

TEST(SchedulerWire, FinishedAndErredReportsBecomeOneEventEachWithTheirRunIds) {
  MessageBuilder mb;
  auto list = mb.root().initTasksFinished(2);
  list[0].setKey("a");
  list[0].setType("i32");
  list[0].setNbytes(4);
  list[0].setRunId(11);
  mb.set_value(list[0].initValue(), encode_value(std::int32_t{5}));
  list[1].setKey("b");
  list[1].setRunId(12);
  auto events = decode(mb.finish(), PeerKind::worker, 3);
  ASSERT_EQ(events.size(), 2u);
  auto& a = std::get<sched::TaskFinished>(events[0]);
  EXPECT_EQ(a.worker, 3u);
  EXPECT_EQ(a.key, "a");
  EXPECT_EQ(a.run_id, 11u);
  ASSERT_TRUE(a.value.has_value());
  EXPECT_EQ(decode_value<std::int32_t>(*a.value), 5);
  EXPECT_FALSE(std::get<sched::TaskFinished>(events[1]).value.has_value());

  MessageBuilder eb;
  auto errs = eb.root().initTaskErred(1);
  errs[0].setKey("c");
  errs[0].setExceptionType("std::runtime_error");
  errs[0].setMessage("boom");
  errs[0].setRunId(13);
  events = decode(eb.finish(), PeerKind::worker, 3);
  ASSERT_EQ(events.size(), 1u);
  auto& c = std::get<sched::TaskErred>(events[0]);
  EXPECT_EQ(c.message, "boom");
  EXPECT_EQ(c.run_id, 13u);
}

TEST(SchedulerWire, ClientMessagesBecomeClientEventsAndScatteredHoldersAreLookedUp) {
  MessageBuilder mb;
  auto sc = mb.root().initScattered(1);
  sc[0].setKey("x");
  auto ws = sc[0].initWorkers(2);
  ws.set(0, "tcp://w7");
  ws.set(1, "tcp://gone");
  auto events = decode(mb.finish(), PeerKind::client, 9);
  ASSERT_EQ(events.size(), 1u);
  auto& s = std::get<sched::Scattered>(events[0]);
  EXPECT_EQ(s.client, 9u);
  ASSERT_EQ(s.keys.size(), 1u);
  EXPECT_EQ(s.keys[0].holders, std::vector<sched::WorkerId>{7});  // an unknown address is dropped

  MessageBuilder rb;
  auto rel = rb.root().initReleaseKeys(2);
  rel.set(0, "a");
  rel.set(1, "b");
  events = decode(rb.finish(), PeerKind::client, 9);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(std::get<sched::ReleaseKeys>(events[0]).keys, (std::vector<std::string>{"a", "b"}));
}

TEST(SchedulerWire, AMessageOfTheWrongRoleIsNotAnEvent) {
  MessageBuilder mb;
  mb.root().initReleaseKeys(1).set(0, "a");
  bool handled = true;
  auto events = decode(mb.finish(), PeerKind::worker, 1, &handled);  // a worker cannot release keys
  EXPECT_FALSE(handled);
  EXPECT_TRUE(events.empty());
  MessageBuilder fb;
  fb.root().initTasksFinished(1)[0].setKey("a");
  decode(fb.finish(), PeerKind::client, 1, &handled);
  EXPECT_FALSE(handled);
}

TEST(SchedulerWire, ActionsBecomeMessagesFreesFirstAndStopsWorkAtOnce) {
  auto spec = std::make_shared<TaskSpec>();
  spec->key = "k";
  spec->function = "inc";
  std::vector<sched::Action> actions;
  actions.push_back(sched::ComputeTask{1, spec, {{"dep", {"tcp://w2"}}}, 42});
  actions.push_back(sched::FreeKeys{1, {"old"}, false});
  actions.push_back(sched::FreeKeys{2, {"taken-back"}, true});
  actions.push_back(sched::KeyInMemory{5, "k", "tcp://w1", "i32", 4, std::nullopt});
  actions.push_back(sched::KeysCancelled{5, {}});
  actions.push_back(sched::ClusterChanged{2, 2});
  auto out = encode_actions(actions);
  ASSERT_EQ(out.size(), 6u);
  using To = Outgoing::To;
  // Frees (one per worker) before any compute.
  EXPECT_EQ(out[0].to, To::worker);
  EXPECT_EQ(out[1].to, To::worker);
  for (int i = 0; i < 2; ++i) {
    auto in = received(std::move(out[i].message));
    MessageReader mr(in);
    ASSERT_TRUE(mr.root().isFreeKeys());
    EXPECT_EQ(out[i].later, out[i].id == 1) << "a free of stored results may wait; one that stops work may not";
  }
  auto compute = received(std::move(out[2].message));
  MessageReader cr(compute);
  ASSERT_TRUE(cr.root().isComputeTasks());
  EXPECT_EQ(out[2].id, 1u);
  EXPECT_EQ(cr.root().getComputeTasks()[0].getRunId(), 42u);
  EXPECT_EQ(cr.root().getComputeTasks()[0].getWhoHas()[0].getWorkers()[0], "tcp://w2");
  EXPECT_EQ(out[3].to, To::client);
  EXPECT_EQ(out[4].to, To::client);  // an empty cancel reply still goes: replies pair with requests
  EXPECT_EQ(out[5].to, To::every_client);
  EXPECT_TRUE(encode_actions({}).empty());
}

TEST(SchedulerWire, RestartCancelledBecomesARestartedNoticeForThatClient) {
  std::vector<sched::Action> actions;
  actions.push_back(sched::RestartCancelled{5, {"x", "y"}});
  actions.push_back(sched::ClusterChanged{0, 0});
  auto out = encode_actions(actions);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].to, Outgoing::To::client);
  EXPECT_EQ(out[0].id, 5u);
  auto in = received(std::move(out[0].message));
  MessageReader mr(in);
  ASSERT_TRUE(mr.root().isRestarted());
  ASSERT_EQ(mr.root().getRestarted().size(), 2u);
  EXPECT_EQ(std::string(mr.root().getRestarted()[1]), "y");
  EXPECT_EQ(out[1].to, Outgoing::To::every_client);
}

TEST(SchedulerWire, PendingInputsAndPushToReachTheWorkerStateAfterTheComputes) {
  auto spec = std::make_shared<TaskSpec>();
  spec->key = "b";
  spec->function = "inc";
  spec->args.emplace_back();
  spec->args.back().v = std::string("a");
  spec->args.emplace_back();
  spec->args.back().v = std::string("c");
  std::vector<sched::Action> actions;
  // As assign() emits them: the producer's push order, then the task assigned ahead.
  actions.push_back(sched::PushTo{2, "a", {"tcp://w1", "tcp://w3"}});
  actions.push_back(sched::ComputeTask{1, spec, {{"c", {"tcp://w4"}}}, 42, {"a"}});
  actions.push_back(sched::ComputeTask{2, spec, {}, 43, {}});
  auto out = encode_actions(actions);
  ASSERT_EQ(out.size(), 3u);
  // Computes first: a producer hears where to push a key only after it was told to compute it.
  std::vector<wrk::Event> w1, w2;
  for (auto& o : out) {
    ASSERT_EQ(o.to, Outgoing::To::worker);
    EXPECT_FALSE(o.later);
    auto in = received(std::move(o.message));
    MessageReader mr(in);
    auto events = std::get<StateEvents>(read_scheduler_message(mr)).events;
    auto& into = o.id == 1 ? w1 : w2;
    into.insert(into.end(), events.begin(), events.end());
  }
  ASSERT_EQ(w1.size(), 1u);
  auto& b = std::get<wrk::ComputeTask>(w1[0]);
  EXPECT_EQ(b.spec->key, "b");
  EXPECT_EQ(b.run_id, 42u);
  EXPECT_EQ(b.pending, std::vector<std::string>{"a"});
  ASSERT_EQ(b.who_has.size(), 1u);
  EXPECT_EQ(b.who_has[0].first, "c");
  ASSERT_EQ(w2.size(), 2u);  // in the order w2 receives them: its compute, then the pushTo
  auto& plain = std::get<wrk::ComputeTask>(w2[0]);
  EXPECT_TRUE(plain.pending.empty());
  EXPECT_EQ(plain.run_id, 43u);
  auto& push = std::get<wrk::PushTo>(w2[1]);
  EXPECT_EQ(push.key, "a");
  EXPECT_EQ(push.targets, (std::vector<std::string>{"tcp://w1", "tcp://w3"}));
}

TEST(SchedulerWire, AWorkersPushFailedBecomesAPushFailedEvent) {
  auto events = decode(make_push_failed("a", "tcp://w2:5"), PeerKind::worker, 4);
  ASSERT_EQ(events.size(), 1u);
  auto& f = std::get<sched::PushFailed>(events[0]);
  EXPECT_EQ(f.worker, 4u);
  EXPECT_EQ(f.key, "a");
  EXPECT_EQ(f.target, "tcp://w2:5");
  bool handled = true;
  decode(make_push_failed("a", "tcp://w2:5"), PeerKind::client, 4, &handled);
  EXPECT_FALSE(handled) << "only workers push";
}

TEST(SchedulerWire, AHeartbeatsMemoryFiguresAndAStatusChangeBecomeEvents) {
  MessageBuilder mb;
  auto hb = mb.root().initHeartbeat();
  hb.setMemoryBytes(900);
  hb.setManagedBytes(600);
  hb.setSpilledBytes(4000);
  auto events = decode(mb.finish(), PeerKind::worker, 3);
  ASSERT_EQ(events.size(), 1u);
  auto& m = std::get<sched::WorkerMetrics>(events[0]);
  EXPECT_EQ(m.worker, 3u);
  EXPECT_EQ(m.memory_bytes, 900u);
  EXPECT_EQ(m.managed_bytes, 600u);
  EXPECT_EQ(m.spilled_bytes, 4000u);
  events = decode(make_worker_status(true, "memory 81% of the limit"), PeerKind::worker, 3);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(std::get<sched::WorkerPaused>(events[0]).paused);
  EXPECT_EQ(std::get<sched::WorkerPaused>(events[0]).worker, 3u);
  bool handled = true;
  decode(make_worker_status(true, ""), PeerKind::client, 3, &handled);
  EXPECT_FALSE(handled) << "only workers pause";
}

}  // namespace
}  // namespace distrib::detail::wire
