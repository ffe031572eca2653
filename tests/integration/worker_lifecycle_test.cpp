// Real dscheduler and dworker processes: running tasks nobody wants are asked to stop (a
// cancelled future, a client gone, SIGTERM), and a worker outlives a scheduler restart but
// not a scheduler that never comes back.
#include <gtest/gtest.h>
#include <signal.h>

#include <distrib/distrib.hpp>

#include "comm/endpoint.hpp"
#include "helpers.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

using Clock = std::chrono::steady_clock;
// The long tasks would run this long if nothing stopped them: every bound below is far less.
constexpr int kLongTaskMs = 120'000;

Watched start_watched_worker(const std::string& scheduler, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv{DWORKER_PATH, scheduler, "--host", "127.0.0.1", "--nthreads", "1", "--preload",
                                TEST_TASKS_PATH};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto w = spawn_watched(argv);
  if (w.wait_for("distrib worker at ") == std::string::npos)
    throw std::runtime_error("the worker did not start: " + w.output);
  return w;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

TEST(WorkerLifecycle, CancellingARunningTaskStopsItThroughItsStopToken) {
  auto scheduler = start_scheduler();
  auto worker = start_watched_worker(scheduler.address);
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  auto long_task = client.submit(wait_for_stop, kLongTaskMs);
  ASSERT_NE(worker.wait_for("started wait_for_stop"), std::string::npos) << worker.output;
  auto cancelled_at = Clock::now();
  long_task.cancel();
  // One thread: the next task runs only once the long one returned.
  EXPECT_EQ(client.submit(triple, 2).result(60s), 6);
  EXPECT_LT(seconds_since(cancelled_at), 60.0);
}

TEST(WorkerLifecycle, ATaskPollingCancelledStopsWhenItsFutureIsCancelled) {
  auto scheduler = start_scheduler();
  auto worker = start_watched_worker(scheduler.address);
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  auto long_task = client.submit(poll_cancelled, kLongTaskMs);
  ASSERT_NE(worker.wait_for("started poll_cancelled"), std::string::npos) << worker.output;
  client.cancel(long_task);
  EXPECT_EQ(client.submit(triple, 3).result(60s), 9);
}

TEST(WorkerLifecycle, TheTaskOfAClientThatDisconnectsIsStopped) {
  auto scheduler = start_scheduler();
  auto worker = start_watched_worker(scheduler.address);
  {
    Client gone(scheduler.address);
    gone.wait_for_workers(1, 30s);
    auto f = gone.submit(wait_for_stop, kLongTaskMs);
    ASSERT_NE(worker.wait_for("started wait_for_stop"), std::string::npos) << worker.output;
  }  // the client disconnects with its future pending
  Client next(scheduler.address);
  EXPECT_EQ(next.submit(triple, 4).result(60s), 12);
}

TEST(WorkerLifecycle, SigtermStopsACooperativeTaskAndExitsAtOnce) {
  auto scheduler = start_scheduler();
  // A close timeout far longer than the test's bound: the task itself must return.
  auto worker = start_watched_worker(scheduler.address, {"--close-timeout", "600"});
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  auto f = client.submit(wait_for_stop, kLongTaskMs);
  ASSERT_NE(worker.wait_for("started wait_for_stop"), std::string::npos) << worker.output;
  worker.process.signal(SIGTERM);
  ASSERT_TRUE(worker.process.wait(60s)) << "the worker waited for its task";
  EXPECT_EQ(worker.process.exit_description(), "exit code 0");
}

TEST(WorkerLifecycle, SigtermExitsWithinTheCloseTimeoutThoughATaskIgnoresTheStop) {
  auto scheduler = start_scheduler();
  auto worker = start_watched_worker(scheduler.address, {"--close-timeout", "1"});
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  auto f = client.submit(stubborn_sleep_ms, kLongTaskMs);
  ASSERT_NE(worker.wait_for("started stubborn_sleep_ms"), std::string::npos) << worker.output;
  auto signalled = Clock::now();
  worker.process.signal(SIGTERM);
  ASSERT_TRUE(worker.process.wait(60s)) << "the worker waited out its " << kLongTaskMs << " ms task";
  EXPECT_EQ(worker.process.exit_description(), "exit code 0");
  EXPECT_GE(seconds_since(signalled), 1.0);  // it did give the task its close timeout
  worker.wait_for("exiting without them", 5s);
  EXPECT_NE(worker.output.find("exiting without them"), std::string::npos) << worker.output;
}

TEST(WorkerLifecycle, AWorkerRegistersAgainWithARestartedSchedulerOnTheSamePort) {
  auto first = start_scheduler();
  const auto port = detail::parse_address(first.address).second;
  auto worker = start_watched_worker(first.address, {"--death-timeout", "120"});
  {
    Client client(first.address);
    client.wait_for_workers(1, 30s);
    auto kept = client.submit(SubmitOptions{.pure = false}, triple, 5);
    ASSERT_EQ(kept.result(60s), 15);
    first.process.signal(SIGKILL);
    ASSERT_TRUE(first.process.wait(30s));
  }
  ASSERT_NE(worker.wait_for("lost the scheduler"), std::string::npos) << worker.output;
  auto second = start_scheduler_at(port);
  ASSERT_EQ(second.address, first.address);
  Client client(second.address);
  client.wait_for_workers(1, 60s);
  // It offers the result it kept (what the scheduler does with it is the scheduler's).
  EXPECT_NE(worker.wait_for("registering again with 1 held keys"), std::string::npos) << worker.output;
  EXPECT_EQ(client.submit(triple, 7).result(60s), 21);
}

// SIGSTOPped past the scheduler's TTL, the worker is removed; woken up, it reads reregister,
// drops everything and joins again as a new worker.
// It was disabled after two failures in full parallel suite runs made while branches were
// being merged. The first (63 s) ran this test as first written, before dworker became a
// nanny by default: SIGSTOP paused the nanny, the worker under it went on heartbeating and
// was never removed (60 s), and the teardown's SIGTERM waited out its 3 s grace on the
// stopped nanny. The merge added --no-nanny, and the first check below makes that mistake
// fail at once and say so. The second (61 s) ran an uncommitted merge tree whose output is
// lost; the test has passed 37 times in a row beside full parallel suite runs since, and
// prints the worker's log if it fails again.
TEST(WorkerLifecycle, APausedWorkerRemovedByTheSchedulerJoinsAgainAsANewWorker) {
  auto scheduler = start_scheduler({"--worker-ttl", "2"});
  auto worker = start_watched_worker(scheduler.address, {"--name", "sleeper", "--no-nanny"});  // SIGSTOP the worker itself
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  auto log = [&] {
    worker.wait_for("\n(nothing more)\n", 200ms);  // whatever it wrote meanwhile
    return worker.output;
  };
  ASSERT_EQ(client.submit({.pure = false}, process_id, 0).result(60s), worker.process.pid())
      << "tasks run in another process than the one this test pauses";
  auto held = client.submit(triple, 5);
  ASSERT_EQ(held.result(60s), 15);
  ASSERT_EQ(::kill(worker.process.pid(), SIGSTOP), 0);
  ASSERT_TRUE(eventually([&] { return client.n_workers() == 0; }, 60s)) << "the paused worker was not removed";
  ASSERT_EQ(::kill(worker.process.pid(), SIGCONT), 0);
  EXPECT_NE(worker.wait_for("registering again as a new worker", 60s), std::string::npos) << worker.output;
  ASSERT_NO_THROW(client.wait_for_workers(1, 60s)) << log();
  EXPECT_EQ(client.submit(triple, 8).result(60s), 24) << log();
  EXPECT_EQ(held.result(60s), 15);  // recomputed if it was needed: the old copy was dropped
}

TEST(WorkerLifecycle, AWorkerWithAShortDeathTimeoutExitsWithCode1WhenTheSchedulerDies) {
  auto scheduler = start_scheduler();
  auto worker = start_watched_worker(scheduler.address, {"--death-timeout", "1"});
  {
    Client client(scheduler.address);
    client.wait_for_workers(1, 30s);
  }
  scheduler.process.signal(SIGKILL);
  ASSERT_TRUE(scheduler.process.wait(30s));
  ASSERT_TRUE(worker.process.wait(60s));
  EXPECT_EQ(worker.process.exit_description(), "exit code 1");
}

}  // namespace
}  // namespace distrib::test
