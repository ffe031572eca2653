// Failures on a real cluster of dscheduler and dworker processes: a task that kills its
// workers (KilledWorker), a worker paused past --worker-ttl, and the story that tells
// what happened to a key (client.story and the dashboard's /api/v1/story).
#include <gtest/gtest.h>
#include <signal.h>

#include <distrib/distrib.hpp>
#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "http_client.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

bool story_has(const std::vector<Transition>& story, const std::string& from, const std::string& to) {
  return std::any_of(story.begin(), story.end(), [&](const Transition& t) { return t.from == from && t.to == to; });
}

TEST(Failures, TaskThatAbortsItsWorkersErrsWithKilledWorkerAndTheClusterGoesOn) {
  auto scheduler = start_scheduler({"--allowed-failures", "2"});
  std::vector<Daemon> workers;
  // Without nannies: a worker that dies stays dead (with one it would come back, and the
  // task would still err after two deaths).
  for (int i = 0; i < 3; ++i)
    workers.push_back(start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--no-nanny"}));
  Client client(scheduler.address);
  client.wait_for_workers(3, 30s);

  auto crash = client.submit(crash_worker, 1);
  try {
    crash.result(120s);
    FAIL() << "expected KilledWorker";
  } catch (const KilledWorker& e) {
    EXPECT_EQ(e.key(), crash.key());
    EXPECT_EQ(e.remote_type(), "distrib::KilledWorker");
    EXPECT_EQ(e.last_worker().rfind("tcp://127.0.0.1:", 0), 0u) << e.what();
  }
  // Two workers died running it; the third runs the rest.
  auto dead = [&] {
    int n = 0;
    for (auto& w : workers) n += w.process.running() ? 0 : 1;
    return n;
  };
  EXPECT_TRUE(eventually([&] { return dead() == 2; }, 30s));
  EXPECT_TRUE(eventually([&] { return client.n_workers() == 1; }, 30s));
  EXPECT_EQ(client.submit(triple, 14).result(60s), 42);
  // The dependents of a KilledWorker task fail with it.
  auto after = client.submit(triple, crash);
  EXPECT_THROW(after.result(60s), TaskError);
  EXPECT_EQ(dead(), 2);

  auto story = client.story(crash);
  EXPECT_TRUE(story_has(story, "processing", "released")) << "the deaths are in its story";
  EXPECT_TRUE(story_has(story, "released", "erred"));
  ASSERT_FALSE(story.empty());
  EXPECT_NE(story.back().stimulus.find("remove-worker-"), std::string::npos) << story.back().stimulus;
  client.shutdown();
}

TEST(Failures, PausedWorkerIsRemovedAfterItsTtlAndItsWorkIsDoneElsewhere) {
  auto scheduler = start_scheduler({"--worker-ttl", "2"});
  // --no-nanny: SIGSTOP must reach the worker process itself, not its nanny.
  auto paused = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", "paused", "--no-nanny"});
  Client client(scheduler.address);
  client.wait_for_workers(1, 30s);
  auto held = client.submit(triple, 5);  // only the worker to be paused exists: it holds this
  ASSERT_EQ(held.result(60s), 15);
  auto healthy = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", "healthy"});
  client.wait_for_workers(2, 30s);

  ::kill(paused.process.pid(), SIGSTOP);
  ASSERT_TRUE(eventually([&] { return client.n_workers() == 1; }, 60s)) << "the paused worker was not removed";
  // Its result was lost with it: a task needing it recomputes it on the healthy worker.
  auto next = client.submit(triple, held);
  EXPECT_EQ(next.result(60s), 45);
  auto where = client.who_has(std::vector<Future<int>>{held});
  ASSERT_EQ(where[held.key()].size(), 1u);
  EXPECT_EQ(where[held.key()][0], healthy.address);

  ::kill(paused.process.pid(), SIGCONT);
  // Woken up, it was told to register anew; whatever it does, nothing from its old life counts.
  EXPECT_TRUE(eventually([&] { return !paused.process.running() || client.n_workers() == 2; }, 60s));
  EXPECT_EQ(held.result(60s), 15);
  EXPECT_EQ(next.result(60s), 45);
  auto info = client.scheduler_info();
  EXPECT_EQ(info.tasks["memory"], 2u) << "a result counted twice";
  EXPECT_TRUE(story_has(client.story(held), "memory", "released")) << "the loss is in its story";
  client.shutdown();
}

TEST(Failures, StoryOverTheClientAndTheDashboard) {
  distrib::LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1, .dashboard_address = "0"});
  distrib::Client client(cluster);
  auto f = client.submit(triple, 2);
  ASSERT_EQ(f.result(60s), 6);
  auto story = client.story(f);
  ASSERT_GE(story.size(), 3u);
  EXPECT_EQ(story[0].from, "released");
  EXPECT_EQ(story[0].to, "waiting");
  EXPECT_NE(story[0].stimulus.find("update-graph-"), std::string::npos) << story[0].stimulus;
  EXPECT_TRUE(story_has(story, "waiting", "processing"));
  EXPECT_EQ(story.back().to, "memory");
  EXPECT_FALSE(story.back().worker.empty());
  EXPECT_GT(story.back().time, 1.6e9);
  EXPECT_TRUE(client.story("no-such-key").empty());

  const std::string link = client.dashboard_link();
  auto colon = link.rfind(':');
  int port = std::stoi(link.substr(colon + 1, link.find('/', colon) - colon - 1));
  auto res = http_get(port, "/api/v1/story/" + f.key());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  auto j = nlohmann::json::parse(res->body);
  EXPECT_EQ(j["key"], f.key());
  ASSERT_EQ(j["story"].size(), story.size());
  EXPECT_EQ(j["story"].back()["to"], "memory");
  EXPECT_EQ(j["story"].back()["worker"], story.back().worker);
  auto none = http_get(port, "/api/v1/story/unknown");
  ASSERT_TRUE(none);
  EXPECT_EQ(nlohmann::json::parse(none->body)["story"].size(), 0u);
  client.shutdown();
}

}  // namespace
}  // namespace distrib::test
