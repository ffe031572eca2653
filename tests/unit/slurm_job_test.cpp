// SlurmJob's sbatch script, as text, and its checks of the options. submit() runs against a
// stand-in `sbatch` on PATH (the real one: tests/slurm/run_slurm_test.sh).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "distrib/slurm_job.hpp"

namespace distrib {
namespace {

SlurmJobOptions minimal() {
  SlurmJobOptions o;
  o.program = {"./app"};
  return o;
}

TEST(SlurmJob, FullScript) {
  SlurmJobOptions o;
  o.job_name = "cubes";
  o.queue = "compute";
  o.account = "proj42";
  o.walltime = "02:30:00";
  o.nodes = 2;
  o.ntasks = 10;
  o.cpus_per_task = 4;
  o.memory = "16G";
  o.output = "logs/%x-%j.out";
  o.job_extra_directives = {"--constraint=ib", "--exclusive"};
  o.job_script_prologue = {"module load gcc/12", "export OMP_NUM_THREADS=1"};
  o.srun_args = {"--mpi=none"};
  o.drun = "/opt/distrib/bin/drun";
  o.scheduler_file = "/shared/my job/scheduler.json";
  o.nthreads = 3;
  o.drun_args = {"--interface", "ib0"};
  o.program = {"./app", "input.csv", "two words", "it's", "$HOME", ""};
  EXPECT_EQ(SlurmJob(o).job_script(),
            "#!/usr/bin/env bash\n"
            "#SBATCH --job-name=cubes\n"
            "#SBATCH --partition=compute\n"
            "#SBATCH --account=proj42\n"
            "#SBATCH --time=02:30:00\n"
            "#SBATCH --nodes=2\n"
            "#SBATCH --ntasks=10\n"
            "#SBATCH --cpus-per-task=4\n"
            "#SBATCH --mem=16G\n"
            "#SBATCH --output=logs/%x-%j.out\n"
            "#SBATCH --constraint=ib\n"
            "#SBATCH --exclusive\n"
            "module load gcc/12\n"
            "export OMP_NUM_THREADS=1\n"
            "# drun: task 0 is the scheduler, task 1 runs the program, the others are its workers\n"
            "srun --cpus-per-task=4 --mpi=none /opt/distrib/bin/drun --scheduler-file '/shared/my job/scheduler.json' --nthreads 3 "
            "--interface ib0 ./app input.csv 'two words' 'it'\\''s' '$HOME' ''\n");
}

TEST(SlurmJob, DefaultsLeaveTheRestToSlurmAndDrun) {
  EXPECT_EQ(SlurmJob(minimal()).job_script(),
            "#!/usr/bin/env bash\n"
            "#SBATCH --job-name=distrib\n"
            "#SBATCH --time=00:30:00\n"
            "#SBATCH --ntasks=3\n"
            "#SBATCH --cpus-per-task=1\n"
            "# drun: task 0 is the scheduler, task 1 runs the program, the others are its workers\n"
            "srun --cpus-per-task=1 drun ./app\n");
  auto o = minimal();
  o.walltime = "";
  o.cpus_per_task = 0;
  o.job_name = "";
  EXPECT_EQ(SlurmJob(o).job_script(),
            "#!/usr/bin/env bash\n"
            "#SBATCH --ntasks=3\n"
            "# drun: task 0 is the scheduler, task 1 runs the program, the others are its workers\n"
            "srun drun ./app\n");
}

TEST(SlurmJob, AcceptsSlurmsWalltimeForms) {
  for (const char* t : {"00:05:00", "1:00:00", "120:00:00", "2-12:00:00", "1-0:30:00"}) {
    auto o = minimal();
    o.walltime = t;
    EXPECT_NE(SlurmJob(o).job_script().find(std::string("#SBATCH --time=") + t + "\n"), std::string::npos) << t;
  }
}

// The message of the std::invalid_argument that `options` makes SlurmJob throw.
std::string rejection(const SlurmJobOptions& options) {
  try {
    SlurmJob job(options);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(SlurmJob, RejectsBadOptions) {
  auto o = minimal();
  o.ntasks = 2;
  EXPECT_EQ(rejection(o), "SlurmJob: ntasks must be at least 3 (the scheduler, the program and one worker), not 2");
  o = minimal();
  o.walltime = "90 minutes";
  EXPECT_EQ(rejection(o), "SlurmJob: walltime must be HH:MM:SS or D-HH:MM:SS, not \"90 minutes\"");
  for (const char* bad : {"1:00", "01:60:00", "01:00:00:00", "-01:00:00", "01:00:0"}) {
    o.walltime = bad;
    EXPECT_NE(rejection(o).find("walltime must be"), std::string::npos) << bad;
  }
  o = minimal();
  o.program = {};
  EXPECT_EQ(rejection(o), "SlurmJob: no program given: set program = {\"./app\", args...}");
  o.program = {""};
  EXPECT_EQ(rejection(o), "SlurmJob: no program given: set program = {\"./app\", args...}");
  o = minimal();
  o.nodes = 4;
  EXPECT_EQ(rejection(o), "SlurmJob: nodes (4) is more than ntasks (3): some nodes would have no task");
  o = minimal();
  o.cpus_per_task = -1;
  EXPECT_EQ(rejection(o), "SlurmJob: cpus_per_task must not be negative, not -1");
}

TEST(SlurmJob, RejectsANewlineInAnyText) {
  const std::string evil = "x\nrm -rf ~";
  auto expect_rejected = [&](const char* option, auto set) {
    auto o = minimal();
    set(o);
    EXPECT_EQ(rejection(o), std::string("SlurmJob: ") + option + " holds a newline: \"x\\nrm -rf ~\"") << option;
  };
  expect_rejected("job_name", [&](SlurmJobOptions& o) { o.job_name = evil; });
  expect_rejected("queue", [&](SlurmJobOptions& o) { o.queue = evil; });
  expect_rejected("account", [&](SlurmJobOptions& o) { o.account = evil; });
  expect_rejected("walltime", [&](SlurmJobOptions& o) { o.walltime = evil; });
  expect_rejected("memory", [&](SlurmJobOptions& o) { o.memory = evil; });
  expect_rejected("output", [&](SlurmJobOptions& o) { o.output = evil; });
  expect_rejected("job_extra_directives", [&](SlurmJobOptions& o) { o.job_extra_directives = {"--exclusive", evil}; });
  expect_rejected("job_script_prologue", [&](SlurmJobOptions& o) { o.job_script_prologue = {evil}; });
  expect_rejected("srun_args", [&](SlurmJobOptions& o) { o.srun_args = {evil}; });
  expect_rejected("drun", [&](SlurmJobOptions& o) { o.drun = evil; });
  expect_rejected("scheduler_file", [&](SlurmJobOptions& o) { o.scheduler_file = evil; });
  expect_rejected("drun_args", [&](SlurmJobOptions& o) { o.drun_args = {evil}; });
  expect_rejected("program", [&](SlurmJobOptions& o) { o.program = {"./app", evil}; });
  auto o = minimal();
  o.job_name = "x\rrm -rf ~";
  EXPECT_EQ(rejection(o), "SlurmJob: job_name holds a newline: \"x\\rrm -rf ~\"");
}

// A directory with a stand-in `sbatch` put first on PATH for the test's lifetime.
class FakeSbatch {
 public:
  explicit FakeSbatch(const std::string& body) {
    dir_ = std::filesystem::temp_directory_path() / ("slurm_job_test_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / "sbatch") << "#!/bin/sh\n" << body;
    std::filesystem::permissions(dir_ / "sbatch", std::filesystem::perms::owner_all);
    old_path_ = std::getenv("PATH") ? std::getenv("PATH") : "";
    setenv("PATH", (dir_.string() + ":" + old_path_).c_str(), 1);
  }
  ~FakeSbatch() {
    setenv("PATH", old_path_.c_str(), 1);
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  std::string old_path_;
};

TEST(SlurmJob, SubmitGivesTheScriptToSbatchAndReturnsTheJobId) {
  // Saves what it was given, warns, then answers as --parsable does on a federation.
  FakeSbatch fake("echo \"$1\" > \"$(dirname \"$0\")/args\"; cp \"$2\" \"$(dirname \"$0\")/script\"\n"
                  "echo 'sbatch: warning: a warning first' >&2; echo '4242;cluster1'\n");
  SlurmJob job(minimal());
  EXPECT_EQ(job.submit(), "4242");
  std::ifstream args(fake.dir() / "args"), script(fake.dir() / "script");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(args), {}), "--parsable\n");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(script), {}), job.job_script());
}

TEST(SlurmJob, SubmitSaysWhatSbatchSaidWhenItFails) {
  FakeSbatch fake("echo 'sbatch: error: invalid partition specified: nope' >&2; exit 1\n");
  try {
    SlurmJob(minimal()).submit();
    FAIL() << "submit() returned";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "SlurmJob: sbatch failed (exit code 1): sbatch: error: invalid partition specified: nope\n");
  }
}

TEST(SlurmJob, SubmitWithoutSbatchSaysSo) {
  const std::string old_path = std::getenv("PATH") ? std::getenv("PATH") : "";
  setenv("PATH", "/nonexistent", 1);
  try {
    SlurmJob(minimal()).submit();
    ADD_FAILURE() << "submit() returned";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "SlurmJob: sbatch is not on PATH (is this a Slurm login node?)");
  }
  setenv("PATH", old_path.c_str(), 1);
}

}  // namespace
}  // namespace distrib
