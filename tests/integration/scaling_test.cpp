// Scaling (issue 18, part 6): client.retire_workers keeps every key without recomputing it,
// LocalCluster::scale up and down, and adapt() under a burst of work.
#include <gtest/gtest.h>

#include <distrib/distrib.hpp>
#include <numeric>
#include <fstream>
#include <set>

#include "helpers.hpp"
#include "tasks_for_tests.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

// Each value is the pid of the worker process that computed it: a key recomputed elsewhere
// after its holder went would carry another pid.
TEST(Retire, RetiredWorkersHandOverEveryKeyAndExit) {
  auto scheduler = start_scheduler();
  auto w1 = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", "stays"});
  auto w2 = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", "goes-1"});
  auto w3 = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", "goes-2"});
  Client client(scheduler.address);
  client.wait_for_workers(3, 30s);
  std::vector<int> xs(90);
  std::iota(xs.begin(), xs.end(), 0);
  SubmitOptions impure;
  impure.pure = false;
  auto futures = client.map(impure, process_id, xs);
  const auto before = client.gather(futures);
  ASSERT_GT(std::set<int>(before.begin(), before.end()).size(), 1u) << "the tasks should have spread";

  auto retired = client.retire_workers({"goes-1", "goes-2"});
  EXPECT_EQ(retired.size(), 2u);
  EXPECT_EQ(client.n_workers(), 1u);
  // Every key lives on the one worker left, with the value first computed.
  for (const auto& [key, holders] : client.who_has(futures)) {
    ASSERT_EQ(holders.size(), 1u) << key;
    EXPECT_EQ(holders[0], w1.address) << key;
  }
  EXPECT_EQ(client.gather(futures), before);
  // The retired dworkers exit (their nannies do not restart them); the one left still works.
  EXPECT_TRUE(w2.process.wait(30s));
  EXPECT_TRUE(w3.process.wait(30s));
  EXPECT_EQ(w2.process.exit_code(), 0) << w2.process.exit_description();
  EXPECT_EQ(client.submit(triple, 5).result(60s), 15);
}

TEST(Retire, UnknownWorkersAndNoneLeftToHoldTheDataAreRefused) {
  auto scheduler = start_scheduler();
  auto w1 = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", "only"});
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  auto kept = client.submit(triple, 7);
  ASSERT_EQ(kept.result(60s), 21);
  try {
    client.retire_workers({"nobody"});
    FAIL() << "retired a worker that does not exist";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no such worker: nobody"), std::string::npos) << e.what();
  }
  try {
    client.retire_workers({"only"}, 5s);
    FAIL() << "retired the only worker holding a key";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no worker that stays"), std::string::npos) << e.what();
  }
  // Taken back into service: it still holds the key and runs new work.
  EXPECT_EQ(kept.result(60s), 21);
  EXPECT_EQ(client.submit(triple, 8).result(60s), 24);
}

TEST(LocalClusterScale, UpAndDownKeepsEveryResult) {
  LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1, .processes = false, .dashboard_address = "none"});
  Client client(cluster);
  cluster.scale(3);
  EXPECT_EQ(cluster.n_workers(), 3);
  client.wait_for_workers(3, 30s);
  std::vector<Future<int>> futures;
  for (int i = 0; i < 60; ++i) futures.push_back(client.submit(count_calls, std::string("scale"), i));
  wait(futures);
  ASSERT_EQ(calls_of("scale"), 60);
  std::set<std::string> holders;
  for (const auto& [key, where] : client.who_has(futures)) holders.insert(where.begin(), where.end());
  ASSERT_GT(holders.size(), 1u) << "the results should have spread over the workers";

  cluster.scale(1);  // the two newest are retired, their results moved first
  EXPECT_EQ(cluster.n_workers(), 1);
  EXPECT_TRUE(eventually([&] { return client.n_workers() == 1; }));
  auto values = client.gather(futures);
  for (int i = 0; i < 60; ++i) EXPECT_EQ(values[static_cast<std::size_t>(i)], i + 1);
  EXPECT_EQ(calls_of("scale"), 60) << "nothing was recomputed";
  cluster.scale(2);  // and up again, under a fresh name
  client.wait_for_workers(2, 30s);
  std::set<std::string> names;
  for (const auto& w : client.scheduler_info().workers) names.insert(w.name);
  EXPECT_EQ(names, (std::set<std::string>{"worker-0", "worker-3"}));
  EXPECT_THROW(cluster.scale(-1), std::invalid_argument);
}

