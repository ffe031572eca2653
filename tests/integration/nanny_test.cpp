// The nanny: dworker and LocalCluster supervise their worker processes and restart the ones
// that die (src/cluster/nanny.hpp). Real dscheduler / dworker processes on OS-chosen ports;
// every wait is on an event (an exit, a registration, a future) with a generous deadline.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <distrib/distrib.hpp>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "cluster/nanny.hpp"
#include "cluster/worker_exit.hpp"
#include "comm/connection.hpp"
#include "comm/message.hpp"
#include "helpers.hpp"
#include "http_client.hpp"
#include "tasks_for_tests.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

using Clock = std::chrono::steady_clock;


int pid_by_task(Client& client) { return client.submit({.pure = false}, process_id, 0).result(60s); }

// The one worker, once the scheduler knows it with at least `restarts` restarts.
std::optional<WorkerDescription> worker_with_restarts(Client& client, unsigned restarts) {
  std::optional<WorkerDescription> found;
  eventually([&] {
    auto workers = client.scheduler_info().workers;
    if (workers.size() == 1 && workers[0].restarts >= restarts) found = workers[0];
    return found.has_value();
  });
  return found;
}

// SIGKILLs a process at the end of the scope if it is still there (a test that failed
// before its worker went away leaves no process behind).
struct KillOnExit {
  int pid = -1;
  ~KillOnExit() {
    if (pid > 0 && process_alive(pid)) kill(pid, SIGKILL);
  }
};

// Sets (or unsets, with nullptr) an environment variable for the scope of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_.c_str(), old_->c_str(), 1);
    else unsetenv(name_.c_str());
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

int dashboard_port(const Client& client) {
  const auto link = client.dashboard_link();  // http://127.0.0.1:PORT/status
  const auto colon = link.rfind(':');
  return std::stoi(link.substr(colon + 1, link.find('/', colon) - colon - 1));
}

TEST(Nanny, KilledWorkerComesBackReRegistersAndRunsTasks) {
  auto scheduler = start_scheduler({"--dashboard-address", "127.0.0.1:0"});
  auto nanny = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", "carol"});
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  ASSERT_EQ(client.scheduler_info().workers.at(0).restarts, 0u);

  // Tasks run in the nanny's child, not in the dworker process itself.
  const int first = pid_by_task(client);
  ASSERT_EQ(worker_process_of(nanny), first);
  ASSERT_NE(first, nanny.process.pid());
  KillOnExit cleanup{first};
  ASSERT_EQ(kill(first, SIGKILL), 0);

  auto back = worker_with_restarts(client, 1);
  ASSERT_TRUE(back) << "the worker did not come back";
  EXPECT_EQ(back->name, "carol");
  EXPECT_EQ(back->restarts, 1u);
  const int second = pid_by_task(client);
  EXPECT_NE(second, first);
  EXPECT_EQ(worker_process_of(nanny), second);
  EXPECT_EQ(client.submit(triple, 5).result(60s), 15);
  EXPECT_TRUE(nanny.process.running());

  // The dashboard shows it too: per worker, and as a cluster total in /metrics.
  const int port = dashboard_port(client);
  nlohmann::json row;
  EXPECT_TRUE(eventually([&] {
    auto r = http_get(port, "/api/v1/workers");
    if (!r || r->status != 200) return false;
    auto workers = nlohmann::json::parse(r->body)["workers"];
    if (workers.size() != 1) return false;
    row = workers[0];
    return row["restarts"] == 1;
  })) << row.dump();
  EXPECT_EQ(row["nanny"], true);
  std::string metrics;
  EXPECT_TRUE(eventually([&] {
    auto r = http_get(port, "/metrics");
    metrics = r ? r->body : "";
    return metrics.find("\ndistrib_worker_restarts_total 1\n") != std::string::npos;
  })) << metrics;
  EXPECT_NE(metrics.find("distrib_worker_restarts{worker=\"" + back->address + "\",name=\"carol\"} 1"), std::string::npos)
      << metrics;

  // A clean shutdown ends the worker and its nanny for good, with exit code 0.
  client.shutdown();
  ASSERT_TRUE(nanny.process.wait(30s));
  EXPECT_EQ(nanny.process.exit_description(), "exit code 0");
}

