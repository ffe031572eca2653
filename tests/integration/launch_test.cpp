// Off one machine (issue 18): the scheduler file, your program as its own worker, and drun
// under mpirun, with real daemons on OS-chosen ports.
#include <gtest/gtest.h>
#include <signal.h>

#include <distrib/distrib.hpp>
#include <filesystem>
#include <fstream>

#include "cluster/scheduler_file.hpp"
#include "helpers.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

constexpr const char* kSumOfCubes = "sum=24502500";  // 0^3 + ... + 99^3 = 4950^2

Watched start_file_worker(const std::string& program, const std::string& file, bool app) {
  std::vector<std::string> argv{program};
  if (app) argv.emplace_back("--distrib-worker");
  argv.insert(argv.end(), {"--scheduler-file", file, "--host", "127.0.0.1", "--nthreads", "1", "--log-level", "warn"});
  if (!app) argv.insert(argv.end(), {"--preload", TEST_TASKS_PATH});
  return spawn_watched(argv);
}

TEST(SchedulerFile, WorkerAndClientMeetThroughIt) {
  TempDir dir;
  const auto file = dir.str() + "/scheduler.json";
  auto scheduler = start_scheduler({"--scheduler-file", file});
  auto contents = detail::read_scheduler_file(file);
  EXPECT_EQ(contents.address, scheduler.address);
  EXPECT_EQ(contents.pid, static_cast<std::uint32_t>(scheduler.process.pid()));
  EXPECT_EQ(contents.dashboard.rfind("http://127.0.0.1:", 0), 0u) << contents.dashboard;
  EXPECT_TRUE(contents.tls_ca_sha256.empty());

  auto worker = start_file_worker(DWORKER_PATH, file, false);
  ASSERT_NE(worker.wait_for("distrib worker at "), std::string::npos) << worker.output;
  {
    Client client(SchedulerFile{file});
    client.wait_for_workers(1, 30s);
    EXPECT_EQ(client.scheduler_address(), scheduler.address);
    EXPECT_EQ(client.submit(triple, 14).result(60s), 42);
    client.shutdown();
  }
  ASSERT_TRUE(scheduler.process.wait(30s));
  EXPECT_FALSE(std::filesystem::exists(file)) << "the scheduler removes its file when it stops";
}

TEST(SchedulerFile, AWorkerStartedFirstWaitsForIt) {
  TempDir dir;
  const auto file = dir.str() + "/later.json";
  auto worker = start_file_worker(DWORKER_PATH, file, false);  // no scheduler yet
  auto scheduler = start_scheduler({"--scheduler-file", file});
  ASSERT_NE(worker.wait_for("distrib worker at "), std::string::npos) << worker.output;
  Client client(SchedulerFile{file});
  client.wait_for_workers(1, 30s);
  EXPECT_EQ(client.n_workers(), 1u);
}

