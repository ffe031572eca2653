// Unit tests of WorkerState, the worker's sans-IO state machine: events are fed in, the
// returned instructions and the stored data are checked, and validate() runs after every
// event.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "worker/worker_state.hpp"

namespace distrib::detail::wrk {

// Readable statuses in failure messages (found by argument-dependent lookup).
[[maybe_unused]] static void PrintTo(TaskStatus s, std::ostream* os) { *os << to_string(s); }

namespace {

// ---- helpers ----

struct Arg {
  // A literal value or a dependency key.
  static TaskArg lit(std::int32_t v) { return TaskArg{encode_value(v)}; }
  static TaskArg key(const std::string& k) { return TaskArg{k}; }
};

TaskSpecPtr make_task_args(const std::string& key, std::vector<TaskArg> args, std::int64_t priority = 0,
                           const std::string& function = "inc") {
  auto t = std::make_shared<TaskSpec>();
  t->key = key;
  t->function = function;
  t->priority = priority;
  t->args = std::move(args);
  return t;
}

/// A task with one literal argument and one argument per dependency.
TaskSpecPtr make_task(const std::string& key, const std::vector<std::string>& deps = {}, std::int64_t priority = 0) {
  std::vector<TaskArg> args{Arg::lit(1)};
  for (const auto& d : deps) args.push_back(Arg::key(d));
  return make_task_args(key, std::move(args), priority);
}

Value int_value(std::int32_t v) { return encode_value(v); }

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

class WorkerStateTest : public ::testing::Test {
 protected:
  std::vector<Instruction> step(WorkerState& w, Event e) {
    auto out = w.handle(std::move(e));
    EXPECT_NO_THROW(w.validate());
    return out;
  }
  std::vector<Instruction> compute(WorkerState& w, TaskSpecPtr spec, WhoHas who_has = {}) {
    return step(w, ComputeTask{std::move(spec), std::move(who_has)});
  }
  std::vector<Instruction> succeed(WorkerState& w, const std::string& key, Value v) {
    return step(w, ExecuteSuccess{key, std::move(v)});
  }
};

// ---- executing ----

TEST_F(WorkerStateTest, LiteralArgumentsAreExecutedAsGiven) {
  WorkerState w(2);
  auto spec = make_task_args("a", {Arg::lit(5), TaskArg{encode_value(std::string("hello"))}});
  auto out = compute(w, spec);
  auto ex = all_of_type<Execute>(out);
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].spec, spec);
  ASSERT_EQ(ex[0].args.size(), 2u);
  EXPECT_TRUE(same_value(ex[0].args[0], int_value(5)));
  EXPECT_EQ(decode_value<std::string>(ex[0].args[1]), "hello");
  EXPECT_EQ(count_of<GatherDep>(out), 0u);
  EXPECT_EQ(w.status("a"), TaskStatus::executing);
  EXPECT_EQ(w.n_executing(), 1u);
  EXPECT_EQ(w.n_tasks(), 1u);
}

TEST_F(WorkerStateTest, AtMostNthreadsExecuteAtOnce) {
  WorkerState w(2);
  EXPECT_EQ(executed_keys(compute(w, make_task("a"))), std::vector<std::string>{"a"});
  EXPECT_EQ(executed_keys(compute(w, make_task("b"))), std::vector<std::string>{"b"});
  auto out = compute(w, make_task("c"));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(w.status("c"), TaskStatus::ready);
  EXPECT_EQ(w.n_executing(), 2u);

  out = succeed(w, "b", int_value(2));
  EXPECT_EQ(count_of<SendTaskFinished>(out), 1u);
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"c"});
  EXPECT_EQ(w.n_executing(), 2u);

  // A failure frees a thread too.
  out = compute(w, make_task("d"));
  EXPECT_TRUE(out.empty());
  out = step(w, ExecuteFailure{"a", "std::runtime_error", "x"});
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"d"});
}

TEST_F(WorkerStateTest, SmallResultsTravelWithTheReportLargeOnesDoNot) {
  WorkerState w(1);
  compute(w, make_task("small"));
  auto fin = all_of_type<SendTaskFinished>(succeed(w, "small", int_value(7)));
  ASSERT_EQ(fin.size(), 1u);
  ASSERT_TRUE(fin[0].value.has_value());
  EXPECT_TRUE(same_value(*fin[0].value, int_value(7)));

  compute(w, make_task("large"));
  Value big{"bytes", Bytes::copy_of(std::string(kInlineResultBytes + 1, 'x'))};
  fin = all_of_type<SendTaskFinished>(succeed(w, "large", big));
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_FALSE(fin[0].value.has_value());
  EXPECT_EQ(fin[0].nbytes, kInlineResultBytes + 1);
  EXPECT_TRUE(same_value(*w.get_data("large"), big));  // kept here either way
}

TEST_F(WorkerStateTest, ZeroThreadsMeansOne) {
  WorkerState w(0);
  EXPECT_EQ(executed_keys(compute(w, make_task("a"))), std::vector<std::string>{"a"});
  EXPECT_TRUE(compute(w, make_task("b")).empty());
}

