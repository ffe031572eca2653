// LogLimiter: a burst of lines per interval, then counting what it leaves out.
#include <gtest/gtest.h>

#include "core/log_limiter.hpp"

namespace distrib::detail {
namespace {

using namespace std::chrono_literals;

TEST(LogLimiter, AllowsABurstPerIntervalAndCountsTheRest) {
  LogLimiter limiter(3, 10s);
  const auto t0 = LogLimiter::Clock::time_point{} + 100s;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.allow(t0 + std::chrono::milliseconds(i)));
  EXPECT_EQ(limiter.note(), "");
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(limiter.allow(t0 + 1s));
  // The next window: the first line written mentions the thousand left out, once.
  EXPECT_TRUE(limiter.allow(t0 + 10s));
  EXPECT_EQ(limiter.suppressed(), 1000u);
  EXPECT_NE(limiter.note().find("1000 similar line(s) left out"), std::string::npos);
  EXPECT_TRUE(limiter.allow(t0 + 10s));
  EXPECT_EQ(limiter.suppressed(), 0u);
  EXPECT_EQ(limiter.note(), "");
}

TEST(LogLimiter, OneLinePerIntervalForAcceptFailures) {
  LogLimiter limiter(1, 10s);
  const auto t0 = LogLimiter::Clock::time_point{} + 100s;
  EXPECT_TRUE(limiter.allow(t0));
  EXPECT_FALSE(limiter.allow(t0 + 9s));
  EXPECT_TRUE(limiter.allow(t0 + 10s));
  EXPECT_EQ(limiter.suppressed(), 1u);
}

}  // namespace
}  // namespace distrib::detail
