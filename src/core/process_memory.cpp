#include "core/process_memory.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>

#include "distrib/bytes.hpp"

#if DISTRIB_USE_MIMALLOC
#include <mimalloc.h>
#endif

namespace distrib::detail {

ProcessMemory::ProcessMemory(pid_t pid) {
  const std::string path = pid == 0 ? "/proc/self/statm" : "/proc/" + std::to_string(pid) + "/statm";
  // O_CLOEXEC: a nanny's children do not inherit it.
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "cannot open " + path);
  if (const long page = sysconf(_SC_PAGESIZE); page > 0) page_size_ = static_cast<std::uint64_t>(page);
}

ProcessMemory::~ProcessMemory() {
  if (fd_ >= 0) ::close(fd_);
}

std::uint64_t ProcessMemory::rss_bytes() const {
  // "size resident shared text lib data dt", in pages; the kernel formats it afresh on
  // each read from offset 0. Seven numbers fit in far less than 256 bytes.
  char text[256];
  const ssize_t n = ::pread(fd_, text, sizeof text - 1, 0);
  if (n <= 0) return 0;  // ESRCH: the process has exited
  text[n] = '\0';
  char* end = nullptr;
  std::strtoull(text, &end, 10);  // size
  const unsigned long long resident = std::strtoull(end, nullptr, 10);
  return resident * page_size_;
}

void release_free_memory() {
#if DISTRIB_USE_MIMALLOC
  // Frees this thread's empty pages and abandoned segments, and purges mimalloc's cache
  // of segments; other threads' heaps give back theirs on their own after a short delay.
  mi_collect(true);
#endif
  // Memory from glibc's malloc, should any remain (no mimalloc, or blocks allocated before
  // it was bound); with mimalloc as malloc, this only walks glibc's unused arena.
  malloc_trim(0);
  release_pooled_buffers();  // every cached buffer: under pressure the cache is the first to go
}

}  // namespace distrib::detail