TEST_F(WorkerStateTest, HigherPriorityRunsFirst) {
  WorkerState w(1);
  EXPECT_EQ(executed_keys(compute(w, make_task("first", {}, 100))), std::vector<std::string>{"first"});
  compute(w, make_task("p5", {}, 5));
  compute(w, make_task("p1", {}, 1));
  compute(w, make_task("p3a", {}, 3));
  compute(w, make_task("p3b", {}, 3));  // same priority: submission order
  compute(w, make_task("neg", {}, -2));
  std::vector<std::string> order;
  std::string running = "first";
  for (int i = 0; i < 5; ++i) {
    auto out = succeed(w, running, int_value(i));
    auto ex = executed_keys(out);
    ASSERT_EQ(ex.size(), 1u);
    order.push_back(ex[0]);
    running = ex[0];
  }
  EXPECT_EQ(order, (std::vector<std::string>{"neg", "p1", "p3a", "p3b", "p5"}));
  EXPECT_EQ(count_of<Execute>(succeed(w, running, int_value(9))), 0u);
  EXPECT_EQ(w.n_executing(), 0u);
  EXPECT_EQ(w.n_stored(), 6u);
}

TEST_F(WorkerStateTest, ExecuteSuccessReportsAndStoresTheValue) {
  WorkerState w(1);
  compute(w, make_task("a"));
  auto v = encode_value(std::vector<double>{1.0, 2.0, 3.0});
  auto out = succeed(w, "a", v);
  auto fin = all_of_type<SendTaskFinished>(out);
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_EQ(fin[0].key, "a");
  EXPECT_EQ(fin[0].type, "vector<f64>");
  EXPECT_EQ(fin[0].nbytes, v.bytes.size());
  EXPECT_EQ(w.status("a"), TaskStatus::memory);
  auto got = w.get_data("a");
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(same_value(*got, v));
  EXPECT_EQ(decode_value<std::vector<double>>(*got), (std::vector<double>{1.0, 2.0, 3.0}));
  EXPECT_EQ(w.n_stored(), 1u);
  EXPECT_EQ(w.stored_bytes(), v.bytes.size());
  EXPECT_EQ(w.n_executing(), 0u);

  // A duplicate or unknown completion is ignored.
  EXPECT_TRUE(succeed(w, "a", int_value(1)).empty());
  EXPECT_TRUE(succeed(w, "nope", int_value(1)).empty());
  EXPECT_TRUE(same_value(*w.get_data("a"), v));
  EXPECT_EQ(w.n_executing(), 0u);
}

TEST_F(WorkerStateTest, ExecuteFailureReportsTheErrorAndKeepsNothing) {
  WorkerState w(1);
  compute(w, make_task("a"));
  auto out = step(w, ExecuteFailure{"a", "std::invalid_argument", "bad input"});
  auto errs = all_of_type<SendTaskErred>(out);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].key, "a");
  EXPECT_EQ(errs[0].exception_type, "std::invalid_argument");
  EXPECT_EQ(errs[0].message, "bad input");
  EXPECT_EQ(count_of<SendTaskFinished>(out), 0u);
  EXPECT_FALSE(w.status("a").has_value());
  EXPECT_FALSE(w.get_data("a").has_value());
  EXPECT_EQ(w.n_stored(), 0u);
  EXPECT_EQ(w.n_tasks(), 0u);
  EXPECT_EQ(w.n_executing(), 0u);
  EXPECT_TRUE(step(w, ExecuteFailure{"a", "x", "y"}).empty());
}

TEST_F(WorkerStateTest, ComputeTaskForAKeyInMemoryReportsAtOnce) {
  WorkerState w(1);
  compute(w, make_task("a"));
  succeed(w, "a", int_value(42));
  auto out = compute(w, make_task("a"));
  EXPECT_EQ(count_of<Execute>(out), 0u);
  auto fin = all_of_type<SendTaskFinished>(out);
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_EQ(fin[0].key, "a");
  EXPECT_EQ(fin[0].type, "i32");
  EXPECT_EQ(fin[0].nbytes, 4u);
  EXPECT_EQ(w.n_stored(), 1u);
}

TEST_F(WorkerStateTest, ComputeTaskForAKeyOnItsWayIsNotRunTwice) {
  WorkerState w(2);
  compute(w, make_task("a"));
  auto out = compute(w, make_task("a"));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(w.n_executing(), 1u);
  out = succeed(w, "a", int_value(1));
  EXPECT_EQ(count_of<SendTaskFinished>(out), 1u);
}

// ---- dependencies ----

TEST_F(WorkerStateTest, DependencyOnAPeerIsGatheredThenPassedAndDropped) {
  WorkerState w(1);
  auto out = compute(w, make_task("b", {"a"}), {{"a", {"tcp://peer1"}}});
  EXPECT_EQ(count_of<Execute>(out), 0u);
  auto g = all_of_type<GatherDep>(out);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].worker, "tcp://peer1");
  EXPECT_EQ(g[0].keys, std::vector<std::string>{"a"});
  EXPECT_EQ(w.status("a"), TaskStatus::flight);
  EXPECT_EQ(w.status("b"), TaskStatus::waiting);

  auto va = int_value(77);
  out = step(w, GatherSuccess{"tcp://peer1", {{"a", va}}, {}});
  EXPECT_EQ(count_of<SendTaskFinished>(out), 0u);  // a fetched input is not reported
  auto ex = all_of_type<Execute>(out);
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].spec->key, "b");
  ASSERT_EQ(ex[0].args.size(), 2u);
  EXPECT_TRUE(same_value(ex[0].args[0], int_value(1)));
  EXPECT_TRUE(same_value(ex[0].args[1], va));
  EXPECT_EQ(w.status("a"), TaskStatus::memory);
  EXPECT_TRUE(w.get_data("a").has_value());

  out = succeed(w, "b", int_value(78));
  auto fin = all_of_type<SendTaskFinished>(out);
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_EQ(fin[0].key, "b");
  EXPECT_EQ(w.n_stored(), 1u);
  EXPECT_FALSE(w.get_data("a").has_value());
  EXPECT_FALSE(w.status("a").has_value());
  EXPECT_EQ(w.stored_bytes(), 4u);
  EXPECT_EQ(w.n_tasks(), 1u);
}

