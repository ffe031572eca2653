// A pool of large buffers. Freed buffers are kept (up to a cap, the oldest evicted first)
// and handed out again, so that moving the same sizes of data repeatedly does not pay for
// fresh pages each time.
// A buffer nobody reused for kMaxIdle goes back to the system, so a process that moved
// a lot of data once does not hold on to it.
//
// Buffers live in memfds where shared memory is on (core/shared_memory.hpp), so that a
// value in one can be handed to a same-host peer without a copy; a buffer that was handed
// over waits here ("lent") until no peer maps it any more before it is reused.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include "core/shared_memory.hpp"
#include "distrib/bytes.hpp"

namespace distrib::detail {

namespace {
constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr auto kMaxIdle = std::chrono::seconds(10);
constexpr auto kSweepEvery = std::chrono::milliseconds(100);
using Clock = std::chrono::steady_clock;

class BufferPool {
 public:
  BufferPool() {
    auto physical = static_cast<std::size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    // Two 1 GB buffers: a 1 GB gather then reuses what a 1 GB scatter just freed, while a
    // value of that size is still alive.
    max_cached_ = std::min<std::size_t>(std::size_t{2} << 30, physical / 8);
  }

  /// Frees cached buffers idle for longer than kMaxIdle; returns the bytes freed. Lent
  /// buffers no peer maps any more become free ones (`sweep_lent`, or every kSweepEvery).
  std::size_t trim(Clock::time_point now, bool sweep_lent, Clock::duration max_idle = kMaxIdle) {
    std::vector<Cached> old;
    std::size_t bytes = 0;
    {
      std::lock_guard lock(mutex_);
      // Lent buffers no peer maps any more are ours again (a flock each: not on every call).
      const bool sweep = sweep_lent || now - last_sweep_ >= kSweepEvery;
      if (sweep) last_sweep_ = now;
      for (auto it = lent_.begin(); sweep && it != lent_.end();) {
        if (!shm::reclaim(it->second.p)) {
          ++it;
          continue;
        }
        free_.insert(*it);
        it = lent_.erase(it);
      }
      for (auto* list : {&free_, &lent_})
        for (auto it = list->begin(); it != list->end();) {
          if (now - it->second.since < max_idle) {
            ++it;
            continue;
          }
          old.push_back(it->second);
          bytes += it->first;
          cached_ -= it->first;
          it = list->erase(it);
        }
    }
    for (auto& c : old) release(c.p, c.shared);
    return bytes;
  }

  /// Caps the cache at `bytes` (never above its default), giving back what is over.
  void limit_cache(std::size_t bytes) {
    std::vector<Cached> evicted;
    {
      std::lock_guard lock(mutex_);
      max_cached_ = std::min(max_cached_, bytes);
      while (cached_ > max_cached_ && !free_.empty()) {
        auto oldest = std::min_element(free_.begin(), free_.end(),
                                       [](const auto& a, const auto& b) { return a.second.since < b.second.since; });
        evicted.push_back(oldest->second);
        cached_ -= oldest->first;
        free_.erase(oldest);
      }
    }
    for (auto& c : evicted) release(c.p, c.shared);
  }

  std::uint64_t lent_bytes() {
    std::lock_guard lock(mutex_);
    std::uint64_t n = 0;
    for (auto& [capacity, c] : lent_) n += capacity;
    return n;
  }

