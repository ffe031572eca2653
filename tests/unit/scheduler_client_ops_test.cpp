// Unit tests of the state's client operations: fire_and_forget, retry and dropped replicas
// (scheduler_state_client_ops.cpp), with validate() after every event.
#include <gtest/gtest.h>

#include "scheduler/scheduler_state.hpp"

namespace distrib::detail::sched {
namespace {

TaskSpecPtr task(const std::string& key, const std::vector<std::string>& deps = {}) {
  auto t = std::make_shared<TaskSpec>();
  t->key = key;
  t->function = "inc";
  t->args.push_back(TaskArg{encode_value(std::int32_t{1})});
  for (const auto& d : deps) t->args.push_back(TaskArg{d});
  return t;
}

template <class T>
std::vector<T> of_type(const std::vector<Action>& actions) {
  std::vector<T> r;
  for (const auto& a : actions)
    if (auto* p = std::get_if<T>(&a)) r.push_back(*p);
  return r;
}

class ClientOpsState : public ::testing::Test {
 protected:
  SchedulerState s;
  std::vector<Action> step(Event e) {
    auto out = s.handle(std::move(e));
    EXPECT_NO_THROW(s.validate());
    return out;
  }
  void add_worker(WorkerId id) { step(AddWorker{id, "w" + std::to_string(id), "tcp://w" + std::to_string(id), 1, 0, {"inc"}, {}}); }
};

TEST_F(ClientOpsState, FireAndForgetKeepsATaskWithoutClientsUntilItFinishes) {
  add_worker(1);
  step(AddClient{1});
  step(UpdateGraph{1, {task("a"), task("b", {"a"})}, {"b"}});
  step(FireAndForget{1, {"b"}});
  step(RemoveClient{1});  // nobody wants b now but the scheduler itself
  EXPECT_EQ(s.status("a"), TaskStatus::processing);
  step(TaskFinished{1, "a", "i32", 4});
  EXPECT_EQ(s.status("b"), TaskStatus::processing);
  auto out = step(TaskFinished{1, "b", "i32", 4});
  EXPECT_FALSE(s.status("b")) << "finished: released and forgotten";
  EXPECT_FALSE(s.status("a"));
  EXPECT_EQ(s.n_tasks(), 0u);
  EXPECT_FALSE(of_type<FreeKeys>(out).empty());
}

TEST_F(ClientOpsState, FireAndForgetSurvivesASnapshot) {
  add_worker(1);
  step(AddClient{1});
  step(UpdateGraph{1, {task("a")}, {"a"}});
  step(FireAndForget{1, {"a"}});
  step(RemoveClient{1});
  SchedulerState restored;
  restored.restore(s.durable_state());  // as a journaled scheduler restarting
  EXPECT_NO_THROW(restored.validate());
  EXPECT_EQ(restored.wanted_by(kFireAndForget), std::vector<std::string>{"a"});
  std::vector<Action> out;
  restored.handle(TaskFinished{1, "a", "i32", 4, 0, std::nullopt, 0}, out);
  EXPECT_EQ(restored.n_tasks(), 0u) << "finished: let go of, as before the restart";
}

TEST_F(ClientOpsState, FireAndForgetLetsGoOfAnErredTask) {
  add_worker(1);
  step(AddClient{1});
  step(UpdateGraph{1, {task("a")}, {"a"}});
  step(FireAndForget{1, {"a", "unknown"}});
  step(ReleaseKeys{1, {"a"}});
  EXPECT_EQ(s.status("a"), TaskStatus::processing);
  step(TaskErred{1, "a", "E", "boom"});
  EXPECT_EQ(s.n_tasks(), 0u);
}

TEST_F(ClientOpsState, RetryComputesTheErredTaskAndItsErredInputAgain) {
  add_worker(1);
  step(AddClient{1});
  step(AddClient{2});
  step(UpdateGraph{1, {task("a"), task("b", {"a"})}, {"a", "b"}});
  step(UpdateGraph{2, {}, {"b"}});
  step(TaskErred{1, "a", "E", "boom"});
  ASSERT_EQ(s.status("b"), TaskStatus::erred);
  auto out = step(RetryKeys{1, 7, {"b"}});
  auto told = of_type<KeysRetried>(out);
  ASSERT_EQ(told.size(), 2u);
  for (const auto& t : told) {
    if (t.client == 1) {
      EXPECT_EQ(t.request, 7u);
      EXPECT_EQ(t.keys.size(), 2u);  // a and b
    } else {
      EXPECT_EQ(t.client, 2u);
      EXPECT_EQ(t.request, 0u);
      EXPECT_EQ(t.keys, std::vector<std::string>{"b"});
    }
  }
  EXPECT_EQ(s.status("a"), TaskStatus::processing);
  EXPECT_TRUE(s.status("b") == TaskStatus::waiting || s.status("b") == TaskStatus::processing)  // may be assigned ahead
      << to_string(*s.status("b"));
  step(TaskFinished{1, "a", "i32", 4});
  step(TaskFinished{1, "b", "i32", 4});
  EXPECT_EQ(s.status("b"), TaskStatus::memory);
  // Nothing erred: the requester still hears back, with no keys.
  out = step(RetryKeys{1, 8, {"b"}});
  told = of_type<KeysRetried>(out);
  ASSERT_EQ(told.size(), 1u);
  EXPECT_TRUE(told[0].keys.empty());
  EXPECT_EQ(s.status("b"), TaskStatus::memory);
}

TEST_F(ClientOpsState, DropReplicasKeepsTheLastCopy) {
  add_worker(1);
  add_worker(2);
  step(AddClient{1});
  step(UpdateGraph{1, {task("a")}, {"a"}});
  auto on = s.processing_on("a");
  step(TaskFinished{on, "a", "i32", 4});
  const WorkerId other = on == 1 ? 2 : 1;
  step(Replicated{other, {"a"}});
  EXPECT_EQ(s.who_has("a").size(), 2u);
  auto out = step(DropReplicas{on, {"a"}});
  EXPECT_EQ(s.who_has("a"), std::vector<WorkerId>{other});
  ASSERT_EQ(of_type<FreeKeys>(out).size(), 1u);
  out = step(DropReplicas{other, {"a"}});  // the last copy stays
  EXPECT_EQ(s.who_has("a"), std::vector<WorkerId>{other});
  EXPECT_TRUE(of_type<FreeKeys>(out).empty());
  EXPECT_EQ(s.nbytes("a"), 4u);
}

}  // namespace
}  // namespace distrib::detail::sched
