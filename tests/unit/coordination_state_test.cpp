// CoordinationState without sockets: queues, variables, events, locks, semaphores,
// datasets and topics, waiting and deadlines, clients that drop or leave, calls re-sent.
#include "scheduler/coordination_state.hpp"

#include <gtest/gtest.h>

namespace {

using namespace distrib::detail::coord;
using namespace std::chrono_literals;
using Kind = Reply::Kind;

distrib::Value value_of(int x) { return distrib::encode_value(x); }

struct CoordinationTest : ::testing::Test {
  CoordinationState state;
  Clock::time_point t0 = Clock::now();
  std::uint64_t next_id = 1;

  Call call(ClientId client, Op op, std::string name, std::string type = "i32") {
    Call c;
    c.client = client;
    c.id = next_id++;
    c.op = op;
    c.name = std::move(name);
    c.type = std::move(type);
    return c;
  }
  std::vector<Reply> run(Call c, Clock::time_point now) {
    std::vector<Reply> out;
    state.handle(std::move(c), now, out);
    return out;
  }
  std::vector<Reply> run(Call c) { return run(std::move(c), t0); }
  Call put(ClientId client, const std::string& name, int x, std::string type = "i32") {
    auto c = call(client, Op::queue_put, name, std::move(type));
    c.value = value_of(x);
    return c;
  }
  Call waiting(Call c, std::optional<std::chrono::milliseconds> timeout) {
    if (timeout) c.deadline = t0 + *timeout;
    return c;
  }
  static int int_of(const Reply& r) { return distrib::decode_value<int>(r.value); }
};

TEST_F(CoordinationTest, QueueIsFirstInFirstOutAndForgottenWhenEmpty) {
  ASSERT_EQ(run(put(1, "q", 10)).front().kind, Kind::done);
  ASSERT_EQ(run(put(2, "q", 20)).front().kind, Kind::done);
  auto size = run(call(1, Op::queue_size, "q"));
  EXPECT_EQ(size.front().count, 2u);
  auto a = run(call(3, Op::queue_get, "q"));
  auto b = run(call(3, Op::queue_get, "q"));
  ASSERT_EQ(a.front().kind, Kind::value);
  EXPECT_EQ(int_of(a.front()), 10);
  EXPECT_EQ(int_of(b.front()), 20);
  EXPECT_EQ(state.names(), 0u);
  EXPECT_EQ(state.held_bytes(), 0u);
}

TEST_F(CoordinationTest, GetWaitsForAPutWithoutPollingAndTimesOut) {
  auto get = waiting(call(1, Op::queue_get, "q"), std::nullopt);
  const auto get_id = get.id;
  EXPECT_TRUE(run(get).empty());  // waits
  EXPECT_EQ(state.waiting(), 1u);
  EXPECT_FALSE(state.next_deadline());  // for ever: no timer
  auto replies = run(put(2, "q", 7));
  ASSERT_EQ(replies.size(), 2u);  // the waiting get's value, then the put's done
  EXPECT_EQ(replies[0].client, 1u);
  EXPECT_EQ(replies[0].id, get_id);
  EXPECT_EQ(int_of(replies[0]), 7);
  EXPECT_EQ(replies[1].kind, Kind::done);

  EXPECT_TRUE(run(waiting(call(1, Op::queue_get, "q"), 100ms)).empty());
  ASSERT_TRUE(state.next_deadline());
  EXPECT_EQ(*state.next_deadline(), t0 + 100ms);
  std::vector<Reply> out;
  state.expire(t0 + 99ms, out);
  EXPECT_TRUE(out.empty());
  state.expire(t0 + 100ms, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, Kind::timed_out);
  EXPECT_EQ(state.waiting(), 0u);
  EXPECT_EQ(state.names(), 0u);
}

TEST_F(CoordinationTest, NoWaitGetOfAnEmptyQueueTimesOutAtOnce) {
  auto c = call(1, Op::queue_get, "q");
  c.deadline = t0;
  EXPECT_EQ(run(c).front().kind, Kind::timed_out);
}

TEST_F(CoordinationTest, QueueOfAnotherTypeIsAnErrorAndTheItemStays) {
  run(put(1, "q", 5));
  auto wrong = run(call(2, Op::queue_get, "q", "f64"));
  ASSERT_EQ(wrong.front().kind, Kind::failed);
  EXPECT_EQ(wrong.front().failure, Failure::wrong_type);
  EXPECT_NE(wrong.front().message.find("'i32'"), std::string::npos) << wrong.front().message;
  EXPECT_NE(wrong.front().message.find("'f64'"), std::string::npos) << wrong.front().message;
  auto wrong_put = run(put(2, "q", 1, "f64"));
  EXPECT_EQ(wrong_put.front().failure, Failure::wrong_type);
  EXPECT_EQ(int_of(run(call(2, Op::queue_get, "q")).front()), 5);  // still there
}

TEST_F(CoordinationTest, GetsWaitingForAnotherTypeHearSoWhenAValueComes) {
  EXPECT_TRUE(run(waiting(call(1, Op::queue_get, "q", "f64"), std::nullopt)).empty());
  auto replies = run(put(2, "q", 3));
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].client, 1u);
  EXPECT_EQ(replies[0].failure, Failure::wrong_type);
  EXPECT_EQ(replies[1].kind, Kind::done);
  EXPECT_EQ(run(call(3, Op::queue_size, "q")).front().count, 1u);
}