TEST(SchedulerFile, AClientWithoutAFileGivesUpNamingIt) {
  TempDir dir;
  ClientOptions options;
  options.connect_timeout = 200ms;
  try {
    Client client(SchedulerFile{dir.str() + "/none.json"}, options);
    FAIL() << "connected without a scheduler";
  } catch (const CommError& e) {
    EXPECT_NE(std::string(e.what()).find("none.json"), std::string::npos) << e.what();
  }
  auto r = run_command({DWORKER_PATH, "--scheduler-file", dir.str() + "/none.json", "--death-timeout", "0.2",
                        "--no-nanny"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("no scheduler file within 200 ms"), std::string::npos) << r.output;
}

TEST(AppWorker, TheProgramIsItsOwnWorker) {
  TempDir dir;
  const auto file = dir.str() + "/scheduler.json";
  auto scheduler = start_scheduler({"--scheduler-file", file});
  // Two workers that are the program itself (under their nannies): its DISTRIB_TASK
  // functions need no library.
  auto w1 = start_file_worker(APP_WORKER_HELPER_PATH, file, true);
  auto w2 = start_file_worker(APP_WORKER_HELPER_PATH, file, true);
  ASSERT_NE(w1.wait_for("distrib worker at "), std::string::npos) << w1.output;
  ASSERT_NE(w2.wait_for("distrib worker at "), std::string::npos) << w2.output;
  // The client finds the scheduler from the environment, by file and by address.
  auto by_file = run_command({"/usr/bin/env", "DISTRIB_SCHEDULER_FILE=" + file, APP_WORKER_HELPER_PATH, "2"}, 120s);
  EXPECT_EQ(by_file.exit_code, 0) << by_file.output;
  EXPECT_NE(by_file.output.find(std::string(kSumOfCubes) + " workers=2"), std::string::npos) << by_file.output;
  auto by_address =
      run_command({"/usr/bin/env", "DISTRIB_SCHEDULER_ADDRESS=" + scheduler.address, APP_WORKER_HELPER_PATH, "2"}, 120s);
  EXPECT_EQ(by_address.exit_code, 0) << by_address.output;
  EXPECT_NE(by_address.output.find(kSumOfCubes), std::string::npos) << by_address.output;
  // Neither: a clear error, nothing sent.
  auto none = run_command({"/usr/bin/env", "-u", "DISTRIB_SCHEDULER_FILE", "-u", "DISTRIB_SCHEDULER_ADDRESS",
                           APP_WORKER_HELPER_PATH, "1"});
  EXPECT_EQ(none.exit_code, 2) << none.output;
  EXPECT_NE(none.output.find("DISTRIB_SCHEDULER_ADDRESS or DISTRIB_SCHEDULER_FILE"), std::string::npos) << none.output;
}

// mpirun -n 4 drun ./app: rank 0 the scheduler, rank 1 the program, ranks 2 and 3 workers.
TEST(Drun, FourRanksUnderMpirun) {
  if (run_command({"/bin/sh", "-c", "command -v mpirun"}).exit_code != 0)
    GTEST_SKIP() << "mpirun is not installed (Debian: openmpi-bin; scripts/test.sh installs it)";
  TempDir dir;
  const auto file = dir.str() + "/scheduler.json";
  auto r = run_command({"mpirun", "--allow-run-as-root", "--oversubscribe", "-n", "4", "--mca", "btl", "self",
                        DRUN_PATH, "--scheduler-file", file, "--dashboard-address", "none", "--nthreads", "1",
                        APP_WORKER_HELPER_PATH, "2"},
                       180s);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(std::string(kSumOfCubes) + " workers=2"), std::string::npos) << r.output;
  // The cluster stopped with the program, and took its files with it.
  EXPECT_FALSE(std::filesystem::exists(file)) << r.output;
  EXPECT_FALSE(std::filesystem::exists(file + ".token")) << r.output;
}

TEST(Drun, OutsideALauncherSaysHowToStartIt) {
  auto r = run_command({"/usr/bin/env", "-u", "SLURM_PROCID", "-u", "OMPI_COMM_WORLD_RANK", "-u", "PMI_RANK", "-u",
                        "PMIX_RANK", DRUN_PATH, APP_WORKER_HELPER_PATH});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("mpirun -n 4 drun ./app"), std::string::npos) << r.output;
  auto two = run_command({"/usr/bin/env", "OMPI_COMM_WORLD_RANK=0", "OMPI_COMM_WORLD_SIZE=2", DRUN_PATH,
                          APP_WORKER_HELPER_PATH});
  EXPECT_EQ(two.exit_code, 1) << two.output;
  EXPECT_NE(two.output.find("at least 3 ranks"), std::string::npos) << two.output;
}

}  // namespace
}  // namespace distrib::test

