// Unit tests of the worker's data store: MemoryStore's byte accounting against the sizes
// actually stored, and WorkerState keeping its values in a store it is given.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "distrib/codec.hpp"
#include "worker/data_store.hpp"
#include "worker/worker_state.hpp"

namespace distrib::detail::wrk {
namespace {

Value bytes_value(std::size_t n, char fill = 'x') { return Value{"bytes", Bytes::copy_of(std::string(n, fill))}; }

// The sum of the sizes a model of the store holds, to check managed_bytes() against.
std::uint64_t sum(const std::map<std::string, std::uint64_t>& model) {
  std::uint64_t total = 0;
  for (const auto& [key, n] : model) total += n;
  return total;
}

TEST(MemoryStore, StartsEmpty) {
  MemoryStore s;
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.managed_bytes(), 0u);
  EXPECT_TRUE(s.keys().empty());
}

TEST(MemoryStore, PutThenGetReturnsTheSameBytes) {
  MemoryStore s;
  auto v = bytes_value(100, 'a');
  s.put("a", v, v.bytes.size());
  ASSERT_TRUE(s.contains("a"));
  auto got = s.get("a");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->type, "bytes");
  EXPECT_EQ(got->bytes.data(), v.bytes.data());  // shared, not copied
  EXPECT_EQ(got->bytes.size(), 100u);
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.managed_bytes(), 100u);
  EXPECT_EQ(s.memory_bytes(), 100u);  // all of it in memory
  EXPECT_EQ(s.spilled_bytes(), 0u);
}

TEST(MemoryStore, MissingKeys) {
  MemoryStore s;
  s.put("a", bytes_value(8), 8);
  EXPECT_FALSE(s.contains("b"));
  EXPECT_FALSE(s.get("b").has_value());
  EXPECT_FALSE(s.erase("b"));  // nothing to erase: the accounting is untouched
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.managed_bytes(), 8u);
}

TEST(MemoryStore, OverwriteCountsOnlyTheNewValue) {
  MemoryStore s;
  s.put("a", bytes_value(1000), 1000);
  s.put("a", bytes_value(10, 'z'), 10);
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.managed_bytes(), 10u);
  auto got = s.get("a");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->bytes.size(), 10u);
  EXPECT_EQ(static_cast<char>(got->bytes.data()[0]), 'z');
}

TEST(MemoryStore, AccountsTheGivenSizeNotTheEncodedOne) {
  // The caller says what a value costs (a spilling store accounts what it keeps in memory).
  MemoryStore s;
  s.put("a", bytes_value(4), 4096);
  EXPECT_EQ(s.managed_bytes(), 4096u);
  EXPECT_TRUE(s.erase("a"));
  EXPECT_EQ(s.managed_bytes(), 0u);
}

TEST(MemoryStore, EraseDropsTheValueAndItsBytes) {
  MemoryStore s;
  s.put("a", bytes_value(30), 30);
  s.put("b", bytes_value(70), 70);
  EXPECT_TRUE(s.erase("a"));
  EXPECT_FALSE(s.contains("a"));
  EXPECT_FALSE(s.erase("a"));  // a second erase finds nothing
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.managed_bytes(), 70u);
  EXPECT_EQ(s.keys(), std::vector<std::string>{"b"});
}

TEST(MemoryStore, AccountingAgreesWithTheStoredSizesThroughManyChanges) {
  MemoryStore s;
  std::map<std::string, std::uint64_t> model;
  // Deterministic mix of puts, overwrites and erases over a small key space, enough to make
  // the table grow and its probe runs shift on erase.
  std::uint64_t x = 12345;
  for (int step = 0; step < 5000; ++step) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    std::string key = "k" + std::to_string((x >> 33) % 300);
    std::size_t n = static_cast<std::size_t>((x >> 13) % 512);
    if ((x >> 60) % 3 == 0) {
      EXPECT_EQ(s.erase(key), model.erase(key) == 1) << key;
    } else {
      s.put(key, bytes_value(n), n);
      model[key] = n;
    }
    ASSERT_EQ(s.managed_bytes(), sum(model)) << "after step " << step;
    ASSERT_EQ(s.size(), model.size()) << "after step " << step;
  }
  // Every key is there with its latest size, and no other.
  auto keys = s.keys();
  std::sort(keys.begin(), keys.end());
  std::vector<std::string> expected;
  for (const auto& [key, n] : model) expected.push_back(key);
  EXPECT_EQ(keys, expected);
  std::uint64_t stored = 0;
  for (const auto& key : keys) {
    auto v = s.get(key);
    ASSERT_TRUE(v.has_value()) << key;
    EXPECT_EQ(v->bytes.size(), model.at(key)) << key;
    stored += v->bytes.size();
  }
  EXPECT_EQ(s.managed_bytes(), stored);
  for (const auto& key : expected) EXPECT_TRUE(s.erase(key));
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.managed_bytes(), 0u);
}

