// Tasks that launch tasks (issue 19, part 1): a task submits more tasks through the worker's
// shared client (distrib::get_client) and waits on them without holding its thread
// (secede / rejoin, WorkerClient), so recursion on one-thread workers does not deadlock.
#include <gtest/gtest.h>
#include <signal.h>

#include <distrib/distrib.hpp>

#include "helpers.hpp"
#include "launching_tasks.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

class LaunchingTasks : public ::testing::Test {
 protected:
  void SetUp() override {
    scheduler_ = start_scheduler();
    for (const char* name : {"w-a", "w-b"})
      workers_.push_back(start_worker(scheduler_.address, {"--preload", TEST_TASKS_PATH, "--nthreads", "1", "--name", name}));
    client_.emplace(scheduler_.address);
    client_->wait_for_workers(2, 30s);
  }
  Daemon scheduler_;
  std::vector<Daemon> workers_;
  std::optional<Client> client_;
};

// Every waiting call gives its thread back: with two threads in the whole cluster, a
// recursion 20 deep completes. Calls with equal arguments share a task, as in Dask.
TEST_F(LaunchingTasks, FibonacciOfDepthTwentyOnTwoOneThreadWorkers) {
  EXPECT_EQ(client_->submit(fib, 20, true).result(120s), 6765);
}

// Every call its own task (pure = false): 1,973 tasks for fib(15), most of them waiting on
// others at some point; tasks launched from tasks run newest first, so few wait at once.
TEST_F(LaunchingTasks, AnImpureFibonacciTreeRunsEveryCallAsATask) {
  auto top = client_->submit(fib, 15, false);
  EXPECT_EQ(top.result(300s), 610);
  // Each call's futures went with it: only the result this client holds is left.
  EXPECT_TRUE(eventually(
      [&] {
        std::size_t tasks = 0;
        for (const auto& [state, n] : client_->scheduler_info().tasks) tasks += n;
        return tasks == 1;
      },
      60s))
      << "the scheduler still holds tasks that nobody wants: " << [&] { std::string s; for (const auto& [state, n] : client_->scheduler_info().tasks) s += state + "=" + std::to_string(n) + " "; return s; }();
}

TEST_F(LaunchingTasks, ATaskGathersAMapItSubmitted) {
  EXPECT_EQ(client_->submit(sum_of_triples, 50).result(120s), 3 * (49 * 50 / 2));
}

TEST_F(LaunchingTasks, ATaskKnowsItsWorker) {
  SubmitOptions on_b;
  on_b.workers = {"w-b"};
  EXPECT_EQ(client_->submit(on_b, who_runs_me, 0).result(60s), "w-b|1|" + scheduler_.address);
}

TEST_F(LaunchingTasks, SecedingOrRejoiningTwiceDoesNothingMore) {
  EXPECT_EQ(client_->submit(secede_twice, 0).result(60s), 1);
  // The worker still runs one task at a time, and runs them.
  EXPECT_EQ(client_->submit(triple, 7).result(60s), 21);
}

// A worker running seceded tasks (and the tasks they wait for) is SIGKILLed mid-tree: its
// tasks run again on the other worker, whose threads are all the cluster has left, and the
// tree still gives the undisturbed answer.
TEST(LaunchingTasksFaults, AWorkerKilledMidTreeLeavesTheAnswerUnchanged) {
  auto scheduler = start_scheduler();
  auto victim = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", "victim", "--no-nanny"});
  auto stays = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", "stays", "--no-nanny"});
  Client client(scheduler.address);
  client.wait_for_workers(2, 30s);
  SubmitOptions impure;
  impure.pure = false;
  auto top = client.submit(impure, fib, 18, false);  // 8,361 tasks
  ASSERT_TRUE(eventually(
      [&] {
        for (const auto& w : client.scheduler_info().workers)
          if (w.name == "victim" && w.processing >= 3) return true;
        return false;
      },
      60s))
      << "the victim never had seceded tasks";
  victim.process.signal(SIGKILL);
  ASSERT_TRUE(victim.process.wait(30s));
  EXPECT_EQ(top.result(300s), 2584);
  EXPECT_EQ(client.n_workers(), 1u);
}

TEST(LaunchingTasksMisuse, OutsideATaskEachCallSaysSo) {
  for (auto call : std::vector<std::function<void()>>{[] { get_client(); }, [] { secede(); }, [] { rejoin(); },
                                                      [] { get_worker(); }, [] { WorkerClient c; }}) {
    try {
      call();
      FAIL() << "no error outside a task";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("not called from a task running on a worker"), std::string::npos) << e.what();
    }
  }
}

// Workers that are threads of this process: the shared client reaches the scheduler without
// a socket, as the program's own client does.
TEST(LaunchingTasksInProcess, FibonacciOnALocalClusterOfThreads) {
  LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .processes = false});
  Client client(cluster);
  EXPECT_EQ(client.submit(fib, 16, true).result(120s), 987);
}

}  // namespace
}  // namespace distrib::test
