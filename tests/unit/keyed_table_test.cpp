// KeyedTable against std::unordered_map under random inserts and erases: it finds every
// key it holds, none it does not, and owns (destroys) what it holds.
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <unordered_map>

#include "core/keyed_table.hpp"

namespace distrib::detail {
namespace {

struct Item {
  std::string key;
  int value = 0;
  static inline int alive = 0;
  Item(std::string k, int v) : key(std::move(k)), value(v) { ++alive; }
  ~Item() { --alive; }
};

TEST(KeyedTable, MatchesUnorderedMapUnderRandomChanges) {
  {
    KeyedTable<Item> table;
    std::unordered_map<std::string, int> reference;
    std::mt19937 rng(11);
    for (int step = 0; step < 100'000; ++step) {
      const std::string key = "inc-" + std::to_string(rng() % 3000);
      if (rng() % 3 == 0) {
        table.erase(key);
        reference.erase(key);
      } else if (!table.find(key)) {
        table.insert(std::make_unique<Item>(key, step));
        reference.emplace(key, step);
      }
      ASSERT_EQ(table.size(), reference.size());
      ASSERT_EQ(Item::alive, static_cast<int>(reference.size()));
      if (step % 1009 == 0)
        for (int k = 0; k < 3000; ++k) {
          const std::string probe = "inc-" + std::to_string(k);
          auto it = reference.find(probe);
          Item* found = table.find(probe);
          ASSERT_EQ(found != nullptr, it != reference.end()) << probe;
          if (found) {
            ASSERT_EQ(found->value, it->second);
          }
        }
    }
    std::size_t visited = 0;
    table.for_each([&](Item& item) {
      ++visited;
      EXPECT_EQ(reference.at(item.key), item.value);
    });
    EXPECT_EQ(visited, reference.size());
  }
  EXPECT_EQ(Item::alive, 0);  // the table destroyed what it held
}

TEST(KeyedTable, EmptyTableFindsNothing) {
  KeyedTable<Item> table;
  EXPECT_EQ(table.find("a"), nullptr);
  table.erase("a");
  EXPECT_TRUE(table.empty());
}

}  // namespace
}  // namespace distrib::detail