TEST_F(WorkerStateTest, SharedFetchedInputIsDroppedAfterItsLastDependent) {
  WorkerState w(1);
  compute(w, make_task("b", {"a"}), {{"a", {"tcp://p"}}});
  auto out = compute(w, make_task("c", {"a"}), {{"a", {"tcp://p"}}});
  EXPECT_EQ(count_of<GatherDep>(out), 0u);  // already in flight
  out = step(w, GatherSuccess{"tcp://p", {{"a", int_value(3)}}, {}});
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"b"});  // one thread
  out = succeed(w, "b", int_value(4));
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"c"});
  EXPECT_TRUE(w.get_data("a").has_value());  // kept while c, its other dependent, runs
  out = succeed(w, "c", int_value(5));
  EXPECT_FALSE(w.get_data("a").has_value());
  EXPECT_EQ(w.n_stored(), 2u);
}

TEST_F(WorkerStateTest, LocalDependencyIsUsedWithoutFetchingAndKept) {
  WorkerState w(1);
  compute(w, make_task("a"));
  succeed(w, "a", int_value(10));
  auto out = compute(w, make_task("b", {"a"}), {{"a", {"tcp://self"}}});
  EXPECT_EQ(count_of<GatherDep>(out), 0u);
  auto ex = all_of_type<Execute>(out);
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_TRUE(same_value(ex[0].args[1], int_value(10)));
  succeed(w, "b", int_value(11));
  EXPECT_TRUE(w.get_data("a").has_value());  // the scheduler's key stays until freed
  EXPECT_EQ(w.n_stored(), 2u);
}

TEST_F(WorkerStateTest, SeveralKeysFromOnePeerAreGatheredTogether) {
  WorkerState w(1);
  auto out = compute(w, make_task("c", {"a", "b", "a"}), {{"a", {"tcp://p"}}, {"b", {"tcp://p"}}});
  auto g = all_of_type<GatherDep>(out);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(std::set<std::string>(g[0].keys.begin(), g[0].keys.end()), (std::set<std::string>{"a", "b"}));
  out = step(w, GatherSuccess{"tcp://p", {{"a", int_value(1)}, {"b", int_value(2)}}, {}});
  auto ex = all_of_type<Execute>(out);
  ASSERT_EQ(ex.size(), 1u);
  ASSERT_EQ(ex[0].args.size(), 4u);
  EXPECT_TRUE(same_value(ex[0].args[1], int_value(1)));
  EXPECT_TRUE(same_value(ex[0].args[2], int_value(2)));
  EXPECT_TRUE(same_value(ex[0].args[3], int_value(1)));
}

TEST_F(WorkerStateTest, MissingKeyIsFetchedFromTheNextPeer) {
  WorkerState w(1);
  compute(w, make_task("b", {"a"}), {{"a", {"tcp://p1", "tcp://p2"}}});
  auto out = step(w, GatherSuccess{"tcp://p1", {}, {"a"}});
  auto g = all_of_type<GatherDep>(out);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].worker, "tcp://p2");
  EXPECT_EQ(g[0].keys, std::vector<std::string>{"a"});
  EXPECT_EQ(count_of<SendTaskErred>(out), 0u);
  out = step(w, GatherSuccess{"tcp://p2", {{"a", int_value(5)}}, {}});
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"b"});
}

TEST_F(WorkerStateTest, FailedGatherTriesTheNextPeer) {
  WorkerState w(1);
  compute(w, make_task("b", {"a"}), {{"a", {"tcp://p1", "tcp://p2"}}});
  auto out = step(w, GatherFailure{"tcp://p1", {"a"}, "connection refused"});
  auto g = all_of_type<GatherDep>(out);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].worker, "tcp://p2");
  EXPECT_EQ(w.status("a"), TaskStatus::flight);
}

TEST_F(WorkerStateTest, GatherFailureWithNoOtherPeerAsksTheScheduler) {
  WorkerState w(1);
  compute(w, make_task("b", {"a"}), {{"a", {"tcp://p1"}}});
  compute(w, make_task("c", {"a"}), {{"a", {"tcp://p1"}}});
  auto out = step(w, GatherFailure{"tcp://p1", {"a"}, "connection reset"});
  auto missing = all_of_type<SendMissingData>(out);
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0].key, "a");
  EXPECT_EQ(missing[0].worker, "tcp://p1");
  EXPECT_EQ(count_of<SendTaskErred>(out), 0u);
  EXPECT_EQ(w.status("a"), TaskStatus::missing);
  // The scheduler knows no holder any more: the dependents fail.
  out = step(w, KeyLocations{"a", {}});
  auto errs = all_of_type<SendTaskErred>(out);
  ASSERT_EQ(errs.size(), 2u);
  std::set<std::string> keys;
  for (const auto& e : errs) {
    keys.insert(e.key);
    EXPECT_EQ(e.exception_type, "distrib::MissingDependency");
    EXPECT_NE(e.message.find("'a'"), std::string::npos) << e.message;
  }
  EXPECT_EQ(keys, (std::set<std::string>{"b", "c"}));
  EXPECT_EQ(count_of<Execute>(out), 0u);
  EXPECT_EQ(w.n_tasks(), 0u);
}