TEST(Nanny, RestartedWorkerSurvivesAStdoutNobodyReadsAnyMore) {
  auto scheduler = start_scheduler();
  auto nanny = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH});
  // Whoever started it read the address line and went away.
  close(nanny.stdout_fd);
  nanny.stdout_fd = -1;
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  const int first = pid_by_task(client);
  KillOnExit cleanup{first};
  ASSERT_EQ(kill(first, SIGKILL), 0);
  ASSERT_TRUE(worker_with_restarts(client, 1));
  // The fresh worker printed its address into the closed pipe when it registered, before
  // this task: had SIGPIPE killed it, the task would run on a later restart.
  EXPECT_EQ(client.submit(triple, 2).result(60s), 6);
  EXPECT_EQ(client.scheduler_info().workers.at(0).restarts, 1u);
}

TEST(Nanny, TaskThatKeepsCrashingItsWorkerErrsAndTheWorkerComesBackEachTime) {
  auto scheduler = start_scheduler({"--allowed-failures", "2"});
  auto nanny = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH});
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  // It aborts the worker, runs again on the restarted one, aborts it again: KilledWorker.
  auto crash = client.submit(crash_worker, 1);
  EXPECT_THROW(crash.result(120s), KilledWorker);
  auto back = worker_with_restarts(client, 2);
  ASSERT_TRUE(back) << "the worker did not come back after its second crash";
  EXPECT_EQ(client.submit(triple, 3).result(60s), 9);
  EXPECT_TRUE(nanny.process.running());
}

TEST(Nanny, WorkerEnvironmentHasOneThreadPerLibraryUnlessTheUserSetIt) {
  ScopedEnv omp("OMP_NUM_THREADS", nullptr);
  ScopedEnv mkl("MKL_NUM_THREADS", "");  // empty counts as unset
  ScopedEnv openblas("OPENBLAS_NUM_THREADS", "3");
  auto scheduler = start_scheduler();
  auto nanny = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH});
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  EXPECT_EQ(client.submit(env_value, std::string("OMP_NUM_THREADS")).result(60s), "1");
  EXPECT_EQ(client.submit(env_value, std::string("MKL_NUM_THREADS")).result(60s), "1");
  EXPECT_EQ(client.submit(env_value, std::string("OPENBLAS_NUM_THREADS")).result(60s), "3");
  // The restart count reached the worker and left its environment (its tasks' children
  // must not take it for their own).
  EXPECT_EQ(client.submit(env_value, std::string("DISTRIB_NANNY_RESTARTS")).result(60s), "<unset>");
}

TEST(Nanny, LifetimeRestartsTheWorkerGracefully) {
  auto scheduler = start_scheduler();
  auto nanny = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--lifetime", "1500ms"});
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  const int first = worker_process_of(nanny);
  KillOnExit cleanup{first};
  auto back = worker_with_restarts(client, 1);
  ASSERT_TRUE(back) << "no fresh worker after the lifetime";
  // The old process ended by itself (it asked for the restart), and work goes on.
  EXPECT_TRUE(eventually([&] { return !process_alive(first); }));
  EXPECT_EQ(client.submit(triple, 7).result(60s), 21);
  EXPECT_TRUE(nanny.process.running());
}

TEST(Nanny, LifetimeWithoutANannyEndsTheWorker) {
  auto scheduler = start_scheduler();
  auto worker = start_worker(scheduler.address, {"--no-nanny", "--lifetime", "1s", "--lifetime-stagger", "0.2s"});
  ASSERT_TRUE(worker.process.wait(30s));
  EXPECT_EQ(worker.process.exit_description(), "exit code 0");
}

TEST(Nanny, NoNannyKilledWorkerIsGoneForGood) {
  ScopedEnv omp("OMP_NUM_THREADS", nullptr);
  auto scheduler = start_scheduler();
  auto worker = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--no-nanny"});
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  // The worker is the dworker process itself, with nothing above it to restart it.
  EXPECT_EQ(pid_by_task(client), worker.process.pid());
  EXPECT_TRUE(child_pids(worker.process.pid()).empty());
  EXPECT_EQ(client.submit(env_value, std::string("OMP_NUM_THREADS")).result(60s), "<unset>");
  worker.process.signal(SIGKILL);
  ASSERT_TRUE(worker.process.wait(30s));
  EXPECT_EQ(worker.process.exit_description(), "killed by signal 9");
  EXPECT_TRUE(eventually([&] { return client.scheduler_info().workers.empty(); }));
}

