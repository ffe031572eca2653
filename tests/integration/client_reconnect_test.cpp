// A client whose scheduler connection drops reconnects and re-attaches to its futures; the
// scheduler keeps a vanished client's keys for its grace period; a client that cannot
// reconnect in time fails its pending futures with CommError. The connection is cut by a
// TCP proxy between the client and a real dscheduler: nothing is killed.
#include <gtest/gtest.h>

#include <distrib/distrib.hpp>

#include "helpers.hpp"
#include "tcp_proxy.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

using Clock = std::chrono::steady_clock;

std::size_t tasks_known(Client& observer) {
  std::size_t n = 0;
  for (const auto& [state, count] : observer.scheduler_info().tasks) n += count;
  return n;
}

std::size_t tasks_in(Client& observer, const std::string& state) {
  auto tasks = observer.scheduler_info().tasks;
  auto it = tasks.find(state);
  return it == tasks.end() ? 0 : it->second;
}

struct ClientReconnect : ::testing::Test {
  void start(const std::vector<std::string>& scheduler_args = {}) {
    scheduler = start_scheduler(scheduler_args);
    worker = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH});
    proxy = std::make_unique<TcpProxy>(scheduler.address);
  }
  Daemon scheduler;
  Daemon worker;
  std::unique_ptr<TcpProxy> proxy;
};

TEST_F(ClientReconnect, PendingFutureCompletesAfterReattach) {
  start();
  Client client(proxy->address());
  client.wait_for_workers(1, 30s);
  auto f = client.submit(slow_triple, 7, 800);
  Client observer(scheduler.address);
  ASSERT_TRUE(eventually([&] { return tasks_in(observer, "processing") == 1; }));
  proxy->cut();  // mid-computation
  EXPECT_EQ(f.result(60s), 21);
  EXPECT_GE(proxy->forwarded(), 2);  // it really came back on a new connection
  // The connection works as before: new work, and a result fetched from the worker.
  EXPECT_EQ(client.submit(triple, 5).result(60s), 15);
  EXPECT_EQ(client.gather(std::vector<Future<int>>{f}), std::vector<int>{21});
}

TEST_F(ClientReconnect, FutureFinishedDuringTheCutIsDeliveredAndQueuedWorkIsSent) {
  start();
  Client client(proxy->address());
  client.wait_for_workers(1, 30s);
  auto f = client.submit(slow_triple, 2, 300);
  Client observer(scheduler.address);
  ASSERT_TRUE(eventually([&] { return tasks_in(observer, "processing") == 1; }));
  proxy->block();
  // Finished while the client was away: the scheduler had no connection to tell it on.
  ASSERT_TRUE(eventually([&] { return tasks_in(observer, "memory") == 1; }));
  EXPECT_FALSE(f.done());
  // Submitted while disconnected: waits in the outbox, in order, for the re-attach.
  auto g = client.submit(triple, 4);
  auto h = client.submit(triple, g);
  proxy->unblock();
  EXPECT_EQ(f.result(60s), 6);
  EXPECT_EQ(h.result(60s), 36);
  EXPECT_EQ(g.result(60s), 12);
}

TEST_F(ClientReconnect, SchedulerReleasesAVanishedClientsKeysAfterTheGraceNotBefore) {
  const auto grace = 3s;
  start({"--client-grace", "3"});
  Client observer(scheduler.address);
  auto client = std::make_unique<Client>(proxy->address(), ClientOptions{.reconnect_timeout = 120s});
  client->wait_for_workers(1, 30s);
  auto f = client->submit(triple, 11);
  ASSERT_EQ(f.result(60s), 33);
  ASSERT_EQ(tasks_known(observer), 1u);
  proxy->block();  // the client keeps trying, and never gets through
  auto cut_at = Clock::now();
  ASSERT_TRUE(eventually([&] { return tasks_known(observer) == 0; }, 60s));
  auto released_after = Clock::now() - cut_at;
  EXPECT_GE(released_after, grace - 200ms);  // kept through the grace period
  // Its futures stay usable as far as the client knows; closing it ends the attempts.
  client.reset();
}

TEST_F(ClientReconnect, ReattachWithinTheGraceKeepsTheClientsKeysPastTheGrace) {
  start({"--client-grace", "2"});
  Client observer(scheduler.address);
  Client client(proxy->address());
  client.wait_for_workers(1, 30s);
  auto f = client.submit(triple, 12);
  ASSERT_EQ(f.result(60s), 36);
  proxy->block();
  proxy->unblock();
  ASSERT_TRUE(eventually([&] { return proxy->forwarded() >= 2; }));  // re-attached
  EXPECT_EQ(client.who_has(std::vector<Future<int>>{f}).at(f.key()).size(), 1u);
  // Outlast the grace period on the cluster's own clock: the re-attached client's key stays.
  auto slow = observer.submit(slow_triple, 1, 2500);  // kept: its result counts below
  EXPECT_EQ(slow.result(60s), 3);
  EXPECT_EQ(tasks_in(observer, "memory"), 2u);  // the observer's and the re-attached client's
  EXPECT_EQ(client.gather(std::vector<Future<int>>{f}), std::vector<int>{36});
}

TEST_F(ClientReconnect, ClientThatCannotReconnectFailsPendingFuturesWithCommError) {
  start();
  Client client(proxy->address(), ClientOptions{.reconnect_timeout = 1500ms});
  client.wait_for_workers(1, 30s);
  auto f = client.submit(slow_triple, 1, 10'000);
  Client observer(scheduler.address);
  ASSERT_TRUE(eventually([&] { return tasks_in(observer, "processing") == 1; }));
  proxy->block();
  auto cut_at = Clock::now();
  try {
    f.result(60s);
    FAIL() << "expected CommError";
  } catch (const CommError& e) {
    EXPECT_NE(std::string(e.what()).find("could not reconnect within 1500 ms"), std::string::npos) << e.what();
  }
  EXPECT_LT(Clock::now() - cut_at, 30s);
  EXPECT_EQ(f.status(), FutureStatus::error);
  EXPECT_THROW(client.submit(triple, 1), CommError);
}

TEST_F(ClientReconnect, ClosedClientIsReleasedAtOnceDespiteTheGrace) {
  start({"--client-grace", "600"});
  Client observer(scheduler.address);
  {
    Client client(proxy->address());
    client.wait_for_workers(1, 30s);
    ASSERT_EQ(client.submit(triple, 3).result(60s), 9);
    ASSERT_EQ(tasks_known(observer), 1u);
  }  // closes: a goodbye, not a drop
  EXPECT_TRUE(eventually([&] { return tasks_known(observer) == 0; }, 30s));
}

}  // namespace
}  // namespace distrib::test