TEST_F(WorkerStateTest, MissingEverywhereRecoversThroughTheScheduler) {
  WorkerState w(1);
  compute(w, make_task("b", {"a"}), {{"a", {"tcp://p1"}}});
  auto out = step(w, GatherSuccess{"tcp://p1", {}, {"a"}});
  ASSERT_EQ(count_of<SendMissingData>(out), 1u);
  // The scheduler says where it lives now: fetched from there, then b runs.
  out = step(w, KeyLocations{"a", {"tcp://p2"}});
  auto g = all_of_type<GatherDep>(out);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].worker, "tcp://p2");
  out = step(w, GatherSuccess{"tcp://p2", {{"a", int_value(1)}}, {}});
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"b"});
}

TEST_F(WorkerStateTest, DependencyWithoutHoldersErrsAtOnce) {
  WorkerState w(1);
  auto out = compute(w, make_task("b", {"a"}), {});
  auto errs = all_of_type<SendTaskErred>(out);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].key, "b");
  EXPECT_EQ(errs[0].exception_type, "distrib::MissingDependency");
  EXPECT_EQ(w.n_tasks(), 0u);
  out = compute(w, make_task("c", {"a"}), {{"a", {}}});
  EXPECT_EQ(count_of<SendTaskErred>(out), 1u);
  EXPECT_EQ(w.n_tasks(), 0u);
}

TEST_F(WorkerStateTest, GathersAreLimitedToMaxConcurrent) {
  WorkerState w(4, 2);
  std::vector<std::string> peers;
  std::vector<std::string> gathered;
  for (int i = 0; i < 4; ++i) {
    std::string d = "d" + std::to_string(i), p = "tcp://p" + std::to_string(i);
    auto out = compute(w, make_task("t" + std::to_string(i), {d}), {{d, {p}}});
    for (const auto& g : all_of_type<GatherDep>(out)) gathered.push_back(g.worker);
  }
  EXPECT_EQ(gathered, (std::vector<std::string>{"tcp://p0", "tcp://p1"}));
  EXPECT_EQ(w.status("d2"), TaskStatus::fetch);
  EXPECT_EQ(w.status("d3"), TaskStatus::fetch);

  auto out = step(w, GatherSuccess{"tcp://p0", {{"d0", int_value(0)}}, {}});
  auto g = all_of_type<GatherDep>(out);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].worker, "tcp://p2");
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"t0"});

  out = step(w, GatherFailure{"tcp://p1", {"d1"}, "gone"});
  g = all_of_type<GatherDep>(out);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].worker, "tcp://p3");
  EXPECT_EQ(count_of<SendMissingData>(out), 1u);
}

TEST_F(WorkerStateTest, OneRequestPerPeerAtATime) {
  WorkerState w(2);
  auto out = compute(w, make_task("b", {"a"}), {{"a", {"tcp://p"}}});
  EXPECT_EQ(count_of<GatherDep>(out), 1u);
  out = compute(w, make_task("d", {"c"}), {{"c", {"tcp://p"}}});
  EXPECT_EQ(count_of<GatherDep>(out), 0u);  // p is busy
  EXPECT_EQ(w.status("c"), TaskStatus::fetch);
  out = step(w, GatherSuccess{"tcp://p", {{"a", int_value(1)}}, {}});
  auto g = all_of_type<GatherDep>(out);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].keys, std::vector<std::string>{"c"});
}

TEST_F(WorkerStateTest, FetchedKeyThatIsAlsoAssignedIsReportedAndKept) {
  WorkerState w(1);
  compute(w, make_task("b", {"a"}), {{"a", {"tcp://p"}}});
  auto out = compute(w, make_task("a"));  // the scheduler now wants a kept here
  EXPECT_TRUE(out.empty());
  out = step(w, GatherSuccess{"tcp://p", {{"a", int_value(1)}}, {}});
  auto fin = all_of_type<SendTaskFinished>(out);
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_EQ(fin[0].key, "a");
  succeed(w, "b", int_value(2));
  EXPECT_TRUE(w.get_data("a").has_value());
  EXPECT_EQ(w.n_stored(), 2u);
}

// ---- freeing ----

TEST_F(WorkerStateTest, FreeKeysRemovesAStoredKey) {
  WorkerState w(1);
  compute(w, make_task("a"));
  succeed(w, "a", int_value(1));
  compute(w, make_task("b"));
  succeed(w, "b", int_value(2));
  auto out = step(w, FreeKeys{{"a", "unknown"}});
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(w.get_data("a").has_value());
  EXPECT_FALSE(w.status("a").has_value());
  EXPECT_TRUE(w.get_data("b").has_value());
  EXPECT_EQ(w.n_stored(), 1u);
  EXPECT_EQ(w.stored_bytes(), 4u);
  step(w, FreeKeys{{"b"}});
  EXPECT_EQ(w.n_stored(), 0u);
  EXPECT_EQ(w.stored_bytes(), 0u);
  EXPECT_EQ(w.n_tasks(), 0u);
}

TEST_F(WorkerStateTest, FreeKeysOfAnInputInUseKeepsItUntilTheDependentRan) {
  WorkerState w(1);
  compute(w, make_task("a"));
  succeed(w, "a", int_value(1));
  compute(w, make_task("blocker"));
  compute(w, make_task("b", {"a"}));
  step(w, FreeKeys{{"a"}});
  EXPECT_TRUE(w.get_data("a").has_value());
  auto out = succeed(w, "blocker", int_value(0));
  auto ex = all_of_type<Execute>(out);
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_TRUE(same_value(ex[0].args[1], int_value(1)));
  succeed(w, "b", int_value(2));
  EXPECT_FALSE(w.get_data("a").has_value());
}

