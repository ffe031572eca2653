// Unit tests of assigning ahead in WorkerState: a task whose inputs a peer still computes
// (ComputeTask.pending) starts the moment they are pushed here (PushedData), results are
// pushed to the peers the scheduler names (PushTo -> PushData), pushes that arrive before
// their task are kept, and a push that never comes is asked for after two ticks.
// validate() runs after every event.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "worker/worker_state.hpp"

namespace distrib::detail::wrk {

// Readable statuses in failure messages (found by argument-dependent lookup).
[[maybe_unused]] static void PrintTo(TaskStatus s, std::ostream* os) { *os << to_string(s); }

namespace {

// ---- helpers ----

/// A task with one literal argument and one argument per dependency.
TaskSpecPtr make_task(const std::string& key, const std::vector<std::string>& deps = {}) {
  auto t = std::make_shared<TaskSpec>();
  t->key = key;
  t->function = "inc";
  t->args.push_back(TaskArg{encode_value(std::int32_t{1})});
  for (const auto& d : deps) t->args.push_back(TaskArg{d});
  return t;
}

Value int_value(std::int32_t v) { return encode_value(v); }
Value big_value(std::size_t n) { return Value{"bytes", Bytes::copy_of(std::string(n, 'x'))}; }

bool same_value(const Value& a, const Value& b) { return a.type == b.type && a.bytes.view() == b.bytes.view(); }

template <class T>
std::vector<T> all_of_type(const std::vector<Instruction>& ins) {
  std::vector<T> r;
  for (const auto& i : ins)
    if (auto* p = std::get_if<T>(&i)) r.push_back(*p);
  return r;
}

template <class T>
std::size_t count_of(const std::vector<Instruction>& ins) {
  return all_of_type<T>(ins).size();
}

std::vector<std::string> executed_keys(const std::vector<Instruction>& ins) {
  std::vector<std::string> keys;
  for (const auto& e : all_of_type<Execute>(ins)) keys.push_back(e.spec->key);
  return keys;
}

const std::string kPeer = "tcp://peer:1";

class WorkerPushTest : public ::testing::Test {
 protected:
  std::vector<Instruction> step(WorkerState& w, Event e) {
    auto out = w.handle(std::move(e));
    EXPECT_NO_THROW(w.validate());
    return out;
  }
  /// Assigns `spec` here, its inputs `pending` (still being computed) and `who_has`.
  std::vector<Instruction> compute(WorkerState& w, TaskSpecPtr spec, std::vector<std::string> pending = {},
                                   WhoHas who_has = {}, std::uint64_t run_id = 0) {
    return step(w, ComputeTask{std::move(spec), std::move(who_has), run_id, std::move(pending)});
  }
  std::vector<Instruction> push(WorkerState& w, const std::string& key, Value v, const std::string& from = kPeer) {
    return step(w, PushedData{from, {{key, std::move(v)}}, {}});
  }
  std::vector<Instruction> announce(WorkerState& w, const std::string& key, const std::string& from = kPeer) {
    return step(w, PushedData{from, {}, {key}});
  }
};

// ---- receiving ----

TEST_F(WorkerPushTest, PendingInputThenItsPushStartsTheTask) {
  WorkerState w(1);
  auto out = compute(w, make_task("b", {"a"}), {"a"}, {}, 7);
  EXPECT_TRUE(out.empty()) << "nothing to fetch: a is pushed here";
  EXPECT_EQ(w.status("b"), TaskStatus::waiting);
  EXPECT_EQ(w.status("a"), TaskStatus::pending);
  out = push(w, "a", int_value(5));
  auto ex = all_of_type<Execute>(out);
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].spec->key, "b");
  ASSERT_EQ(ex[0].args.size(), 2u);
  EXPECT_TRUE(same_value(ex[0].args[1], int_value(5)));
  EXPECT_EQ(w.status("a"), TaskStatus::memory);
  out = step(w, ExecuteSuccess{"b", int_value(6)});
  auto fin = all_of_type<SendTaskFinished>(out);
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_EQ(fin[0].key, "b");
  EXPECT_EQ(fin[0].run_id, 7u);
  EXPECT_FALSE(w.status("a")) << "a pushed input is dropped once its task ran";
  EXPECT_EQ(w.n_stored(), 1u);
}

