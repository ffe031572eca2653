// A pool of large buffers. Freed buffers are kept (up to a cap) and handed out again, so
// that moving the same sizes of data repeatedly does not pay for fresh pages each time.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>

#include "distrib/bytes.hpp"

namespace distrib::detail {

namespace {
constexpr std::size_t kHugePage = std::size_t{2} << 20;

class BufferPool {
 public:
  BufferPool() {
    auto physical = static_cast<std::size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    max_cached_ = std::min<std::size_t>(std::size_t{1} << 30, physical / 16);
  }

  std::shared_ptr<std::byte[]> get(std::size_t size) {
    std::byte* p = nullptr;
    std::size_t capacity = 0;
    {
      std::lock_guard lock(mutex_);
      // The smallest cached buffer that fits without wasting more than a quarter.
      auto it = free_.lower_bound(size);
      if (it != free_.end() && it->first <= size + size / 4 + kHugePage) {
        capacity = it->first;
        p = it->second;
        cached_ -= capacity;
        free_.erase(it);
      }
    }
    if (!p) {
      capacity = (size + kHugePage - 1) / kHugePage * kHugePage;
      p = static_cast<std::byte*>(std::aligned_alloc(kHugePage, capacity));
      if (!p) throw std::bad_alloc();
      madvise(p, capacity, MADV_HUGEPAGE);  // fewer page faults where transparent huge pages are on
    }
    return std::shared_ptr<std::byte[]>(p, [this, capacity](std::byte* q) { put(q, capacity); });
  }

 private:
  void put(std::byte* p, std::size_t capacity) {
    {
      std::lock_guard lock(mutex_);
      if (cached_ + capacity <= max_cached_) {
        free_.emplace(capacity, p);
        cached_ += capacity;
        return;
      }
    }
    std::free(p);
  }

  std::mutex mutex_;
  std::multimap<std::size_t, std::byte*> free_;
  std::size_t cached_ = 0;
  std::size_t max_cached_ = 0;
};

BufferPool& pool() {
  static auto* p = new BufferPool;  // never destroyed: buffers may be freed during exit
  return *p;
}
}  // namespace

std::shared_ptr<std::byte[]> allocate_pooled(std::size_t size) { return pool().get(size); }

void advise_huge_pages(void* p, std::size_t size) {
  if (size < 2 * kHugePage) return;
  // Only whole huge pages inside the range: the advice applies to the range's pages alone.
  auto begin = (reinterpret_cast<std::uintptr_t>(p) + kHugePage - 1) / kHugePage * kHugePage;
  auto end = (reinterpret_cast<std::uintptr_t>(p) + size) / kHugePage * kHugePage;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

}  // namespace distrib::detail