TEST_F(CoordinationTest, FullQueueBlocksPutsUntilAGetMakesRoom) {
  auto first = put(1, "q", 1);
  first.limit = 1;
  run(first);
  auto second = waiting(put(1, "q", 2), 1s);
  second.limit = 1;
  const auto second_id = second.id;
  EXPECT_TRUE(run(second).empty());
  auto nowait = put(1, "q", 3);
  nowait.deadline = t0;
  EXPECT_EQ(run(nowait).front().kind, Kind::timed_out);
  auto other_size = put(1, "q", 4);
  other_size.limit = 5;
  EXPECT_EQ(run(other_size).front().failure, Failure::invalid_argument);  // maxsize is the first's
  auto got = run(call(2, Op::queue_get, "q"));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(int_of(got[0]), 1);
  EXPECT_EQ(got[1].id, second_id);  // the blocked put went in
  EXPECT_EQ(got[1].kind, Kind::done);
  EXPECT_EQ(int_of(run(call(2, Op::queue_get, "q")).front()), 2);
}

TEST_F(CoordinationTest, VariableSetGetEraseAndTypes) {
  EXPECT_TRUE(run(waiting(call(1, Op::variable_get, "v"), 1s)).empty());
  EXPECT_TRUE(run(waiting(call(2, Op::variable_get, "v", "string"), 1s)).empty());
  auto set = call(3, Op::variable_set, "v");
  set.value = value_of(42);
  auto replies = run(set);
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(int_of(replies[0]), 42);
  EXPECT_EQ(replies[1].failure, Failure::wrong_type);
  EXPECT_EQ(replies[2].kind, Kind::done);
  EXPECT_EQ(int_of(run(call(1, Op::variable_get, "v")).front()), 42);  // reading does not take it
  EXPECT_EQ(run(call(1, Op::variable_get, "v", "string")).front().failure, Failure::wrong_type);
  run(call(1, Op::variable_delete, "v"));
  auto after = call(1, Op::variable_get, "v");
  after.deadline = t0;
  EXPECT_EQ(run(after).front().kind, Kind::timed_out);
  EXPECT_EQ(state.names(), 0u);
  EXPECT_EQ(state.held_bytes(), 0u);
}

TEST_F(CoordinationTest, EventReleasesEveryWaiter) {
  EXPECT_TRUE(run(waiting(call(1, Op::event_wait, "e"), 1s)).empty());
  EXPECT_TRUE(run(waiting(call(2, Op::event_wait, "e"), std::nullopt)).empty());
  EXPECT_FALSE(run(call(3, Op::event_is_set, "e")).front().flag);
  auto replies = run(call(3, Op::event_set, "e"));
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_TRUE(replies[0].flag);
  EXPECT_TRUE(replies[1].flag);
  EXPECT_TRUE(run(call(1, Op::event_wait, "e")).front().flag);  // set: at once
  run(call(3, Op::event_clear, "e"));
  EXPECT_EQ(state.names(), 0u);
  EXPECT_TRUE(run(waiting(call(1, Op::event_wait, "e"), 50ms)).empty());
  std::vector<Reply> out;
  state.expire(t0 + 50ms, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, Kind::flag);
  EXPECT_FALSE(out[0].flag);
}

