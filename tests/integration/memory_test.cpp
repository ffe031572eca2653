// Worker memory limits on a real cluster of dscheduler and dworker processes (issue 16): a
// worker past its pause threshold gets no new tasks and resumes; one past terminate is
// restarted by its nanny and its task recomputed (or ends as KilledWorker naming the memory
// limit); an unusable --local-directory fails clearly; a full spill disk pauses the worker
// without losing a value; the private spill directory goes with its worker, also after a
// SIGKILL; and heartbeats account managed plus spilled bytes to the byte.
//
// Memory is made resident by the tasks of memory_tasks.hpp (mmap, every page touched) so that
// a worker's RSS moves exactly when a test says. Every wait is on an event (a future, an exit,
// a log line) or a bounded poll of scheduler_info with a generous deadline.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <distrib/distrib.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "helpers.hpp"
#include "memory_tasks.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

namespace fs = std::filesystem;
constexpr std::uint64_t kMiB = 1024 * 1024;


// SIGKILLs a process at the end of the scope if it is still there.
struct KillOnExit {
  int pid = -1;
  ~KillOnExit() {
    if (pid > 0 && process_alive(pid)) kill(pid, SIGKILL);
  }
};

// The worker named `name` as the scheduler describes it now, if it knows one.
std::optional<WorkerDescription> worker_named(Client& client, const std::string& name) {
  for (auto& w : client.scheduler_info().workers)
    if (w.name == name) return w;
  return std::nullopt;
}

// Waits until the worker named `name` satisfies `condition`; the last description seen.
std::optional<WorkerDescription> wait_for_worker(Client& client, const std::string& name,
                                                 const std::function<bool(const WorkerDescription&)>& condition,
                                                 std::chrono::milliseconds timeout = 30s) {
  std::optional<WorkerDescription> last;
  bool ok = eventually(
      [&] {
        last = worker_named(client, name);
        return last && condition(*last);
      },
      timeout);
  if (!ok) return std::nullopt;
  return last;
}

std::string describe(const std::optional<WorkerDescription>& w) {
  if (!w) return "(no such worker)";
  return "managed " + std::to_string(w->managed) + ", spilled " + std::to_string(w->spilled) + ", memory " +
         std::to_string(w->memory) + ", paused " + (w->paused ? "yes" : "no") + ", restarts " +
         std::to_string(w->restarts);
}


// The private spill directories (distrib-worker-*) in `parent`.
std::set<std::string> spill_directories(const fs::path& parent) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(parent, ec))
    if (e.path().filename().string().rfind("distrib-worker-", 0) == 0) out.insert(e.path().filename().string());
  return out;
}

// The files in a spill directory other than its lock file.
std::size_t spill_files(const fs::path& directory) {
  std::size_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(directory, ec)) n += e.path().filename() != "lock";
  return n;
}

