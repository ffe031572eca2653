// LocalCluster in both modes: submit / map / gather, dependencies, errors, shutdown and
// the guarantee that no child process outlives the cluster.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <distrib/distrib.hpp>
#include <fstream>
#include <numeric>
#include <string>
#include <thread>

#include "helpers.hpp"
#include "tasks_for_tests.hpp"

namespace distrib::test {
namespace {

class LocalClusterTest : public ::testing::TestWithParam<bool> {};

TEST_P(LocalClusterTest, SubmitMapGatherAndDependencies) {
  LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .processes = GetParam()});
  Client client(cluster);
  EXPECT_EQ(client.n_workers(), 2u);

  Future<int> f = client.submit(inc, 10);
  EXPECT_EQ(f.result(60s), 11);
  EXPECT_TRUE(f.done());
  EXPECT_EQ(f.key().rfind("inc-", 0), 0u);

  std::vector<int> xs(10'000);
  std::iota(xs.begin(), xs.end(), 0);
  auto fs = client.map(inc, xs);
  ASSERT_EQ(fs.size(), xs.size());
  auto ys = client.gather(fs);
  ASSERT_EQ(ys.size(), xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) ASSERT_EQ(ys[i], xs[i] + 1) << "at " << i;

  // A future as an argument: the dependent runs where (or after) its input is.
  auto a = client.submit(add, 1.5, 2);
  auto b = client.submit(add, a, a);
  auto c = client.submit(add, b, 0.25);
  EXPECT_DOUBLE_EQ(c.result(60s), 7.25);

  // A large value moves between workers and comes back intact.
  auto v = client.submit(make_vector, 2'000'000);
  auto s = client.submit(sum_vector, v);
  EXPECT_DOUBLE_EQ(s.result(60s), 2'000'000.0 * 1'999'999.0 / 2);
  auto back = v.result(60s);
  ASSERT_EQ(back.size(), 2'000'000u);
  EXPECT_EQ(back[123'456], 123'456.0);
}

TEST_P(LocalClusterTest, TaskExceptionReachesTheClient) {
  LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1, .processes = GetParam()});
  Client client(cluster);
  auto f = client.submit(fail_with, std::string("boom"));
  try {
    f.result(60s);
    FAIL() << "expected TaskError";
  } catch (const TaskError& e) {
    EXPECT_EQ(e.key(), f.key());
    EXPECT_EQ(e.remote_type(), "std::runtime_error");
    EXPECT_EQ(e.remote_message(), "boom");
    EXPECT_NE(std::string(e.what()).find("boom"), std::string::npos);
  }
  EXPECT_EQ(f.status(), FutureStatus::error);
  // Dependents of a failed task fail with the same error, and gather raises it.
  auto g = client.submit(add, client.submit(add, 1.0, 2.0), 3.0);
  EXPECT_DOUBLE_EQ(g.result(60s), 6.0);
  auto bad = client.submit(inc, client.submit(fail_with, std::string("deep")));
  EXPECT_THROW(client.gather(std::vector<Future<int>>{bad}), TaskError);
  // The cluster still works afterwards.
  EXPECT_EQ(client.submit(inc, 1).result(60s), 2);
}

TEST_P(LocalClusterTest, ResultTimeoutAndShutdown) {
  LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1, .processes = GetParam()});
  Client client(cluster);
  auto slow = client.submit(sleep_ms, 2000);
  EXPECT_THROW(slow.result(10ms), TimeoutError);
  EXPECT_FALSE(slow.wait_for(1ms));
  auto children = child_pids(getpid());
  client.shutdown();
  client.shutdown();  // idempotent
  for (int pid : children) EXPECT_FALSE(process_alive(pid)) << pid;
  EXPECT_THROW(client.submit(inc, 1), CommError);
}

// Sockets bound to this process's LocalCluster names ("@distrib-<pid>-..."), in /proc/net/unix:
// the scheduler's listening socket and the scheduler's end of each accepted connection.
int local_cluster_unix_sockets() {
  std::ifstream table("/proc/net/unix");
  const std::string prefix = "@distrib-" + std::to_string(getpid()) + "-";
  int n = 0;
  for (std::string line; std::getline(table, line);)
    if (line.find(prefix) != std::string::npos) ++n;
  return n;
}

