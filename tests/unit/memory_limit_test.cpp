// Unit tests of reading --memory-limit and the --memory-*-fraction thresholds
// (src/core/memory_limit.*), as Dask's parse_bytes, its memory_limit forms and its
// distributed.worker.memory.* fractions, and of format_byte_size (Dask's format_bytes).
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

TEST(MemoryFraction, FractionsInZeroToOne) {
  EXPECT_EQ(parse_memory_fraction("0.6"), 0.6);
  EXPECT_EQ(parse_memory_fraction(".95"), 0.95);
  EXPECT_EQ(parse_memory_fraction(" 0.7 "), 0.7);
  EXPECT_EQ(parse_memory_fraction("1"), 1.0);
  EXPECT_EQ(parse_memory_fraction("1e-1"), 0.1);
}

TEST(MemoryFraction, FalseNoneOffDisable) {
  for (const std::string off : {"false", "False", "FALSE", "none", "off"})
    EXPECT_FALSE(parse_memory_fraction(off).has_value()) << off;
}

TEST(MemoryFraction, BadTextSaysWhatIsAcceptedAndNamesTheOption) {
  for (const std::string bad : {"", "0", "-0.5", "1.01", "60%", "true", "nan", "inf", "0.6x", "bogus"}) {
    try {
      parse_memory_fraction(bad, "--memory-pause-fraction");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("--memory-pause-fraction '" + bad + "'"), std::string::npos) << what;
      EXPECT_NE(what.find("(0, 1]"), std::string::npos) << what;
      EXPECT_NE(what.find("false"), std::string::npos) << what;
    }
  }
}

TEST(ByteSize, FormattedAsDask) {
  EXPECT_EQ(format_byte_size(0), "0 B");
  EXPECT_EQ(format_byte_size(921), "921 B");
  EXPECT_EQ(format_byte_size(922), "0.90 kiB") << "a unit from 0.9 of it";
  EXPECT_EQ(format_byte_size(std::uint64_t{1536} << 20), "1.50 GiB");
  EXPECT_EQ(format_byte_size(600'000'000), "572.20 MiB");
  EXPECT_EQ(format_byte_size(std::uint64_t{3} << 50), "3.00 PiB");
}

}  // namespace
}  // namespace distrib::detail
