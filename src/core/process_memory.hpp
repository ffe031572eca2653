#pragma once
// How much memory a process holds, read cheaply enough to sample every 100 ms (the worker's
// memory monitor, worker/memory_policy.hpp), and handing freed memory back to the OS.
#include <sys/types.h>

#include <cstdint>

namespace distrib::detail {

/// Reads a process's resident set size from /proc/<pid>/statm: the file stays open and each
/// reading is one pread (no open, no allocation), as psutil's memory_info().rss that Dask
/// uses counts it (anonymous, file-backed and shared pages, memfd buffers included).
class ProcessMemory {
 public:
  /// This process (0), or another one, such as the worker a nanny watches. The open file
  /// stays bound to that process: once it has exited, readings are 0, even if its pid is
  /// reused. Throws std::system_error if the file cannot be opened.
  explicit ProcessMemory(pid_t pid = 0);
  ~ProcessMemory();
  ProcessMemory(const ProcessMemory&) = delete;
  ProcessMemory& operator=(const ProcessMemory&) = delete;

  /// Resident bytes now; 0 if the process is gone. Safe from several threads at once.
  std::uint64_t rss_bytes() const;

 private:
  int fd_ = -1;
  std::uint64_t page_size_ = 4096;
};

/// Returns memory this process freed but its allocators keep to the OS: mimalloc's
/// mi_collect(true) where it is linked, glibc's malloc_trim(0), and every buffer cached in
/// the buffer pool. Takes milliseconds: call it from
/// the memory monitor when MemoryPolicy asks, not on every free.
void release_free_memory();

}  // namespace distrib::detail
