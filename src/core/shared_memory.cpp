// Shared buffers: memfd creation, the table of this process's shared mappings, freezing,
// describing and mapping. See shared_memory.hpp for the rules and why.
#include "core/shared_memory.hpp"

#ifndef _GNU_SOURCE
#define _GNU_SOURCE  // mremap
#endif
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

namespace distrib::detail::shm {

namespace {
constexpr std::size_t kAlignment = std::size_t{2} << 20;  // as the pool's other buffers
// Set when a buffer is made: its size can never change, so a peer's mapping of it can never
// fault (SIGBUS) on a page cut off. No F_SEAL_WRITE: the holder keeps a writable mapping
// (for a worker's stored values, which nobody writes) or remaps it copy-on-write (freeze).
constexpr unsigned kSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

std::size_t page_size() {
  static const auto size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

bool env_off(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return false;
  std::string s(v);
  return s == "0" || s == "off" || s == "false" || s == "no";
}

// One mapping of a shared file in this process.
struct Region {
  std::size_t length = 0;      // mapped bytes from the base address
  int fd = -1;                 // ours, or the one we opened on a peer's file (it holds our lock)
  std::uint64_t inode = 0;
  std::uint64_t file_offset = 0;  // of the base address in the file
  std::uint64_t generation = 0;   // of the file's contents (see reclaim)
  bool own = false;            // from create(); otherwise a peer's buffer we mapped
  bool exported = false;       // ours, described to a peer: reused only once reclaimed
  bool frozen = false;         // ours, mapped copy-on-write since it was described with freeze
};

class Table {
 public:
  Table() {
    if (env_off("DISTRIB_SHARED_MEMORY")) return;
    // Each shared buffer holds an fd: use all the descriptors we are allowed.
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
      if (lim.rlim_cur < lim.rlim_max) {
        rlimit raised = lim;
        raised.rlim_cur = lim.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
      }
      budget_ = std::min<std::uint64_t>(lim.rlim_cur / 2, 32768);
    }
    // Does this kernel have memfd and seals?
    int fd = memfd_create("distrib-probe", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return;
    bool ok = ftruncate(fd, 4096) == 0 && fcntl(fd, F_ADD_SEALS, kSeals) == 0;
    ::close(fd);
    enabled_ = ok && budget_ > 0;
    refuse_maps_ = std::getenv("DISTRIB_SHARED_MEMORY_TEST_REFUSE") != nullptr;
  }

  bool enabled() const { return enabled_; }

  std::byte* create(std::size_t capacity) {
    if (!enabled_ || capacity == 0 || capacity % kAlignment != 0) return nullptr;
    {
      std::lock_guard lock(mutex_);
      if (fds_ >= budget_) return nullptr;
      ++fds_;  // reserved; given back below on failure
    }
    std::byte* p = nullptr;
    int fd = memfd_create("distrib-buffer", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    struct stat st {};
    // One page more than the buffer: its generation, read by peers (see reclaim).
    if (fd >= 0 && ftruncate(fd, static_cast<off_t>(capacity + page_size())) == 0 && fcntl(fd, F_ADD_SEALS, kSeals) == 0 &&
        fstat(fd, &st) == 0)
      p = map_aligned(fd, capacity);
    if (!p) {
      if (fd >= 0) ::close(fd);
      std::lock_guard lock(mutex_);
      --fds_;
      return nullptr;
    }
    std::lock_guard lock(mutex_);
    regions_[p] = Region{.length = capacity, .fd = fd, .inode = static_cast<std::uint64_t>(st.st_ino), .own = true};
    return p;
  }

  // Whether the pool may reuse our buffer at `p`: never described, or no peer maps it any
  // more. A peer holds a shared flock on the file for as long as it maps it (taken before it
  // acknowledges the descriptor, while we still hold the value), so an exclusive one
  // succeeding here means none does. The generation, bumped under that lock, tells a peer
  // that opens the file late (its connection broke before it acknowledged) that the bytes it
  // was told about are gone.
  bool reclaim(const std::byte* p) {
    std::lock_guard lock(mutex_);
    auto it = regions_.find(p);
    if (it == regions_.end() || !it->second.own) return false;
    Region& r = it->second;
    if (!r.exported) return true;
    if (flock(r.fd, LOCK_EX | LOCK_NB) != 0) return false;
    const std::uint64_t next = r.generation + 1;
    bool ok = pwrite(r.fd, &next, sizeof next, static_cast<off_t>(r.length)) == static_cast<ssize_t>(sizeof next);
    flock(r.fd, LOCK_UN);
    if (!ok) return false;
    r.generation = next;
    if (r.frozen && !remap(const_cast<std::byte*>(p), r, MAP_SHARED)) return false;
    r.frozen = false;
    r.exported = false;
    exported_bytes_ -= r.length;
    return true;
  }

  // Unmaps and closes the region based at `p` (ours or a peer's).
  void destroy(const std::byte* p) {
    Region r;
    {
      std::lock_guard lock(mutex_);
      auto it = regions_.find(p);
      if (it == regions_.end()) return;
      r = it->second;
      regions_.erase(it);
      if (r.fd >= 0) --fds_;
      if (r.own && r.exported) exported_bytes_ -= r.length;
      if (!r.own) mapped_bytes_ -= r.length;
    }
    munmap(const_cast<std::byte*>(p), r.length);
    if (r.fd >= 0) ::close(r.fd);
  }

  std::optional<Descriptor> describe(const std::byte* data, std::size_t size, bool freeze) {
    if (!enabled_ || size == 0) return std::nullopt;
    std::lock_guard lock(mutex_);
    auto it = regions_.upper_bound(data);
    if (it == regions_.begin()) return std::nullopt;
    --it;
    auto* base = it->first;
    Region& r = it->second;
    if (data < base || data + size > base + r.length || r.fd < 0) return std::nullopt;
    // Our view of a peer's buffer may differ from the file where we wrote to it (copy-on-write).
    if (freeze && !r.own) return std::nullopt;
    if (freeze && !r.frozen) {
      if (!remap(const_cast<std::byte*>(base), r, MAP_PRIVATE)) return std::nullopt;
      r.frozen = true;
    }
    if (r.own && !r.exported) {
      r.exported = true;
      exported_bytes_ += r.length;
    }
    bytes_described_ += size;
    return Descriptor{static_cast<std::uint32_t>(getpid()), r.fd, r.inode,
                      r.file_offset + static_cast<std::uint64_t>(data - base), size, r.generation};
  }

  Mapped map(const Descriptor& d) {
    if (d.length == 0) return {Bytes(), {}};
    if (!enabled_) return {Bytes(), "shared memory is off here"};
    if (refuse_maps_) return {Bytes(), "refused (DISTRIB_SHARED_MEMORY_TEST_REFUSE is set)"};
    {
      // The fd stays open as long as the mapping: its lock keeps the holder from reusing it.
      std::lock_guard lock(mutex_);
      if (fds_ >= budget_) return {Bytes(), "the budget of " + std::to_string(budget_) + " fds is spent"};
      ++fds_;  // reserved; given back below on failure
    }
    auto path = "/proc/" + std::to_string(d.pid) + "/fd/" + std::to_string(d.fd);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    auto fail = [this, fd](std::string why) {
      if (fd >= 0) ::close(fd);
      std::lock_guard lock(mutex_);
      --fds_;
      return Mapped{Bytes(), std::move(why)};
    };
    if (fd < 0) return fail(errno_text(("open " + path).c_str()));
    struct stat st {};
    if (fstat(fd, &st) != 0) return fail(errno_text("fstat"));
    if (static_cast<std::uint64_t>(st.st_ino) != d.inode || !S_ISREG(st.st_mode))
      return fail(path + " is not the buffer described (its fd was closed)");
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size < page_size() || d.offset > size - page_size() || d.length > size - page_size() - d.offset)
      return fail("the range described lies outside " + path);
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || !(static_cast<unsigned>(seals) & F_SEAL_SHRINK)) return fail(path + " is not sealed against shrinking");
    if (flock(fd, LOCK_SH | LOCK_NB) != 0) return fail("the holder is reusing " + path);
    std::uint64_t generation = 0;
    if (pread(fd, &generation, sizeof generation, static_cast<off_t>(size - page_size())) != sizeof generation ||
        generation != d.generation)
      return fail("the holder reused " + path + " since it was described");
    const std::uint64_t start = d.offset / page_size() * page_size();
    const std::uint64_t end = (d.offset + d.length + page_size() - 1) / page_size() * page_size();
    const auto length = static_cast<std::size_t>(end - start);
    // Private: a write here (a task changing its input) copies the page for this process.
    void* p = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, static_cast<off_t>(start));
    if (p == MAP_FAILED) return fail(errno_text("mmap"));
    auto* base = static_cast<std::byte*>(p);
    {
      std::lock_guard lock(mutex_);
      regions_[base] = Region{.length = length, .fd = fd, .inode = d.inode, .file_offset = start, .generation = d.generation};
      mapped_bytes_ += length;
      bytes_mapped_ += d.length;
    }
    auto owner = std::shared_ptr<std::byte[]>(base, [this](std::byte* q) { destroy(q); });
    return {Bytes::adopt(std::move(owner), length).slice(static_cast<std::size_t>(d.offset - start), d.length), {}};
  }