TEST(Nanny, SigtermStopsTheNannyAndItsWorker) {
  auto scheduler = start_scheduler();
  auto nanny = start_worker(scheduler.address, {"--close-timeout", "2"});
  const int worker = worker_process_of(nanny);
  KillOnExit cleanup{worker};
  nanny.process.signal(SIGTERM);
  ASSERT_TRUE(nanny.process.wait(30s));
  EXPECT_EQ(nanny.process.exit_description(), "exit code 0");
  EXPECT_FALSE(process_alive(worker));  // the nanny reaped it before exiting
}

TEST(Nanny, SigtermKillsAWorkerThatDoesNotStopInTime) {
  auto scheduler = start_scheduler();
  auto nanny = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--close-timeout", "0.5"});
  const int worker = worker_process_of(nanny);
  KillOnExit cleanup{worker};
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  ASSERT_EQ(client.submit(ignore_sigterm, 0).result(60s), 0);
  const auto sent = Clock::now();
  nanny.process.signal(SIGTERM);
  ASSERT_TRUE(nanny.process.wait(30s));
  // It waited the close timeout plus its one-second margin, then used SIGKILL.
  EXPECT_GE(Clock::now() - sent, 1500ms);
  EXPECT_EQ(nanny.process.exit_description(), "exit code 0");
  EXPECT_FALSE(process_alive(worker));
}

TEST(Nanny, KilledNannyTakesItsWorkerAlong) {
  auto scheduler = start_scheduler();
  auto nanny = start_worker(scheduler.address);
  const int worker = worker_process_of(nanny);
  KillOnExit cleanup{worker};
  ASSERT_TRUE(process_alive(worker));
  nanny.process.signal(SIGKILL);
  ASSERT_TRUE(nanny.process.wait(30s));
  EXPECT_TRUE(eventually([&] { return !process_alive(worker); })) << "the worker outlived its killed nanny";
}

TEST(Nanny, GivesUpWithTheWorkerWhenTheSchedulerIsGone) {
  auto scheduler = start_scheduler();
  auto nanny = start_worker(scheduler.address, {"--timeout", "1", "--death-timeout", "1"});
  const int worker = worker_process_of(nanny);
  KillOnExit cleanup{worker};
  scheduler.process.signal(SIGTERM);
  ASSERT_TRUE(scheduler.process.wait(30s));
  // The worker lost its scheduler and exits 1; the nanny does not restart it against nothing.
  ASSERT_TRUE(nanny.process.wait(60s));
  EXPECT_EQ(nanny.process.exit_description(), "exit code 1");
  EXPECT_FALSE(process_alive(worker));
}

TEST(Nanny, BadDurationsAreRejectedClearly) {
  auto bad_unit = run_command({DWORKER_PATH, "tcp://127.0.0.1:1", "--lifetime", "3 fortnights"});
  EXPECT_NE(bad_unit.exit_code, 0);
  EXPECT_NE(bad_unit.output.find("--lifetime"), std::string::npos) << bad_unit.output;
  auto negative = run_command({DWORKER_PATH, "tcp://127.0.0.1:1", "--close-timeout", "-1"});
  EXPECT_NE(negative.exit_code, 0);
  EXPECT_NE(negative.output.find("--close-timeout"), std::string::npos) << negative.output;
  auto stagger_alone = run_command({DWORKER_PATH, "tcp://127.0.0.1:1", "--lifetime-stagger", "5s"});
  EXPECT_NE(stagger_alone.exit_code, 0);
  EXPECT_NE(stagger_alone.output.find("needs --lifetime"), std::string::npos) << stagger_alone.output;
}

