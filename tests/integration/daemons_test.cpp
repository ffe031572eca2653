// dscheduler and dworker started by hand as separate processes, as on a real cluster.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <distrib/distrib.hpp>
#include <map>
#include <random>

#include "comm/connection.hpp"
#include "helpers.hpp"
#include "tasks_for_tests.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

TEST(Daemons, SchedulerAndTwoWorkersByAddress) {
  auto scheduler = start_scheduler();
  ASSERT_EQ(scheduler.address.rfind("tcp://127.0.0.1:", 0), 0u) << scheduler.address;
  // Workers are plain dworker executables: they know the functions of the preloaded library.
  auto w1 = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", "alice", "--memory-limit", "256MiB"});
  auto w2 = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", "bob", "--memory-limit", "2e9"});
  Client client(scheduler.address);
  client.wait_for_workers(2, 30s);
  EXPECT_EQ(client.n_workers(), 2u);
  // --memory-limit reaches the scheduler in the worker's own units.
  std::map<std::string, std::uint64_t> limits;
  for (const auto& w : client.scheduler_info().workers) limits[w.name] = w.memory_limit;
  EXPECT_EQ(limits["alice"], std::uint64_t{256} << 20);
  EXPECT_EQ(limits["bob"], 2'000'000'000u);

  std::vector<int> xs(1000);
  std::iota(xs.begin(), xs.end(), 0);
  auto ys = client.gather(client.map(triple, xs));
  for (std::size_t i = 0; i < xs.size(); ++i) ASSERT_EQ(ys[i], 3 * xs[i]);
  EXPECT_EQ(client.submit(shout, std::string("hi")).result(60s), "HI!");

  // A function the workers do not have fails fast, naming it.
  auto f = client.submit(inc, 1);
  try {
    f.result(30s);
    FAIL() << "expected TaskError";
  } catch (const TaskError& e) {
    EXPECT_EQ(e.remote_type(), "distrib::NoWorkerCanRun");
    EXPECT_NE(e.remote_message().find("'inc'"), std::string::npos) << e.remote_message();
  }

  client.shutdown();
  EXPECT_TRUE(scheduler.process.wait(30s));
  EXPECT_TRUE(w1.process.wait(30s));
  EXPECT_TRUE(w2.process.wait(30s));
  EXPECT_EQ(w1.process.exit_description(), "exit code 0");
  EXPECT_EQ(scheduler.process.exit_description(), "exit code 0");
}

TEST(Daemons, WorkerAndClientOverTheSchedulersUnixSocket) {
  auto name = detail::unique_unix_socket_name();
  auto scheduler = start_scheduler({"--local-socket", name});
  const auto local = detail::unix_address(name);
  auto w = start_worker(local, {"--preload", TEST_TASKS_PATH});
  Client client(local);
  EXPECT_EQ(client.scheduler_address(), local);
  client.wait_for_workers(1, 30s);
  EXPECT_EQ(client.submit(shout, std::string("unix")).result(60s), "UNIX!");
  // The worker still serves data over TCP (here on 127.0.0.1, which start_worker asks for).
  for (const auto& [address, threads] : client.nthreads()) EXPECT_EQ(address.rfind("tcp://", 0), 0u) << address;
  // And a client by TCP sees the same cluster.
  Client by_tcp(scheduler.address);
  EXPECT_EQ(by_tcp.n_workers(), 1u);
  client.shutdown();
  EXPECT_TRUE(scheduler.process.wait(30s));
  EXPECT_TRUE(w.process.wait(30s));
  EXPECT_EQ(w.process.exit_description(), "exit code 0");
}

// A worker listening on every interface that reaches its scheduler by a Unix socket has no
// interface to copy: it advertises the default route's, and its data port answers there.
TEST(Daemons, WorkerOnEveryInterfaceOverAUnixSocketAdvertisesAReachableAddress) {
  auto name = detail::unique_unix_socket_name();
  auto scheduler = start_scheduler({"--local-socket", name});
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  auto w = detail::ChildProcess::spawn(
      {DWORKER_PATH, detail::unix_address(name), "--preload", TEST_TASKS_PATH, "--host", "0.0.0.0", "--insecure", "--nthreads", "1"},
      {}, {}, fds[1]);
  close(fds[1]);
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  auto workers = client.nthreads();
  ASSERT_EQ(workers.size(), 1u);
  const auto& address = workers.begin()->first;
  EXPECT_EQ(detail::parse_address(address).first, detail::default_route_ip()) << address;
  // A result over 1 KiB is fetched from that data port, not sent with the notice.
  const std::string big(100'000, 'a');
  EXPECT_EQ(client.submit(shout, big).result(60s), std::string(100'000, 'A') + "!");
  close(fds[0]);
}

TEST(Daemons, PreloadBeforeTheAddress) {
  auto scheduler = start_scheduler();
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  auto w = detail::ChildProcess::spawn(
      {DWORKER_PATH, "--preload", TEST_TASKS_PATH, scheduler.address, "--host", "127.0.0.1", "--nthreads", "1"}, {}, {},
      fds[1]);
  close(fds[1]);
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  EXPECT_EQ(client.submit(triple, 3).result(60s), 9);
  close(fds[0]);
}

TEST(Daemons, SchedulingPolicyOptions) {
  auto scheduler = start_scheduler({"--worker-saturation", "inf", "--no-work-stealing"});
  auto w = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH});
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  std::vector<int> xs(500);
  std::iota(xs.begin(), xs.end(), 0);
  auto fs = client.map(triple, xs);
  // Without queuing every root task goes to the worker at once.
  EXPECT_TRUE(eventually([&] {
    auto info = client.scheduler_info();
    return info.tasks.count("queued") == 0 && info.tasks["processing"] + info.tasks["memory"] == 500;
  }));
  auto ys = client.gather(fs);
  EXPECT_EQ(ys[499], 1497);
}

TEST(Daemons, WorkerWithoutPreloadCannotRunLibraryTasks) {
  auto scheduler = start_scheduler();
  auto w = start_worker(scheduler.address);
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  EXPECT_THROW(client.submit(triple, 2).result(30s), TaskError);
}

TEST(Daemons, SchedulerExitsCleanlyOnSigterm) {
  auto scheduler = start_scheduler();
  scheduler.process.signal(SIGTERM);
  ASSERT_TRUE(scheduler.process.wait(30s));
  EXPECT_EQ(scheduler.process.exit_description(), "exit code 0");
}

TEST(Daemons, WorkerExitsCleanlyOnSigint) {
  auto scheduler = start_scheduler();
  auto w = start_worker(scheduler.address);
  w.process.signal(SIGINT);
  ASSERT_TRUE(w.process.wait(30s));
  EXPECT_EQ(w.process.exit_description(), "exit code 0");
}

TEST(Daemons, BadOptionsAndUnreachableSchedulerExitNonZero) {
  auto bad = run_command({DSCHEDULER_PATH, "--no-such-option"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("no-such-option"), std::string::npos) << bad.output;

  auto bad_port = run_command({DSCHEDULER_PATH, "--port", "99999"});
  EXPECT_NE(bad_port.exit_code, 0);

  auto bad_saturation = run_command({DSCHEDULER_PATH, "--worker-saturation", "0"});
  EXPECT_NE(bad_saturation.exit_code, 0);
  EXPECT_NE(bad_saturation.output.find("must be positive"), std::string::npos) << bad_saturation.output;

  auto no_address = run_command({DWORKER_PATH});
  EXPECT_NE(no_address.exit_code, 0);

  // Port 1 on loopback refuses connections: the worker gives up after its timeout.
  auto unreachable = run_command({DWORKER_PATH, "tcp://127.0.0.1:1", "--host", "127.0.0.1", "--timeout", "0.5"});
  EXPECT_NE(unreachable.exit_code, 0);
  EXPECT_NE(unreachable.output.find("cannot connect"), std::string::npos) << unreachable.output;

  auto bad_memory = run_command({DWORKER_PATH, "tcp://127.0.0.1:1", "--memory-limit", "lots"});
  EXPECT_NE(bad_memory.exit_code, 0);
  EXPECT_NE(bad_memory.output.find("--memory-limit 'lots'"), std::string::npos) << bad_memory.output;

  auto bad_preload = run_command({DWORKER_PATH, "tcp://127.0.0.1:1", "--preload", "/no/such/lib.so"});
  EXPECT_NE(bad_preload.exit_code, 0);
  EXPECT_NE(bad_preload.output.find("cannot preload"), std::string::npos) << bad_preload.output;

  // A busy port: the second scheduler on the same port fails with a message.
  auto first = start_scheduler();
  auto port = std::to_string(detail::parse_address(first.address).second);
  auto second = run_command({DSCHEDULER_PATH, "--host", "127.0.0.1", "--port", port});
  EXPECT_NE(second.exit_code, 0);
  EXPECT_NE(second.output.find("cannot listen"), std::string::npos) << second.output;
}

TEST(Daemons, ClientToNothingFailsWithCommError) {
  EXPECT_THROW(Client("tcp://127.0.0.1:1", {.connect_timeout = 200ms}), CommError);
  EXPECT_THROW(Client("not an address"), std::invalid_argument);
  EXPECT_THROW(Client("unix://@distrib-nobody-listens-here", {.connect_timeout = 200ms}), CommError);
  EXPECT_THROW(Client("unix:///tmp/a-file.sock"), std::invalid_argument);  // only abstract names
  EXPECT_THROW(Client("unix://@" + std::string(200, 'x')), std::invalid_argument);  // too long for a socket name
}

// Bad bytes close that one connection; the daemon keeps serving everyone else.
class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    scheduler_ = start_scheduler();
    worker_ = start_worker(scheduler_.address, {"--preload", TEST_TASKS_PATH});
    client_ = std::make_unique<Client>(scheduler_.address);
    client_->wait_for_workers(1, 30s);
  }
  void expect_still_serving() {
    EXPECT_EQ(client_->submit(triple, 5).result(60s), 15);
    Client fresh(scheduler_.address);
    EXPECT_EQ(fresh.submit(triple, 7).result(60s), 21);
  }
  // Every port that accepts connections: the scheduler's and the worker's data port.
  std::vector<std::string> ports() { return {scheduler_.address, worker_.address}; }
  Daemon scheduler_;
  Daemon worker_;
  std::unique_ptr<Client> client_;
};

TEST_F(BadInput, RandomBytesCloseTheConnection) {
  std::mt19937 rng(42);
  for (const auto& address : ports()) {
    for (int round = 0; round < 5; ++round) {
      std::string junk(1 + rng() % 4096, '\0');
      for (auto& c : junk) c = static_cast<char>(rng());
      // Start with a plausible prefix now and then so the header parser is exercised too.
      if (round % 2 == 1) {
        std::uint32_t header = 64, frames = 0;
        std::memcpy(junk.data(), &header, 4);
        if (junk.size() >= 8) std::memcpy(junk.data() + 4, &frames, 4);
      }
      auto r = raw_exchange(address, junk, 30s);
      EXPECT_TRUE(r.closed) << address << " kept a connection that sent junk";
    }
  }
  expect_still_serving();
}

TEST_F(BadInput, WrongProtocolVersionIsRejectedWithAReason) {
  for (const auto& address : ports()) {
    auto r = raw_exchange(address, framed_handshake(999, 0 /* client */), 30s);
    EXPECT_TRUE(r.closed);
    EXPECT_NE(r.received.find("protocol version 999"), std::string::npos) << address;
  }
  expect_still_serving();
}

TEST_F(BadInput, OversizedFrameClosesTheConnection) {
  for (const auto& address : ports()) {
    // A valid-looking prefix: 8-byte header, one frame claiming 1 TiB.
    std::string bytes(16, '\0');
    std::uint32_t header = 8, frames = 1;
    std::uint64_t size = std::uint64_t{1} << 40;
    std::memcpy(bytes.data(), &header, 4);
    std::memcpy(bytes.data() + 4, &frames, 4);
    std::memcpy(bytes.data() + 8, &size, 8);
    auto r = raw_exchange(address, bytes, 30s);
    EXPECT_TRUE(r.closed) << address;
    // And a header above the limit.
    std::string big(8, '\0');
    std::uint32_t huge_header = 0x7ffffff8;
    std::memcpy(big.data(), &huge_header, 4);
    EXPECT_TRUE(raw_exchange(address, big, 30s).closed) << address;
  }
  expect_still_serving();
}

TEST_F(BadInput, ClientDisconnectingMidComputationLeavesTheSchedulerHealthy) {
  {
    Client leaving(scheduler_.address);
    std::vector<int> xs(2000);
    std::iota(xs.begin(), xs.end(), 0);
    auto fs = leaving.map(triple, xs);
    // Leaves without waiting: the scheduler must release its keys and carry on.
  }
  expect_still_serving();
}

}  // namespace
}  // namespace distrib::test