  std::shared_ptr<std::byte[]> get(std::size_t size) {
    std::byte* p = nullptr;
    std::size_t capacity = 0;
    bool shared = false;
    {
      std::lock_guard lock(mutex_);
      // The smallest cached buffer that fits without wasting more than a quarter.
      const std::size_t most = size + size / 4 + kHugePage;
      auto it = free_.lower_bound(size);
      if (it != free_.end() && it->first <= most) {
        capacity = it->first;
        p = it->second.p;
        shared = it->second.shared;
        cached_ -= capacity;
        free_.erase(it);
      }
      // Else one a peer mapped, if none maps it any more.
      for (auto l = lent_.lower_bound(size); !p && l != lent_.end() && l->first <= most; ++l) {
        if (!shm::reclaim(l->second.p)) continue;
        capacity = l->first;
        p = l->second.p;
        shared = true;
        cached_ -= capacity;
        lent_.erase(l);
        break;
      }
    }
    if (!p) {
      capacity = (size + kHugePage - 1) / kHugePage * kHugePage;
      p = shm::create(capacity);
      shared = p != nullptr;
      if (!p) {
        p = static_cast<std::byte*>(std::aligned_alloc(kHugePage, capacity));
        if (!p) throw std::bad_alloc();
        madvise(p, capacity, MADV_HUGEPAGE);  // fewer page faults where transparent huge pages are on
      }
    }
    trim(Clock::now(), false);
    return std::shared_ptr<std::byte[]>(p, [this, capacity, shared](std::byte* q) { put(q, capacity, shared); });
  }

 private:
  static void release(std::byte* p, bool shared) {
    if (shared) shm::destroy(p);
    else std::free(p);
  }

  void put(std::byte* p, std::size_t capacity, bool shared) {
    const bool lent = shared && !shm::reclaim(p);  // a peer may map it still
    std::vector<Cached> evicted;
    {
      std::lock_guard lock(mutex_);
      if (capacity <= max_cached_) {
        // Full: the free buffers given back longest ago make room, since the one just
        // freed is the likeliest to be asked for again (a new size of transfer replaces the
        // old). Lent ones are not evicted: a peer may map them still.
        while (cached_ + capacity > max_cached_ && !free_.empty()) {
          auto oldest = std::min_element(free_.begin(), free_.end(),
                                         [](const auto& a, const auto& b) { return a.second.since < b.second.since; });
          evicted.push_back(oldest->second);
          cached_ -= oldest->first;
          free_.erase(oldest);
        }
        if (cached_ + capacity <= max_cached_) {
          (lent ? lent_ : free_).emplace(capacity, Cached{p, Clock::now(), shared});
          cached_ += capacity;
          p = nullptr;
        }
      }
    }
    for (auto& c : evicted) release(c.p, c.shared);
    if (p) release(p, shared);  // a peer's mapping keeps the pages it maps
  }

  std::mutex mutex_;
  struct Cached {
    std::byte* p;
    Clock::time_point since;  // when it was given back
    bool shared;              // from shm::create
  };
  std::multimap<std::size_t, Cached> free_;  // ready to reuse
  std::multimap<std::size_t, Cached> lent_;  // handed to peers that may map them still
  std::size_t cached_ = 0;
  Clock::time_point last_sweep_{};
  std::size_t max_cached_ = 0;
};

BufferPool& pool() {
  static auto* p = new BufferPool;  // never destroyed: buffers may be freed during exit
  return *p;
}
}  // namespace

std::shared_ptr<std::byte[]> allocate_pooled(std::size_t size) { return pool().get(size); }

std::size_t trim_pooled_buffers() { return pool().trim(Clock::now(), true); }

void limit_pooled_buffer_cache(std::size_t bytes) { pool().limit_cache(bytes); }

std::size_t release_pooled_buffers() { return pool().trim(Clock::now(), true, Clock::duration::zero()); }

std::uint64_t shm::lent_bytes() { return pool().lent_bytes(); }

void advise_huge_pages(void* p, std::size_t size) {
  if (size < 2 * kHugePage) return;
  // Only whole huge pages inside the range: the advice applies to the range's pages alone.
  auto begin = (reinterpret_cast<std::uintptr_t>(p) + kHugePage - 1) / kHugePage * kHugePage;
  auto end = (reinterpret_cast<std::uintptr_t>(p) + size) / kHugePage * kHugePage;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

}  // namespace distrib::detail