TEST_F(CoordinationTest, LockIsFirstComeFirstServedAndReleasingOneNotHeldFails) {
  auto a = call(1, Op::lock_acquire, "l");
  a.lease = 11;
  EXPECT_TRUE(run(a).front().flag);
  auto b = waiting(call(2, Op::lock_acquire, "l"), std::nullopt);
  b.lease = 22;
  const auto b_id = b.id;
  EXPECT_TRUE(run(b).empty());
  auto try_c = call(3, Op::lock_acquire, "l");
  try_c.lease = 33;
  try_c.deadline = t0;
  EXPECT_FALSE(run(try_c).front().flag);
  auto wrong = call(2, Op::lock_release, "l");
  wrong.lease = 22;  // waiting, not holding
  EXPECT_EQ(run(wrong).front().failure, Failure::not_held);
  auto release = call(1, Op::lock_release, "l");
  release.lease = 11;
  auto replies = run(release);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].kind, Kind::done);
  EXPECT_EQ(replies[1].id, b_id);
  EXPECT_TRUE(replies[1].flag);
  auto count = call(3, Op::lease_count, "l");
  count.lock = true;
  EXPECT_EQ(run(count).front().count, 1u);
  auto twice = call(1, Op::lock_release, "l");
  twice.lease = 11;
  EXPECT_EQ(run(twice).front().failure, Failure::not_held);
}

TEST_F(CoordinationTest, SemaphoreLeasesOfARemovedClientGoToTheNextWaiter) {
  auto acquire = [&](ClientId client, std::uint64_t lease) {
    auto c = waiting(call(client, Op::semaphore_acquire, "s"), std::nullopt);
    c.lease = lease;
    c.limit = 2;
    return run(c);
  };
  EXPECT_TRUE(acquire(1, 1).front().flag);
  EXPECT_TRUE(acquire(2, 2).front().flag);
  EXPECT_TRUE(acquire(3, 3).empty());  // waits
  auto other_max = call(4, Op::semaphore_acquire, "s");
  other_max.lease = 4;
  other_max.limit = 3;
  EXPECT_EQ(run(other_max).front().failure, Failure::invalid_argument);
  state.connection_lost(1);  // only dropped: its lease stays
  EXPECT_EQ(run(call(4, Op::lease_count, "s")).front().count, 2u);
  std::vector<Reply> out;
  state.client_removed(1, out);  // gone for good
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].client, 3u);
  EXPECT_TRUE(out[0].flag);
}

TEST_F(CoordinationTest, WaitersOfADroppedConnectionAreForgotten) {
  EXPECT_TRUE(run(waiting(call(1, Op::queue_get, "q"), 1s)).empty());
  auto acquire = waiting(call(1, Op::lock_acquire, "l"), std::nullopt);
  acquire.lease = 5;
  auto hold = call(2, Op::lock_acquire, "l");
  hold.lease = 6;
  run(hold);
  run(acquire);
  EXPECT_EQ(state.waiting(), 2u);
  state.connection_lost(1);
  EXPECT_EQ(state.waiting(), 0u);
  EXPECT_FALSE(state.next_deadline());
  EXPECT_EQ(run(put(2, "q", 1)).size(), 1u);  // nobody to give it to: it stays
  EXPECT_EQ(run(call(2, Op::queue_size, "q")).front().count, 1u);
}

TEST_F(CoordinationTest, ACallSentAgainIsAnsweredOnce) {
  auto get = waiting(call(1, Op::queue_get, "q"), std::nullopt);
  EXPECT_TRUE(run(get).empty());
  EXPECT_TRUE(run(get).empty());  // still waiting: no second waiter
  EXPECT_EQ(state.waiting(), 1u);
  run(put(2, "q", 1));
  run(put(2, "q", 2));
  auto again = run(get);  // its answer was lost with a connection: the same answer
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(int_of(again[0]), 1);
  EXPECT_EQ(run(call(2, Op::queue_size, "q")).front().count, 1u);  // not taken twice
}

