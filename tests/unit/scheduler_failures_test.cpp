// Unit tests of SchedulerState's failure handling: the transition table and the per-key
// story, run ids that tell a stale report from the current one, KilledWorker, and workers
// that come back holding results, and restarts (client.restart()). validate() runs after
// every event.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "scheduler/scheduler_state.hpp"

namespace distrib::detail::sched {
namespace {

TaskSpecPtr task(const std::string& key, const std::vector<std::string>& deps = {}) {
  auto t = std::make_shared<TaskSpec>();
  t->key = key;
  t->function = "inc";
  t->args.push_back(TaskArg{encode_value(std::int32_t{1})});
  for (const auto& d : deps) t->args.push_back(TaskArg{d});
  return t;
}

template <class T>
std::vector<T> of_type(const std::vector<Action>& actions) {
  std::vector<T> r;
  for (const auto& a : actions)
    if (auto* p = std::get_if<T>(&a)) r.push_back(*p);
  return r;
}

class SchedulerFailuresTest : public ::testing::Test {
 protected:
  SchedulerConfig config() {
    SchedulerConfig c;
    c.clock = [this] { return clock_; };
    return c;
  }
  double clock_ = 1000;
  SchedulerState s{config()};

  std::vector<Action> step(Event e) {
    auto out = s.handle(std::move(e));
    EXPECT_NO_THROW(s.validate());
    return out;
  }
  std::vector<Action> add_worker(WorkerId id, std::vector<HeldKey> held = {}) {
    AddWorker w{id, "w" + std::to_string(id), "tcp://w" + std::to_string(id), 1, 0, {"inc"}, {}};
    w.held = std::move(held);
    return step(std::move(w));
  }
  /// The run id of the ComputeTask for `key` among `out`, or 0.
  static std::uint64_t run_of(const std::vector<Action>& out, const std::string& key) {
    for (auto& c : of_type<ComputeTask>(out))
      if (c.spec->key == key) return c.run_id;
    return 0;
  }
};

TEST(TransitionTable, AllowsDasksLifecycleAndRefusesShortcuts) {
  using S = TaskStatus;
  EXPECT_TRUE(transition_allowed(S::released, S::waiting));
  EXPECT_TRUE(transition_allowed(S::waiting, S::processing));
  EXPECT_TRUE(transition_allowed(S::processing, S::memory));
  EXPECT_TRUE(transition_allowed(S::memory, S::released));
  EXPECT_TRUE(transition_allowed(S::processing, S::erred));
  EXPECT_FALSE(transition_allowed(S::released, S::processing));  // must wait for inputs first
  EXPECT_FALSE(transition_allowed(S::memory, S::processing));
  EXPECT_FALSE(transition_allowed(S::memory, S::erred));
  EXPECT_FALSE(transition_allowed(S::erred, S::memory));
  EXPECT_STREQ(event_name(Event(WorkerFunctions{}).index()), "worker-functions");
  EXPECT_STREQ(event_name(Event(FireAndForget{}).index()), "fire-and-forget");
  EXPECT_STREQ(event_name(Event(RetryKeys{}).index()), "retry");
  EXPECT_STREQ(event_name(Event(DropReplicas{}).index()), "drop-replicas");
  EXPECT_STREQ(event_name(Event(TaskSeceded{}).index()), "task-seceded");
  EXPECT_STREQ(event_name(std::variant_size_v<Event>), "restore");
  EXPECT_STREQ(event_name(Event(TaskFinished{}).index()), "task-finished");
}

TEST_F(SchedulerFailuresTest, StoryRecordsEachTransitionWithItsStimulusWorkerAndTime) {
  add_worker(1);
  step(AddClient{7});
  clock_ = 1001;
  step(UpdateGraph{7, {task("a")}, {"a"}});
  auto submitted = s.last_stimulus();
  clock_ = 1002;
  step(TaskFinished{1, "a", "i32", 4, 0.1});
  auto finished = s.last_stimulus();
  EXPECT_GT(finished, submitted);
  auto story = s.story("a");
  ASSERT_EQ(story.size(), 3u);
  EXPECT_EQ(story[0].from, TaskStatus::released);
  EXPECT_EQ(story[0].to, TaskStatus::waiting);
  EXPECT_EQ(story[0].stimulus, submitted);
  EXPECT_STREQ(event_name(story[0].event), "update-graph");
  EXPECT_EQ(story[1].to, TaskStatus::processing);
  EXPECT_EQ(story[1].worker, 1u);
  EXPECT_DOUBLE_EQ(story[1].time, 1001);
  EXPECT_EQ(story[2].to, TaskStatus::memory);
  EXPECT_EQ(story[2].stimulus, finished);
  EXPECT_STREQ(event_name(story[2].event), "task-finished");
  EXPECT_DOUBLE_EQ(story[2].time, 1002);
  EXPECT_EQ(s.worker_address(1), "tcp://w1");
  EXPECT_TRUE(s.story("never-seen").empty());
}

TEST_F(SchedulerFailuresTest, StoryIsBoundedPerKey) {
  SchedulerConfig c = config();
  c.story_length = 4;
  SchedulerState small(c);
  small.handle(AddClient{1});
  small.handle(UpdateGraph{1, {task("a")}, {"a"}});  // no worker yet: waiting, no-worker
  for (WorkerId w = 1; w <= 5; ++w) {              // each worker dies while running it
    small.handle(AddWorker{w, "w" + std::to_string(w), "tcp://w" + std::to_string(w), 1, 0, {"inc"}, {}});
    small.handle(RemoveWorker{w, /*safe=*/true});
  }
  auto story = small.story("a");
  ASSERT_EQ(story.size(), 4u);
  EXPECT_EQ(story.back().to, TaskStatus::no_worker);  // the newest kept, the oldest dropped
  EXPECT_NO_THROW(small.validate());
}

TEST_F(SchedulerFailuresTest, GivenStimulusIdIsKept) {
  add_worker(1);
  step(AddClient{1});
  std::vector<Action> out;
  s.handle(UpdateGraph{1, {task("a")}, {"a"}}, out, 4242);
  EXPECT_EQ(s.last_stimulus(), 4242u);
  EXPECT_EQ(s.story("a").front().stimulus, 4242u);
}

TEST_F(SchedulerFailuresTest, StaleReportOfAnEarlierRunIsNotTakenForTheNewOne) {
  add_worker(1);
  step(AddClient{1});
  auto first = run_of(step(UpdateGraph{1, {task("a")}, {"a"}}), "a");
  ASSERT_NE(first, 0u);
  step(ReleaseKeys{1, {"a"}});                         // released while running ...
  auto second = run_of(step(UpdateGraph{1, {task("a")}, {"a"}}), "a");  // ... and given again
  ASSERT_NE(second, 0u);
  EXPECT_NE(first, second);
  TaskFinished stale{1, "a", "i32", 4, 0.1};
  stale.run_id = first;
  auto out = step(stale);
  EXPECT_EQ(s.status("a"), TaskStatus::processing) << "the old run's result was taken for the new one";
  EXPECT_TRUE(of_type<FreeKeys>(out).empty()) << "freeing it would stop the new run";
  TaskErred stale_error{1, "a", "std::runtime_error", "old", first};
  step(stale_error);
  EXPECT_EQ(s.status("a"), TaskStatus::processing);
  TaskFinished current{1, "a", "i32", 4, 0.1};
  current.run_id = second;
  out = step(current);
  EXPECT_EQ(s.status("a"), TaskStatus::memory);
  EXPECT_EQ(of_type<KeyInMemory>(out).size(), 1u);
}

TEST_F(SchedulerFailuresTest, TaskThatKillsItsWorkersErrsWithKilledWorkerAndDependentsErrWithIt) {
  step(AddClient{1});
  add_worker(1);
  step(UpdateGraph{1, {task("crash"), task("after", {"crash"}), task("fine")}, {"after", "fine"}});
  // "fine" runs and finishes wherever it went; "crash" takes down every worker it lands on.
  WorkerId next = 2;
  for (int death = 1; death <= 3; ++death) {
    if (s.status("fine") == TaskStatus::processing) step(TaskFinished{s.processing_on("fine"), "fine", "i32", 4, 0.1});
    WorkerId victim = s.processing_on("crash");
    ASSERT_NE(victim, 0u) << "death " << death;
    add_worker(next++);  // the nanny brings a worker back (here: a fresh one)
    auto out = step(RemoveWorker{victim});
    if (death < 3) {
      EXPECT_NE(s.status("crash"), TaskStatus::erred) << "death " << death;
      continue;
    }
    EXPECT_EQ(s.status("crash"), TaskStatus::erred);
    EXPECT_EQ(s.status("after"), TaskStatus::erred);
    auto errors = of_type<KeyErred>(out);
    ASSERT_EQ(errors.size(), 1u);  // only "after" is wanted
    EXPECT_EQ(errors[0].key, "after");
    EXPECT_EQ(errors[0].exception_type, "distrib::KilledWorker");
    EXPECT_NE(errors[0].message.find("'crash'"), std::string::npos) << errors[0].message;
    EXPECT_NE(errors[0].message.find("tcp://w" + std::to_string(victim)), std::string::npos) << errors[0].message;
  }
  // "fine" is recomputed when its holder dies, and finishes: the rest of the graph goes on.
  ASSERT_NE(s.status("fine"), TaskStatus::erred);
  if (s.status("fine") == TaskStatus::processing) step(TaskFinished{s.processing_on("fine"), "fine", "i32", 4, 0.1});
  EXPECT_EQ(s.status("fine"), TaskStatus::memory);
  EXPECT_EQ(s.n_workers(), 1u);  // the cluster goes on
}

TEST_F(SchedulerFailuresTest, GracefulDeparturesDoNotMakeATaskSuspicious) {
  step(AddClient{1});
  add_worker(1);
  step(UpdateGraph{1, {task("a")}, {"a"}});
  for (WorkerId w = 2; w <= 6; ++w) {
    add_worker(w);
    step(RemoveWorker{s.processing_on("a"), /*safe=*/true});
  }
  EXPECT_EQ(s.status("a"), TaskStatus::processing);
}

TEST_F(SchedulerFailuresTest, AllowedFailuresIsConfigurable) {
  SchedulerConfig c = config();
  c.allowed_failures = 1;
  SchedulerState one(c);
  one.handle(AddClient{1});
  one.handle(AddWorker{1, "w1", "tcp://w1", 1, 0, {"inc"}, {}});
  one.handle(UpdateGraph{1, {task("a")}, {"a"}});
  one.handle(RemoveWorker{1});
  EXPECT_EQ(one.status("a"), TaskStatus::erred);
  EXPECT_NO_THROW(one.validate());
}

TEST_F(SchedulerFailuresTest, WorkerComingBackWithResultsRestoresThemAndFreesUnknownKeys) {
  step(AddClient{1});
  step(UpdateGraph{1, {task("a"), task("b", {"a"})}, {"b"}});  // no worker: a is no-worker
  ASSERT_EQ(s.status("a"), TaskStatus::no_worker);
  auto out = add_worker(1, {{"a", "i32", 4}, {"stranger", "i32", 4}});
  EXPECT_EQ(s.status("a"), TaskStatus::memory);
  EXPECT_EQ(s.who_has("a"), std::vector<WorkerId>{1});
  EXPECT_EQ(run_of(out, "a"), 0u) << "a held result is not computed again";
  EXPECT_NE(run_of(out, "b"), 0u) << "its dependent runs at once";
  auto frees = of_type<FreeKeys>(out);
  ASSERT_EQ(frees.size(), 1u);
  EXPECT_EQ(frees[0].keys, std::vector<std::string>{"stranger"});
  // A second worker bringing the same key adds a replica.
  add_worker(2, {{"a", "i32", 4}});
  EXPECT_EQ(s.who_has("a").size(), 2u);
}

TEST_F(SchedulerFailuresTest, HeldResultOfATaskProcessingElsewhereTakesItBack) {
  step(AddClient{1});
  add_worker(1);
  step(UpdateGraph{1, {task("a")}, {"a"}});
  ASSERT_EQ(s.processing_on("a"), 1u);
  auto out = add_worker(2, {{"a", "i32", 4}});
  EXPECT_EQ(s.status("a"), TaskStatus::memory);
  EXPECT_EQ(s.who_has("a"), std::vector<WorkerId>{2});
  auto frees = of_type<FreeKeys>(out);
  ASSERT_EQ(frees.size(), 1u);
  EXPECT_EQ(frees[0].worker, 1u);
  EXPECT_TRUE(frees[0].stops_work);
  EXPECT_EQ(of_type<KeyInMemory>(out).size(), 1u);
}

TEST_F(SchedulerFailuresTest, RestartCancelsEveryClientsKeysAndForgetsEveryTask) {
  step(AddWorker{1, "w1", "tcp://w1", 1, 0, {"inc"}, {}});
  step(AddClient{7});
  step(AddClient{8});
  step(AddClient{9});  // wants nothing: told all the same
  // Client 7: a chain a -> b with a in memory and b running, and c.
  step(UpdateGraph{7, {task("a"), task("b", {"a"}), task("c")}, {"a", "b", "c"}});
  step(TaskFinished{1, "a", "i32", 4, 0.01});
  ASSERT_EQ(s.status("b"), TaskStatus::processing);
  // Client 8: shares a, and has a scattered key of its own.
  step(UpdateGraph{8, {}, {"a"}});
  step(Scattered{8, {{"d", "i32", 4, {1}}}});
  ASSERT_EQ(s.status("d"), TaskStatus::memory);

  auto out = step(Restart{});
  auto told = of_type<RestartCancelled>(out);
  ASSERT_EQ(told.size(), 3u);
  std::map<ClientId, std::vector<std::string>> by_client;
  for (auto& t : told) {
    std::sort(t.keys.begin(), t.keys.end());
    by_client[t.client] = t.keys;
  }
  EXPECT_EQ(by_client[7], (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(by_client[8], (std::vector<std::string>{"a", "d"}));
  EXPECT_TRUE(by_client.count(9) && by_client[9].empty());
  EXPECT_EQ(s.n_tasks(), 0u);
  EXPECT_TRUE(s.wanted_by(7).empty());
  EXPECT_TRUE(s.wanted_by(8).empty());
  // The worker drops what it holds and stops what it runs.
  std::vector<std::string> freed;
  bool stops_running = false;
  for (auto& f : of_type<FreeKeys>(out)) {
    freed.insert(freed.end(), f.keys.begin(), f.keys.end());
    if (std::count(f.keys.begin(), f.keys.end(), "b")) stops_running = f.stops_work;
  }
  for (const char* k : {"a", "b", "d"}) EXPECT_EQ(std::count(freed.begin(), freed.end(), k), 1) << k;
  EXPECT_TRUE(stops_running);
  EXPECT_TRUE(of_type<KeysCancelled>(out).empty()) << "cancel replies pair with cancel requests";

  // The restarted worker goes on purpose (safe): nothing is suspicious, nothing errs.
  out = step(RemoveWorker{1, true});
  EXPECT_TRUE(of_type<KeyErred>(out).empty());
  // The same keys submitted again run from scratch on the new worker.
  step(AddWorker{2, "w1", "tcp://w2", 1, 0, {"inc"}, {}});
  out = step(UpdateGraph{7, {task("a")}, {"a"}});
  auto computes = of_type<ComputeTask>(out);
  ASSERT_EQ(computes.size(), 1u);
  EXPECT_EQ(computes[0].worker, 2u);
  EXPECT_EQ(computes[0].spec->key, "a");
  EXPECT_EQ(s.story("a").front().from, TaskStatus::released) << "a new task, with a new story";
}

TEST_F(SchedulerFailuresTest, RestartOfAnEmptySchedulerTellsEachClientNothingWasCancelled) {
  step(AddClient{3});
  auto out = step(Restart{});
  auto told = of_type<RestartCancelled>(out);
  ASSERT_EQ(told.size(), 1u);
  EXPECT_TRUE(told[0].keys.empty());
  EXPECT_STREQ(event_name(Event(Restart{}).index()), "restart");
}

// Found by the randomized test: a returning worker holds a key and its dependent, listed
// input first. The input being in memory again made the dependent ready; it was sent to
// that worker to compute, then, being held there too, "taken back" from it with FreeKeys,
// which dropped the very copy the scheduler now counted on.
TEST_F(SchedulerFailuresTest, WorkerComingBackWithAKeyAndItsDependentKeepsBoth) {
  step(AddClient{1});
  add_worker(1);
  step(UpdateGraph{1, {task("a"), task("b", {"a"})}, {"a", "b"}});
  step(TaskFinished{1, "a", "i32", 4});
  step(TaskFinished{1, "b", "i32", 4});
  step(RemoveWorker{1});  // both lost: a has no worker to go to, b waits for it
  ASSERT_EQ(s.status("a"), TaskStatus::no_worker);
  ASSERT_EQ(s.status("b"), TaskStatus::waiting);
  auto out = add_worker(2, {{"a", "i32", 4}, {"b", "i32", 4}});
  EXPECT_EQ(s.status("a"), TaskStatus::memory);
  EXPECT_EQ(s.status("b"), TaskStatus::memory);
  EXPECT_EQ(s.who_has("b"), std::vector<WorkerId>{2});
  EXPECT_TRUE(of_type<ComputeTask>(out).empty()) << "nothing to compute: it holds both";
  EXPECT_TRUE(of_type<FreeKeys>(out).empty()) << "nothing to free: both are wanted";
  EXPECT_EQ(of_type<KeyInMemory>(out).size(), 2u);
}

}  // namespace
}  // namespace distrib::detail::sched
