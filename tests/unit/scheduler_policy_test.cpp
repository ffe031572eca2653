// SchedulerState policy decisions: work stealing, restrictions, resources, retries,
// cancellation, scattered data and paused workers (issue 16: a worker past its memory pause
// threshold gets no new work, an idle worker may steal what is queued on it, and tasks that
// found no running worker are placed once one resumes) — driven by events, no sockets.
#include <gtest/gtest.h>

#include "scheduler/scheduler_state.hpp"

namespace distrib::detail::sched {
namespace {

TaskSpecPtr task(const std::string& key, std::vector<std::string> deps = {},
                 std::function<void(TaskSpec&)> tweak = nullptr) {
  auto spec = std::make_shared<TaskSpec>();
  spec->key = key;
  spec->function = "f";
  for (auto& d : deps) spec->args.push_back(TaskArg{d});
  static std::int64_t priority = 0;
  spec->priority = ++priority;
  if (tweak) tweak(*spec);
  return spec;
}

template <class T>
std::vector<T> only(const std::vector<Action>& actions) {
  std::vector<T> out;
  for (const auto& a : actions)
    if (auto* x = std::get_if<T>(&a)) out.push_back(*x);
  return out;
}

class Policy : public ::testing::Test {
 protected:
  // Dask's rules; assigning ahead has its own tests (scheduler_ahead_test.cpp).
  SchedulerState s{SchedulerConfig{.assign_ahead_depth = 0}};
  std::vector<Action> step(Event e) {
    auto out = s.handle(std::move(e));
    EXPECT_NO_THROW(s.validate());
    return out;
  }
  std::vector<Action> worker(WorkerId id, std::uint32_t threads = 1, std::vector<std::pair<std::string, double>> res = {},
                             std::string name = "") {
    if (name.empty()) name = "w" + std::to_string(id);
    return step(AddWorker{id, name, "tcp://" + name, threads, 0, {"f"}, std::move(res)});
  }
};

TEST_F(Policy, IdleWorkerStealsTasksThatWaitOnABusyOne) {
  worker(1);
  // Non-root tasks (they depend on `root`) are not queued: all go to worker 1, which
  // holds their input.
  step(UpdateGraph{1, {task("root")}, {"root"}});
  step(TaskFinished{1, "root", "i32", 4, 0.001});
  std::vector<TaskSpecPtr> tasks;
  std::vector<std::string> keys;
  for (int i = 0; i < 6; ++i) {
    keys.push_back("t" + std::to_string(i));
    tasks.push_back(task(keys.back(), {"root"}));
  }
  step(UpdateGraph{1, tasks, keys});
  EXPECT_EQ(s.n_processing(1), 6u);
  // A new, idle worker: the scheduler asks worker 1 for one task it has not started.
  auto out = worker(2);
  auto steals = only<StealRequest>(out);
  ASSERT_EQ(steals.size(), 1u);
  EXPECT_EQ(steals[0].worker, 1u);
  // Worker 1 had not started it: it moves to worker 2, with where to fetch its input.
  out = step(StealResponse{1, steals[0].key, true});
  auto moved = only<ComputeTask>(out);
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].worker, 2u);
  EXPECT_EQ(moved[0].spec->key, steals[0].key);
  ASSERT_EQ(moved[0].who_has.size(), 1u);
  EXPECT_EQ(moved[0].who_has[0].second, std::vector<std::string>{"tcp://w1"});
  EXPECT_EQ(s.processing_on(steals[0].key), 2u);
}

TEST_F(Policy, AStealThatCameTooLateLeavesTheTaskWhereItRuns) {
  worker(1);
  step(UpdateGraph{1, {task("root")}, {"root"}});
  step(TaskFinished{1, "root", "i32", 4, 0.001});
  step(UpdateGraph{1, {task("a", {"root"}), task("b", {"root"}), task("c", {"root"})}, {"a", "b", "c"}});
  auto steals = only<StealRequest>(worker(2));
  ASSERT_FALSE(steals.empty());
  auto out = step(StealResponse{1, steals[0].key, false});
  EXPECT_TRUE(only<ComputeTask>(out).empty());
  EXPECT_EQ(s.processing_on(steals[0].key), 1u);
  // It finishes on worker 1 as if nothing happened.
  step(TaskFinished{1, steals[0].key, "i32", 4, 0.001});
  EXPECT_EQ(s.status(steals[0].key), TaskStatus::memory);
}

