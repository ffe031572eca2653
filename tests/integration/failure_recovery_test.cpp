// Results survive the workers that hold them: a dependent whose input's holder dies
// (killed or closed), gather after the holder is killed again and again, and a tree
// reduction during which workers are killed. Real dscheduler / dworker processes; the test
// decides when a task may finish through a gate file, so every kill lands where it says.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <distrib/distrib.hpp>
#include <filesystem>
#include <fstream>

#include "helpers.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

constexpr int kGateMs = 60'000;  // a gate not opened by then fails the test

/// A file whose creation lets the wait_for_file tasks waiting for it return 1.
class Gate {
 public:
  Gate()
      : path_(std::filesystem::temp_directory_path() /
              ("distrib-gate-" + std::to_string(getpid()) + "-" + std::to_string(next_++))) {}
  ~Gate() { std::filesystem::remove(path_); }
  std::string path() const { return path_.string(); }
  void open() { std::ofstream(path_) << "open\n"; }

 private:
  static inline std::atomic<int> next_{0};
  std::filesystem::path path_;
};

template <class T>
std::vector<std::string> holders(Client& client, const Future<T>& f) {
  return client.who_has(std::vector<Future<T>>{f})[f.key()];
}

int count_to(const std::vector<Transition>& story, const std::string& to) {
  return static_cast<int>(std::count_if(story.begin(), story.end(), [&](const Transition& t) { return t.to == to; }));
}

/// Waits until the scheduler no longer lists a worker at `address`.
bool gone(Client& client, const std::string& address) {
  return eventually([&] {
    for (const auto& w : client.scheduler_info().workers)
      if (w.address == address) return false;
    return true;
  });
}

std::string address_of(Client& client, const std::string& name) {
  for (const auto& w : client.scheduler_info().workers)
    if (w.name == name) return w.address;
  return {};
}

// ---- a dependent after the holder of its input is gone ----

struct Loss {
  int signal;          // SIGKILL: it dies; SIGTERM: it closes gracefully (says goodbye first)
  bool input_on_both;  // the input is on both workers (scattered with broadcast) or on the doomed one only
};

void PrintTo(const Loss& l, std::ostream* os) {
  *os << (l.signal == SIGKILL ? "SIGKILL" : "SIGTERM") << (l.input_on_both ? ", input on both" : ", input on one");
}

std::string loss_name(const ::testing::TestParamInfo<Loss>& info) {
  return std::string(info.param.signal == SIGKILL ? "Killed" : "Closed") +
         (info.param.input_on_both ? "InputOnBoth" : "InputOnOne");
}

class DependentOfALostInput : public ::testing::TestWithParam<Loss> {};

TEST_P(DependentOfALostInput, GetsTheRightResult) {
  const auto [sig, on_both] = GetParam();
  auto scheduler = start_scheduler();
  // No nannies: the worker that goes stays gone, so only the other one can serve the input.
  auto doomed = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", "doomed", "--no-nanny"});
  auto survivor = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", "survivor", "--no-nanny"});
  Client client(scheduler.address);
  client.wait_for_workers(2, 30s);
  const auto doomed_address = address_of(client, "doomed"), survivor_address = address_of(client, "survivor");

  Future<int> input = on_both ? client.scatter(15, {.workers = {"doomed", "survivor"}, .broadcast = true})
                              : client.submit({.pure = false, .workers = {"doomed"}, .allow_other_workers = true},
                                              triple, 5);
  ASSERT_EQ(input.result(60s), 15);
  auto before = holders(client, input);
  std::sort(before.begin(), before.end());
  auto expected_holders = on_both ? std::vector<std::string>{doomed_address, survivor_address}
                                  : std::vector<std::string>{doomed_address};
  std::sort(expected_holders.begin(), expected_holders.end());
  ASSERT_EQ(before, expected_holders);

  // The dependent waits for a gate on the survivor, so it needs the input only after the loss.
  Gate gate;
  auto gated = client.submit({.pure = false, .workers = {"survivor"}}, wait_for_file, gate.path(), kGateMs);
  auto dependent = client.submit(add_ints, input, gated);

  doomed.process.signal(sig);
  ASSERT_TRUE(doomed.process.wait(30s));
  EXPECT_EQ(doomed.process.exit_description(), sig == SIGKILL ? "killed by signal 9" : "exit code 0");
  ASSERT_TRUE(gone(client, doomed_address));
  gate.open();

  EXPECT_EQ(dependent.result(60s), 16);
  EXPECT_EQ(input.result(60s), 15);
  EXPECT_EQ(holders(client, input), std::vector<std::string>{survivor_address});
  auto story = client.story(input);
  // A single copy was lost and computed again; with a second copy nothing was lost.
  EXPECT_EQ(count_to(story, "released"), on_both ? 0 : 1);
  EXPECT_EQ(count_to(story, "memory"), on_both ? 1 : 2);
}

