// A pool of large buffers. Freed buffers are kept (up to a cap, the oldest evicted first)
// and handed out again, so that moving the same sizes of data repeatedly does not pay for
// fresh pages each time.
// A buffer nobody reused for kMaxIdle goes back to the system, so a process that moved
// a lot of data once does not hold on to it.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include "distrib/bytes.hpp"

namespace distrib::detail {

namespace {
constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr auto kMaxIdle = std::chrono::seconds(10);
using Clock = std::chrono::steady_clock;

class BufferPool {
 public:
  BufferPool() {
    auto physical = static_cast<std::size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    // Two 1 GB buffers: a 1 GB gather then reuses what a 1 GB scatter just freed, while a
    // value of that size is still alive.
    max_cached_ = std::min<std::size_t>(std::size_t{2} << 30, physical / 8);
  }

  /// Frees cached buffers idle for longer than kMaxIdle; returns the bytes freed.
  std::size_t trim(Clock::time_point now) {
    std::vector<std::byte*> old;
    std::size_t bytes = 0;
    {
      std::lock_guard lock(mutex_);
      for (auto it = free_.begin(); it != free_.end();) {
        if (now - it->second.since < kMaxIdle) {
          ++it;
          continue;
        }
        old.push_back(it->second.p);
        bytes += it->first;
        cached_ -= it->first;
        it = free_.erase(it);
      }
    }
    for (auto* p : old) std::free(p);
    return bytes;
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
        p = it->second.p;
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
    trim(Clock::now());
    return std::shared_ptr<std::byte[]>(p, [this, capacity](std::byte* q) { put(q, capacity); });
  }

 private:
  void put(std::byte* p, std::size_t capacity) {
    std::vector<std::byte*> evicted;
    {
      std::lock_guard lock(mutex_);
      if (capacity <= max_cached_) {
        // Full: the buffers given back longest ago make room, since the one just freed is
        // the likeliest to be asked for again (a new size of transfer replaces the old).
        while (cached_ + capacity > max_cached_) {
          auto oldest = std::min_element(free_.begin(), free_.end(),
                                         [](const auto& a, const auto& b) { return a.second.since < b.second.since; });
          evicted.push_back(oldest->second.p);
          cached_ -= oldest->first;
          free_.erase(oldest);
        }
        free_.emplace(capacity, Cached{p, Clock::now()});
        cached_ += capacity;
        p = nullptr;
      }
    }
    for (auto* q : evicted) std::free(q);
    std::free(p);
  }

  std::mutex mutex_;
  struct Cached {
    std::byte* p;
    Clock::time_point since;  // when it was given back
  };
  std::multimap<std::size_t, Cached> free_;
  std::size_t cached_ = 0;
  std::size_t max_cached_ = 0;
};

BufferPool& pool() {
  static auto* p = new BufferPool;  // never destroyed: buffers may be freed during exit
  return *p;
}
}  // namespace

std::shared_ptr<std::byte[]> allocate_pooled(std::size_t size) { return pool().get(size); }

std::size_t trim_pooled_buffers() { return pool().trim(Clock::now()); }

void advise_huge_pages(void* p, std::size_t size) {
  if (size < 2 * kHugePage) return;
  // Only whole huge pages inside the range: the advice applies to the range's pages alone.
  auto begin = (reinterpret_cast<std::uintptr_t>(p) + kHugePage - 1) / kHugePage * kHugePage;
  auto end = (reinterpret_cast<std::uintptr_t>(p) + size) / kHugePage * kHugePage;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

}  // namespace distrib::detail
