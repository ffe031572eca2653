// Unit tests of SpillingStore: the LRU order, spilling past the target and reading back,
// bit for bit for every value type (with and without compression), the accounting through
// random operations, files removed with their keys, values chosen for spilling while their
// write is held back, and a full or read-only disk losing nothing. Tests wait with flush(),
// never with sleeps.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "distrib/codec.hpp"
#include "distrib/ndarray.hpp"
#include "spill_test_support.hpp"
#include "worker/spill_directory.hpp"
#include "worker/spilling_store.hpp"
#include "worker/worker_state.hpp"

namespace spill_test {
// A user type, named by its C++ type.
struct Reading {
  std::string sensor;
  std::vector<double> samples;
  std::map<std::string, std::int64_t> tags;
  template <class A>
  void serialize(A& ar) {
    ar(sensor, samples, tags);
  }
  bool operator==(const Reading&) const = default;
};
}  // namespace spill_test

namespace distrib::detail::wrk {
namespace {

using test_support::names_in;
using test_support::random_bytes;
using test_support::TempDir;
using test_support::TmpfsMount;

Value value_of(std::size_t n, std::uint64_t seed = 1) { return Value{"bytes", random_bytes(n, seed)}; }

bool same_bytes(const Bytes& a, const Bytes& b) {
  return a.size() == b.size() && (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

// The spill files in a store's directory (its lock file aside).
std::vector<std::string> spill_files(const SpillingStore& s) {
  auto names = names_in(s.directory());
  names.erase(std::remove(names.begin(), names.end(), SpillDirectory::kLockFile), names.end());
  return names;
}

class SpillingStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<SpillingStore> make(std::uint64_t target, bool compress = false) {
    return std::make_unique<SpillingStore>(SpillOptions{.local_directory = parent_.path(), .target_bytes = target, .compress = compress});
  }
  TempDir parent_;
};

TEST_F(SpillingStoreTest, LruOrderFollowsPutsAndGets) {
  auto s = make(0);
  for (const char* k : {"a", "b", "c"}) s->put(k, value_of(10), 10);
  EXPECT_EQ(s->lru_keys(), (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_TRUE(s->get("a").has_value());
  EXPECT_EQ(s->lru_keys(), (std::vector<std::string>{"b", "c", "a"}));
  s->put("b", value_of(10, 2), 10);  // replacing is a use
  EXPECT_EQ(s->lru_keys(), (std::vector<std::string>{"c", "a", "b"}));
  EXPECT_TRUE(s->erase("a"));
  EXPECT_EQ(s->lru_keys(), (std::vector<std::string>{"c", "b"}));
  s->flush();
  EXPECT_TRUE(spill_files(*s).empty());  // no target: nothing spilled
}

TEST_F(SpillingStoreTest, SpillsTheLeastRecentlyUsedPastTheTargetAndReadsItBack) {
  auto s = make(250);
  std::map<std::string, Value> put;
  for (const char* k : {"a", "b", "c"}) {
    put[k] = value_of(100, static_cast<std::uint64_t>(k[0]));
    s->put(k, put[k], 100);
  }
  s->flush();
  EXPECT_TRUE(s->is_spilled("a"));
  EXPECT_FALSE(s->is_spilled("b"));
  EXPECT_EQ(s->memory_bytes(), 200u);
  EXPECT_EQ(s->spilled_bytes(), 100u);
  EXPECT_EQ(s->managed_bytes(), 300u);
  EXPECT_EQ(s->size(), 3u);
  EXPECT_EQ(spill_files(*s).size(), 1u);
  EXPECT_EQ(s->lru_keys(), (std::vector<std::string>{"b", "c"}));

  // Reading "a" back makes it the most recently used; "b" goes in its place.
  auto a = s->get("a");
  ASSERT_TRUE(a.has_value());
  EXPECT_TRUE(same_bytes(a->bytes, put["a"].bytes));
  EXPECT_EQ(a->type, "bytes");
  s->flush();
  EXPECT_FALSE(s->is_spilled("a"));
  EXPECT_TRUE(s->is_spilled("b"));
  EXPECT_EQ(s->memory_bytes(), 200u);
  EXPECT_EQ(s->spilled_bytes(), 100u);
  EXPECT_EQ(s->stats().values_unspilled, 1u);
  // "a"'s file stays: spilling it again writes nothing.
  EXPECT_EQ(spill_files(*s).size(), 2u);
  const auto written = s->stats().values_written;
  EXPECT_EQ(s->spill_lru(1), 100u);  // "c", the coldest now, is written
  EXPECT_EQ(s->spill_lru(1), 100u);  // "a" is dropped at once
  EXPECT_TRUE(s->is_spilled("a"));
  s->flush();
  EXPECT_EQ(s->stats().values_written, written + 1);
  EXPECT_EQ(s->memory_bytes(), 0u);
  EXPECT_EQ(s->spilled_bytes(), 300u);
  for (const auto& [k, v] : put) EXPECT_TRUE(same_bytes(s->get(k)->bytes, v.bytes)) << k;
}

TEST_F(SpillingStoreTest, TargetChangesAtRunTimeAndSpillUntilCountsWhatItChose) {
  auto s = make(0);
  for (const char* k : {"a", "b", "c", "d"}) s->put(k, value_of(100), 100);
  s->flush();
  EXPECT_EQ(s->spilled_bytes(), 0u);
  s->hold_writes_for_testing(true);
  s->set_target(250);
  EXPECT_EQ(s->target(), 250u);
  EXPECT_EQ(s->pending_bytes(), 200u);  // chosen at once, written on the spill thread
  EXPECT_EQ(s->memory_bytes(), 400u);
  s->hold_writes_for_testing(false);
  s->flush();
  EXPECT_EQ(s->pending_bytes(), 0u);
  EXPECT_EQ(s->memory_bytes(), 200u);
  EXPECT_TRUE(s->is_spilled("a") && s->is_spilled("b"));
  EXPECT_EQ(s->spill_until(100), 100u);
  EXPECT_EQ(s->spill_until(100), 0u);  // already chosen: not counted twice
  EXPECT_EQ(s->spill_lru(1000), 100u);  // all that is left
  s->flush();
  EXPECT_EQ(s->memory_bytes(), 0u);
  s->set_target(0);  // no target: what is read back stays
  for (const char* k : {"a", "b", "c", "d"}) ASSERT_TRUE(s->get(k).has_value());
  s->flush();
  EXPECT_EQ(s->memory_bytes(), 400u);
}

TEST_F(SpillingStoreTest, AValueLargerThanTheTargetGoesStraightToDisk) {
  auto s = make(100);
  s->put("small", value_of(50), 50);
  EXPECT_TRUE(s->larger_than_target(500));
  EXPECT_FALSE(s->larger_than_target(100));
  Value big = value_of(500, 7);
  s->put("big", big, 500);
  EXPECT_EQ(s->lru_keys(), std::vector<std::string>{"small"});  // the others are not pushed out
  s->flush();
  EXPECT_TRUE(s->is_spilled("big"));
  EXPECT_FALSE(s->is_spilled("small"));
  // Read back, it is not kept in memory either.
  EXPECT_TRUE(same_bytes(s->get("big")->bytes, big.bytes));
  EXPECT_TRUE(s->is_spilled("big"));
  EXPECT_EQ(s->memory_bytes(), 50u);
  EXPECT_FALSE(make(0)->larger_than_target(1u << 30));  // no target, nothing is too large
}

// Every value type the codec encodes, spilled and read back, compared byte for byte and
// decoded to the value put.
class SpillingStoreRoundTrip : public SpillingStoreTest, public ::testing::WithParamInterface<bool> {};

template <class T>
NDArray filled(NDArray::Shape shape, DType dtype, T (*f)(std::size_t)) {
  NDArray a(std::move(shape), dtype);
  auto v = a.values<T>();
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = f(i);
  return a;
}

TEST_P(SpillingStoreRoundTrip, EveryValueTypeBitForBit) {
  const bool compress = GetParam();
  auto s = make(0, compress);
  std::map<std::string, Value> put;
  const auto f64 = filled<double>({300, 700}, DType::float64, [](std::size_t i) { return i % 7 == 0 ? -0.0 : 1.0 / (1.0 + static_cast<double>(i)); });
  const auto f32 = filled<float>({1 << 20}, DType::float32, [](std::size_t i) { return static_cast<float>(i % 1000) * 0.5f; });
  const auto i64 = filled<std::int64_t>({4, 5, 6}, DType::int64, [](std::size_t i) { return static_cast<std::int64_t>(i * 2654435761u) - 7; });
  const auto b = filled<bool>({1001}, DType::boolean, [](std::size_t i) { return i % 3 == 0; });
  NDArray nan = NDArray::full({3}, 0.0);
  std::uint64_t nan_bits = 0x7ff8dead0000beefull;  // a NaN payload survives bit for bit
  std::memcpy(&nan.values<double>()[1], &nan_bits, 8);
  std::vector<double> doubles(600'000);
  for (std::size_t i = 0; i < doubles.size(); ++i) doubles[i] = static_cast<double>(i % 1000);
  const std::string text = std::string(100'000, 'x') + "tail";
  const std::map<std::string, std::vector<int>> map{{"a", {1, 2, 3}}, {"empty", {}}, {"z", std::vector<int>(5000, 9)}};
  const spill_test::Reading reading{"s-1", {1.5, -2.25, 1e300}, {{"room", 4}, {"floor", -1}}};
  const std::vector<std::int32_t> ints{1, -2, 3};

  put["f64"] = encode_value(f64);
  put["f32"] = encode_value(f32);
  put["i64"] = encode_value(i64);
  put["bool"] = encode_value(b);
  put["nan"] = encode_value(nan);
  put["empty_array"] = encode_value(NDArray::zeros({0, 3}));
  put["doubles"] = encode_value(doubles);
  put["ints"] = encode_value(ints);
  put["text"] = encode_value(text);
  put["empty_text"] = encode_value(std::string());
  put["map"] = encode_value(map);
  put["reading"] = encode_value(reading);
  put["scalar"] = encode_value(std::int64_t{-42});
  std::uint64_t total = 0;
  for (const auto& [k, v] : put) {
    s->put(k, v, v.bytes.size());
    total += v.bytes.size();
  }
  EXPECT_EQ(s->spill_lru(total), total);
  s->flush();
  ASSERT_EQ(s->last_error(), std::nullopt);
  for (const auto& [k, v] : put) EXPECT_TRUE(s->is_spilled(k)) << k;
  EXPECT_EQ(s->memory_bytes(), 0u);
  EXPECT_EQ(s->spilled_bytes(), total);
  EXPECT_EQ(spill_files(*s).size(), put.size());

  std::map<std::string, Value> back;
  for (const auto& [k, v] : put) {
    auto got = s->get(k);
    ASSERT_TRUE(got.has_value()) << k;
    EXPECT_EQ(got->type, v.type) << k;
    EXPECT_TRUE(same_bytes(got->bytes, v.bytes)) << k;
    back[k] = *got;
  }
  EXPECT_TRUE(decode_value<NDArray>(back["f64"]).equals(f64));
  EXPECT_TRUE(decode_value<NDArray>(back["f32"]).equals(f32));
  EXPECT_TRUE(decode_value<NDArray>(back["i64"]).equals(i64));
  EXPECT_TRUE(decode_value<NDArray>(back["bool"]).equals(b));
  EXPECT_TRUE(decode_value<NDArray>(back["nan"]).equals(nan));
  EXPECT_EQ(decode_value<NDArray>(back["empty_array"]).shape(), (NDArray::Shape{0, 3}));
  EXPECT_EQ(decode_value<std::vector<double>>(back["doubles"]), doubles);
  EXPECT_EQ(decode_value<std::vector<std::int32_t>>(back["ints"]), ints);
  EXPECT_EQ(decode_value<std::string>(back["text"]), text);
  EXPECT_EQ(decode_value<std::string>(back["empty_text"]), "");
  EXPECT_EQ((decode_value<std::map<std::string, std::vector<int>>>(back["map"])), map);
  EXPECT_EQ(decode_value<spill_test::Reading>(back["reading"]), reading);
  EXPECT_EQ(decode_value<std::int64_t>(back["scalar"]), -42);
  if (!compress) {  // mapped: page-aligned, so an array's elements are aligned for its dtype
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(back["f64"].bytes.data()) % 4096, 0u);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(decode_value<NDArray>(back["f64"]).values<double>().data()) % 8, 0u);
  }
  if (compress) {
    EXPECT_LT(s->stats().disk_bytes, total);  // the arrays of small numbers shrank
  }
}

INSTANTIATE_TEST_SUITE_P(Spill, SpillingStoreRoundTrip, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "lz4" : "raw"; });

TEST_F(SpillingStoreTest, AccountingAgreesWithTheStoredSizesThroughRandomOperations) {
  auto s = make(20'000);
  std::map<std::string, std::uint64_t> model;  // key -> nbytes
  std::map<std::string, std::uint64_t> seeds;
  auto sum = [&] {
    std::uint64_t t = 0;
    for (const auto& [k, n] : model) t += n;
    return t;
  };
  std::uint64_t x = 2024;
  for (int step = 0; step < 3000; ++step) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const std::string key = "k" + std::to_string((x >> 33) % 60);
    const auto op = (x >> 58) % 8;
    if (op < 3) {
      const std::size_t n = 1 + static_cast<std::size_t>((x >> 13) % 3000);
      s->put(key, value_of(n, x), n);
      model[key] = n;
      seeds[key] = x;
    } else if (op < 6) {
      auto got = s->get(key);
      ASSERT_EQ(got.has_value(), model.count(key) == 1) << key;
      if (got) {
        ASSERT_TRUE(same_bytes(got->bytes, random_bytes(model[key], seeds[key]))) << key << " at step " << step;
      }
    } else if (op == 6) {
      EXPECT_EQ(s->erase(key), model.erase(key) == 1) << key;
    } else {
      s->spill_lru((x >> 20) % 5000);
    }
    ASSERT_EQ(s->managed_bytes(), sum()) << "after step " << step;
    const auto now = s->stats();  // one reading: a write may finish between two calls
    ASSERT_EQ(now.memory_bytes + now.spilled_bytes, sum()) << "after step " << step;
    ASSERT_LE(now.pending_bytes, now.memory_bytes);
    ASSERT_EQ(s->size(), model.size());
    if (step % 100 == 0) {
      s->flush();
      ASSERT_EQ(s->pending_bytes(), 0u);
      ASSERT_LE(s->memory_bytes(), 20'000u) << "after step " << step;
      ASSERT_EQ(s->stats().files, spill_files(*s).size()) << "after step " << step;
    }
  }
  ASSERT_EQ(s->last_error(), std::nullopt);
  EXPECT_GT(s->stats().values_unspilled, 0u);
  for (const auto& [k, n] : model) EXPECT_TRUE(s->erase(k));
  s->flush();
  EXPECT_EQ(s->managed_bytes(), 0u);
  EXPECT_EQ(s->stats().files, 0u);
  EXPECT_EQ(s->stats().disk_bytes, 0u);
  EXPECT_TRUE(spill_files(*s).empty());
}

TEST_F(SpillingStoreTest, ErasingOrReplacingRemovesTheFile) {
  auto s = make(0);
  s->put("a", value_of(5000), 5000);
  s->put("b", value_of(5000), 5000);
  s->spill_lru(10000);
  s->flush();
  ASSERT_EQ(spill_files(*s).size(), 2u);
  EXPECT_TRUE(s->erase("a"));
  s->put("b", value_of(10), 10);  // replaced by a value in memory
  s->flush();
  EXPECT_TRUE(spill_files(*s).empty());
  EXPECT_EQ(s->spilled_bytes(), 0u);
  EXPECT_EQ(s->memory_bytes(), 10u);
  EXPECT_EQ(s->get("b")->bytes.size(), 10u);
  const std::string dir = s->directory();
  s.reset();
  EXPECT_FALSE(std::filesystem::exists(dir));  // the store's directory goes with it
}

TEST_F(SpillingStoreTest, AValueBeingWrittenStaysReadableAndAUseKeepsItInMemory) {
  auto s = make(0);
  Value v = value_of(8000, 3);
  s->put("a", v, 8000);
  s->hold_writes_for_testing(true);
  EXPECT_EQ(s->spill_lru(1), 8000u);
  EXPECT_EQ(s->pending_bytes(), 8000u);
  EXPECT_EQ(s->memory_bytes(), 8000u);  // still in memory until written
  auto got = s->get("a");               // a use: it stays once written
  EXPECT_EQ(got->bytes.data(), v.bytes.data());
  EXPECT_EQ(s->pending_bytes(), 0u);
  s->hold_writes_for_testing(false);
  s->flush();
  EXPECT_FALSE(s->is_spilled("a"));
  EXPECT_EQ(s->stats().values_written, 1u);  // written all the same: a later spill is free
  EXPECT_EQ(s->spill_lru(1), 8000u);
  EXPECT_TRUE(s->is_spilled("a"));  // at once
  EXPECT_EQ(s->stats().values_written, 1u);
}

TEST_F(SpillingStoreTest, ErasingAValueBeingWrittenCancelsItsFile) {
  auto s = make(0);
  s->put("a", value_of(8000), 8000);
  s->put("b", value_of(8000), 8000);
  s->hold_writes_for_testing(true);
  EXPECT_EQ(s->spill_lru(16000), 16000u);
  EXPECT_TRUE(s->erase("a"));
  s->put("b", value_of(100), 100);  // replacing cancels too
  EXPECT_EQ(s->pending_bytes(), 0u);
  EXPECT_EQ(s->memory_bytes(), 100u);
  s->hold_writes_for_testing(false);
  s->flush();
  EXPECT_TRUE(spill_files(*s).empty());
  EXPECT_EQ(s->stats().values_written, 0u);
  EXPECT_FALSE(s->is_spilled("b"));
}

TEST_F(SpillingStoreTest, AReadBackMappingIsPrivateToItsReader) {
  auto s = make(0);
  Value v = value_of(3 * 4096, 9);
  s->put("a", v, v.bytes.size());
  s->spill_lru(1);
  s->flush();
  auto first = s->get("a");
  first->bytes.mutable_data()[100] = ~first->bytes.data()[100];  // a task writing to its input
  s->spill_lru(1);  // dropped: the next get() maps the file again
  ASSERT_TRUE(s->is_spilled("a"));
  EXPECT_TRUE(same_bytes(s->get("a")->bytes, v.bytes));
}

TEST_F(SpillingStoreTest, AnUnwritableLocalDirectoryThrowsNamingIt) {
  TmpfsMount ro(parent_.path(), "size=1m", MS_RDONLY);
  if (::geteuid() == 0 && !ro.mounted()) GTEST_SKIP() << "cannot mount a read-only tmpfs here";
  if (::geteuid() != 0) {
    ASSERT_EQ(::chmod(parent_.path().c_str(), 0500), 0);
  }
  try {
    make(100);
    FAIL() << "a store was made in an unwritable directory";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(parent_.path()), std::string::npos) << e.what();
  }
  if (::geteuid() != 0) ::chmod(parent_.path().c_str(), 0700);
}

// What a failed write must do: keep the value in memory, bit for bit, say why naming the
// directory, start no more writes until cleared, and leave no partial file.
void expect_failed_spill_keeps(SpillingStore& s, const std::string& key, const Value& v, const std::string& why) {
  EXPECT_EQ(s.spill_lru(1), v.bytes.size());
  s.flush();
  EXPECT_FALSE(s.is_spilled(key));
  EXPECT_EQ(s.memory_bytes(), v.bytes.size());
  EXPECT_EQ(s.pending_bytes(), 0u);
  EXPECT_EQ(s.stats().write_failures, 1u);
  ASSERT_TRUE(s.last_error().has_value());
  EXPECT_NE(s.last_error()->find(s.directory()), std::string::npos) << *s.last_error();
  EXPECT_NE(s.last_error()->find(why), std::string::npos) << *s.last_error();
  EXPECT_TRUE(same_bytes(s.get(key)->bytes, v.bytes));
  EXPECT_TRUE(spill_files(s).empty());
  EXPECT_EQ(s.spill_lru(1), 0u);  // paused
  EXPECT_EQ(s.lru_keys(), std::vector<std::string>{key});
}

TEST_F(SpillingStoreTest, AFullDiskKeepsTheValueInMemory) {
  TmpfsMount small(parent_.path(), "size=1m");
  if (!small.mounted()) GTEST_SKIP() << "needs root to mount a 1 MiB tmpfs";
  auto s = make(0);
  Value big = value_of(2 << 20, 11);  // twice the disk
  s->put("big", big, big.bytes.size());
  expect_failed_spill_keeps(*s, "big", big, "No space left on device");
  // Once space is there again (the big value gone), spilling resumes after clear_error().
  EXPECT_TRUE(s->erase("big"));
  s->put("small", value_of(1000), 1000);
  s->clear_error();
  EXPECT_EQ(s->spill_lru(1), 1000u);
  s->flush();
  EXPECT_TRUE(s->is_spilled("small"));
  EXPECT_EQ(s->last_error(), std::nullopt);
}

TEST_F(SpillingStoreTest, AReadOnlyDirectoryKeepsTheValueInMemory) {
  // As root, permission bits do not stop writes: the file system is remounted read-only.
  TmpfsMount fs(parent_.path(), "size=4m");
  if (::geteuid() == 0 && !fs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here";
  auto s = make(0);
  if (::geteuid() == 0) {
    ASSERT_TRUE(fs.remount_read_only("size=4m")) << std::strerror(errno);
  } else {
    ASSERT_EQ(::chmod(s->directory().c_str(), 0500), 0);
  }
  Value v = value_of(10000, 12);
  s->put("a", v, v.bytes.size());
  expect_failed_spill_keeps(*s, "a", v, ::geteuid() == 0 ? "Read-only file system" : "Permission denied");
  if (::geteuid() != 0) ::chmod(s->directory().c_str(), 0700);
}

// The store in the worker's place: WorkerState stores a result in it, serves it back once
// spilled, and its file goes when the scheduler frees the key.
TEST_F(SpillingStoreTest, WorkerStateKeepsItsValuesInASpillingStore) {
  auto owned = make(0);
  SpillingStore& store = *owned;
  WorkerState w(1, 10, {}, std::move(owned));
  auto t = std::make_shared<TaskSpec>();
  t->key = "a";
  t->function = "inc";
  t->args = {TaskArg{encode_value(std::int32_t{1})}};
  w.handle(ComputeTask{t, {}, 1, {}});
  Value v = value_of(20000, 5);
  w.handle(ExecuteSuccess{"a", v, 0.1});
  w.validate();
  EXPECT_EQ(w.stored_bytes(), 20000u);
  EXPECT_EQ(store.spill_lru(1), 20000u);
  store.flush();
  ASSERT_TRUE(store.is_spilled("a"));
  EXPECT_EQ(w.stored_bytes(), 20000u);  // managed: in memory or not
  auto got = w.get_data("a");
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(same_bytes(got->bytes, v.bytes));
  w.handle(FreeKeys{{"a"}});
  w.validate();
  store.flush();
  EXPECT_EQ(w.stored_bytes(), 0u);
  EXPECT_TRUE(spill_files(store).empty());
}

}  // namespace
}  // namespace distrib::detail::wrk