TEST_F(WorkerPushTest, TaskWithOnePendingAndOneFetchedInputWaitsForBoth) {
  WorkerState w(1);
  auto out = compute(w, make_task("b", {"a", "c"}), {"a"}, {{"c", {"tcp://holder:2"}}});
  auto g = all_of_type<GatherDep>(out);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].worker, "tcp://holder:2");
  EXPECT_EQ(g[0].keys, std::vector<std::string>{"c"});
  out = push(w, "a", int_value(1));
  EXPECT_TRUE(executed_keys(out).empty()) << "c is not here yet";
  out = step(w, GatherSuccess{"tcp://holder:2", {{"c", int_value(2)}}, {}});
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"b"});
}

TEST_F(WorkerPushTest, PushArrivingBeforeItsTaskIsKeptAndUsed) {
  WorkerState w(1);
  auto out = push(w, "a", int_value(9));
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(w.status("a")) << "no task for it yet";
  EXPECT_EQ(w.n_stored(), 0u);
  out = compute(w, make_task("b", {"a"}), {"a"});
  auto ex = all_of_type<Execute>(out);
  ASSERT_EQ(ex.size(), 1u) << "the early push is the input";
  EXPECT_TRUE(same_value(ex[0].args[1], int_value(9)));
  EXPECT_EQ(count_of<GatherDep>(out), 0u);
  step(w, ExecuteSuccess{"b", int_value(10)});
  EXPECT_FALSE(w.status("a"));
  EXPECT_EQ(w.stored_bytes(), int_value(10).bytes.size());
}

TEST_F(WorkerPushTest, EarlyPushesAreBoundedOldestDropped) {
  WorkerState w(1);
  push(w, "first", int_value(1));
  for (int i = 0; i < 5000; ++i) step(w, PushedData{kPeer, {{"filler-" + std::to_string(i), int_value(i)}}, {}});
  EXPECT_EQ(w.n_stored(), 0u);
  auto out = compute(w, make_task("b", {"first"}), {"first"});
  EXPECT_TRUE(executed_keys(out).empty()) << "the oldest early push was dropped";
  EXPECT_EQ(w.status("first"), TaskStatus::pending);
  out = compute(w, make_task("c", {"filler-4999"}), {"filler-4999"});
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"c"}) << "the newest is kept";
}

TEST_F(WorkerPushTest, AnnouncedLargeResultIsFetchedFromTheSender) {
  WorkerState w(1);
  compute(w, make_task("b", {"a"}), {"a"});
  auto out = announce(w, "a");
  auto g = all_of_type<GatherDep>(out);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].worker, kPeer);
  EXPECT_EQ(g[0].keys, std::vector<std::string>{"a"});
  EXPECT_EQ(w.status("a"), TaskStatus::flight);
  out = step(w, GatherSuccess{kPeer, {{"a", big_value(100)}}, {}});
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"b"});
  EXPECT_EQ(count_of<SendTaskFinished>(out), 0u) << "a is not this worker's to report";
}

TEST_F(WorkerPushTest, EarlyAnnouncementIsFetchedWhenItsTaskArrives) {
  WorkerState w(1);
  EXPECT_TRUE(announce(w, "a").empty());
  auto out = compute(w, make_task("b", {"a"}), {"a"});
  auto g = all_of_type<GatherDep>(out);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].worker, kPeer);
  EXPECT_EQ(w.status("a"), TaskStatus::flight);
}

TEST_F(WorkerPushTest, PushCrossingAFetchInFlightIsUsedAndTheReplyIgnored) {
  WorkerState w(1);
  compute(w, make_task("b", {"a"}), {"a"});
  step(w, KeyLocations{"a", {"tcp://holder:2"}});
  ASSERT_EQ(w.status("a"), TaskStatus::flight);
  auto out = push(w, "a", int_value(3));
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"b"});
  out = step(w, GatherSuccess{"tcp://holder:2", {{"a", int_value(3)}}, {}});
  EXPECT_TRUE(out.empty());
}