std::vector<std::string> worker_args(const std::string& name, std::vector<std::string> extra) {
  std::vector<std::string> args{"--preload", TEST_TASKS_PATH, "--name", name};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// --- 1. pause ----------------------------------------------------------------------------

TEST(Memory, PausedWorkerGetsNoNewTasksAndResumesWhenItsMemoryIsFreed) {
  auto scheduler = start_scheduler();
  // a: 200 MiB, pausing past 160 MiB (terminate off: the test holds it above pause on purpose).
  auto a = start_worker(scheduler.address, worker_args("a", {"--no-nanny", "--memory-limit", "200MiB",
                                                             "--memory-terminate-fraction", "false"}));
  auto b = start_worker(scheduler.address, worker_args("b", {"--no-nanny", "--memory-limit", "0"}));
  Client client(scheduler.address);
  client.wait_for_workers(2, 30s);
  auto pids = worker_pids(client);
  const auto a_info = worker_named(client, "a");
  const auto b_info = worker_named(client, "b");
  ASSERT_TRUE(a_info && b_info);
  const int pid_a = pids.at(a_info->address), pid_b = pids.at(b_info->address);
  ASSERT_EQ(pid_a, a.process.pid());
  ASSERT_EQ(pid_b, b.process.pid());
  ASSERT_FALSE(a_info->paused);

  // Client::run works outside the task threads, paused or not: a's RSS goes to 180 MiB.
  auto held = client.run(hold_memory, pid_a, std::uint64_t{180 * kMiB});
  ASSERT_GT(held.at(a_info->address), 0u);
  EXPECT_EQ(held.at(b_info->address), 0u);
  auto paused = wait_for_worker(client, "a", [](const WorkerDescription& w) { return w.paused; });
  ASSERT_TRUE(paused) << describe(worker_named(client, "a"));

  // A task only a may run waits; the others all go to b.
  auto on_a = client.submit({.pure = false, .workers = {"a"}}, process_id, 1);
  std::vector<Future<int>> anywhere;
  for (int i = 0; i < 8; ++i) anywhere.push_back(client.submit({.pure = false}, process_id, 100 + i));
  for (auto& f : anywhere) EXPECT_EQ(f.result(60s), pid_b);
  EXPECT_FALSE(on_a.done()) << "a task ran on a paused worker";
  EXPECT_TRUE(worker_named(client, "a")->paused);

  // Its memory freed, a resumes and runs the task that waited for it.
  auto released = client.run(release_memory, pid_a);
  EXPECT_EQ(released.at(a_info->address), held.at(a_info->address));
  auto resumed = wait_for_worker(client, "a", [](const WorkerDescription& w) { return !w.paused; });
  ASSERT_TRUE(resumed) << describe(worker_named(client, "a"));
  EXPECT_EQ(on_a.result(60s), pid_a);
  EXPECT_EQ(client.submit({.pure = false, .workers = {"a"}}, process_id, 2).result(60s), pid_a);
}

// --- 2. terminate ------------------------------------------------------------------------

TEST(Memory, WorkerPastTerminateIsRestartedByItsNannyAndItsTaskRecomputed) {
  TempDir dir;
  auto scheduler = start_scheduler();
  auto nanny = start_worker(scheduler.address, worker_args("hog", {"--memory-limit", "256MiB"}));
  const int first = worker_process_of(nanny);
  KillOnExit cleanup{first};
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);

  // The first attempt takes the whole limit and holds it; the worker exits past 95 %, its
  // nanny starts a fresh one, and the retry (the marker is there now) returns.
  const auto marker = (dir.path() / "attempted").string();
  auto f = client.submit(hog_memory_once, marker, std::uint64_t{256 * kMiB}, 42);
  EXPECT_EQ(f.result(120s), 42);
  EXPECT_TRUE(fs::exists(marker));
  auto w = wait_for_worker(client, "hog", [](const WorkerDescription& w) { return w.restarts >= 1; });
  ASSERT_TRUE(w) << describe(worker_named(client, "hog"));
  EXPECT_FALSE(w->paused);
  EXPECT_FALSE(process_alive(first));
  EXPECT_TRUE(nanny.process.running());
  EXPECT_EQ(client.submit(triple, 5).result(60s), 15);
}

TEST(Memory, TaskPastTheLimitOnEveryAttemptEndsAsKilledWorkerNamingTheMemoryLimit) {
  auto scheduler = start_scheduler({"--allowed-failures", "2"});
  auto nanny = start_worker(scheduler.address, worker_args("hog", {"--memory-limit", "256MiB"}));
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);

  auto f = client.submit(hog_memory_always, std::uint64_t{256 * kMiB});
  try {
    f.result(120s);
    FAIL() << "expected KilledWorker";
  } catch (const KilledWorker& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("memory limit"), std::string::npos) << what;
    EXPECT_NE(what.find("restarted"), std::string::npos) << what;
  }
  // The worker came back after each attempt and goes on working.
  auto w = wait_for_worker(client, "hog", [](const WorkerDescription& w) { return w.restarts >= 2; });
  ASSERT_TRUE(w) << describe(worker_named(client, "hog"));
  EXPECT_EQ(client.submit(triple, 3).result(60s), 9);
  EXPECT_TRUE(nanny.process.running());
}

// --- 3. unusable local directory ---------------------------------------------------------

TEST(Memory, UnusableLocalDirectoryFailsClearlyNamingIt) {
  TempDir dir;
  const auto file = dir.path() / "file";
  std::ofstream(file) << "not a directory\n";
  auto scheduler = start_scheduler();
  // Root may write anywhere chmod allows nothing: a path under a regular file, and /proc/sys,
  // stop it all the same.
  struct Case {
    std::string directory;
    bool nanny;
  };
  const Case cases[] = {{(file / "sub").string(), true}, {(file / "sub").string(), false}, {"/proc/sys/distrib-spill", true}};
  for (const auto& c : cases) {
    std::vector<std::string> argv{DWORKER_PATH, scheduler.address, "--host", "127.0.0.1", "--nthreads", "1",
                                  "--memory-limit", "100MiB", "--local-directory", c.directory};
    if (!c.nanny) argv.emplace_back("--no-nanny");
    auto r = run_command(argv, 30s);
    EXPECT_NE(r.exit_code, 0) << c.directory << ": " << r.output;
    EXPECT_NE(r.exit_code, -1) << c.directory << ": it did not exit: " << r.output;
    EXPECT_NE(r.output.find(c.directory), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("distrib worker at "), std::string::npos) << r.output;
  }
  EXPECT_EQ(Client(scheduler.address).scheduler_info().workers.size(), 0u);
}

