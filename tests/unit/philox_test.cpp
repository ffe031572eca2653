// Our vectorised Philox 4x32-10 must produce exactly Random123's stream.
#include <Random123/philox.h>
#include <gtest/gtest.h>

#include <vector>

#include "array/philox.hpp"

namespace {
void expect_matches_random123(std::uint64_t seed, std::uint64_t first, std::size_t n) {
  std::vector<std::uint64_t> x0(n), x1(n);
  distrib::array::detail::philox_words(seed, first, n, x0.data(), x1.data());
  r123::Philox4x32 rng;
  r123::Philox4x32::key_type key = {{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}};
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t p = first + i;
    r123::Philox4x32::ctr_type c = {{static_cast<std::uint32_t>(p), static_cast<std::uint32_t>(p >> 32), 0, 0}};
    auto r = rng(c, key);
    ASSERT_EQ(x0[i], std::uint64_t{r[0]} | (std::uint64_t{r[1]} << 32)) << "counter " << p;
    ASSERT_EQ(x1[i], std::uint64_t{r[2]} | (std::uint64_t{r[3]} << 32)) << "counter " << p;
  }
}
}  // namespace

TEST(Philox, MatchesRandom123) {
  expect_matches_random123(0, 0, 1000);
  expect_matches_random123(0x123456789abcdefULL, 5, 333);
  expect_matches_random123(~0ULL, (1ULL << 32) - 7, 200);  // counters crossing 2^32
}

TEST(Philox, UniformValuesDependOnlyOnPosition) {
  std::vector<double> whole(1001), part(500);
  distrib::array::detail::uniform_values(7, 0, whole.size(), 0, 1, whole.data());
  distrib::array::detail::uniform_values(7, 301, part.size(), 0, 1, part.data());  // odd start
  for (std::size_t i = 0; i < part.size(); ++i) ASSERT_EQ(part[i], whole[301 + i]);
  for (double v : whole) {
    ASSERT_GE(v, 0.0);
    ASSERT_LT(v, 1.0);
  }
}

TEST(Philox, NormalValuesDependOnlyOnPosition) {
  std::vector<double> whole(1001), part(500);
  distrib::array::detail::normal_values(9, 0, whole.size(), 0, 1, whole.data());
  distrib::array::detail::normal_values(9, 77, part.size(), 0, 1, part.data());
  for (std::size_t i = 0; i < part.size(); ++i) ASSERT_EQ(part[i], whole[77 + i]);
}
