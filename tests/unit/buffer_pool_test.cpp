// Unit tests of the pool of large buffers: a buffer given back is handed out again for a
// request of about its size, is not returned to the system while it is fresh, and when the
// pool is full the buffers given back longest ago make room for a new one.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "distrib/bytes.hpp"

namespace distrib::detail {
namespace {

TEST(BufferPool, AFreedBufferIsReusedAndKeptWhileFresh) {
  constexpr std::size_t kSize = std::size_t{3} << 20;
  auto a = allocate_pooled(kSize);
  ASSERT_NE(a, nullptr);
  const auto* raw = a.get();
  a.reset();                             // back to the pool
  EXPECT_EQ(trim_pooled_buffers(), 0u);  // idle for less than 10 s: kept
  auto b = allocate_pooled(kSize - 4096);
  EXPECT_EQ(b.get(), raw);                    // the same memory, already touched
  auto c = allocate_pooled(kSize);            // the cached one is taken: a new buffer
  EXPECT_NE(c.get(), raw);
  auto large = allocate_pooled(kSize * 8);    // far larger than anything cached: new
  EXPECT_NE(large.get(), raw);
}

TEST(BufferPool, WhenFullTheBuffersGivenBackLongestAgoMakeRoom) {
  // The pool keeps min(2 GiB, RAM / 8); three buffers of almost half that overfill it.
  const auto physical = static_cast<std::size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const std::size_t cap = std::min<std::size_t>(std::size_t{2} << 30, physical / 8);
  const std::size_t size = cap / 2 - (std::size_t{4} << 20);
  auto a = allocate_pooled(size), b = allocate_pooled(size), c = allocate_pooled(size);
  const std::uint64_t marks[] = {0x1111, 0x2222, 0x3333};
  std::memcpy(a.get(), &marks[0], 8);  // only the first page is touched
  std::memcpy(b.get(), &marks[1], 8);
  std::memcpy(c.get(), &marks[2], 8);
  const std::byte* kept[] = {b.get(), c.get()};
  a.reset(), b.reset(), c.reset();  // the last one given back does not find room: `a` goes
  auto x = allocate_pooled(size), y = allocate_pooled(size);
  for (const auto& got : {x, y}) {
    const std::uint64_t* mark = reinterpret_cast<const std::uint64_t*>(got.get());
    const bool is_b = got.get() == kept[0], is_c = got.get() == kept[1];
    EXPECT_TRUE(is_b || is_c) << "a recently given back buffer was not kept";
    EXPECT_EQ(*mark, is_b ? marks[1] : marks[2]);  // the same memory, not a fresh mapping there
  }
  EXPECT_NE(x.get(), y.get());
}

}  // namespace
}  // namespace distrib::detail
