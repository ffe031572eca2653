// AdaptiveSpin: polling before blocking only while the idle gaps it saw were short.
#include <gtest/gtest.h>

#include "comm/io_loop.hpp"

namespace distrib::detail {
namespace {

using std::chrono::microseconds;

TEST(AdaptiveSpin, PollsForAboutTwiceTheUsualShortGap) {
  AdaptiveSpin spin(microseconds(200));
  for (int i = 0; i < 64; ++i) spin.record(microseconds(30));
  EXPECT_GE(spin.window(), microseconds(70));
  EXPECT_LE(spin.window(), microseconds(90));
}

TEST(AdaptiveSpin, StopsPollingWhenGapsAreLongerThanTheMaximum) {
  AdaptiveSpin spin(microseconds(200));
  EXPECT_GT(spin.window(), microseconds(0)) << "it starts out polling";
  for (int i = 0; i < 16; ++i) spin.record(microseconds(5000));  // work every 5 ms
  EXPECT_EQ(spin.window(), microseconds(0));
  // Short gaps again (measured after blocking): it polls again.
  for (int i = 0; i < 16; ++i) spin.record(microseconds(20));
  EXPECT_GT(spin.window(), microseconds(0));
}

TEST(AdaptiveSpin, NeverExceedsTheMaximumAndZeroTurnsItOff) {
  AdaptiveSpin spin(microseconds(100));
  for (int i = 0; i < 64; ++i) spin.record(microseconds(95));
  EXPECT_LE(spin.window(), microseconds(100));
  AdaptiveSpin off(microseconds(0));
  off.record(microseconds(1));
  EXPECT_EQ(off.window(), microseconds(0));
}

}  // namespace
}  // namespace distrib::detail
