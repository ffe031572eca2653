// Chaos: the seed's array example (y = x + x.T, z = y.mean(0)), shrunk, computed again and
// again (a new random array each round) on a dscheduler with three nanny-supervised
// dworkers while a thread SIGKILLs a random worker process about every second (five
// times). Every result must be exactly the one computed in this process without a cluster.
#include <gtest/gtest.h>
#include <signal.h>

#include <condition_variable>
#include <distrib/distrib.hpp>
#include <mutex>
#include <random>
#include <thread>

#include "helpers.hpp"

namespace da = distrib::array;

namespace distrib::test {
namespace {

using Clock = std::chrono::steady_clock;

/// SIGKILLs the worker of a random nanny every 0.5 to 1 s, `max_kills` times at most, until
/// stopped (also by its destructor, so a failed assertion leaves no thread behind).
class Chaos {
 public:
  Chaos(std::vector<Daemon>& nannies, int max_kills, unsigned seed)
      : thread_([this, &nannies, max_kills, seed] { run(nannies, max_kills, seed); }) {}
  ~Chaos() { stop(); }
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopped_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  int kills() {
    std::lock_guard lock(mutex_);
    return kills_;
  }

 private:
  void run(std::vector<Daemon>& nannies, int max_kills, unsigned seed) {
    std::mt19937 rng(seed);
    std::unique_lock lock(mutex_);
    while (kills_ < max_kills) {
      // The pace of the chaos, not a wait for anything: stop() interrupts it.
      const auto pause = std::chrono::milliseconds(std::uniform_int_distribution<int>(500, 1000)(rng));
      if (cv_.wait_for(lock, pause, [&] { return stopped_; })) return;
      // A nanny waiting to restart its worker has no child: try the others.
      const auto first = std::uniform_int_distribution<std::size_t>(0, nannies.size() - 1)(rng);
      for (std::size_t i = 0; i < nannies.size(); ++i) {
        auto children = child_pids(nannies[(first + i) % nannies.size()].process.pid());
        if (children.size() == 1 && ::kill(children[0], SIGKILL) == 0) {
          ++kills_;
          break;
        }
      }
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopped_ = false;
  int kills_ = 0;
  std::thread thread_;
};

// The seed's example with the seed's 10 x 10 blocks, of 100 x 100 instead of 1000 x 1000.
da::Array seed_example(std::uint64_t seed) {
  auto x = da::random::random({1000, 1000}, {100, 100}, seed);
  auto y = x + x.T();
  return y.mean(0);
}

TEST(Chaos, SeedArrayExampleGivesTheUndisturbedResultWhileWorkersAreKilled) {
  constexpr int kKills = 5;
  // A task can be running on several of the killed workers: it must not err as KilledWorker.
  auto scheduler = start_scheduler({"--allowed-failures", "100"});
  std::vector<Daemon> nannies;
  for (int i = 0; i < 3; ++i)
    nannies.push_back(start_worker(scheduler.address, {"--name", "chaos-" + std::to_string(i)}));
  Client client(scheduler.address);
  client.wait_for_workers(3, 30s);
  ASSERT_TRUE(client.compute(seed_example(1)).result(60s).equals(seed_example(1).compute())) << "without chaos";

  // Each round a new random array (its own seed), so that every round computes everything:
  // on the cluster under fire, and here undisturbed, on a local thread pool.
  int rounds = 0;
  {
    Chaos chaos(nannies, kKills, 14);
    const auto deadline = Clock::now() + 120s;
    while (chaos.kills() < kKills && Clock::now() < deadline) {
      auto z = seed_example(100 + rounds);
      auto future = client.compute(z);
      const NDArray undisturbed = z.compute();
      ASSERT_TRUE(future.result(60s).equals(undisturbed)) << "round " << rounds << ", after " << chaos.kills() << " kills";
      ++rounds;
    }
    EXPECT_EQ(chaos.kills(), kKills);
  }
  RecordProperty("rounds", rounds);
  // The nannies brought every worker back, and the cluster still computes it right.
  EXPECT_TRUE(workers_back(client, 3, kKills)) << "after " << rounds << " rounds";
  EXPECT_TRUE(client.compute(seed_example(2)).result(60s).equals(seed_example(2).compute()));
}

}  // namespace
}  // namespace distrib::test