INSTANTIATE_TEST_SUITE_P(HolderGoes, DependentOfALostInput,
                         ::testing::Values(Loss{SIGKILL, false}, Loss{SIGKILL, true}, Loss{SIGTERM, false},
                                           Loss{SIGTERM, true}),
                         loss_name);

// ---- gather after the holder is killed, three times in a row ----

TEST(FailureRecovery, GatherAfterTheHolderIsKilledThreeTimesInARow) {
  auto scheduler = start_scheduler();
  std::vector<Daemon> nannies;  // each brings its worker back after a kill
  for (const char* name : {"a", "b"})
    nannies.push_back(start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", name}));
  Client client(scheduler.address);
  client.wait_for_workers(2, 30s);
  // Larger than a result sent along with its notice: gather fetches it from its holder.
  const std::string expected = std::string(4000, 'X') + "!";
  auto f = client.submit({.pure = false}, shout, std::string(4000, 'x'));
  ASSERT_EQ(client.gather(f), expected);

  for (int kill = 1; kill <= 3; ++kill) {
    auto holder = holders(client, f);
    ASSERT_EQ(holder.size(), 1u) << "kill " << kill;
    auto pids = worker_pids(client);
    ASSERT_TRUE(pids.count(holder[0])) << holder[0];
    ASSERT_EQ(::kill(pids.at(holder[0]), SIGKILL), 0);
    // At once, whether or not the scheduler has noticed yet: the copy it fetches is gone,
    // and it gets the one computed again.
    EXPECT_EQ(client.gather(f), expected) << "after kill " << kill;
  }
  // Three losses, three recomputations: four times in memory.
  EXPECT_EQ(count_to(client.story(f), "memory"), 4);
  EXPECT_TRUE(workers_back(client, 2, 3)) << "the nannies did not bring both workers back";
  EXPECT_EQ(client.gather(f), expected);
}

// ---- a tree reduction while workers are killed ----

TEST(FailureRecovery, TreeReductionOf256LeavesSurvivesTwoKills) {
  auto scheduler = start_scheduler();
  std::vector<Daemon> nannies;
  for (const char* name : {"a", "b"})
    nannies.push_back(start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", name, "--nthreads", "2"}));
  Client client(scheduler.address);
  client.wait_for_workers(2, 30s);

  // 255 leaves of 5 ms each and one gate: the reduction cannot finish before the test opens it.
  Gate gate;
  std::vector<Future<int>> leaves;
  int undisturbed = 1;  // the gate's value
  for (int i = 0; i < 255; ++i) {
    leaves.push_back(client.submit(slow_triple, i, 5));
    undisturbed += 3 * i;
  }
  leaves.push_back(client.submit({.pure = false}, wait_for_file, gate.path(), kGateMs));
  Future<int> total;
  {
    std::vector<Future<int>> level = leaves;  // the inner sums' futures go once the tree is built
    while (level.size() > 1) {
      std::vector<Future<int>> next;
      for (std::size_t i = 0; i + 1 < level.size(); i += 2) next.push_back(client.submit(add_ints, level[i], level[i + 1]));
      level = std::move(next);
    }
    total = level[0];
  }
  auto done_leaves = [&] {
    return std::count_if(leaves.begin(), leaves.end(), [](const Future<int>& l) { return l.done(); });
  };
  auto kill_worker = [&](const std::string& name) {
    auto address = address_of(client, name);
    auto pids = worker_pids(client);
    ASSERT_TRUE(pids.count(address)) << name << " at '" << address << "'";
    ASSERT_EQ(::kill(pids.at(address), SIGKILL), 0);
    ASSERT_TRUE(gone(client, address));
  };

  ASSERT_TRUE(eventually([&] { return done_leaves() >= 64; }, 60s));
  kill_worker("a");
  ASSERT_TRUE(workers_back(client, 2, 1)) << "a did not come back";
  ASSERT_TRUE(eventually([&] { return done_leaves() >= 160; }, 60s));
  kill_worker("b");
  EXPECT_FALSE(total.done()) << "the gate is still closed";
  gate.open();

  EXPECT_EQ(total.result(60s), undisturbed);
  EXPECT_TRUE(workers_back(client, 2, 2));
}

}  // namespace
}  // namespace distrib::test