TEST_F(Policy, ARefusedStealIsNotAskedAgain) {
  worker(1);
  step(UpdateGraph{1, {task("root")}, {"root"}});
  step(TaskFinished{1, "root", "i32", 4, 0.001});
  step(UpdateGraph{1, {task("a", {"root"}), task("b", {"root"}), task("c", {"root"})}, {"a", "b", "c"}});
  auto steals = only<StealRequest>(worker(2));
  ASSERT_FALSE(steals.empty());
  const std::string refused = steals[0].key;
  // Worker 1 already runs it. Every later event re-balances: it must not ask for that task
  // again (that would ping-pong requests for as long as the task runs).
  auto out = step(StealResponse{1, refused, false});
  for (int i = 0; i < 3; ++i) {
    for (const auto& r : only<StealRequest>(out)) EXPECT_NE(r.key, refused);
    out = step(WorkerMetrics{1, 1000});
  }
  for (const auto& r : only<StealRequest>(out)) EXPECT_NE(r.key, refused);
}

TEST_F(Policy, LargeInputsAreNotWorthStealingForShortTasks) {
  worker(1);
  step(UpdateGraph{1, {task("big")}, {"big"}});
  step(TaskFinished{1, "big", "vector<u8>", 1'000'000'000, 0.001});  // 1 GB: 10 s at 100 MB/s
  std::vector<TaskSpecPtr> tasks;
  std::vector<std::string> keys;
  for (int i = 0; i < 4; ++i) {
    keys.push_back("use-" + std::to_string(i));
    tasks.push_back(task(keys.back(), {"big"}));
  }
  step(UpdateGraph{1, tasks, keys});
  EXPECT_TRUE(only<StealRequest>(worker(2)).empty());
}

TEST_F(Policy, RestrictionsAndAllowOtherWorkers) {
  worker(1, 1, {}, "alice");
  worker(2, 1, {}, "bob");
  auto out = step(UpdateGraph{1, {task("x", {}, [](TaskSpec& t) { t.workers = {"bob"}; })}, {"x"}});
  ASSERT_EQ(only<ComputeTask>(out).size(), 1u);
  EXPECT_EQ(only<ComputeTask>(out)[0].worker, 2u);
  // Restricted to a worker that does not exist: it waits...
  step(UpdateGraph{1, {task("y", {}, [](TaskSpec& t) { t.workers = {"carol"}; })}, {"y"}});
  EXPECT_EQ(s.status("y"), TaskStatus::no_worker);
  // ...unless other workers are allowed.
  out = step(UpdateGraph{1, {task("z", {}, [](TaskSpec& t) {
                                t.workers = {"carol"};
                                t.allow_other_workers = true;
                              })},
                         {"z"}});
  EXPECT_EQ(only<ComputeTask>(out).size(), 1u);
  // carol joins: y runs there (by address too).
  out = worker(3, 1, {}, "carol");
  auto cts = only<ComputeTask>(out);
  ASSERT_EQ(cts.size(), 1u);
  EXPECT_EQ(cts[0].spec->key, "y");
  EXPECT_EQ(cts[0].worker, 3u);
}

TEST_F(Policy, ResourcesRestrictPlacement) {
  worker(1);
  worker(2, 4, {{"GPU", 2}});  // the worker enforces the count at run time
  for (int i = 0; i < 3; ++i) {
    auto key = "gpu-" + std::to_string(i);
    step(UpdateGraph{1, {task(key, {}, [](TaskSpec& t) { t.resources = {{"GPU", 1}}; })}, {key}});
    EXPECT_EQ(s.processing_on(key), 2u) << key;
  }
  // More than any worker has: waits for such a worker.
  step(UpdateGraph{1, {task("huge", {}, [](TaskSpec& t) { t.resources = {{"GPU", 4}}; })}, {"huge"}});
  EXPECT_EQ(s.status("huge"), TaskStatus::no_worker);
}

TEST_F(Policy, RetriesRerunAFailingTask) {
  worker(1);
  step(UpdateGraph{1, {task("flaky", {}, [](TaskSpec& t) { t.retries = 2; })}, {"flaky"}});
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto out = step(TaskErred{1, "flaky", "E", "try again"});
    EXPECT_TRUE(only<KeyErred>(out).empty());
    EXPECT_EQ(only<ComputeTask>(out).size(), 1u) << "attempt " << attempt;
  }
  auto out = step(TaskErred{1, "flaky", "E", "third failure"});
  auto errs = only<KeyErred>(out);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].message, "third failure");
}