TEST_F(WorkerPushTest, PushForAKeyNobodyHereWaitsForIsNotStored) {
  WorkerState w(1);
  compute(w, make_task("a"));  // this worker computes a itself
  auto out = push(w, "a", int_value(3));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(w.status("a"), TaskStatus::executing);
  EXPECT_EQ(w.n_stored(), 0u);
}

// ---- sending ----

TEST_F(WorkerPushTest, PushToBeforeTheResultPushesItWhenItIsStored) {
  WorkerState w(1);
  compute(w, make_task("a"), {}, {}, 3);
  auto out = step(w, PushTo{"a", {"tcp://t:1", "tcp://t:2"}});
  EXPECT_TRUE(out.empty());
  step(w, PushTo{"a", {"tcp://t:1"}});  // told twice: pushed once
  out = step(w, ExecuteSuccess{"a", int_value(4)});
  auto pushes = all_of_type<PushData>(out);
  ASSERT_EQ(pushes.size(), 2u);
  EXPECT_EQ(pushes[0].worker, "tcp://t:1");
  EXPECT_EQ(pushes[1].worker, "tcp://t:2");
  for (const auto& p : pushes) {
    ASSERT_EQ(p.data.size(), 1u);
    EXPECT_EQ(p.data[0].first, "a");
    EXPECT_TRUE(same_value(p.data[0].second, int_value(4)));
    EXPECT_TRUE(p.available.empty());
  }
  auto fin = all_of_type<SendTaskFinished>(out);
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_EQ(fin[0].run_id, 3u);
  EXPECT_EQ(w.status("a"), TaskStatus::memory) << "kept here too";
}

TEST_F(WorkerPushTest, PushToAfterTheResultPushesAtOnceAndOnlyOnce) {
  WorkerState w(1);
  compute(w, make_task("a"));
  step(w, ExecuteSuccess{"a", int_value(4)});
  auto out = step(w, PushTo{"a", {"tcp://t:1"}});
  auto pushes = all_of_type<PushData>(out);
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].worker, "tcp://t:1");
  ASSERT_EQ(pushes[0].data.size(), 1u);
  EXPECT_EQ(out.size(), 1u) << "no second report";
  // The result is pushed, not its target remembered: a later PushTo elsewhere pushes again.
  out = step(w, PushTo{"a", {"tcp://t:2"}});
  ASSERT_EQ(count_of<PushData>(out), 1u);
  EXPECT_EQ(all_of_type<PushData>(out)[0].worker, "tcp://t:2");
}

TEST_F(WorkerPushTest, LargeResultsAreAnnouncedNotPushed) {
  WorkerState w(1);
  compute(w, make_task("small"));
  compute(w, make_task("large"));
  step(w, PushTo{"small", {"tcp://t:1"}});
  step(w, PushTo{"large", {"tcp://t:1"}});
  auto out = step(w, ExecuteSuccess{"small", big_value(kPushResultBytes)});
  auto p = all_of_type<PushData>(out);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].data.size(), 1u) << "exactly kPushResultBytes is still pushed";
  EXPECT_TRUE(p[0].available.empty());
  out = step(w, ExecuteSuccess{"large", big_value(kPushResultBytes + 1)});
  p = all_of_type<PushData>(out);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_TRUE(p[0].data.empty());
  EXPECT_EQ(p[0].available, std::vector<std::string>{"large"});
  EXPECT_TRUE(w.get_data("large").has_value()) << "kept for the target to fetch";
}

