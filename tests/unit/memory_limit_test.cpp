// Unit tests of reading --memory-limit (src/core/memory_limit.*), as Dask's parse_bytes and
// its memory_limit forms.
#include "core/memory_limit.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace distrib::detail {
namespace {

constexpr std::uint64_t kMachine = std::uint64_t{24} << 30;  // 24 GiB

TEST(ByteSize, PlainNumbersDecimalAndBinaryUnits) {
  EXPECT_EQ(parse_byte_size("4000000000"), 4'000'000'000u);
  EXPECT_EQ(parse_byte_size("4GiB"), std::uint64_t{4} << 30);
  EXPECT_EQ(parse_byte_size("4 GB"), 4'000'000'000u);
  EXPECT_EQ(parse_byte_size("512MiB"), std::uint64_t{512} << 20);
  EXPECT_EQ(parse_byte_size("1.5gb"), 1'500'000'000u);
  EXPECT_EQ(parse_byte_size("2e9"), 2'000'000'000u);
  EXPECT_EQ(parse_byte_size("10k"), 10'000u);
  EXPECT_EQ(parse_byte_size("3Ki"), 3072u);
  EXPECT_EQ(parse_byte_size("7B"), 7u);
}

TEST(ByteSize, BadTextIsRefusedNamingIt) {
  for (const std::string bad : {"", "GiB", "4 XB", "-1GB", "1e30", "four", "4GiBs"}) {
    try {
      parse_byte_size(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("'" + bad + "'"), std::string::npos) << e.what();
    }
  }
}

TEST(MemoryLimit, AutoSharesTheMachineByThreadsPerCore) {
  EXPECT_EQ(parse_memory_limit("auto", kMachine, 1, 2), kMachine / 2);
  EXPECT_EQ(parse_memory_limit("AUTO", kMachine, 2, 2), kMachine);
  EXPECT_EQ(parse_memory_limit("auto", kMachine, 8, 2), kMachine) << "never more than the machine";
  EXPECT_EQ(parse_memory_limit("auto", kMachine, 1, 0), kMachine) << "unknown core count";
}

TEST(MemoryLimit, FractionsSizesAndNoLimit) {
  EXPECT_EQ(parse_memory_limit("0.5", kMachine, 1, 2), kMachine / 2);
  EXPECT_EQ(parse_memory_limit("1.0", kMachine, 1, 2), kMachine);
  EXPECT_EQ(parse_memory_limit("256MiB", kMachine, 1, 2), std::uint64_t{256} << 20);
  EXPECT_EQ(parse_memory_limit("2e9", kMachine, 1, 2), 2'000'000'000u) << "above 1: bytes";
  EXPECT_EQ(parse_memory_limit("1", kMachine, 1, 2), 1u) << "an integer is bytes, as Dask's int";
  EXPECT_FALSE(parse_memory_limit("0", kMachine, 1, 2).has_value());
  EXPECT_FALSE(parse_memory_limit("none", kMachine, 1, 2).has_value());
  EXPECT_FALSE(parse_memory_limit("0GB", kMachine, 1, 2).has_value());
}

TEST(MemoryLimit, BadTextSaysWhatIsAccepted) {
  try {
    parse_memory_limit("lots", kMachine, 1, 2);
    FAIL() << "accepted 'lots'";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'lots'"), std::string::npos) << what;
    EXPECT_NE(what.find("auto"), std::string::npos) << what;
    EXPECT_NE(what.find("4GiB"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace distrib::detail
