// Unit tests of reading process memory and releasing freed memory (src/core/process_memory.*).
#include "core/process_memory.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace distrib::detail {
namespace {

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;

// VmRSS from /proc/self/status, another view of the same counter, in bytes.
std::uint64_t status_rss() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

TEST(ProcessMemory, ReadsAPlausibleRss) {
  ProcessMemory memory;
  const auto rss = memory.rss_bytes();
  EXPECT_GT(rss, kMiB) << "a process with libdistrib loaded holds more than a MiB";
  EXPECT_LT(rss, static_cast<std::uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE)));
  const auto status = status_rss();
  EXPECT_LT(rss > status ? rss - status : status - rss, 8 * kMiB) << rss << " against VmRSS " << status;
}

TEST(ProcessMemory, GrowsAfterTouchingAnAllocationAndShrinksAfterUnmapping) {
  ProcessMemory memory;
  constexpr std::size_t kSize = 64 * kMiB;
  // mmap, not malloc or new: allocators and the buffer pool may hand back pages touched before.
  void* p = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  const auto before = memory.rss_bytes();
  std::memset(p, 1, kSize);
  const auto touched = memory.rss_bytes();
  munmap(p, kSize);
  const auto after = memory.rss_bytes();
  EXPECT_GE(touched, before + 60 * kMiB) << before << " -> " << touched;
  EXPECT_LE(after, touched - 60 * kMiB) << touched << " -> " << after;
}

TEST(ProcessMemory, ReadsAnotherProcessUntilItExits) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Async-signal-safe calls only: the parent has threads.
    char c = 1;
    (void)!write(ready[1], &c, 1);
    for (;;) pause();
  }
  close(ready[1]);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  ProcessMemory memory(child);
  EXPECT_GT(memory.rss_bytes(), 0u);
  kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_EQ(memory.rss_bytes(), 0u) << "the reaped process has no memory";
}

TEST(ProcessMemory, AProcessThatDoesNotExistThrows) {
  // Above the largest pid_max Linux allows (2^22).
  EXPECT_THROW(ProcessMemory(pid_t{1} << 23), std::system_error);
}

TEST(ProcessMemory, ReleaseFreeMemoryReturnsFreedBlocks) {
  ProcessMemory memory;
  std::uint64_t held = 0;
  // On a thread of its own, so that the blocks fill segments of that thread's heap alone:
  // freed, those are wholly empty, and it is they the allocator keeps rather than memory
  // inside segments other allocations still use.
  std::thread([&] {
    // Blocks under the buffer pool's 1 MiB, so the allocator itself holds them.
    std::vector<void*> blocks;
    for (int i = 0; i < 256; ++i) {
      void* b = std::malloc(256 * 1024);
      if (!b) return;
      std::memset(b, 1, 256 * 1024);
      blocks.push_back(b);
    }
    held = memory.rss_bytes();
    for (void* b : blocks) std::free(b);
  }).join();
  const auto freed = memory.rss_bytes();
  release_free_memory();
  const auto released = memory.rss_bytes();
  ASSERT_GT(held, 0u) << "malloc failed";
  // Freeing alone left it all resident here (mimalloc keeps empty segments for reuse).
  EXPECT_LE(released, held - 32 * kMiB) << held << " held, " << freed << " once freed, " << released << " released";
}

}  // namespace
}  // namespace distrib::detail