TEST_F(Policy, CancelStopsPendingWorkAndDependents) {
  worker(1);
  step(UpdateGraph{1, {task("a"), task("b", {"a"}), task("c", {"b"})}, {"a", "b", "c"}});
  auto out = step(CancelKeys{1, {"a"}});
  auto cancelled = only<KeysCancelled>(out);
  ASSERT_EQ(cancelled.size(), 1u);
  EXPECT_EQ(cancelled[0].keys.size(), 3u);  // a and its dependents b, c
  auto frees = only<FreeKeys>(out);
  ASSERT_EQ(frees.size(), 1u);  // a was processing: the worker drops it
  EXPECT_EQ(frees[0].keys, std::vector<std::string>{"a"});
  EXPECT_EQ(s.n_tasks(), 0u);
  // A late result is answered with another free; unknown keys are a no-op.
  EXPECT_EQ(only<FreeKeys>(step(TaskFinished{1, "a", "i32", 4, 0.1})).size(), 1u);
  auto unknown = only<KeysCancelled>(step(CancelKeys{1, {"never-heard-of"}}));
  ASSERT_EQ(unknown.size(), 1u);  // one reply per request, even when nothing was cancelled
  EXPECT_TRUE(unknown[0].keys.empty());
}

TEST_F(Policy, ScatteredDataFeedsTasksAndIsFreedOnRelease) {
  worker(1);
  worker(2);
  step(Scattered{1, {{"data-1", "vector<f64>", 800, {2}}}});
  EXPECT_EQ(s.status("data-1"), TaskStatus::memory);
  auto out = step(UpdateGraph{1, {task("use", {"data-1"})}, {"use"}});
  auto cts = only<ComputeTask>(out);
  ASSERT_EQ(cts.size(), 1u);
  EXPECT_EQ(cts[0].worker, 2u);  // where the data is
  step(TaskFinished{2, "use", "f64", 8, 0.001});
  out = step(ReleaseKeys{1, {"data-1", "use"}});
  EXPECT_EQ(only<FreeKeys>(out).size(), 2u);
  EXPECT_EQ(s.n_tasks(), 0u);
}

TEST_F(Policy, LostScatteredDataErrsInsteadOfRecomputing) {
  worker(1);
  step(Scattered{1, {{"data-1", "i32", 4, {1}}}});
  step(UpdateGraph{1, {task("use", {"data-1"})}, {"use"}});
  step(RemoveWorker{1});
  worker(2);
  EXPECT_EQ(s.status("data-1"), TaskStatus::erred);
  EXPECT_EQ(s.status("use"), TaskStatus::erred);
}

TEST_F(Policy, MissingDataIsRecomputedAndItsDependentRescheduled) {
  worker(1);
  worker(2);
  step(UpdateGraph{1, {task("a")}, {"a"}});
  auto holder = s.processing_on("a");
  step(TaskFinished{holder, "a", "i32", 4, 0.001});
  WorkerId other = holder == 1 ? 2 : 1;
  // Place the dependent on the other worker by restriction.
  auto out = step(UpdateGraph{1, {task("b", {"a"}, [&](TaskSpec& t) { t.workers = {"w" + std::to_string(other)}; })}, {"b"}});
  ASSERT_EQ(s.processing_on("b"), other);
  // The holder lost it (e.g. restarted): the dependent is taken back and `a` recomputed.
  out = step(MissingData{other, "a", "tcp://w" + std::to_string(holder)});
  auto frees = only<FreeKeys>(out);
  ASSERT_EQ(frees.size(), 1u);
  EXPECT_EQ(frees[0].worker, other);
  EXPECT_EQ(frees[0].keys, std::vector<std::string>{"b"});
  auto again = only<ComputeTask>(out);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].spec->key, "a");
  EXPECT_EQ(s.status("b"), TaskStatus::waiting);
}

TEST_F(Policy, MissingDataWithAnotherHolderTellsWhereItIs) {
  worker(1);
  worker(2);
  worker(3);
  step(Scattered{1, {{"d", "i32", 4, {1, 2}}}});
  auto out = step(MissingData{3, "d", "tcp://w1"});
  auto loc = only<KeyLocations>(out);
  ASSERT_EQ(loc.size(), 1u);
  EXPECT_EQ(loc[0].worker, 3u);
  EXPECT_EQ(loc[0].addresses, std::vector<std::string>{"tcp://w2"});
  EXPECT_EQ(s.who_has("d"), std::vector<WorkerId>{2});
}

TEST_F(Policy, ScatteringAKeyTwiceDoesNotReleaseWaitingTasksEarly) {
  worker(1);
  worker(2);
  step(UpdateGraph{1, {task("y")}, {"y"}});  // not finished yet
  step(Scattered{1, {{"d", "i32", 4, {1}}}});
  auto out = step(UpdateGraph{1, {task("t", {"d", "y"})}, {"t"}});
  EXPECT_EQ(s.status("t"), TaskStatus::waiting);
  out = step(Scattered{2, {{"d", "i32", 4, {2}}}});  // another client, same content
  EXPECT_EQ(s.status("t"), TaskStatus::waiting) << "t must still wait for y";
  EXPECT_EQ(s.who_has("d").size(), 2u);
}

