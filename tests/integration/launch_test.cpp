// Off one machine (issue 18): the scheduler file, your program as its own worker, and drun
// under mpirun, with real daemons on OS-chosen ports.
#include <gtest/gtest.h>
#include <signal.h>

#include <distrib/distrib.hpp>
#include <filesystem>

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