TEST_P(LocalClusterTest, WorkersAndClientsReachTheSchedulerOverAUnixSocket) {
  const int before = local_cluster_unix_sockets();
  LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .processes = GetParam()});
  Client client(cluster);
  EXPECT_EQ(client.submit(inc, 1).result(60s), 2);
  // The address everyone is shown stays TCP, reachable from other hosts and tools.
  EXPECT_EQ(cluster.scheduler_address().rfind("tcp://", 0), 0u);
  EXPECT_EQ(client.scheduler_address(), cluster.scheduler_address());
  // The listening socket and the scheduler's end of each connection (two workers, this
  // client) carry the name; the connecting ends are unnamed. Over TCP there would be 1.
  // Threads mode uses no socket at all: inproc://.
  EXPECT_EQ(local_cluster_unix_sockets() - before, GetParam() ? 4 : 0);
  // A client that connects by the TCP address still works next to them.
  Client by_tcp(cluster.scheduler_address());
  EXPECT_EQ(by_tcp.submit(inc, 2).result(60s), 3);
}

INSTANTIATE_TEST_SUITE_P(Modes, LocalClusterTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "processes" : "threads"; });

TEST(LocalClusterProcesses, DestructorLeavesNoChildProcess) {
  std::vector<int> children;
  {
    LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1});
    children = child_pids(getpid());
    EXPECT_EQ(children.size(), 3u);  // scheduler + 2 workers
  }
  for (int pid : children) EXPECT_FALSE(process_alive(pid)) << pid;
}

TEST(LocalClusterProcesses, ChildrenDieWhenTheParentIsKilled) {
  // orphan_helper starts a LocalCluster and waits; SIGKILL gives it no chance to clean up.
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  auto helper = detail::ChildProcess::spawn({ORPHAN_HELPER_PATH}, {}, {}, fds[1]);
  close(fds[1]);
  std::string out;
  char buf[256];
  while (out.find('\n') == std::string::npos) {
    auto n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  close(fds[0]);
  ASSERT_EQ(out.rfind("ready ", 0), 0u) << out;
  auto grandchildren = child_pids(helper.pid());
  ASSERT_EQ(grandchildren.size(), 3u);
  helper.signal(SIGKILL);
  ASSERT_TRUE(helper.wait(30s));
  EXPECT_TRUE(eventually([&] {
    for (int pid : grandchildren)
      if (process_alive(pid)) return false;
    return true;
  })) << "a LocalCluster child outlived its killed parent";
}

TEST(LocalClusterProcesses, SurvivesTheThreadThatCreatedIt) {
  std::unique_ptr<LocalCluster> cluster;
  std::thread([&] { cluster = std::make_unique<LocalCluster>(LocalClusterOptions{.n_workers = 1}); }).join();
  Client client(*cluster);
  EXPECT_EQ(client.submit(inc, 1).result(60s), 2);
}

TEST(LocalClusterThreads, ManyLargeArgumentsInOneBatch) {
  LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .processes = false});
  Client client(cluster);
  // 5000 values of 8 KB each: more out-of-band frames than a small limit would allow.
  std::vector<std::vector<double>> inputs(5000, std::vector<double>(1024, 0.5));
  auto sums = client.gather(client.map(sum_vector, inputs));
  ASSERT_EQ(sums.size(), 5000u);
  for (double s : sums) ASSERT_DOUBLE_EQ(s, 512.0);
}

TEST(LocalClusterThreads, ResultAfterCloseRaisesInsteadOfHanging) {
  LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1, .processes = false});
  Client client(cluster);
  auto f = client.submit(inc, 1);
  ASSERT_EQ(f.result(60s), 2);
  client.close();
  EXPECT_THROW(f.result(60s), CommError);
  EXPECT_THROW(client.gather(std::vector<Future<int>>{f}), CommError);
}

TEST(LocalClusterThreads, DefaultsFollowDask) {
  LocalCluster cluster({.processes = false});
  EXPECT_GE(cluster.n_workers(), 1);
  EXPECT_GE(cluster.threads_per_worker(), 1);
  Client client(cluster);
  EXPECT_EQ(client.submit(inc, 41).result(60s), 42);
}

}  // namespace
}  // namespace distrib::test