TEST_F(WorkerStateTest, FreeKeysOfAnExecutingTaskAsksItToStopAndDropsItsResult) {
  WorkerState w(1);
  auto started = all_of_type<Execute>(compute(w, make_task("a")));
  ASSERT_EQ(started.size(), 1u);
  EXPECT_FALSE(started[0].stop.stop_requested());
  compute(w, make_task("next"));
  auto out = step(w, FreeKeys{{"a"}});
  EXPECT_TRUE(started[0].stop.stop_requested()) << "the running function is not told";
  auto stops = all_of_type<StopExecution>(out);
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0].key, "a");
  EXPECT_EQ(out.size(), 1u);
  EXPECT_EQ(w.status("a"), TaskStatus::cancelled);
  EXPECT_EQ(w.n_executing(), 1u);  // the thread is still busy
  out = succeed(w, "a", int_value(1));
  EXPECT_EQ(count_of<SendTaskFinished>(out), 0u);
  EXPECT_FALSE(w.get_data("a").has_value());
  EXPECT_FALSE(w.status("a").has_value());
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"next"});

  // The same for a failure: nothing is reported.
  out = step(w, FreeKeys{{"next"}});
  EXPECT_EQ(count_of<StopExecution>(out), 1u);
  out = step(w, ExecuteFailure{"next", "E", "m"});
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(w.n_tasks(), 0u);
  EXPECT_EQ(w.n_executing(), 0u);
}

// Regression test (was a bug): ExecuteSuccess of a cancelled task calls forget() without done_with_inputs(), so an
// input fetched only for it is never dropped: after FreeKeys [b] while b runs and then
// ExecuteSuccess b, the fetched input a stays stored for ever (n_stored() == 1, n_tasks() == 1).
// (The ExecuteFailure path does drop it; see the next test.)
TEST_F(WorkerStateTest, CancelledTaskThatSucceedsDropsItsFetchedInputs) {
  WorkerState w(1);
  compute(w, make_task("b", {"a"}), {{"a", {"tcp://p"}}});
  step(w, GatherSuccess{"tcp://p", {{"a", int_value(1)}}, {}});
  ASSERT_EQ(w.status("b"), TaskStatus::executing);
  step(w, FreeKeys{{"b"}});
  EXPECT_EQ(w.status("b"), TaskStatus::cancelled);
  auto out = succeed(w, "b", int_value(2));
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(w.get_data("a").has_value()) << "the input fetched for the cancelled task is leaked";
  EXPECT_EQ(w.n_stored(), 0u);
  EXPECT_EQ(w.stored_bytes(), 0u);
  EXPECT_EQ(w.n_tasks(), 0u);
}

TEST_F(WorkerStateTest, CancelledTaskThatFailsDropsItsFetchedInputs) {
  WorkerState w(1);
  compute(w, make_task("b", {"a"}), {{"a", {"tcp://p"}}});
  step(w, GatherSuccess{"tcp://p", {{"a", int_value(1)}}, {}});
  step(w, FreeKeys{{"b"}});
  auto out = step(w, ExecuteFailure{"b", "E", "m"});
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(w.n_stored(), 0u);
  EXPECT_EQ(w.n_tasks(), 0u);
}

// The run was asked to stop, so what it returns may be partial: it runs again.
TEST_F(WorkerStateTest, CancelledTaskAssignedAgainRunsAnewOnceTheStoppedRunEnds) {
  WorkerState w(1);
  compute(w, make_task("a"));
  step(w, FreeKeys{{"a"}});
  auto out = compute(w, make_task("a"));
  EXPECT_EQ(count_of<Execute>(out), 0u);  // still running: not started twice
  EXPECT_EQ(w.status("a"), TaskStatus::executing);
  out = succeed(w, "a", int_value(1));
  EXPECT_EQ(count_of<SendTaskFinished>(out), 0u);
  EXPECT_FALSE(w.get_data("a").has_value());
  auto rerun = all_of_type<Execute>(out);
  ASSERT_EQ(rerun.size(), 1u);
  EXPECT_EQ(rerun[0].spec->key, "a");
  EXPECT_FALSE(rerun[0].stop.stop_requested()) << "the new run must get a fresh token";
  out = succeed(w, "a", int_value(2));
  auto fin = all_of_type<SendTaskFinished>(out);
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_TRUE(same_value(*w.get_data("a"), int_value(2)));
}

// A freed task that a local task still needs is not asked to stop: its result is used.
TEST_F(WorkerStateTest, CancelledTaskWithALocalDependentIsNotStopped) {
  WorkerState w(2);
  compute(w, make_task("x"));
  compute(w, make_task("y", {"x"}));
  auto out = step(w, FreeKeys{{"x"}});
  EXPECT_EQ(count_of<StopExecution>(out), 0u);
  EXPECT_EQ(w.status("x"), TaskStatus::cancelled);
  // Once y is freed too, nobody wants x: now it is asked to stop.
  out = step(w, FreeKeys{{"y"}});
  auto stops = all_of_type<StopExecution>(out);
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0].key, "x");
  out = succeed(w, "x", int_value(1));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(w.n_tasks(), 0u);
}

