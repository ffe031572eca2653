// ClientSessions: ids kept through a grace period, and released after it.
#include "scheduler/client_sessions.hpp"

#include <gtest/gtest.h>

namespace {

using distrib::detail::ClientSessions;
using namespace std::chrono_literals;

struct ClientSessionsTest : ::testing::Test {
  ClientSessions sessions{10s};
  std::uint64_t next = 1;
  ClientSessions::Attached attach(const std::string& token) {
    return sessions.attach(token, [&] { return next++; });
  }
  ClientSessions::Clock::time_point t0 = ClientSessions::Clock::now();
};

TEST_F(ClientSessionsTest, ReattachWithinGraceGetsTheSameId) {
  auto first = attach("c-1");
  EXPECT_FALSE(first.resumed);
  EXPECT_FALSE(sessions.detach(first.id, t0));
  EXPECT_EQ(sessions.vanished(), 1u);
  EXPECT_TRUE(sessions.expired(t0 + 9s).empty());
  auto again = attach("c-1");
  EXPECT_TRUE(again.resumed);
  EXPECT_EQ(again.id, first.id);
  EXPECT_TRUE(sessions.expired(t0 + 60s).empty());  // connected again: no grace running
}

TEST_F(ClientSessionsTest, VanishedClientIsRemovedOnceTheGraceRunsOut) {
  auto a = attach("c-1");
  auto b = attach("c-2");
  EXPECT_NE(a.id, b.id);
  sessions.detach(a.id, t0);
  EXPECT_TRUE(sessions.expired(t0 + 9s).empty());
  EXPECT_EQ(sessions.expired(t0 + 10s), std::vector<std::uint64_t>{a.id});
  EXPECT_FALSE(attach("c-1").resumed);  // too late: a new client
}

TEST_F(ClientSessionsTest, GoodbyeOrNoTokenOrNoGraceRemovesAtOnce) {
  auto polite = attach("c-1");
  sessions.goodbye(polite.id);
  EXPECT_TRUE(sessions.detach(polite.id, t0));
  auto anonymous = attach("");
  EXPECT_TRUE(sessions.detach(anonymous.id, t0));
  EXPECT_FALSE(attach("").resumed);
  ClientSessions none{0s};
  auto c = none.attach("c-3", [] { return 7; });
  EXPECT_TRUE(none.detach(c.id, t0));
  EXPECT_EQ(sessions.vanished(), 0u);
}

TEST_F(ClientSessionsTest, TakeoverOfAConnectedSessionKeepsItsId) {
  auto first = attach("c-1");
  auto second = attach("c-1");  // the old connection is half-open
  EXPECT_TRUE(second.resumed);
  EXPECT_EQ(second.id, first.id);
}

}  // namespace
