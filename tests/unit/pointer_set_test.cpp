// PointerSet against std::unordered_set under random inserts and erases: same members,
// same answers, and lookups stay right after the backward shifts of deletion.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <unordered_set>
#include <vector>

#include "core/pointer_set.hpp"

namespace distrib::detail {
namespace {

TEST(PointerSet, MatchesUnorderedSetUnderRandomChanges) {
  std::vector<int> storage(2000);
  std::mt19937 rng(7);
  PointerSet<int> set;
  std::unordered_set<int*> reference;
  for (int step = 0; step < 200'000; ++step) {
    int* p = &storage[rng() % storage.size()];
    if (rng() % 3 == 0) {
      ASSERT_EQ(set.erase(p), reference.erase(p) == 1) << step;
    } else {
      ASSERT_EQ(set.insert(p), reference.insert(p).second) << step;
    }
    ASSERT_EQ(set.size(), reference.size());
    if (step % 997 == 0) {
      for (auto& x : storage) ASSERT_EQ(set.count(&x), reference.count(&x));
      std::vector<int*> members(set.begin(), set.end());
      std::vector<int*> expected(reference.begin(), reference.end());
      std::sort(members.begin(), members.end());
      std::sort(expected.begin(), expected.end());
      ASSERT_EQ(members, expected);
    }
  }
  set.clear();
  EXPECT_TRUE(set.empty());
  EXPECT_EQ(set.begin(), set.end());
  EXPECT_FALSE(set.contains(&storage[0]));
  EXPECT_TRUE(set.insert(&storage[0]));
  EXPECT_FALSE(set.insert(&storage[0]));
  EXPECT_EQ(set.size(), 1u);
}

TEST(PointerSet, EmptySetHasNothing) {
  PointerSet<int> set;
  int x = 0;
  EXPECT_EQ(set.count(&x), 0u);
  EXPECT_FALSE(set.erase(&x));
  EXPECT_EQ(std::distance(set.begin(), set.end()), 0);
}

}  // namespace
}  // namespace distrib::detail
