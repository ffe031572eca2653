// client.restart(): every future of every client is cancelled, every worker under a nanny
// comes back as a fresh process, a worker without one is closed, and a restart whose
// workers do not all come back in time says how many did. Real dscheduler / dworker
// processes on OS-chosen ports, and LocalClusters; every wait is on an event with a
// generous deadline.
#include <gtest/gtest.h>
#include <signal.h>

#include <distrib/distrib.hpp>
#include <set>

#include "helpers.hpp"
#include "tasks_for_tests.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

// The process id behind each worker, by address.

// SIGKILLs the processes left at the end of the scope (a failed test leaves nothing behind).
struct KillOnExit {
  std::vector<int> pids;
  ~KillOnExit() {
    for (int pid : pids)
      if (pid > 0 && process_alive(pid)) kill(pid, SIGKILL);
  }
};

TEST(Restart, CancelsEveryFutureOfEveryClientAndBringsBackFreshWorkers) {
  auto scheduler = start_scheduler();
  auto a = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", "a"});
  auto b = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", "b"});
  Client client(scheduler.address);
  Client other(scheduler.address, {.name = "other"});
  client.wait_for_workers(2, 30s);
  auto before = worker_pids(client);
  ASSERT_EQ(before.size(), 2u);
  KillOnExit cleanup;
  for (auto& [address, pid] : before) cleanup.pids.push_back(pid);

  auto finished = client.submit(triple, 2);
  ASSERT_EQ(finished.result(60s), 6);
  auto running = client.submit(wait_for_stop, 600'000);  // runs until it is asked to stop
  auto queued = client.submit(triple, running);          // waits for it
  auto others = other.submit(triple, 7);
  ASSERT_EQ(others.result(60s), 21);
  ASSERT_TRUE(eventually([&] { return client.scheduler_info().tasks["processing"] >= 1; }));

  client.restart(120s);

  // The restarting client's futures are settled by the time restart() returns.
  for (auto* f : {&finished, &running, &queued}) {
    EXPECT_EQ(f->status(), FutureStatus::cancelled) << f->key();
    EXPECT_THROW(f->result(1s), CancelledError) << f->key();
  }
  EXPECT_TRUE(eventually([&] { return others.status() == FutureStatus::cancelled; })) << "the other client's too";
  EXPECT_THROW(others.result(1s), CancelledError);

  // As many workers as before, each a new process of the same nanny, with the same name.
  EXPECT_EQ(client.n_workers(), 2u);
  auto after = worker_pids(client);
  ASSERT_EQ(after.size(), 2u);
  for (auto& [address, pid] : after) {
    cleanup.pids.push_back(pid);
    for (auto& [old_address, old_pid] : before) EXPECT_NE(pid, old_pid) << address;
  }
  auto info = client.scheduler_info();
  std::set<std::string> names;
  for (const auto& w : info.workers) {
    names.insert(w.name);
    EXPECT_EQ(w.restarts, 1u) << w.name;
  }
  EXPECT_EQ(names, (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(info.tasks["memory"] + info.tasks["processing"] + info.tasks["waiting"], 0u) << "every task forgotten";

  // Work submitted afterwards runs, the same key as a cancelled future included.
  EXPECT_EQ(client.submit(triple, 2).result(60s), 6);
  EXPECT_EQ(other.submit(triple, 7).result(60s), 21);
  EXPECT_EQ(client.submit(triple, 9).result(60s), 27);
  EXPECT_TRUE(a.process.running());
  EXPECT_TRUE(b.process.running());
}

TEST(Restart, WorkerWithoutNannyIsClosedAndTheTimeoutSaysHowManyCameBack) {
  auto scheduler = start_scheduler();
  auto nanny = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", "kept"});
  auto bare = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", "bare", "--no-nanny"});
  Client client(scheduler.address);
  client.wait_for_workers(2, 30s);
  auto f = client.submit(triple, 4);
  ASSERT_EQ(f.result(60s), 12);

  // Nothing starts the bare worker again: the restart times out with one of two back.
  try {
    client.restart(15s);
    ADD_FAILURE() << "restart() returned although a worker without a nanny cannot come back";
  } catch (const TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("1 of 2 workers came back within 15000 ms"), std::string::npos) << e.what();
  }
  EXPECT_EQ(f.status(), FutureStatus::cancelled) << "tasks are cancelled all the same";

  // The bare worker was told to close, and did: cleanly, exit code 0.
  ASSERT_TRUE(bare.process.wait(30s));
  EXPECT_EQ(bare.process.exit_description(), "exit code 0");
  auto workers = client.scheduler_info().workers;
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].name, "kept");
  EXPECT_EQ(client.submit(triple, 5).result(60s), 15);
  EXPECT_TRUE(nanny.process.running());
}

TEST(Restart, WithoutWaitingItReturnsOnceTheWorkersWereTold) {
  auto scheduler = start_scheduler();
  auto nanny = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH});
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  auto first = worker_pids(client);
  KillOnExit cleanup;
  for (auto& [address, pid] : first) cleanup.pids.push_back(pid);
  client.restart(120s, /*wait_for_workers=*/false);
  client.wait_for_workers(1, 60s);
  EXPECT_TRUE(eventually([&] {
    auto workers = client.scheduler_info().workers;
    return workers.size() == 1 && workers[0].restarts == 1;
  }));
  auto second = worker_pids(client);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_NE(second.begin()->second, first.begin()->second);
}

TEST(Restart, BadTimeoutRaisesBeforeAnythingIsSent) {
  auto scheduler = start_scheduler();
  auto nanny = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH});
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  auto f = client.submit(triple, 3);
  ASSERT_EQ(f.result(60s), 9);
  EXPECT_THROW(client.restart(0ms), std::invalid_argument);
  EXPECT_THROW(client.restart(-5s), std::invalid_argument);
  EXPECT_EQ(f.status(), FutureStatus::finished);
  EXPECT_EQ(f.result(60s), 9);
  EXPECT_EQ(client.scheduler_info().workers.at(0).restarts, 0u);
}

TEST(Restart, LocalClusterProcessesRestartUnderTheirNannies) {
  LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1});
  Client client(cluster);
  auto before = client.run(worker_pid, 0);
  auto f = client.submit(inc, 1);
  ASSERT_EQ(f.result(60s), 2);
  client.restart();
  EXPECT_EQ(f.status(), FutureStatus::cancelled);
  EXPECT_EQ(client.n_workers(), 2u);
  auto after = client.run(worker_pid, 0);
  ASSERT_EQ(after.size(), 2u);
  for (auto& [address, pid] : after)
    for (auto& [old_address, old_pid] : before) EXPECT_NE(pid, old_pid);
  EXPECT_EQ(client.submit(inc, 1).result(60s), 2);
}

TEST(Restart, LocalClusterOfThreadsCannotRestartAndSaysSo) {
  LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1, .processes = false});
  Client client(cluster);
  auto f = client.submit(inc, 1);
  ASSERT_EQ(f.result(60s), 2);
  try {
    client.restart();
    ADD_FAILURE() << "restart() of a LocalCluster of threads returned";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("processes = false"), std::string::npos) << e.what();
  }
  EXPECT_EQ(f.status(), FutureStatus::finished) << "nothing was sent";
  EXPECT_EQ(client.submit(inc, 2).result(60s), 3);
}

}  // namespace
}  // namespace distrib::test