TEST_F(WorkerStateTest, FreeKeysOfAQueuedTaskNeverRunsIt) {
  WorkerState w(1);
  compute(w, make_task("a"));
  compute(w, make_task("b"));
  step(w, FreeKeys{{"b"}});
  EXPECT_FALSE(w.status("b").has_value());
  auto out = succeed(w, "a", int_value(1));
  EXPECT_EQ(count_of<Execute>(out), 0u);
  // Assigned again later, it runs normally (the stale queue entry is not reused).
  out = compute(w, make_task("b"));
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"b"});
}

TEST_F(WorkerStateTest, FreeKeysOfAWaitingTaskDropsItsFetchAndIgnoresTheData) {
  WorkerState w(1);
  compute(w, make_task("b", {"a"}), {{"a", {"tcp://p"}}});
  step(w, FreeKeys{{"b"}});
  EXPECT_EQ(w.n_tasks(), 0u);
  auto out = step(w, GatherSuccess{"tcp://p", {{"a", int_value(1)}}, {}});
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(w.n_stored(), 0u);
  // The peer is free again.
  out = compute(w, make_task("d", {"c"}), {{"c", {"tcp://p"}}});
  EXPECT_EQ(count_of<GatherDep>(out), 1u);
}

// A task whose input is a key this worker is still executing after a FreeKeys (status
// cancelled) gets that result when the run ends. (Before f4cc8e7 the cancelled result was
// dropped and the dependent hung with a dangling pointer to the forgotten input.)
TEST_F(WorkerStateTest, DependencyOnACancelledTaskIsStillObtained) {
  WorkerState w(2);
  compute(w, make_task("x"));
  step(w, FreeKeys{{"x"}});
  ASSERT_EQ(w.status("x"), TaskStatus::cancelled);
  auto out1 = compute(w, make_task("y", {"x"}), {{"x", {"tcp://peer"}}});
  auto out2 = step(w, ExecuteSuccess{"x", int_value(5)});
  EXPECT_EQ(count_of<SendTaskFinished>(out2), 0u);  // x is not the scheduler's here any more
  bool fetched = count_of<GatherDep>(out1) + count_of<GatherDep>(out2) > 0;
  auto ex = all_of_type<Execute>(out2);
  ASSERT_TRUE(fetched || ex.size() == 1u) << "y is stuck in status "
                                          << (w.status("y") ? to_string(*w.status("y")) : "forgotten");
  if (!fetched) {
    EXPECT_EQ(ex[0].spec->key, "y");
    EXPECT_TRUE(same_value(ex[0].args[1], int_value(5)));
    auto out3 = succeed(w, "y", int_value(6));
    EXPECT_EQ(count_of<SendTaskFinished>(out3), 1u);
    EXPECT_FALSE(w.get_data("x").has_value());  // not assigned here: dropped after use
    EXPECT_EQ(w.n_stored(), 1u);
    EXPECT_EQ(w.n_tasks(), 1u);
  }
}

// Regression test (was a bug): same set-up, but the cancelled local run of x *fails*. The scheduler holds x in memory
// on the peer it named in who_has, so y can still get x from there; instead the worker
// errs y with distrib::MissingDependency (ExecuteFailure fails every local dependent, and the
// who_has for x given with y was discarded because x already existed locally).
// Sequence: ComputeTask x; FreeKeys [x]; ComputeTask y(x) with who_has x -> [tcp://peer];
// ExecuteFailure x.  Expected: GatherDep{tcp://peer,[x]}.  Actual: SendTaskErred{y}.
TEST_F(WorkerStateTest, DependencyOnACancelledTaskThatFailsIsFetchedFromThePeer) {
  WorkerState w(2);
  compute(w, make_task("x"));
  step(w, FreeKeys{{"x"}});
  compute(w, make_task("y", {"x"}), {{"x", {"tcp://peer"}}});
  auto out = step(w, ExecuteFailure{"x", "std::bad_alloc", "out of memory"});
  EXPECT_EQ(count_of<SendTaskErred>(out), 0u) << "y is failed although x is held by tcp://peer";
  auto g = all_of_type<GatherDep>(out);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].worker, "tcp://peer");
  EXPECT_EQ(g[0].keys, std::vector<std::string>{"x"});
}

// ---- a longer mixed sequence ----

TEST_F(WorkerStateTest, ManyTasksWithSharedInputsLeaveOnlyAssignedResults) {
  WorkerState w(3, 2);
  // Ten tasks, each needing two of four remote inputs held by two peers.
  std::vector<std::string> inputs = {"i0", "i1", "i2", "i3"};
  auto holder = [](int i) { return std::string(i % 2 ? "tcp://odd" : "tcp://even"); };
  std::set<std::string> pending_gathers;
  std::vector<std::string> running;
  for (int t = 0; t < 10; ++t) {
    std::string a = inputs[t % 4], b = inputs[(t + 1) % 4];
    auto out = compute(w, make_task("t" + std::to_string(t), {a, b}),
                       {{a, {holder(t % 4)}}, {b, {holder((t + 1) % 4)}}});
    for (const auto& g : all_of_type<GatherDep>(out)) EXPECT_TRUE(pending_gathers.insert(g.worker).second);
    for (const auto& k : executed_keys(out)) running.push_back(k);
  }
  int guard = 0;
  while ((!pending_gathers.empty() || !running.empty()) && guard++ < 100) {
    std::vector<Instruction> out;
    if (!pending_gathers.empty()) {
      auto peer = *pending_gathers.begin();
      pending_gathers.erase(pending_gathers.begin());
      std::vector<std::pair<std::string, Value>> data;
      for (int i = 0; i < 4; ++i)
        if (holder(i) == peer) data.emplace_back(inputs[i], int_value(i));
      out = step(w, GatherSuccess{peer, data, {}});
    } else {
      auto k = running.front();
      running.erase(running.begin());
      out = succeed(w, k, int_value(100));
      EXPECT_EQ(count_of<SendTaskFinished>(out), 1u);
    }
    for (const auto& g : all_of_type<GatherDep>(out)) EXPECT_TRUE(pending_gathers.insert(g.worker).second);
    for (const auto& k : executed_keys(out)) running.push_back(k);
    EXPECT_LE(w.n_executing(), 3u);
  }
  EXPECT_EQ(w.n_executing(), 0u);
  EXPECT_EQ(w.n_stored(), 10u);  // the ten results, no inputs
  EXPECT_EQ(w.n_tasks(), 10u);
  for (const auto& i : inputs) EXPECT_FALSE(w.get_data(i).has_value()) << i;
  std::vector<std::string> all;
  for (int t = 0; t < 10; ++t) all.push_back("t" + std::to_string(t));
  step(w, FreeKeys{all});
  EXPECT_EQ(w.n_tasks(), 0u);
  EXPECT_EQ(w.stored_bytes(), 0u);
}

}  // namespace
}  // namespace distrib::detail::wrk