// A store that records what WorkerState asks of it, in front of a MemoryStore: what a
// spilling store will do in its place.
class RecordingStore final : public DataStore {
 public:
  explicit RecordingStore(std::vector<std::string>& log) : log_(log) {}
  void put(const std::string& key, Value value, std::uint64_t nbytes) override {
    log_.push_back("put " + key + " " + std::to_string(nbytes));
    inner_.put(key, std::move(value), nbytes);
  }
  std::optional<Value> get(const std::string& key) const override { return inner_.get(key); }
  bool contains(const std::string& key) const override { return inner_.contains(key); }
  bool erase(const std::string& key) override {
    bool erased = inner_.erase(key);
    if (erased) log_.push_back("erase " + key);
    return erased;
  }
  std::vector<std::string> keys() const override { return inner_.keys(); }
  std::uint64_t managed_bytes() const override { return inner_.managed_bytes(); }
  std::uint64_t memory_bytes() const override { return inner_.memory_bytes(); }
  std::uint64_t spilled_bytes() const override { return inner_.spilled_bytes(); }
  std::size_t size() const override { return inner_.size(); }

 private:
  std::vector<std::string>& log_;
  MemoryStore inner_;
};

TaskSpecPtr task(const std::string& key) {
  auto t = std::make_shared<TaskSpec>();
  t->key = key;
  t->function = "inc";
  t->args = {TaskArg{encode_value(std::int32_t{1})}};
  return t;
}

TEST(WorkerStateStore, KeepsItsValuesInTheStoreItIsGiven) {
  std::vector<std::string> log;
  WorkerState w(1, 10, {}, std::make_unique<RecordingStore>(log));
  w.handle(ComputeTask{task("a"), {}, 1, {}});
  auto v = bytes_value(40);
  w.handle(ExecuteSuccess{"a", v, 0.1});
  w.validate();
  EXPECT_EQ(log, std::vector<std::string>{"put a 40"});
  EXPECT_EQ(w.n_stored(), 1u);
  EXPECT_EQ(w.stored_bytes(), 40u);
  ASSERT_TRUE(w.get_data("a").has_value());
  EXPECT_EQ(w.get_data("a")->bytes.data(), v.bytes.data());

  w.handle(FreeKeys{{"a"}});
  w.validate();
  EXPECT_EQ(log, (std::vector<std::string>{"put a 40", "erase a"}));
  EXPECT_EQ(w.n_stored(), 0u);
  EXPECT_EQ(w.stored_bytes(), 0u);
}

TEST(WorkerStateStore, ScatteredAndComputedValuesAreAccountedTogether) {
  WorkerState w(1);  // the default store
  w.handle(StoreData{{{"s", bytes_value(25)}}});
  w.handle(ComputeTask{task("a"), {}, 1, {}});
  w.handle(ExecuteSuccess{"a", bytes_value(75), 0.1});
  w.validate();
  EXPECT_EQ(w.n_stored(), 2u);
  EXPECT_EQ(w.stored_bytes(), 100u);
  w.handle(FreeKeys{{"s"}});
  EXPECT_EQ(w.stored_bytes(), 75u);
  w.handle(ForgetAll{});
  w.validate();
  EXPECT_EQ(w.n_stored(), 0u);
  EXPECT_EQ(w.stored_bytes(), 0u);
}

}  // namespace
}  // namespace distrib::detail::wrk
