// Unit tests of RestartCoordinator, the scheduler's side of client.restart() over time: it
// answers once as many workers as before are back, or when the timeout passes, saying how
// many came back. No sockets: its timer runs on an io_context of the test's own.
#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <string>
#include <vector>

#include "scheduler/restart_coordinator.hpp"

namespace distrib::detail {
namespace {

using namespace std::chrono_literals;

struct Reply {
  std::uint64_t client, id;
  bool ok;
  std::uint32_t before, now;
  std::string reason;
};

class RestartCoordinatorTest : public ::testing::Test {
 protected:
  asio::io_context io;
  std::uint32_t workers = 0;
  std::vector<Reply> replies;
  RestartCoordinator coordinator{io, [this] { return workers; }, [this](std::uint64_t client, OutMessage m) {
                                   InMessage in{std::move(m.header), std::move(m.frames)};
                                   MessageReader mr(in);
                                   auto r = mr.root().getRestartReply();
                                   replies.push_back({client, r.getId(), r.getOk(), r.getWorkersBefore(),
                                                      r.getWorkersNow(), r.getReason()});
                                 }};
  /// Runs the io context until a reply arrives or `limit` passes.
  void run_until_reply(std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (replies.empty() && std::chrono::steady_clock::now() < deadline) {
      io.restart();
      io.run_for(10ms);
    }
  }
};

TEST_F(RestartCoordinatorTest, AnswersOnceAsManyWorkersAsBeforeAreBack) {
  coordinator.begin(4, 11, 2, 60s, true);
  EXPECT_TRUE(replies.empty());
  workers = 1;
  coordinator.workers_changed();
  EXPECT_TRUE(replies.empty());
  workers = 2;
  coordinator.workers_changed();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].client, 4u);
  EXPECT_EQ(replies[0].id, 11u);
  EXPECT_TRUE(replies[0].ok);
  EXPECT_EQ(replies[0].now, 2u);
  EXPECT_EQ(coordinator.waiting(), 0u);
}

TEST_F(RestartCoordinatorTest, TimeoutAnswersWithHowManyCameBack) {
  coordinator.begin(4, 12, 3, 50ms, true);
  workers = 2;
  coordinator.workers_changed();
  run_until_reply(30s);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_FALSE(replies[0].ok);
  EXPECT_EQ(replies[0].before, 3u);
  EXPECT_EQ(replies[0].now, 2u);
  EXPECT_NE(replies[0].reason.find("2 of 3 workers came back within 50 ms"), std::string::npos) << replies[0].reason;
  EXPECT_NE(replies[0].reason.find("without a nanny"), std::string::npos) << replies[0].reason;
}

TEST_F(RestartCoordinatorTest, WithoutWaitingOrWithoutWorkersItAnswersAtOnce) {
  coordinator.begin(1, 1, 5, 60s, false);
  coordinator.begin(2, 2, 0, 60s, true);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_TRUE(replies[0].ok && replies[1].ok);
  EXPECT_EQ(coordinator.waiting(), 0u);
}

TEST_F(RestartCoordinatorTest, ASecondRestartWaitsForTheWorkersTheFirstOneWaitsFor) {
  coordinator.begin(1, 1, 2, 60s, true);
  workers = 1;
  coordinator.workers_changed();
  coordinator.begin(2, 7, 1, 60s, true);  // only one was back when it began
  EXPECT_TRUE(replies.empty());
  workers = 2;
  coordinator.workers_changed();
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].before, 2u);
  EXPECT_EQ(replies[1].before, 2u);
}

}  // namespace
}  // namespace distrib::detail