namespace distrib::detail::wrk {
namespace {

TEST(WorkerStateReview, FreeingACancelledTaskTwiceKeepsItsThreadAccounted) {
  WorkerState w(1);
  w.handle(ComputeTask{make_task("a"), {}});
  w.handle(FreeKeys{{"a"}});
  w.handle(FreeKeys{{"a"}});  // freed again while still running
  EXPECT_EQ(w.n_executing(), 1u);
  w.handle(ExecuteSuccess{"a", int_value(1), 0.1});
  EXPECT_EQ(w.n_executing(), 0u);
  auto out = w.handle(ComputeTask{make_task("b"), {}});
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"b"});
  EXPECT_NO_THROW(w.validate());
}

TEST(WorkerStateReview, ScatteredDataDoesNotOverwriteATaskBeingComputed) {
  WorkerState w(1);
  w.handle(ComputeTask{make_task("busy"), {}});
  w.handle(ComputeTask{make_task("queued"), {}});
  auto out = w.handle(StoreData{{{"queued", int_value(7)}, {"fresh", int_value(8)}}});
  EXPECT_EQ(w.status("queued"), TaskStatus::ready);  // still computed, and reported, as assigned
  EXPECT_EQ(w.status("fresh"), TaskStatus::memory);
  EXPECT_NO_THROW(w.validate());
}

}  // namespace
}  // namespace distrib::detail::wrk

namespace distrib::detail::wrk {
namespace {

// ---- assignment ids (runId) ----

class RunIdTest : public WorkerStateTest {
 protected:
  std::vector<Instruction> compute_run(WorkerState& w, TaskSpecPtr spec, std::uint64_t run_id, WhoHas who_has = {}) {
    return step(w, ComputeTask{std::move(spec), std::move(who_has), run_id});
  }
};

TEST_F(RunIdTest, ReportsEchoTheComputeTasksRunId) {
  WorkerState w(2);
  compute_run(w, make_task("a"), 7);
  compute_run(w, make_task("b"), 8);
  EXPECT_EQ(w.run_id("a"), 7u);
  auto fin = all_of_type<SendTaskFinished>(succeed(w, "a", int_value(1)));
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_EQ(fin[0].run_id, 7u);
  auto err = all_of_type<SendTaskErred>(step(w, ExecuteFailure{"b", "E", "m"}));
  ASSERT_EQ(err.size(), 1u);
  EXPECT_EQ(err[0].run_id, 8u);
}

TEST_F(RunIdTest, StealResponseCarriesTheHeldRunIdOrZero) {
  WorkerState w(1);
  compute_run(w, make_task("busy"), 1);
  compute_run(w, make_task("queued"), 5);
  auto st = all_of_type<SendStealResponse>(step(w, StealRequest{"queued"}));
  ASSERT_EQ(st.size(), 1u);
  EXPECT_TRUE(st[0].released);
  EXPECT_EQ(st[0].run_id, 5u);
  st = all_of_type<SendStealResponse>(step(w, StealRequest{"busy"}));
  ASSERT_EQ(st.size(), 1u);
  EXPECT_FALSE(st[0].released);
  EXPECT_EQ(st[0].run_id, 1u);
  st = all_of_type<SendStealResponse>(step(w, StealRequest{"unknown"}));
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].run_id, 0u);
}

TEST_F(RunIdTest, AKeyAssignedAgainTakesTheNewRunId) {
  WorkerState w(1);
  compute_run(w, make_task("a"), 3);
  succeed(w, "a", int_value(1));
  // Still held, assigned again under a new id: reported at once under that id.
  auto fin = all_of_type<SendTaskFinished>(compute_run(w, make_task("a"), 9));
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_EQ(fin[0].run_id, 9u);
  // Queued under one id, assigned again under another before it ran.
  compute_run(w, make_task("busy"), 1);
  compute_run(w, make_task("q"), 4);
  compute_run(w, make_task("q"), 6);
  auto out = succeed(w, "busy", int_value(1));
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"q"});
  fin = all_of_type<SendTaskFinished>(succeed(w, "q", int_value(2)));
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_EQ(fin[0].run_id, 6u);
}