TEST(LocalClusterScale, ProcessWorkersRetireWithTheirNannies) {
  LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .dashboard_address = "none"});
  Client client(cluster);
  client.wait_for_workers(2, 30s);
  SubmitOptions impure;
  impure.pure = false;
  std::vector<int> xs(40);
  std::iota(xs.begin(), xs.end(), 0);
  auto futures = client.map(impure, worker_pid, xs);
  const auto before = client.gather(futures);
  cluster.scale(1);
  EXPECT_EQ(cluster.n_workers(), 1);
  EXPECT_EQ(client.gather(futures), before) << "values moved, not recomputed (each is its first worker's pid)";
  EXPECT_EQ(client.n_workers(), 1u);
}

TEST(LocalClusterAdapt, GrowsUnderABurstAndShrinksWhenIdle) {
  LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1, .processes = false, .dashboard_address = "none"});
  Client client(cluster);
  cluster.adapt(1, 4, {.interval = 100ms, .wait_count = 2});
  // About 4 s of work for one thread: the cluster grows while it runs.
  std::vector<int> ms(40);
  std::iota(ms.begin(), ms.end(), 100);  // distinct, so 40 tasks (pure keys)
  auto burst = client.map(sleep_ms, ms);
  EXPECT_TRUE(eventually([&] { return cluster.n_workers() == 4; }, 60s)) << cluster.n_workers();
  wait(burst);
  for (std::size_t i = 0; i < burst.size(); ++i) EXPECT_EQ(burst[i].result(), ms[i]);
  burst.clear();  // released: nothing to keep, the extra workers go
  EXPECT_TRUE(eventually([&] { return cluster.n_workers() == 1; }, 60s)) << cluster.n_workers();
  cluster.stop_adapting();
  EXPECT_THROW(cluster.adapt(3, 2), std::invalid_argument);
}

}  // namespace
}  // namespace distrib::test

namespace distrib::test {
namespace {

// client.upload_file: workers without the library learn its functions, and so does a
// worker that registers afterwards.
TEST(UploadFile, EveryWorkerNowAndLaterLoadsTheLibrary) {
  auto scheduler = start_scheduler();
  auto first = start_worker(scheduler.address, {"--name", "first"});  // no --preload
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  auto before = client.submit(triple, 2);
  EXPECT_THROW(before.result(60s), TaskError);  // no worker can run it yet

  client.upload_file(TEST_TASKS_PATH);
  EXPECT_EQ(client.submit(triple, 4).result(60s), 12);

  auto second = start_worker(scheduler.address, {"--name", "second"});
  client.wait_for_workers(2, 30s);
  SubmitOptions there;
  there.workers = {"second"};
  there.key = "on-the-late-worker";
  // Submitted before or after its functions reach the scheduler, it waits for them.
  EXPECT_EQ(client.submit(there, triple, 5).result(60s), 15);

  // What is not a library is refused by every worker, named; an unreadable path raises here.
  TempDir dir;
  const auto junk = dir.str() + "/libjunk.so";
  std::ofstream(junk) << "not an ELF file";
  try {
    client.upload_file(junk);
    FAIL() << "a worker loaded junk";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("worker 'first': cannot load libjunk.so"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("worker 'second'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(client.upload_file(dir.str() + "/missing.so"), std::invalid_argument);
  EXPECT_EQ(client.submit(triple, 6).result(60s), 18);  // the workers carry on
}

}  // namespace
}  // namespace distrib::test