// --- 4. full disk ------------------------------------------------------------------------

// A small tmpfs mounted for the scope (root only).
class TmpfsMount {
 public:
  TmpfsMount(const fs::path& at, const std::string& size) : at_(at) {
    fs::create_directories(at);
    mounted_ = ::mount("tmpfs", at.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, ("size=" + size).c_str()) == 0;
    error_ = errno;
  }
  ~TmpfsMount() {
    if (mounted_) ::umount2(at_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  int error() const { return error_; }

 private:
  fs::path at_;
  bool mounted_ = false;
  int error_ = 0;
};

TEST(Memory, FullSpillDiskPausesTheWorkerWithoutLosingAValueAndItResumesOnceFreed) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  TempDir dir;
  const auto mountpoint = dir.path() / "disk";
  TmpfsMount disk(mountpoint, "8m");
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(disk.error());

  auto scheduler = start_scheduler();
  // Target 2 MiB of 200 MiB: every 3 MiB value goes to disk, where two fit and the third does not.
  auto worker = spawn_watched({DWORKER_PATH, scheduler.address, "--host", "127.0.0.1", "--nthreads", "1", "--name",
                               "full", "--no-nanny", "--preload", TEST_TASKS_PATH, "--memory-limit", "200MiB",
                               "--memory-target-fraction", "0.01", "--local-directory", mountpoint.string(),
                               "--log-level", "warn"});
  ASSERT_NE(worker.wait_for("distrib worker at "), std::string::npos) << worker.output;
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  const auto spill_dirs = spill_directories(mountpoint);
  ASSERT_EQ(spill_dirs.size(), 1u);
  const auto spill_dir = mountpoint / *spill_dirs.begin();

  std::vector<std::vector<std::uint8_t>> values;
  std::vector<Future<std::vector<std::uint8_t>>> futures;
  for (std::uint32_t seed = 1; seed <= 6; ++seed) {
    values.push_back(pattern_bytes(3 * kMiB, seed));
    futures.push_back(client.scatter(values.back()));
  }
  const auto error_at = worker.wait_for("pausing until memory is back under the target");
  ASSERT_NE(error_at, std::string::npos) << worker.output;
  const auto line_start = worker.output.rfind('\n', error_at);
  const auto line = worker.output.substr(line_start == std::string::npos ? 0 : line_start + 1,
                                         error_at - (line_start == std::string::npos ? 0 : line_start + 1));
  EXPECT_NE(line.find("cannot spill to " + spill_dir.string()), std::string::npos) << line;
  auto paused = wait_for_worker(client, "full", [](const WorkerDescription& w) { return w.paused && w.spilled > 0; });
  ASSERT_TRUE(paused) << describe(worker_named(client, "full"));

  // A task can start on it only once it resumes.
  auto after = client.submit({.pure = false}, process_id, 7);
  // Paused, it still serves its values, from memory and from disk, every byte as stored.
  for (std::size_t i = 0; i < futures.size(); ++i) EXPECT_TRUE(futures[i].result(60s) == values[i]) << "value " << i;
  EXPECT_FALSE(after.done()) << "a task ran on a paused worker";
  EXPECT_TRUE(worker_named(client, "full")->paused);

  // Released, the values leave memory and disk: back under the target, it resumes.
  futures.clear();
  auto resumed = wait_for_worker(client, "full", [](const WorkerDescription& w) {
    return !w.paused && w.managed < kMiB && w.spilled == 0;  // what is left: the small result of `after`
  });
  ASSERT_TRUE(resumed) << describe(worker_named(client, "full"));
  EXPECT_NE(worker.wait_for("memory is back under the target", 30s, error_at), std::string::npos) << worker.output;
  EXPECT_GT(after.result(60s), 0);
  EXPECT_TRUE(eventually([&] { return spill_files(spill_dir) == 0; })) << spill_files(spill_dir) << " files left";
  // And it spills again: a value past the target goes to disk, and comes back intact.
  auto again = client.scatter(pattern_bytes(3 * kMiB, 9));
  EXPECT_TRUE(again.result(60s) == pattern_bytes(3 * kMiB, 9));
  EXPECT_TRUE(wait_for_worker(client, "full", [](const WorkerDescription& w) { return !w.paused && w.spilled > 0; }))
      << describe(worker_named(client, "full"));
}

// --- 5. the spill directory goes with its worker ------------------------------------------

TEST(Memory, SpillDirectoryIsRemovedWhenTheWorkerStops) {
  TempDir dir;
  auto scheduler = start_scheduler();
  auto nanny = start_worker(scheduler.address, {"--memory-limit", "100MiB", "--local-directory", dir.str()});
  ASSERT_EQ(spill_directories(dir.path()).size(), 1u);  // made before the worker registered
  nanny.process.signal(SIGTERM);
  ASSERT_TRUE(nanny.process.wait(30s));
  EXPECT_EQ(nanny.process.exit_description(), "exit code 0");
  EXPECT_TRUE(spill_directories(dir.path()).empty());
}

TEST(Memory, SpillDirectoryOfASigkilledWorkerIsRemovedByTheNextWorker) {
  TempDir dir;
  auto scheduler = start_scheduler();
  // Target 20 MiB of 400 MiB: the 24 MiB value goes to disk.
  auto nanny = start_worker(scheduler.address, worker_args("k", {"--memory-limit", "400MiB", "--memory-target-fraction",
                                                                 "0.05", "--local-directory", dir.str()}));
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  // A value on disk, so that the directory the killed worker leaves is not empty.
  auto value = client.scatter(pattern_bytes(24 * kMiB, 1));
  ASSERT_TRUE(wait_for_worker(client, "k", [](const WorkerDescription& w) { return w.spilled > 0; }))
      << describe(worker_named(client, "k"));
  const auto before = spill_directories(dir.path());
  ASSERT_EQ(before.size(), 1u);
  const int first = worker_process_of(nanny);
  KillOnExit cleanup{first};
  ASSERT_EQ(kill(first, SIGKILL), 0);
  ASSERT_TRUE(wait_for_worker(client, "k", [](const WorkerDescription& w) { return w.restarts >= 1; }))
      << describe(worker_named(client, "k"));
  // The fresh worker made its own directory and removed the one whose owner died.
  const auto after = spill_directories(dir.path());
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(*after.begin(), *before.begin());
  nanny.process.signal(SIGTERM);
  ASSERT_TRUE(nanny.process.wait(30s));
  EXPECT_TRUE(spill_directories(dir.path()).empty());
}

// --- 6. accounting -----------------------------------------------------------------------

TEST(Memory, ManagedPlusSpilledIsTheSumOfTheStoredValuesSizes) {
  auto scheduler = start_scheduler();
  // Target 20 MiB of 200 MiB: of the 32 MiB below, some is on disk.
  auto worker = start_worker(scheduler.address, worker_args("acct", {"--no-nanny", "--memory-limit", "200MiB",
                                                                     "--memory-target-fraction", "0.1"}));
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  const std::uint64_t target = 20 * kMiB;

  auto size_of = [](const auto& v) -> std::uint64_t { return encode_value(v).bytes.size(); };
  std::vector<Future<std::vector<std::uint8_t>>> blobs;
  std::uint64_t expected = 0;
  for (std::uint32_t seed = 1; seed <= 2; ++seed) {  // scattered
    auto v = pattern_bytes(8 * kMiB, seed);
    expected += size_of(v);
    blobs.push_back(client.scatter(v));
  }
  for (std::uint32_t seed = 3; seed <= 4; ++seed) {  // computed on the worker
    expected += size_of(pattern_bytes(8 * kMiB + seed, seed));
    blobs.push_back(client.submit(pattern_bytes, std::uint64_t{8 * kMiB + seed}, seed));
  }
  auto word = client.scatter(std::string("a small value"));
  expected += size_of(std::string("a small value"));
  auto number = client.submit(triple, 14);
  expected += size_of(42);
  ASSERT_EQ(number.result(60s), 42);
  for (auto& b : blobs) ASSERT_TRUE(b.wait_for(60s));
  ASSERT_TRUE(word.wait_for(60s));

  auto settled = wait_for_worker(client, "acct", [&](const WorkerDescription& w) {
    return w.managed + w.spilled == expected && w.spilled > 0 && w.managed <= target;
  });
  ASSERT_TRUE(settled) << "expected " << expected << ": " << describe(worker_named(client, "acct"));
  EXPECT_EQ(settled->stored, 6u);

  // Released values leave the count, wherever they were.
  const auto dropped = size_of(pattern_bytes(8 * kMiB, 1)) + size_of(pattern_bytes(8 * kMiB + 3, 3));
  blobs.erase(blobs.begin() + 2);
  blobs.erase(blobs.begin());
  auto less = wait_for_worker(client, "acct", [&](const WorkerDescription& w) {
    return w.managed + w.spilled == expected - dropped && w.stored == 4;
  });
  EXPECT_TRUE(less) << "expected " << expected - dropped << ": " << describe(worker_named(client, "acct"));
}

}  // namespace
}  // namespace distrib::test