// A stand-in scheduler that accepts workers, records their registrations and heartbeats, and
// sends them restartWorker (which the real scheduler's client.restart() sends), on its own
// io thread.
class FakeScheduler {
 public:
  struct Registration {
    std::string name;
    unsigned restarts = 0;
    bool nanny = false;
  };
  FakeScheduler() : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~FakeScheduler() {
    asio::post(io_, [this] {
      for (auto& c : connections_) c->close("test over");
      acceptor_.close();
    });
    work_.reset();
    thread_.join();
  }
  std::string address() const { return "tcp://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()); }
  std::vector<Registration> registrations() {
    std::lock_guard lock(mutex_);
    return registrations_;
  }
  int heartbeats() {
    std::lock_guard lock(mutex_);
    return heartbeats_;
  }
  /// Sends restartWorker to the worker that registered `index`-th.
  void send_restart(std::size_t index) {
    asio::post(io_, [this, index] {
      detail::MessageBuilder mb;
      mb.root().setRestartWorker();
      registered_.at(index)->send(mb.finish());
    });
  }

 private:
  void accept() {
    acceptor_.async_accept([this](asio::error_code ec, asio::ip::tcp::socket socket) {
      if (ec) return;
      auto c = std::make_shared<detail::Connection>(detail::StreamSocket(std::move(socket)));
      connections_.push_back(c);
      std::weak_ptr<detail::Connection> weak = c;
      c->start([this, weak](detail::InMessage&& m) { on_message(weak.lock(), std::move(m)); },
               [](const std::string&) {});
      c->send(detail::make_handshake(proto::Role::SCHEDULER, "fake scheduler"));
      accept();
    });
  }
  void on_message(const detail::ConnectionPtr& c, detail::InMessage&& m) {
    if (!c) return;
    detail::MessageReader mr(m);
    auto root = mr.root();
    std::lock_guard lock(mutex_);
    if (root.isHeartbeat()) ++heartbeats_;
    if (!root.isRegisterWorker()) return;
    auto r = root.getRegisterWorker();
    registrations_.push_back({r.getName(), r.getRestarts(), r.getNanny()});
    registered_.push_back(c);
    detail::MessageBuilder mb;
    mb.root().initWorkerRegistered().setOk(true);
    c->send(mb.finish());
  }

  asio::io_context io_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{io_.get_executor()};
  asio::ip::tcp::acceptor acceptor_;
  std::vector<detail::ConnectionPtr> connections_;  // io thread only
  std::vector<detail::ConnectionPtr> registered_;   // io thread only
  std::mutex mutex_;
  std::vector<Registration> registrations_;
  int heartbeats_ = 0;
  std::thread thread_;
};

TEST(Nanny, RestartWorkerMakesTheNannyStartAFreshWorkerAtOnce) {
  FakeScheduler scheduler;
  auto nanny = start_worker(scheduler.address(), {"--name", "dave"});
  ASSERT_EQ(scheduler.registrations().size(), 1u);  // start_worker waited for it
  EXPECT_EQ(scheduler.registrations()[0].name, "dave");
  EXPECT_TRUE(scheduler.registrations()[0].nanny);
  EXPECT_EQ(scheduler.registrations()[0].restarts, 0u);
  const int first = worker_process_of(nanny);
  KillOnExit cleanup{first};

  scheduler.send_restart(0);
  ASSERT_TRUE(eventually([&] { return scheduler.registrations().size() == 2; })) << "no fresh worker registered";
  const auto again = scheduler.registrations()[1];
  EXPECT_EQ(again.name, "dave");
  EXPECT_TRUE(again.nanny);
  EXPECT_EQ(again.restarts, 1u);
  EXPECT_TRUE(eventually([&] { return !process_alive(first); }));
  EXPECT_NE(worker_process_of(nanny), first);
  EXPECT_TRUE(nanny.process.running());
}

TEST(Nanny, RestartWorkerWithoutANannyIsIgnored) {
  FakeScheduler scheduler;
  auto worker = start_worker(scheduler.address(), {"--no-nanny"});
  ASSERT_EQ(scheduler.registrations().size(), 1u);
  EXPECT_FALSE(scheduler.registrations()[0].nanny);
  scheduler.send_restart(0);
  // Two more heartbeats (one a second): the second left after the worker read restartWorker.
  const int seen = scheduler.heartbeats();
  ASSERT_TRUE(eventually([&] { return scheduler.heartbeats() >= seen + 2; }));
  EXPECT_TRUE(worker.process.running());
  EXPECT_EQ(scheduler.registrations().size(), 1u);
}

TEST(NannyLocalCluster, KilledWorkerProcessComesBack) {
  std::vector<int> children;
  {
    LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1});
    Client client(cluster);
    auto pids = client.run(worker_pid, 0);
    ASSERT_EQ(pids.size(), 1u);
    const int first = pids.begin()->second;
    const char* user_omp = std::getenv("OMP_NUM_THREADS");  // the user's value would win
    EXPECT_EQ(client.submit(env_value, std::string("OMP_NUM_THREADS")).result(60s),
              user_omp && *user_omp ? user_omp : "1");
    ASSERT_EQ(kill(first, SIGKILL), 0);