TEST_F(RunIdTest, ReleasedWhileRunningAndReassignedReportsTheNewRunIdOfTheRerun) {
  WorkerState w(1);
  compute_run(w, make_task("a"), 1);
  step(w, FreeKeys{{"a"}});
  compute_run(w, make_task("a"), 2);
  auto out = succeed(w, "a", int_value(1));  // the stopped run: discarded, run again
  EXPECT_EQ(count_of<SendTaskFinished>(out), 0u);
  ASSERT_EQ(executed_keys(out), std::vector<std::string>{"a"});
  auto fin = all_of_type<SendTaskFinished>(succeed(w, "a", int_value(5)));
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_EQ(fin[0].run_id, 2u);
}

TEST_F(RunIdTest, MissingDependencyErrorsCarryTheRunId) {
  WorkerState w(1);
  auto err = all_of_type<SendTaskErred>(compute_run(w, make_task("b", {"gone"}), 11));
  ASSERT_EQ(err.size(), 1u);
  EXPECT_EQ(err[0].run_id, 11u);
}

TEST_F(RunIdTest, WithoutRunIdsFromTheSchedulerEverythingIsZero) {
  WorkerState w(1);
  compute(w, make_task("a"));
  auto fin = all_of_type<SendTaskFinished>(succeed(w, "a", int_value(1)));
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_EQ(fin[0].run_id, 0u);
}

// ---- a lost scheduler, a removal or closing ----

class NewLifeTest : public WorkerStateTest {};

TEST_F(NewLifeTest, SchedulerLostKeepsStoredResultsAndDropsEverythingElse) {
  WorkerState w(1);
  compute(w, make_task("done"));
  succeed(w, "done", int_value(1));
  step(w, StoreData{{{"scattered", int_value(2)}}});
  compute(w, make_task("running"));
  compute(w, make_task("queued"));
  compute(w, make_task("waiting", {"remote"}), {{"remote", {"tcp://p"}}});
  auto out = step(w, SchedulerLost{});
  auto stops = all_of_type<StopExecution>(out);
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0].key, "running");
  EXPECT_EQ(count_of<SendTaskFinished>(out) + count_of<SendTaskErred>(out), 0u);
  EXPECT_FALSE(w.status("queued").has_value());
  EXPECT_FALSE(w.status("waiting").has_value());
  EXPECT_FALSE(w.status("remote").has_value());
  EXPECT_EQ(w.status("running"), TaskStatus::cancelled);
  EXPECT_EQ(w.n_executing(), 1u);  // its thread is still busy
  auto held = w.held_keys();
  std::set<std::string> held_names;
  for (const auto& h : held) {
    held_names.insert(h.key);
    EXPECT_EQ(h.type, int_value(0).type);
    EXPECT_EQ(h.nbytes, int_value(0).bytes.size());
  }
  EXPECT_EQ(held_names, (std::set<std::string>{"done", "scattered"}));

  // The old run ends: nothing reported, the thread is free for the next life's work.
  out = succeed(w, "running", int_value(3));
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(w.status("running").has_value());
  EXPECT_EQ(w.n_executing(), 0u);
  // Late data from a fetch of the old life is ignored.
  out = step(w, GatherSuccess{"tcp://p", {{"remote", int_value(4)}}, {}});
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(w.n_stored(), 2u);
  out = compute(w, make_task("new"));
  EXPECT_EQ(executed_keys(out), std::vector<std::string>{"new"});
}

TEST_F(NewLifeTest, ForgetAllDropsEveryKeyToo) {
  WorkerState w(2);
  compute(w, make_task("done"));
  succeed(w, "done", int_value(1));
  compute(w, make_task("running", {"done"}));
  auto out = step(w, ForgetAll{});
  EXPECT_EQ(count_of<StopExecution>(out), 1u);
  EXPECT_TRUE(w.held_keys().empty());
  EXPECT_EQ(w.n_stored(), 0u);
  EXPECT_EQ(w.stored_bytes(), 0u);
  EXPECT_EQ(w.status("running"), TaskStatus::cancelled);
  out = step(w, ExecuteFailure{"running", "E", "stopped"});
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(w.n_tasks(), 0u);
}

// The new scheduler assigns a key whose old run still occupies a thread: it runs anew, its
// input fetched again (the old one was dropped with the old life).
TEST_F(NewLifeTest, AKeyOfTheOldLifeAssignedAgainRunsAnewWithItsInputs) {
  WorkerState w(1);
  compute(w, make_task("b", {"a"}), {{"a", {"tcp://p"}}});
  step(w, GatherSuccess{"tcp://p", {{"a", int_value(1)}}, {}});
  ASSERT_EQ(w.status("b"), TaskStatus::executing);
  step(w, SchedulerLost{});
  EXPECT_FALSE(w.status("a").has_value());
  auto out = step(w, ComputeTask{make_task("b", {"a"}), {{"a", {"tcp://q"}}}, 42});
  EXPECT_EQ(count_of<Execute>(out), 0u);
  out = succeed(w, "b", int_value(2));  // the old life's run
  EXPECT_EQ(count_of<SendTaskFinished>(out), 0u);
  auto g = all_of_type<GatherDep>(out);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].worker, "tcp://q");
  out = step(w, GatherSuccess{"tcp://q", {{"a", int_value(1)}}, {}});
  ASSERT_EQ(executed_keys(out), std::vector<std::string>{"b"});
  auto fin = all_of_type<SendTaskFinished>(succeed(w, "b", int_value(3)));
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_EQ(fin[0].run_id, 42u);
  EXPECT_EQ(w.n_stored(), 1u);  // b; the fetched input is dropped after use
}

}  // namespace
}  // namespace distrib::detail::wrk
