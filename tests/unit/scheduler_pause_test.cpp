// SchedulerState and paused workers (issue 16): a worker past its memory pause threshold
// gets no new work, an idle worker may steal what is queued on it, and tasks that found no
// running worker are placed once one resumes.
#include <gtest/gtest.h>

#include "scheduler/scheduler_state.hpp"

namespace distrib::detail::sched {
namespace {

TaskSpecPtr task(const std::string& key, std::vector<std::string> deps = {}) {
  auto spec = std::make_shared<TaskSpec>();
  spec->key = key;
  spec->function = "f";
  for (auto& d : deps) spec->args.push_back(TaskArg{d});
  return spec;
}

template <class T>
std::vector<T> only(const std::vector<Action>& actions) {
  std::vector<T> out;
  for (const auto& a : actions)
    if (auto* x = std::get_if<T>(&a)) out.push_back(*x);
  return out;
}

class Paused : public ::testing::Test {
 protected:
  SchedulerState s{SchedulerConfig{}};
  std::vector<Action> step(Event e) {
    auto out = s.handle(std::move(e));
    EXPECT_NO_THROW(s.validate());
    return out;
  }
  void worker(WorkerId id) {
    step(AddWorker{id, "w" + std::to_string(id), "tcp://w" + std::to_string(id), 1, 0, {"f"}, {}});
  }
  void SetUp() override { step(AddClient{1}); }
};

TEST_F(Paused, APausedWorkerGetsNoNewTasks) {
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

TEST_F(Paused, WithEveryWorkerPausedTasksWaitAndRunOnceOneResumes) {
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

TEST_F(Paused, AnIdleWorkerStealsWhatIsQueuedOnAPausedOne) {
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

TEST_F(Paused, AStealForAPausedThiefPlacesTheTaskElsewhere) {
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

}  // namespace
}  // namespace distrib::detail::sched
