// Unit tests of the pool of large buffers: a buffer given back is handed out again for a
// request of about its size, and is not returned to the system while it is fresh.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace distrib::detail
