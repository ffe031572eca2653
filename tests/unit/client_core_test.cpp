// ClientCore without sockets: the futures table, cancel epochs, the outbox's order and
// what a re-attach sends.
#include "client/client_core.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace {

using distrib::FutureStatus;
using distrib::detail::ClientCore;
using distrib::detail::FutureHandle;
using distrib::detail::FutureState;
using distrib::detail::Outgoing;
using distrib::detail::TaskSpec;
using Kind = Outgoing::Kind;

struct ClientCoreTest : ::testing::Test {
  ClientCore core;
  FutureHandle make(const std::string& key, bool* fresh_out = nullptr) {
    bool fresh = false;
    auto f = core.future_for(key, fresh, [&] { return std::make_shared<FutureState>(key, nullptr); });
    if (fresh_out) *fresh_out = fresh;
    return f;
  }
  static TaskSpec spec(const std::string& key) {
    TaskSpec s;
    s.key = key;
    s.function = "inc";
    return s;
  }
  static std::vector<Kind> kinds(const std::vector<Outgoing>& items) {
    std::vector<Kind> out;
    for (const auto& o : items) out.push_back(o.kind);
    return out;
  }
};

TEST_F(ClientCoreTest, LiveFutureIsSharedAndCancelledOneIsReplaced) {
  bool fresh = false;
  auto a = make("k", &fresh);
  EXPECT_TRUE(fresh);
  auto b = make("k", &fresh);
  EXPECT_FALSE(fresh);
  EXPECT_EQ(a, b);
  a->set_cancelled();
  auto c = make("k", &fresh);
  EXPECT_TRUE(fresh);
  EXPECT_NE(a, c);
}

TEST_F(ClientCoreTest, ForgetKeepsAnEntryThatHasALiveFuture) {
  { auto gone = make("old"); }
  auto kept = make("kept");
  core.forget("old");
  core.forget("kept");
  EXPECT_EQ(core.size(), 1u);
  EXPECT_EQ(core.find("kept"), kept);
  EXPECT_EQ(core.find("old"), nullptr);
}

TEST_F(ClientCoreTest, ReportsSettleOnlyLiveFutures) {
  auto f = make("a");
  auto g = make("b");
  auto s = core.on_keys_in_memory({{"a", "tcp://w:1", std::nullopt}, {"unknown", "tcp://w:1", std::nullopt}});
  ASSERT_EQ(s.size(), 1u);
  distrib::detail::apply(s);
  EXPECT_EQ(f->status, FutureStatus::finished);
  EXPECT_EQ(f->worker, "tcp://w:1");
  auto e = core.on_task_erred({{"b", "std::runtime_error", "boom"}});
  distrib::detail::apply(e);
  EXPECT_EQ(g->status, FutureStatus::error);
  EXPECT_EQ(g->error_message, "boom");
}

TEST_F(ClientCoreTest, CancelAnswerSkipsFuturesMadeAfterTheRequest) {
  auto before = make("x");
  core.queue_cancel({"x", "y"});
  auto after = make("y");  // made after the cancel was queued
  auto s = core.on_keys_cancelled({"x", "y"});
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].future, before);
  distrib::detail::apply(s);
  EXPECT_EQ(before->status, FutureStatus::cancelled);
  EXPECT_EQ(after->status, FutureStatus::pending);
}

