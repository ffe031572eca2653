// The process's operator new and delete: large blocks come from the buffer pool, the rest
// from malloc (mimalloc where it is linked).
//
// Why: a std::vector or std::string owns its memory through operator new, so it cannot
// share a pooled Bytes buffer. Without this, every large vector decoded from the wire (a
// gathered result, a task's argument) gets fresh pages from the system (the allocator maps
// big blocks and unmaps them on free), and on the VMs measured the first touch of fresh
// pages runs at about 1 GB/s against about 10 GB/s for memory touched before. Served by the
// pool, a freed vector's memory stays warm for the next one, with the pool's bounds: at most
// min(2 GiB, RAM / 8) cached, and what nobody reused for 10 s goes back to the system.
//
// Only operator new(size_t) and its array and nothrow forms are replaced; the aligned forms
// stay with the allocator (they pair with its own aligned deletes). A pointer this delete
// does not know goes to free(), so memory that another operator new handed out is freed
// as before.
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <unordered_map>

#include "distrib/bytes.hpp"

#if DISTRIB_USE_MIMALLOC
#include <mimalloc.h>
#endif

namespace distrib::detail {
namespace {

/// Allocations at least this large come from the pool.
constexpr std::size_t kLargeBytes = kPooledBufferBytes;
/// Pool buffers are aligned to 2 MiB: a pointer that is not cannot be one of ours, so most
/// deletes never look at the table.
constexpr std::uintptr_t kPoolAlignment = std::uintptr_t{2} << 20;

// True while this thread is inside the table's code: its own allocations (the table's nodes
// and buckets) then go straight to malloc, so the table never re-enters itself.
thread_local bool tls_in_table = false;

class LargeBlocks {
 public:
  void* allocate(std::size_t size) {
    auto buffer = allocate_pooled(size);  // outside the lock: the pool has its own
    void* p = buffer.get();
    std::lock_guard lock(mutex_);
    tls_in_table = true;
    try {
      live_.emplace(p, std::move(buffer));
    } catch (...) {
      tls_in_table = false;
      throw;
    }
    tls_in_table = false;
    return p;
  }

  /// Returns the block to the pool if it is one of ours.
  bool release(void* p) {
    std::shared_ptr<std::byte[]> buffer;
    {
      std::lock_guard lock(mutex_);
      tls_in_table = true;
      auto it = live_.find(p);
      if (it != live_.end()) {
        buffer = std::move(it->second);
        live_.erase(it);
      }
      tls_in_table = false;
    }
    return buffer != nullptr;  // `buffer` goes back to the pool here, outside the lock
  }

 private:
  std::mutex mutex_;
  std::unordered_map<void*, std::shared_ptr<std::byte[]>> live_;
};

LargeBlocks& blocks() {
  static auto* b = new LargeBlocks;  // never destroyed: blocks may be freed during exit
  return *b;
}

[[gnu::noinline]] void* allocate_slow(std::size_t size) {
  if (size >= kLargeBytes && !tls_in_table) return blocks().allocate(size);
  for (;;) {
    if (void* p = std::malloc(size > 0 ? size : 1)) return p;
    auto handler = std::get_new_handler();
    if (!handler) throw std::bad_alloc();
    handler();
  }
}

// The fast paths are a compare and a jump to the allocator, or a test and a jump to free:
// every small allocation of the process passes here (with mimalloc, straight to its own
// operator new semantics, as before libdistrib had these).
inline void* allocate(std::size_t size) {
#if DISTRIB_USE_MIMALLOC
  if (size < kLargeBytes) [[likely]]
    return mi_new(size);
#else
  if (size < kLargeBytes && size > 0) [[likely]] {
    if (void* p = std::malloc(size)) [[likely]]
      return p;
  }
#endif
  return allocate_slow(size);
}

[[gnu::noinline]] bool release_if_pooled(void* p) noexcept { return !tls_in_table && blocks().release(p); }

inline void deallocate(void* p) noexcept {
  if ((reinterpret_cast<std::uintptr_t>(p) & (kPoolAlignment - 1)) == 0 && p && release_if_pooled(p)) [[unlikely]]
    return;
#if DISTRIB_USE_MIMALLOC
  mi_free(p);
#else
  std::free(p);
#endif
}

void* allocate_nothrow(std::size_t size) noexcept {
  try {
    return allocate(size);
  } catch (...) {
    return nullptr;
  }
}

}  // namespace
}  // namespace distrib::detail

// Exported from libdistrib: the loader binds every operator new of the process to these.
void* operator new(std::size_t size) { return distrib::detail::allocate(size); }
void* operator new[](std::size_t size) { return distrib::detail::allocate(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return distrib::detail::allocate_nothrow(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return distrib::detail::allocate_nothrow(size);
}
void operator delete(void* p) noexcept { distrib::detail::deallocate(p); }
void operator delete[](void* p) noexcept { distrib::detail::deallocate(p); }
void operator delete(void* p, std::size_t) noexcept { distrib::detail::deallocate(p); }
void operator delete[](void* p, std::size_t) noexcept { distrib::detail::deallocate(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { distrib::detail::deallocate(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { distrib::detail::deallocate(p); }