TEST_F(WorkerPushTest, PushToForAKeyNotComputedHereIsIgnored) {
  WorkerState w(1);
  EXPECT_TRUE(step(w, PushTo{"unknown", {"tcp://t:1"}}).empty());
  compute(w, make_task("b", {"a"}), {"a"});
  // a is only awaited here, not computed: pushing it is its producer's job.
  EXPECT_TRUE(step(w, PushTo{"a", {"tcp://t:1"}}).empty());
  push(w, "a", int_value(1));
  auto out = step(w, ExecuteSuccess{"b", int_value(2)});
  EXPECT_EQ(count_of<PushData>(out), 0u);
  // A freed result is not pushed either.
  compute(w, make_task("c"));
  step(w, FreeKeys{{"c"}});
  EXPECT_TRUE(step(w, PushTo{"c", {"tcp://t:1"}}).empty());
}

// ---- a push that does not come ----

TEST_F(WorkerPushTest, PendingInputIsAskedForAfterTwoTicksThenFetchedWhereTheSchedulerSays) {
  WorkerState w(1);
  compute(w, make_task("b", {"a"}), {"a"});
  EXPECT_TRUE(step(w, Tick{}).empty());
  auto out = step(w, Tick{});
  auto md = all_of_type<SendMissingData>(out);
  ASSERT_EQ(md.size(), 1u);
  EXPECT_EQ(md[0].key, "a");
  EXPECT_EQ(md[0].worker, "") << "no peer failed: it was just never pushed";
  EXPECT_EQ(w.status("a"), TaskStatus::pending) << "still accepted if the push comes now";
  out = step(w, KeyLocations{"a", {"tcp://holder:2"}});
  auto g = all_of_type<GatherDep>(out);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].worker, "tcp://holder:2");
  EXPECT_EQ(g[0].keys, std::vector<std::string>{"a"});
  EXPECT_TRUE(step(w, Tick{}).empty()) << "fetched now: no more asking";
  EXPECT_TRUE(step(w, Tick{}).empty());
  out = step(w, GatherSuccess{"tcp://holder:2", {{"a", int_value(1)}}, {}});
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"b"});
}

TEST_F(WorkerPushTest, InputComputedHereIsNotAskedFor) {
  WorkerState w(1);
  compute(w, make_task("a"));
  compute(w, make_task("b", {"a"}), {"a"});  // a chain assigned ahead on one worker
  EXPECT_EQ(w.status("a"), TaskStatus::executing);
  step(w, Tick{});
  EXPECT_TRUE(step(w, Tick{}).empty());
  auto out = step(w, ExecuteSuccess{"a", int_value(1)});
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"b"});
  EXPECT_EQ(count_of<SendTaskFinished>(out), 1u);
}

TEST_F(WorkerPushTest, KeyLocationsWithNoHolderFailsTheWaitingTask) {
  WorkerState w(1);
  compute(w, make_task("b", {"a"}), {"a"}, {}, 5);
  auto out = step(w, KeyLocations{"a", {}});
  auto errs = all_of_type<SendTaskErred>(out);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].key, "b");
  EXPECT_EQ(errs[0].run_id, 5u);
  EXPECT_EQ(w.n_tasks(), 0u);
}

TEST_F(WorkerPushTest, ProducerAssignedHereAfterAllIsComputedNotAwaited) {
  WorkerState w(1);
  compute(w, make_task("b", {"a"}), {"a"});
  ASSERT_EQ(w.status("a"), TaskStatus::pending);
  auto out = compute(w, make_task("a"));  // its first worker died: a runs here now
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"a"});
  out = step(w, ExecuteSuccess{"a", int_value(1)});
  EXPECT_EQ(count_of<SendTaskFinished>(out), 1u);
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"b"});
}

// ---- taking back ----

TEST_F(WorkerPushTest, FreeingTheAheadTaskDropsItsPendingInput) {
  WorkerState w(1);
  compute(w, make_task("b", {"a"}), {"a"});
  auto out = step(w, FreeKeys{{"b"}});
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(w.n_tasks(), 0u);
  EXPECT_TRUE(step(w, Tick{}).empty());
  EXPECT_TRUE(step(w, Tick{}).empty()) << "nothing is awaited any more";
  // A push that crossed the free is not stored.
  push(w, "a", int_value(1));
  EXPECT_EQ(w.n_stored(), 0u);
  EXPECT_EQ(w.n_tasks(), 0u);
}

