// Assigning ahead on real daemons: steps two tasks wide, each reading both outputs of the
// previous step (so every step crosses workers and goes through pushes), give the same
// results with assigning ahead off, one and two levels deep; and a producer killed while
// its dependents wait for its push on the other worker is recomputed, and they are too.
#include <gtest/gtest.h>
#include <signal.h>

#include <distrib/distrib.hpp>
#include <filesystem>
#include <fstream>

#include "helpers.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

// a[s+1] = a[s] + b[s], b[s+1] = a[s] + b[s] + 1 (as add_ints(add_ints(a, b), 1)).
std::pair<int, int> expected_steps(int steps) {
  int a = 1, b = 2;
  for (int s = 0; s < steps; ++s) {
    int sum = (a + b) % 1000003;
    std::tie(a, b) = std::pair{sum, (sum + 1) % 1000003};
  }
  return {a, b};
}

TEST(AssignAhead, SteppedGraphGivesTheSameResultsAtEveryDepth) {
  constexpr int kSteps = 60;
  const auto [want_a, want_b] = expected_steps(kSteps);
  for (const char* depth : {"0", "1", "2"}) {
    auto scheduler = start_scheduler({"--assign-ahead-depth", depth});
    std::vector<Daemon> workers;
    for (const char* name : {"a", "b"})
      workers.push_back(start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", name}));
    Client client(scheduler.address);
    client.wait_for_workers(2, 30s);
    auto a = client.submit(add_ints, 1, 0);
    auto b = client.submit(add_ints, 2, 0);
    for (int s = 0; s < kSteps; ++s) {
      auto sum = client.submit(mod_add_ints, a, b);
      auto next_b = client.submit(mod_add_ints, sum, 1);
      a = sum;
      b = next_b;
    }
    EXPECT_EQ(a.result(60s), want_a) << "depth " << depth;
    EXPECT_EQ(b.result(60s), want_b) << "depth " << depth;
    client.shutdown();
  }
}

TEST(AssignAhead, AProducerKilledWhileItsDependentsWaitForItsPushIsRecomputed) {
  auto scheduler = start_scheduler({"--assign-ahead-depth", "2"});
  std::vector<Daemon> workers;
  for (const char* name : {"a", "b"})
    workers.push_back(start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", name}));
  Client client(scheduler.address);
  client.wait_for_workers(2, 30s);
  const auto gate = std::filesystem::temp_directory_path() / ("distrib-ahead-gate-" + std::to_string(getpid()));
  std::filesystem::remove(gate);
  // The producer waits for the gate on worker a; b's input is ready on b; their sum and the
  // step after it are assigned ahead while the producer runs.
  auto producer = client.submit({.pure = false, .workers = {"a"}, .allow_other_workers = true}, wait_for_file,
                                gate.string(), 60'000);
  auto other = client.submit({.workers = {"b"}}, add_ints, 10, 0);
  other.wait();
  auto sum = client.submit(add_ints, producer, other);
  auto after = client.submit(add_ints, sum, other);
  ASSERT_TRUE(eventually([&] {
    auto story = client.story(sum.key());
    return !story.empty() && story.back().to == "processing";
  })) << "the sum was not assigned ahead of its input";
  // Kill a (the producer's worker); the producer runs again on b, where the gate is open.
  auto pids = worker_pids(client);
  std::string a_address;
  for (const auto& w : client.scheduler_info().workers)
    if (w.name == "a") a_address = w.address;
  ASSERT_TRUE(pids.count(a_address));
  std::ofstream(gate) << "open\n";
  ASSERT_EQ(::kill(pids.at(a_address), SIGKILL), 0);
  EXPECT_EQ(sum.result(60s), 11);
  EXPECT_EQ(after.result(60s), 21);
  std::filesystem::remove(gate);
  client.shutdown();
}

}  // namespace
}  // namespace distrib::test