namespace distrib::test {
namespace {

// One schema for the daemons: file < environment < flags, shown by --print-config.
TEST(DaemonConfig, PrintConfigShowsEachValueAndWhereItCameFrom) {
  TempDir dir;
  const auto file = dir.str() + "/distrib.yaml";
  std::ofstream(file) << "scheduler:\n  worker-ttl: 45\n  allowed-failures: 5\n  work-stealing: false\n"
                         "comm:\n  max-connections: 100\n";
  auto r = run_command({"/usr/bin/env", "DISTRIB_CONFIG=" + file, "DISTRIB_SCHEDULER__ALLOWED_FAILURES=6",
                        DSCHEDULER_PATH, "--print-config", "--port", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto line = [&](const std::string& key) {
    auto at = r.output.find(key + " = ");
    return at == std::string::npos ? std::string() : r.output.substr(at, r.output.find('\n', at) - at);
  };
  EXPECT_NE(line("scheduler.worker-ttl").find("= 45   # file " + file), std::string::npos) << r.output;
  EXPECT_NE(line("scheduler.allowed-failures").find("= 6   # env DISTRIB_SCHEDULER__ALLOWED_FAILURES"),
            std::string::npos)
      << r.output;
  EXPECT_NE(line("scheduler.port").find("= 0   # command line"), std::string::npos) << r.output;
  EXPECT_NE(line("scheduler.work-stealing").find("= false   # file"), std::string::npos) << r.output;
  EXPECT_NE(line("comm.max-connections").find("= 100   # file"), std::string::npos) << r.output;
  EXPECT_NE(line("scheduler.journal").find("# default"), std::string::npos) << r.output;

  // A value the flag refuses is refused from the file too, naming the key.
  std::ofstream(file) << "scheduler:\n  allowed-failures: -2\n";
  auto bad = run_command({"/usr/bin/env", "DISTRIB_CONFIG=" + file, DSCHEDULER_PATH, "--print-config"});
  EXPECT_NE(bad.exit_code, 0) << bad.output;
  EXPECT_NE(bad.output.find("scheduler.allowed-failures (file " + file + ")"), std::string::npos) << bad.output;
  // An unknown key stops the daemon before it listens.
  std::ofstream(file) << "worker:\n  nthread: 2\n";
  auto unknown = run_command({"/usr/bin/env", "DISTRIB_CONFIG=" + file, DWORKER_PATH, "tcp://127.0.0.1:1"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.output;
  EXPECT_NE(unknown.output.find("unknown key 'worker.nthread'"), std::string::npos) << unknown.output;
}

TEST(DaemonConfig, AWorkerTakesItsSettingsFromTheFile) {
  TempDir dir;
  const auto file = dir.str() + "/distrib.yaml";
  std::ofstream(file) << "worker:\n  nthreads: 3\n  name: configured\n  preload: [" << TEST_TASKS_PATH << "]\n";
  auto scheduler = start_scheduler();
  auto worker = spawn_watched({"/usr/bin/env", "DISTRIB_CONFIG=" + file, DWORKER_PATH, scheduler.address, "--host",
                               "127.0.0.1", "--no-nanny"});
  ASSERT_NE(worker.wait_for("distrib worker at "), std::string::npos) << worker.output;
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  auto info = client.scheduler_info();
  ASSERT_EQ(info.workers.size(), 1u);
  EXPECT_EQ(info.workers[0].name, "configured");
  EXPECT_EQ(info.workers[0].nthreads, 3u);
  EXPECT_EQ(client.submit(triple, 3).result(60s), 9);  // the preloaded library from the file
}

}  // namespace
}  // namespace distrib::test

namespace distrib::test {
namespace {

// --interface and --contact-address (multi-homed hosts, NAT).
TEST(DaemonAddresses, InterfaceAndContactAddress) {
  TempDir dir;
  const auto file = dir.str() + "/scheduler.json";
  // Listening on the loopback interface by name; telling others a different address.
  auto scheduler = spawn_watched({DSCHEDULER_PATH, "--interface", "lo", "--port", "0", "--dashboard-address", "none",
                                  "--contact-address", "tcp://gateway.example:9999", "--scheduler-file", file});
  ASSERT_NE(scheduler.wait_for("distrib scheduler at tcp://gateway.example:9999"), std::string::npos)
      << scheduler.output;
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(file); }));
  EXPECT_EQ(detail::read_scheduler_file(file).address, "tcp://gateway.example:9999");
  EXPECT_NE(scheduler.wait_for("scheduler listening at tcp://127.0.0.1:"), std::string::npos) << scheduler.output;

  auto unknown = run_command({DSCHEDULER_PATH, "--interface", "no-such-if0", "--port", "0"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.output;
  EXPECT_NE(unknown.output.find("no such interface"), std::string::npos) << unknown.output;
  EXPECT_NE(unknown.output.find("lo"), std::string::npos) << "the interfaces there are: " << unknown.output;
  auto both = run_command({DSCHEDULER_PATH, "--interface", "lo", "--host", "127.0.0.1"});
  EXPECT_NE(both.exit_code, 0) << both.output;  // one or the other
  auto bad = run_command({DWORKER_PATH, "tcp://127.0.0.1:1", "--contact-address", "not an address"});
  EXPECT_NE(bad.exit_code, 0) << bad.output;
}

}  // namespace
}  // namespace distrib::test