TEST_F(Policy, AStealAnswerWithoutARequestIsIgnored) {
  worker(1);
  step(UpdateGraph{1, {task("a")}, {"a"}});
  auto out = step(StealResponse{1, "a", true});
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(s.processing_on("a"), 1u);
}

// ---- paused workers ----

TEST_F(Policy, APausedWorkerGetsNoNewTasks) {
  worker(1);
  worker(2);
  step(WorkerPaused{1, true});
  std::vector<TaskSpecPtr> tasks;
  std::vector<std::string> keys;
  for (int i = 0; i < 6; ++i) {
    keys.push_back("t" + std::to_string(i));
    tasks.push_back(task(keys.back()));
  }
  auto out = step(UpdateGraph{1, tasks, keys});
  for (const auto& c : only<ComputeTask>(out)) EXPECT_EQ(c.worker, 2u) << c.spec->key;
  EXPECT_FALSE(only<ComputeTask>(out).empty());
  EXPECT_EQ(s.n_processing(1), 0u);
  auto info = s.workers();
  ASSERT_EQ(info.size(), 2u);
  EXPECT_TRUE(info[0].paused);
  EXPECT_FALSE(info[1].paused);
}

TEST_F(Policy, WithEveryWorkerPausedTasksWaitAndRunOnceOneResumes) {
  worker(1);
  step(WorkerPaused{1, true});
  auto out = step(UpdateGraph{1, {task("a"), task("b", {"a"})}, {"b"}});
  EXPECT_TRUE(only<ComputeTask>(out).empty());
  EXPECT_EQ(s.status("a"), TaskStatus::no_worker);
  out = step(WorkerPaused{1, false});
  auto computes = only<ComputeTask>(out);
  ASSERT_FALSE(computes.empty());
  EXPECT_EQ(computes[0].spec->key, "a");
  EXPECT_EQ(computes[0].worker, 1u);
  EXPECT_EQ(s.status("a"), TaskStatus::processing);
}

TEST_F(Policy, AnIdleWorkerStealsWhatIsQueuedOnAPausedOne) {
  worker(1);
  step(UpdateGraph{1, {task("root")}, {"root"}});
  step(TaskFinished{1, "root", "i32", 4, 0.001, std::nullopt, 0});
  step(UpdateGraph{1, {task("x", {"root"})}, {"x"}});
  ASSERT_EQ(s.processing_on("x"), 1u);
  // w1 has one task for its one thread: nothing to steal from a running worker.
  worker(2);
  // Paused, it starts nothing: its task is fair game for the idle one.
  auto out = step(WorkerPaused{1, true});
  auto steals = only<StealRequest>(out);
  ASSERT_EQ(steals.size(), 1u);
  EXPECT_EQ(steals[0].worker, 1u);
  EXPECT_EQ(steals[0].key, "x");
  out = step(StealResponse{1, "x", true, 0});
  auto moved = only<ComputeTask>(out);
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].worker, 2u);
}

TEST_F(Policy, AStealForAPausedThiefPlacesTheTaskElsewhere) {
  worker(1);
  step(UpdateGraph{1, {task("root")}, {"root"}});
  step(TaskFinished{1, "root", "i32", 4, 0.001, std::nullopt, 0});
  std::vector<TaskSpecPtr> tasks;
  std::vector<std::string> keys;
  for (int i = 0; i < 4; ++i) {
    keys.push_back("t" + std::to_string(i));
    tasks.push_back(task(keys.back(), {"root"}));
  }
  step(UpdateGraph{1, tasks, keys});
  step(AddWorker{2, "w2", "tcp://w2", 1, 0, {"f"}, {}});
  // Whatever w2 was promised, once it pauses a released task does not go to it.
  step(WorkerPaused{2, true});
  for (const auto& k : keys) {
    auto r = step(StealResponse{1, k, true, 0});
    for (const auto& c : only<ComputeTask>(r)) EXPECT_NE(c.worker, 2u) << k;
  }
  for (const auto& k : keys) EXPECT_NE(s.processing_on(k), 2u) << k;
}