TEST_F(ClientCoreTest, OutboxKeepsOrderAndBatchesConsecutiveReleases) {
  core.queue_message(distrib::detail::make_close());
  core.queue_release("a");
  core.queue_release("b");
  core.queue_cancel({"c"});
  core.queue_release("d");
  auto items = core.take_outbox();
  EXPECT_EQ(kinds(items), (std::vector<Kind>{Kind::message, Kind::release, Kind::cancel, Kind::release}));
  EXPECT_EQ(items[1].keys, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(items[3].keys, (std::vector<std::string>{"d"}));
  EXPECT_FALSE(core.has_outbox());
}

TEST_F(ClientCoreTest, ReleaseOfAKeyWantedAgainIsDropped) {
  core.queue_release("a");
  auto again = make("a");
  EXPECT_TRUE(core.take_outbox().empty());
}

TEST_F(ClientCoreTest, ReattachSendsUnansweredCancelsThenPendingGraphsThenTheOutbox) {
  auto pending = make("p");
  auto done = make("d");
  core.queue_graph(distrib::detail::make_close(), {spec("dep"), spec("p")}, {"p"});
  core.queue_graph(distrib::detail::make_close(), {spec("d")}, {"d"});
  core.queue_cancel({"old"});
  EXPECT_EQ(core.take_outbox().size(), 3u);  // all sent, then the connection drops
  auto s = core.on_keys_in_memory({{"d", "tcp://w:1", std::nullopt}});
  distrib::detail::apply(s);
  // Queued while disconnected: a new graph, sent from the outbox, not in the resubmit.
  auto queued = make("q");
  core.queue_graph(distrib::detail::make_close(), {spec("q")}, {"q"});

  auto items = core.reattach();
  ASSERT_EQ(kinds(items), (std::vector<Kind>{Kind::cancel, Kind::resubmit, Kind::message}));
  EXPECT_EQ(items[0].keys, (std::vector<std::string>{"old"}));
  std::vector<std::string> tasks;
  for (auto& t : items[1].tasks) tasks.push_back(t->key);
  EXPECT_EQ(tasks, (std::vector<std::string>{"dep", "p"}));  // the finished graph is not re-sent
  auto wanted = items[1].keys;
  std::sort(wanted.begin(), wanted.end());
  EXPECT_EQ(wanted, (std::vector<std::string>{"d", "p", "q"}));  // every live future, finished ones too
}

TEST_F(ClientCoreTest, ResentCancelIsAnsweredOnceAndNotResentAgain) {
  auto x = make("x");
  core.queue_cancel({"x"});
  core.take_outbox();
  EXPECT_EQ(kinds(core.reattach()), (std::vector<Kind>{Kind::cancel, Kind::resubmit}));
  auto s = core.on_keys_cancelled({"x"});
  EXPECT_EQ(s.size(), 1u);
  distrib::detail::apply(s);
  auto items = core.reattach();
  for (auto& o : items) EXPECT_NE(o.kind, Kind::cancel);
}

TEST_F(ClientCoreTest, CancelQueuedWhileDisconnectedGoesOnceFromTheOutbox) {
  auto x = make("x");
  core.queue_cancel({"x"});  // never sent before the drop
  EXPECT_EQ(kinds(core.reattach()), (std::vector<Kind>{Kind::resubmit, Kind::cancel}));
}

TEST_F(ClientCoreTest, FailPendingFailsOnlyPendingFuturesAndEmptiesTheOutbox) {
  auto pending = make("p");
  auto done = make("d");
  auto s = core.on_keys_in_memory({{"d", "tcp://w:1", std::nullopt}});
  distrib::detail::apply(s);
  core.queue_graph(distrib::detail::make_close(), {spec("p")}, {"p"});
  auto lost = core.fail_pending("no scheduler");
  distrib::detail::apply(lost);
  EXPECT_EQ(pending->status, FutureStatus::error);
  EXPECT_EQ(pending->lost_reason, "no scheduler");
  EXPECT_EQ(done->status, FutureStatus::finished);
  EXPECT_FALSE(core.has_outbox());
  EXPECT_EQ(core.graphs_kept(), 0u);
}

}  // namespace

TEST_F(ClientCoreTest, RestartCancelsTheNamedFuturesFinishedOnesTooAndForgetsTheirGraphs) {
  auto pending = make("p");
  auto done = make("d");
  auto later = make("l");  // its graph reached the scheduler after the restart
  core.queue_graph(distrib::detail::make_close(), {spec("p")}, {"p"});
  core.queue_graph(distrib::detail::make_close(), {spec("d")}, {"d"});
  core.queue_graph(distrib::detail::make_close(), {spec("l")}, {"l"});
  EXPECT_EQ(core.take_outbox().size(), 3u);
  auto s = core.on_keys_in_memory({{"d", "tcp://w:1", std::nullopt}});
  distrib::detail::apply(s);

  s = core.on_restarted({"p", "d", "unknown"});
  ASSERT_EQ(s.size(), 2u);
  distrib::detail::apply(s);
  EXPECT_EQ(pending->status, FutureStatus::cancelled);
  EXPECT_EQ(done->status, FutureStatus::cancelled);
  EXPECT_EQ(later->status, FutureStatus::pending);
  EXPECT_EQ(core.graphs_kept(), 1u) << "only the graph the scheduler still has is kept";
  // The same key submitted after the restart is a new future, not the cancelled one.
  bool fresh = false;
  auto again = make("p", &fresh);
  EXPECT_TRUE(fresh);
  EXPECT_NE(again, pending);
  // A re-attach sends only what is live and not cancelled.
  auto items = core.reattach();
  ASSERT_FALSE(items.empty());
  auto wanted = items.back().keys;
  std::sort(wanted.begin(), wanted.end());
  EXPECT_EQ(wanted, (std::vector<std::string>{"l", "p"}));
}
