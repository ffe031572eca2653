// Unit tests of the process's operator new (src/core/large_allocations.cpp): large blocks
// come from the buffer pool, so a freed vector's memory is handed to the next one warm;
// small ones and pointers it did not hand out go to malloc and free.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

#include "distrib/bytes.hpp"

namespace {

constexpr std::uintptr_t kTwoMiB = std::uintptr_t{2} << 20;

bool pool_aligned(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % kTwoMiB == 0; }

TEST(LargeAllocations, AFreedLargeVectorsMemoryIsReusedByTheNextOne) {
  // An odd size, so that no other cached buffer of the test program fits first.
  const std::size_t n = ((std::size_t{41} << 20) + 12345) / sizeof(double);
  const double* first = nullptr;
  {
    std::vector<double> v(n, 1.5);
    first = v.data();
    EXPECT_TRUE(pool_aligned(first));  // a pool buffer: 2 MiB aligned, huge pages advised
  }
  EXPECT_EQ(distrib::detail::trim_pooled_buffers(), 0u);  // fresh in the pool: kept
  std::vector<double> w(n - 1000);                        // a little smaller still fits
  EXPECT_EQ(w.data(), first);
  std::vector<double> x(n);  // the cached one is in use: another block
  EXPECT_NE(x.data(), first);
}

TEST(LargeAllocations, SmallBlocksAndArraysWork) {
  auto* small = new int[16];
  for (int i = 0; i < 16; ++i) small[i] = i;
  EXPECT_EQ(small[15], 15);
  delete[] small;
  auto* big = new std::byte[std::size_t{3} << 20];
  EXPECT_TRUE(pool_aligned(big));
  big[(std::size_t{3} << 20) - 1] = std::byte{7};
  delete[] big;
  ::operator delete(::operator new(0));  // a unique pointer even for zero bytes
}

TEST(LargeAllocations, DeleteOfMemoryFromElsewhereGoesToFree) {
  // 2 MiB aligned like a pool buffer, but not handed out by operator new: freed by free().
  void* p = std::aligned_alloc(kTwoMiB, kTwoMiB * 2);
  ASSERT_NE(p, nullptr);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // the mismatch is what is tested
  ::operator delete(p);
#pragma GCC diagnostic pop
}

TEST(LargeAllocations, ImpossibleSizesFailAsTheStandardSays) {
  const std::size_t huge = std::size_t{1} << 60;
  EXPECT_THROW((void)::operator new(huge), std::bad_alloc);
  EXPECT_EQ(::operator new(huge, std::nothrow), nullptr);
  EXPECT_EQ(::operator new[](huge, std::nothrow), nullptr);
}

}  // namespace
