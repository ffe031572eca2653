// The host-wide count of busy task threads that io threads read before polling: a
// process's count shows in every process's sum, and a process that dies in the middle of
// a task stops counting once a reader notices.
#include <gtest/gtest.h>

#include <cstdlib>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "comm/cpu_occupancy.hpp"

namespace distrib::detail {
namespace {

std::string unique_name() { return "/distrib-cpu-test-" + std::to_string(::getpid()); }

TEST(CpuOccupancy, ThisProcessesBusyThreadsShowInTheSum) {
  auto name = unique_name();
  {
    CpuOccupancyTable table(name);
    ASSERT_TRUE(table.valid());
    EXPECT_EQ(table.busy(), 0);
    auto* counter = reinterpret_cast<std::atomic<std::int32_t>*>(table.busy_counter_of_this_process());
    ASSERT_NE(counter, nullptr);
    counter->fetch_add(2);
    EXPECT_EQ(table.busy(), 2);
    counter->fetch_sub(2);
    EXPECT_EQ(table.busy(), 0);
  }
  ::shm_unlink(name.c_str());
}

TEST(CpuOccupancy, AProcessKilledInATaskStopsCounting) {
  auto name = unique_name() + "-kill";
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // a worker whose task never ends
    CpuOccupancyTable table(name);
    auto* counter = reinterpret_cast<std::atomic<std::int32_t>*>(table.busy_counter_of_this_process());
    if (counter) counter->fetch_add(1);
    char c = counter ? 'y' : 'n';
    (void)!::write(ready[1], &c, 1);
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  {
    CpuOccupancyTable table(name);
    EXPECT_EQ(c, 'y');
    EXPECT_EQ(table.busy(0), 1) << "the child's busy thread counts here";
    ::kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_EQ(table.busy(0), 0) << "a dead process's slot is freed";
  }
  ::shm_unlink(name.c_str());
}

TEST(CpuOccupancy, TheProcessWideCountFollowsBusyTaskThreads) {
  EXPECT_GE(usable_cores(), 1);
  // ctest turns the host table off for unit tests (DISTRIB_CPU_TABLE=off); this one is about
  // it. The table is opened on first use, which comes below (each test is its own process).
  unsetenv("DISTRIB_CPU_TABLE");
  // Other processes of this user (a parallel test run) may be busy too: only a lower bound
  // holds for the host's sum.
  BusyTaskThread a, b;
  EXPECT_GE(host_busy_task_threads(), 2);
}

}  // namespace
}  // namespace distrib::detail