    auto back = worker_with_restarts(client, 1);
    ASSERT_TRUE(back) << "the LocalCluster worker did not come back";
    EXPECT_EQ(back->name, "worker-0");
    auto again = client.run(worker_pid, 0);
    ASSERT_EQ(again.size(), 1u);
    EXPECT_NE(again.begin()->second, first);
    EXPECT_EQ(client.submit(inc, 1).result(60s), 2);
    children = child_pids(getpid());
    EXPECT_EQ(children.size(), 2u);  // the scheduler and the new worker: nothing left over
  }
  for (int pid : children) EXPECT_FALSE(process_alive(pid)) << pid;
}

// The Nanny class itself, on small shell scripts standing in for workers.
std::vector<std::string> sh(const std::string& script) { return {"/bin/sh", "-c", script}; }

detail::ChildProcess spawn_script(const std::string& script) { return detail::ChildProcess::spawn(sh(script), {}, {}); }

TEST(NannySupervisor, CrashRestartsWithBackoffARequestAtOnceAndACleanExitEnds) {
  // The process of each turn: killed, an unexpected exit code, asks for a restart, exits cleanly.
  const std::vector<std::string> turns{"kill -9 $$", "exit 3", "exit 75", "exit 0"};
  std::vector<Clock::time_point> started;
  detail::Nanny nanny({.name = "test worker", .first_backoff = 100ms, .max_backoff = 10s},
                      [&](std::uint32_t restarts) {
                        started.push_back(Clock::now());
                        return spawn_script(turns.at(restarts));
                      });
  EXPECT_EQ(nanny.run(), 0);
  ASSERT_EQ(started.size(), 4u);
  EXPECT_EQ(nanny.restarts(), 3u);
  EXPECT_GE(started[1] - started[0], 100ms);  // first backoff
  EXPECT_GE(started[2] - started[1], 200ms);  // doubled
}

TEST(NannySupervisor, BackoffStopsDoublingAtItsCap) {
  int turn = 0;
  std::vector<Clock::time_point> started;
  detail::Nanny nanny({.first_backoff = 10ms, .max_backoff = 20ms}, [&](std::uint32_t) {
    started.push_back(Clock::now());
    return spawn_script(++turn < 9 ? "kill -9 $$" : "exit 0");
  });
  EXPECT_EQ(nanny.run(), 0);
  ASSERT_EQ(started.size(), 9u);
  // Uncapped, the last wait would be 1.28 s.
  EXPECT_LT(started[8] - started[7], 1000ms);
  EXPECT_GE(started[8] - started[7], 20ms);
}

TEST(NannySupervisor, AWorkerThatGivesUpEndsTheNannyWithItsCode) {
  int spawned = 0;
  detail::Nanny nanny({}, [&](std::uint32_t) {
    ++spawned;
    return spawn_script("exit 1");
  });
  EXPECT_EQ(nanny.run(), detail::worker_exit::kGaveUp);
  EXPECT_EQ(spawned, 1);
}

TEST(NannySupervisor, StopRequestSendsSigtermThenSigkill) {
  // A worker that ignores SIGTERM (ignored signals stay ignored across exec), once it says so.
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  std::optional<detail::ChildProcess> first =
      detail::ChildProcess::spawn(sh("trap '' TERM; echo ready; exec sleep 1000"), {}, {}, fds[1]);
  close(fds[1]);
  const int pid = first->pid();
  KillOnExit cleanup{pid};
  char buf[8] = {};
  ASSERT_EQ(read(fds[0], buf, 6), 6);
  close(fds[0]);
  ASSERT_EQ(std::string(buf), "ready\n");
  detail::Nanny nanny({.close_timeout = 300ms}, [](std::uint32_t) -> detail::ChildProcess {
    throw std::logic_error("no restart expected");
  });
  int code = -1;
  std::thread runner([&] { code = nanny.run(std::move(first)); });
  const bool supervised = eventually([&] { return nanny.worker_pid() == pid; });
  const auto asked = Clock::now();
  nanny.request_stop();
  runner.join();
  ASSERT_TRUE(supervised);
  EXPECT_GE(Clock::now() - asked, 300ms);  // SIGTERM did nothing: it waited, then killed
  EXPECT_EQ(code, 0);
  EXPECT_FALSE(process_alive(pid));
  EXPECT_EQ(nanny.restarts(), 0u);
}

TEST(NannySupervisor, StopRequestedBeforeRunStartsNothing) {
  int spawned = 0;
  detail::Nanny nanny({}, [&](std::uint32_t) {
    ++spawned;
    return spawn_script("exit 0");
  });
  nanny.request_stop();
  EXPECT_EQ(nanny.run(), 0);
  EXPECT_EQ(spawned, 0);
}

}  // namespace
}  // namespace distrib::test