TEST_F(WorkerPushTest, FreeingTheAheadTaskDropsAFreedLocalInputItKeptWaiting) {
  WorkerState w(1);
  compute(w, make_task("x"));  // keeps the only thread busy
  compute(w, make_task("a"));
  compute(w, make_task("b", {"a"}), {"a"});
  ASSERT_EQ(w.status("a"), TaskStatus::ready);
  step(w, FreeKeys{{"a"}});
  EXPECT_EQ(w.status("a"), TaskStatus::ready) << "b still waits for it";
  step(w, FreeKeys{{"b"}});
  EXPECT_FALSE(w.status("a")) << "kept only for b, which is gone";
  EXPECT_FALSE(w.status("b"));
  auto out = step(w, ExecuteSuccess{"x", int_value(1)});
  EXPECT_TRUE(executed_keys(out).empty()) << "a is not run for nobody";
  EXPECT_EQ(w.n_tasks(), 1u);
}

TEST_F(WorkerPushTest, StealRequestIsRefusedWhileALocalTaskWaitsForTheTask) {
  WorkerState w(1);
  compute(w, make_task("x"));
  compute(w, make_task("a"), {}, {}, 4);
  compute(w, make_task("free"), {}, {}, 6);
  compute(w, make_task("b", {"a"}), {"a"});
  auto out = step(w, StealRequest{"a"});
  auto r = all_of_type<SendStealResponse>(out);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_FALSE(r[0].released);
  EXPECT_EQ(r[0].run_id, 4u);
  EXPECT_EQ(w.status("a"), TaskStatus::ready);
  // One nothing waits for is given up.
  r = all_of_type<SendStealResponse>(step(w, StealRequest{"free"}));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(r[0].released);
  EXPECT_FALSE(w.status("free"));
  // The ahead task itself has not started either, but it waits for inputs: given up.
  r = all_of_type<SendStealResponse>(step(w, StealRequest{"b"}));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(r[0].released);
  out = step(w, ExecuteSuccess{"x", int_value(1)});
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"a"});
}

TEST_F(WorkerPushTest, FailingInputFailsTheLocalTasksAssignedAheadOnIt) {
  WorkerState w(2);
  compute(w, make_task("a"), {}, {}, 1);
  compute(w, make_task("b", {"a"}), {"a"}, {}, 2);
  compute(w, make_task("c", {"b"}), {"b"}, {}, 3);
  auto out = step(w, ExecuteFailure{"a", "std::runtime_error", "boom"});
  auto errs = all_of_type<SendTaskErred>(out);
  ASSERT_EQ(errs.size(), 3u);
  EXPECT_EQ(errs[0].key, "a");
  EXPECT_EQ(errs[0].exception_type, "std::runtime_error");
  std::vector<std::string> keys;
  for (const auto& e : errs) keys.push_back(e.key);
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "b", "c"}));
  for (const auto& e : errs) {
    if (e.key == "b") {
      EXPECT_EQ(e.run_id, 2u);
    } else if (e.key == "c") {
      EXPECT_EQ(e.run_id, 3u);
    }
  }
  EXPECT_EQ(w.n_tasks(), 0u);
  EXPECT_EQ(w.n_executing(), 0u);
  EXPECT_TRUE(executed_keys(out).empty());
}

TEST_F(WorkerPushTest, SchedulerLostDropsPendingInputsAndPushTargets) {
  WorkerState w(1);
  compute(w, make_task("a"));
  step(w, PushTo{"a", {"tcp://t:1"}});
  compute(w, make_task("b", {"p"}), {"p"});
  step(w, SchedulerLost{});
  EXPECT_FALSE(w.status("b"));
  EXPECT_FALSE(w.status("p"));
  auto out = step(w, ExecuteSuccess{"a", int_value(1)});
  EXPECT_EQ(count_of<PushData>(out), 0u) << "the targets were the old life's";
}

}  // namespace
}  // namespace distrib::detail::wrk