TEST_F(Policy, TasksWithoutInputsGoToTheLeastLoadedWorkerThatMayRunThem) {
  worker(1);
  worker(2);
  worker(3);
  // Equal loads: the lowest id first, then round the three.
  step(UpdateGraph{1, {task("x-a"), task("x-b"), task("x-c"), task("x-d")}, {"x-a", "x-b", "x-c", "x-d"}});
  EXPECT_EQ(s.processing_on("x-a"), 1u);
  EXPECT_EQ(s.processing_on("x-b"), 2u);
  EXPECT_EQ(s.processing_on("x-c"), 3u);
  EXPECT_EQ(s.processing_on("x-d"), 1u);
  // w3 is free again: the least loaded.
  step(TaskFinished{3, "x-c", "i32", 4, 0.001, std::nullopt, 0});
  step(UpdateGraph{1, {task("x-e")}, {"x-e"}});
  EXPECT_EQ(s.processing_on("x-e"), 3u);
  // Paused, the least loaded one is passed over; w2 (one task) before w1 (two).
  step(TaskFinished{3, "x-e", "i32", 4, 0.001, std::nullopt, 0});
  step(WorkerPaused{3, true});
  step(UpdateGraph{1, {task("x-f")}, {"x-f"}});
  EXPECT_EQ(s.processing_on("x-f"), 2u);
  // A restriction wins over load (one prefix: its known duration gives w1 room for more).
  step(UpdateGraph{1, {task("x-g", {}, [](TaskSpec& t) { t.workers = {"w1"}; })}, {"x-g"}});
  EXPECT_EQ(s.processing_on("x-g"), 1u);
  // Restricted to the paused worker only: it waits for it, and runs there once it resumes.
  step(UpdateGraph{1, {task("x-h", {}, [](TaskSpec& t) { t.workers = {"w3"}; })}, {"x-h"}});
  EXPECT_EQ(s.status("x-h"), TaskStatus::no_worker);
  step(WorkerPaused{3, false});
  EXPECT_EQ(s.processing_on("x-h"), 3u);
}

TEST_F(Policy, TasksWithoutInputsWaitOnTheSchedulerOnceEveryWorkerIsSaturated) {
  worker(1);
  worker(2);
  // Unknown durations: ceil(1.1) = 2 tasks per one-thread worker, the rest are queued.
  std::vector<TaskSpecPtr> tasks;
  std::vector<std::string> keys;
  for (int i = 0; i < 6; ++i) {
    keys.push_back("q" + std::to_string(i));
    tasks.push_back(task(keys.back()));
  }
  step(UpdateGraph{1, tasks, keys});
  EXPECT_EQ(s.n_processing(1), 2u);
  EXPECT_EQ(s.n_processing(2), 2u);
  EXPECT_EQ(s.status("q4"), TaskStatus::queued);
  EXPECT_EQ(s.status("q5"), TaskStatus::queued);
  // A worker without the function cannot take them: they still wait, in order.
  step(AddWorker{3, "w3", "tcp://w3", 1, 0, {"other"}, {}});
  EXPECT_EQ(s.status("q4"), TaskStatus::queued);
  // One with it takes the first queued one at once.
  worker(4);
  EXPECT_EQ(s.processing_on("q4"), 4u);
}

TEST_F(Policy, ASecededTaskGivesItsThreadToTheNextTask) {
  worker(1);
  // Unknown durations: two tasks per one-thread worker, the rest wait on the scheduler.
  step(UpdateGraph{1, {task("s-parent"), task("s-0"), task("s-1"), task("s-2")}, {"s-parent", "s-0", "s-1", "s-2"}});
  ASSERT_EQ(s.processing_on("s-parent"), 1u);
  ASSERT_EQ(s.n_processing(1), 2u);
  ASSERT_EQ(s.status("s-1"), TaskStatus::queued);
  // The parent waits on other tasks without its thread: the worker has room for one more.
  auto out = step(TaskSeceded{1, "s-parent", 0});
  auto computes = only<ComputeTask>(out);
  ASSERT_EQ(computes.size(), 1u);
  EXPECT_EQ(computes[0].spec->key, "s-1");
  EXPECT_EQ(s.n_processing(1), 3u);
  // Said twice, or for a task it does not run: nothing more.
  EXPECT_TRUE(only<ComputeTask>(step(TaskSeceded{1, "s-parent", 0})).empty());
  EXPECT_TRUE(only<ComputeTask>(step(TaskSeceded{1, "s-2", 0})).empty());
  // It still runs there, and finishes as any task does.
  step(TaskFinished{1, "s-parent", "i32", 4, 0.01, std::nullopt, 0});
  EXPECT_EQ(s.status("s-parent"), TaskStatus::memory);
}

}  // namespace
}  // namespace distrib::detail::sched
