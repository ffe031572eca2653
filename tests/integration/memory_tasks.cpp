#include "memory_tasks.hpp"

#include <distrib/task.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>

namespace {

std::uint64_t resident_bytes() {
  long pages = 0, resident = 0;
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  std::fclose(f);
  return static_cast<std::uint64_t>(resident) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

// Anonymous memory, every page written: resident until unmapped.
void* map_touched(std::uint64_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error("mmap of " + std::to_string(bytes) + " bytes failed");
  const auto page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  auto* bytes_p = static_cast<volatile unsigned char*>(p);
  for (std::uint64_t i = 0; i < bytes; i += page) bytes_p[i] = 1;
  return p;
}

std::mutex held_mutex;
std::vector<std::pair<void*, std::uint64_t>> held;

// Holds the memory until the process is killed for it; -1 if that never happens.
int hold_until_killed(std::uint64_t bytes) {
  void* p = map_touched(bytes);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // waiting to be killed, in slices
  munmap(p, bytes);
  return -1;
}

}  // namespace

std::uint64_t hold_memory(int pid, std::uint64_t rss_goal) {
  if (getpid() != pid) return 0;
  const auto now = resident_bytes();
  if (now >= rss_goal) return 0;
  const auto bytes = rss_goal - now;
  void* p = map_touched(bytes);
  std::lock_guard lock(held_mutex);
  held.emplace_back(p, bytes);
  return bytes;
}
DISTRIB_TASK(hold_memory);

std::uint64_t release_memory(int pid) {
  if (getpid() != pid) return 0;
  std::lock_guard lock(held_mutex);
  std::uint64_t n = 0;
  for (auto [p, bytes] : held) {
    munmap(p, bytes);
    n += bytes;
  }
  held.clear();
  return n;
}
DISTRIB_TASK(release_memory);

int hog_memory_once(std::string marker, std::uint64_t bytes, int result) {
  if (std::filesystem::exists(marker)) return result;
  std::ofstream(marker) << getpid() << '\n';
  return hold_until_killed(bytes);
}
DISTRIB_TASK(hog_memory_once);

int hog_memory_always(std::uint64_t bytes) { return hold_until_killed(bytes); }
DISTRIB_TASK(hog_memory_always);

std::vector<std::uint8_t> pattern_bytes(std::uint64_t n, std::uint32_t seed) {
  std::vector<std::uint8_t> out(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (std::uint64_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;  // a position-dependent stream per seed
    out[i] = static_cast<std::uint8_t>(x >> 24);
  }
  return out;
}
DISTRIB_TASK(pattern_bytes);