TEST_F(CoordinationTest, DatasetsKeepTheirKeysAndCheckNamesAndTypes) {
  auto publish = call(1, Op::publish_dataset, "d");
  publish.key = "triple-1";
  publish.key_known = true;
  EXPECT_EQ(run(publish).front().kind, Kind::done);
  auto effects = state.take_key_effects();
  ASSERT_EQ(effects.size(), 1u);
  EXPECT_EQ(effects[0].kind, KeyEffect::Kind::keep);
  auto again = publish;
  again.id = next_id++;
  EXPECT_EQ(run(again).front().failure, Failure::exists);
  auto get = call(2, Op::get_dataset, "d");
  get.key_known = true;
  auto reply = run(get).front();
  EXPECT_EQ(reply.kind, Kind::dataset);
  EXPECT_EQ(reply.key, "triple-1");
  effects = state.take_key_effects();
  ASSERT_EQ(effects.size(), 1u);
  EXPECT_EQ(effects[0].kind, KeyEffect::Kind::give);
  EXPECT_EQ(effects[0].client, 2u);
  auto wrong = call(2, Op::get_dataset, "d", "string");
  wrong.key_known = true;
  EXPECT_EQ(run(wrong).front().failure, Failure::wrong_type);
  EXPECT_EQ(run(call(2, Op::get_dataset, "nope")).front().failure, Failure::not_found);
  EXPECT_EQ(run(call(2, Op::list_datasets, "")).front().names, std::vector<std::string>{"d"});
  // Re-published under its own name: the key is never let go in between.
  auto replace = publish;
  replace.id = next_id++;
  replace.override = true;
  run(replace);
  EXPECT_TRUE(state.take_key_effects().empty());
  EXPECT_EQ(run(call(1, Op::unpublish_dataset, "d")).front().kind, Kind::done);
  effects = state.take_key_effects();
  ASSERT_EQ(effects.size(), 1u);
  EXPECT_EQ(effects[0].kind, KeyEffect::Kind::drop);
  EXPECT_EQ(run(call(1, Op::unpublish_dataset, "d")).front().failure, Failure::not_found);
  auto unknown_key = call(1, Op::publish_dataset, "e");
  unknown_key.key = "gone";
  EXPECT_EQ(run(unknown_key).front().failure, Failure::not_found);
}

TEST_F(CoordinationTest, TopicsKeepTheLastEventsAndTellSubscribers) {
  CoordinationState small(Limits{.max_topic_events = 2});
  std::vector<Reply> out;
  auto sub = call(9, Op::subscribe_topic, "t");
  small.handle(sub, t0, out);
  for (int i = 0; i < 3; ++i) {
    auto log = call(1, Op::log_event, "t");
    log.value = value_of(i);
    log.wall_time = 100 + i;
    small.handle(log, t0, out);
  }
  int seen = 0;
  for (const auto& r : out)
    if (r.kind == Kind::topic_event) {
      EXPECT_EQ(r.client, 9u);
      EXPECT_EQ(r.id, 0u);
      EXPECT_EQ(distrib::decode_value<int>(r.events.front().value), seen++);
    }
  EXPECT_EQ(seen, 3);
  out.clear();
  small.handle(call(1, Op::get_events, "t"), t0, out);
  ASSERT_EQ(out.front().events.size(), 2u);  // the oldest was dropped
  EXPECT_EQ(distrib::decode_value<int>(out.front().events[0].value), 1);
  EXPECT_EQ(out.front().events[1].time, 102);
  out.clear();
  small.client_removed(9, out);
  auto log = call(1, Op::log_event, "t");
  log.value = value_of(5);
  small.handle(log, t0, out);
  for (const auto& r : out) EXPECT_NE(r.kind, Kind::topic_event);  // no subscriber left
}

TEST_F(CoordinationTest, LimitsAreClearErrors) {
  CoordinationState tiny(Limits{.max_queue_items = 2, .max_bytes = 8, .max_names = 1});
  std::vector<Reply> out;
  auto big = put(1, "q", 1);
  big.limit = 3;
  tiny.handle(big, t0, out);
  EXPECT_EQ(out.back().failure, Failure::invalid_argument);
  tiny.handle(put(1, "q", 1), t0, out);
  EXPECT_EQ(out.back().kind, Kind::done);
  tiny.handle(put(1, "other", 1), t0, out);  // a second name
  EXPECT_EQ(out.back().failure, Failure::full);
  tiny.handle(put(1, "q", 2), t0, out);
  tiny.handle(put(1, "q", 3), t0, out);  // 12 bytes > 8
  EXPECT_EQ(out.back().failure, Failure::full);
  auto nameless = call(1, Op::queue_get, "");
  tiny.handle(nameless, t0, out);
  EXPECT_EQ(out.back().failure, Failure::invalid_argument);
  auto bad_op = call(1, static_cast<Op>(200), "q");
  tiny.handle(bad_op, t0, out);
  EXPECT_EQ(out.back().failure, Failure::invalid_argument);
}

}  // namespace