  Stats stats() {
    std::lock_guard lock(mutex_);
    return {bytes_described_, bytes_mapped_, exported_bytes_, mapped_bytes_, fds_, budget_};
  }

  std::uint64_t set_budget(std::uint64_t budget) {
    std::lock_guard lock(mutex_);
    return std::exchange(budget_, budget);
  }

 private:
  // Maps `fd` read-write at an address aligned to kAlignment (reserve more, trim the rest).
  static std::byte* map_aligned(int fd, std::size_t capacity) {
    void* reserved = mmap(nullptr, capacity + kAlignment, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (reserved == MAP_FAILED) return nullptr;
    auto begin = reinterpret_cast<std::uintptr_t>(reserved);
    auto aligned = (begin + kAlignment - 1) / kAlignment * kAlignment;
    void* p = mmap(reinterpret_cast<void*>(aligned), capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
    if (p == MAP_FAILED) {
      munmap(reserved, capacity + kAlignment);
      return nullptr;
    }
    if (aligned > begin) munmap(reserved, aligned - begin);
    auto tail = begin + capacity + kAlignment - (aligned + capacity);
    if (tail > 0) munmap(reinterpret_cast<void*>(aligned + capacity), tail);
    return static_cast<std::byte*>(p);
  }

  // Maps our file again over `base` with `flags`: MAP_PRIVATE to freeze (the same bytes
  // without a copy, reads map the file's pages, a later write here copies the page for us
  // alone; costs a walk of the page tables, 40-90 ms per GB here), MAP_SHARED to undo it
  // when the buffer is reused. Mapped elsewhere first, then moved over the old mapping in
  // one step (mremap replaces the destination atomically; a failed MAP_FIXED could leave a
  // hole). With mutex_ held.
  static bool remap(std::byte* base, const Region& r, int flags) {
    void* p = mmap(nullptr, r.length, PROT_READ | PROT_WRITE, flags, r.fd, 0);
    if (p == MAP_FAILED) return false;
    if (mremap(p, r.length, r.length, MREMAP_MAYMOVE | MREMAP_FIXED, base) == MAP_FAILED) {
      munmap(p, r.length);
      return false;
    }
    return true;
  }

  bool enabled_ = false;
  bool refuse_maps_ = false;
  std::mutex mutex_;
  std::map<const std::byte*, Region> regions_;
  std::uint64_t fds_ = 0, budget_ = 0;
  std::uint64_t bytes_described_ = 0, bytes_mapped_ = 0, exported_bytes_ = 0, mapped_bytes_ = 0;
};

Table& table() {
  static auto* t = new Table;  // never destroyed: buffers may be freed during exit
  return *t;
}
}  // namespace

bool enabled() { return table().enabled(); }
std::byte* create(std::size_t capacity) { return table().create(capacity); }
bool reclaim(const std::byte* p) { return table().reclaim(p); }
void destroy(std::byte* p) { table().destroy(p); }
std::optional<Descriptor> describe(const std::byte* data, std::size_t size, bool freeze) {
  return table().describe(data, size, freeze);
}
Mapped map(const Descriptor& d) { return table().map(d); }
Stats stats() { return table().stats(); }
std::uint64_t set_fd_budget_for_testing(std::uint64_t budget) { return table().set_budget(budget); }

}  // namespace distrib::detail::shm
