// A worker killed mid-computation: its running tasks run elsewhere, its lost results are
// recomputed, and the client gets every value.
#include <gtest/gtest.h>
#include <signal.h>

#include <distrib/distrib.hpp>

#include "helpers.hpp"
#include "tasks_for_tests.hpp"

namespace distrib::test {
namespace {

TEST(Reliability, KilledWorkerLosesNothing) {
  LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1});
  Client client(cluster);
  std::string doomed_address;
  for (const auto& w : client.scheduler_info().workers)
    if (w.name == "worker-0") doomed_address = w.address;
  ASSERT_FALSE(doomed_address.empty());
  auto pids = client.run(worker_pid, 0);
  ASSERT_EQ(pids.size(), 2u);
  int doomed_pid = pids.at(doomed_address);

  // Placed on worker-0 first, allowed elsewhere once it is gone.
  SubmitOptions on_doomed{.pure = false, .workers = {"worker-0"}, .allow_other_workers = true};
  auto stored = client.submit(on_doomed, make_vector, 1000);
  ASSERT_EQ(stored.result(60s).size(), 1000u);
  auto running = client.submit(on_doomed, sleep_ms, 1500);
  auto who = client.who_has(std::vector<Future<std::vector<double>>>{stored});
  ASSERT_EQ(who.at(stored.key()), std::vector<std::string>{doomed_address});

  ASSERT_EQ(kill(doomed_pid, SIGKILL), 0);
  // Gone from the scheduler (its nanny starts a fresh worker-0, at another address).
  EXPECT_TRUE(eventually([&] {
    for (const auto& w : client.scheduler_info().workers)
      if (w.address == doomed_address) return false;
    return true;
  }));

  // The running task is rescheduled; the lost result is recomputed on another worker.
  EXPECT_EQ(running.result(60s), 1500);
  auto again = stored.result(60s);
  ASSERT_EQ(again.size(), 1000u);
  EXPECT_EQ(again[999], 999.0);
  auto now = client.who_has(std::vector<Future<std::vector<double>>>{stored});
  ASSERT_EQ(now.at(stored.key()).size(), 1u);
  EXPECT_NE(now.at(stored.key()).front(), doomed_address);
  // And the cluster keeps working.
  EXPECT_EQ(client.submit(inc, 1).result(60s), 2);
}

}  // namespace
}  // namespace distrib::test
