// Unit tests of assigning ahead in SchedulerState: a task whose inputs are still being
// computed is sent to a worker before they finish (ComputeTask.pending), the producers on
// other workers are told to push their results there (PushTo), and the task is taken back
// when an input leaves processing without a result. validate() runs after every event.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "scheduler/scheduler_state.hpp"

namespace distrib::detail::sched {

// Readable statuses in failure messages (found by argument-dependent lookup).
[[maybe_unused]] static void PrintTo(TaskStatus s, std::ostream* os) { *os << to_string(s); }

namespace {

// ---- helpers ----

/// A task with one literal argument and one argument per dependency key.
TaskSpecPtr make_task(const std::string& key, const std::vector<std::string>& deps = {}, std::uint32_t retries = 0) {
  auto t = std::make_shared<TaskSpec>();
  t->key = key;
  t->function = "inc";
  t->retries = retries;
  t->args.push_back(TaskArg{encode_value(std::int32_t{1})});
  for (const auto& d : deps) t->args.push_back(TaskArg{d});
  return t;
}

template <class T>
std::vector<T> all_of_type(const std::vector<Action>& actions) {
  std::vector<T> r;
  for (const auto& a : actions)
    if (auto* p = std::get_if<T>(&a)) r.push_back(*p);
  return r;
}

template <class T>
std::size_t count_of(const std::vector<Action>& actions) {
  return all_of_type<T>(actions).size();
}

std::string address_of(WorkerId w) { return "tcp://w" + std::to_string(w); }

/// The ComputeTask for `key` among the actions, if any (there must be at most one).
std::optional<ComputeTask> compute_of(const std::vector<Action>& actions, const std::string& key) {
  std::optional<ComputeTask> found;
  for (const auto& c : all_of_type<ComputeTask>(actions)) {
    if (c.spec->key != key) continue;
    EXPECT_FALSE(found.has_value()) << key << " computed twice by one event";
    found = c;
  }
  return found;
}

std::set<std::string> as_set(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

/// Whether `worker` is told to stop working on `key` (FreeKeys with stops_work).
bool stops(const std::vector<Action>& actions, WorkerId worker, const std::string& key) {
  for (const auto& f : all_of_type<FreeKeys>(actions))
    if (f.worker == worker && f.stops_work && std::find(f.keys.begin(), f.keys.end(), key) != f.keys.end()) return true;
  return false;
}

/// The PushTo actions for `key`, as (producer's worker, target address) pairs.
std::set<std::pair<WorkerId, std::string>> pushes_of(const std::vector<Action>& actions, const std::string& key) {
  std::set<std::pair<WorkerId, std::string>> r;
  for (const auto& p : all_of_type<PushTo>(actions))
    if (p.key == key)
      for (const auto& t : p.targets) r.emplace(p.worker, t);
  return r;
}

class SchedulerAheadTest : public ::testing::Test {
 protected:
  std::unique_ptr<SchedulerState> s = std::make_unique<SchedulerState>();
  std::map<std::string, std::uint64_t> run_ids;  // the latest ComputeTask's, per key
  std::map<std::string, WorkerId> placed;        // the latest ComputeTask's worker, per key

  void configure(SchedulerConfig config) { s = std::make_unique<SchedulerState>(std::move(config)); }

  std::vector<Action> step(Event e) {
    auto out = s->handle(std::move(e));
    EXPECT_NO_THROW(s->validate());
    for (const auto& c : all_of_type<ComputeTask>(out)) {
      run_ids[c.spec->key] = c.run_id;
      placed[c.spec->key] = c.worker;
    }
    return out;
  }
  std::vector<Action> add_worker(WorkerId id, std::uint32_t nthreads = 1) {
    return step(AddWorker{id, "w" + std::to_string(id), address_of(id), nthreads, 0, {"inc"}, {}});
  }
  std::vector<Action> submit(std::vector<TaskSpecPtr> tasks, std::vector<std::string> wanted) {
    return step(UpdateGraph{1, std::move(tasks), std::move(wanted)});
  }
  std::vector<Action> finish(WorkerId w, const std::string& key, std::uint64_t nbytes = 8) {
    return step(TaskFinished{w, key, "i32", nbytes, 0.001, std::nullopt, run_ids[key]});
  }

  /// Workers 1 and 2; `c` (100 bytes) in memory on w2, `a` processing on w1, and b(a, c)
  /// assigned ahead on w2, which holds most of its inputs. Returns the submit's actions.
  std::vector<Action> split(std::uint32_t a_retries = 0) {
    add_worker(1);
    add_worker(2);
    step(AddClient{1});
    step(Scattered{1, {{"c", "i32", 100, {2}}}});
    // The dependent first: it is waiting when its input is placed.
    auto out = submit({make_task("b", {"a", "c"}), make_task("a", {}, a_retries)}, {"b"});
    EXPECT_EQ(s->processing_on("a"), 1u);
    return out;
  }
};

// ---- placement ----

TEST_F(SchedulerAheadTest, ChainSubmittedInputsFirstGetsTwoLevelsAssignedAheadOnTheProducersWorker) {
  ASSERT_EQ(SchedulerConfig{}.assign_ahead_depth, 2u) << "the default this test pins";
  add_worker(1);
  add_worker(2);
  // Inputs first, as Client::submit_graph sends a graph.
  auto out = submit({make_task("a"), make_task("b", {"a"}), make_task("c", {"b"}), make_task("d", {"c"})}, {"d"});
  auto a = compute_of(out, "a"), b = compute_of(out, "b"), c = compute_of(out, "c");
  ASSERT_TRUE(a && b && c);
  EXPECT_FALSE(compute_of(out, "d")) << "d waits on three levels: more than the default depth of 2";
  EXPECT_TRUE(a->pending.empty());
  EXPECT_EQ(b->pending, std::vector<std::string>{"a"});
  EXPECT_EQ(c->pending, std::vector<std::string>{"b"});
  EXPECT_TRUE(b->who_has.empty());
  // Every link goes where its input is computed: nothing to push.
  EXPECT_EQ(b->worker, a->worker);
  EXPECT_EQ(c->worker, a->worker);
  EXPECT_EQ(count_of<PushTo>(out), 0u);
  EXPECT_EQ(s->status("b"), TaskStatus::processing);
  EXPECT_EQ(s->status("d"), TaskStatus::waiting);
  const WorkerId w = a->worker;
  EXPECT_EQ(s->n_processing(w), 3u);

  // a done: b can run (it is there already), and d is now two levels from a result.
  out = finish(w, "a");
  EXPECT_FALSE(compute_of(out, "b")) << "b was sent already";
  auto d = compute_of(out, "d");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->worker, w);
  EXPECT_EQ(d->pending, std::vector<std::string>{"c"});
  for (const auto* k : {"b", "c", "d"}) {
    out = finish(w, k);
    EXPECT_EQ(count_of<ComputeTask>(out), 0u) << k;
  }
  EXPECT_EQ(s->status("d"), TaskStatus::memory);
  EXPECT_EQ(s->n_processing(w), 0u);
}

TEST_F(SchedulerAheadTest, DepthZeroAssignsNothingAhead) {
  configure(SchedulerConfig{.assign_ahead_depth = 0});
  add_worker(1);
  auto out = submit({make_task("c", {"b"}), make_task("b", {"a"}), make_task("a")}, {"c"});
  EXPECT_EQ(as_set({all_of_type<ComputeTask>(out)[0].spec->key}), as_set({"a"}));
  EXPECT_EQ(count_of<ComputeTask>(out), 1u);
  EXPECT_EQ(s->status("b"), TaskStatus::waiting);
  out = finish(1, "a");
  auto b = compute_of(out, "b");
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->pending.empty());
  ASSERT_EQ(b->who_has.size(), 1u);
  EXPECT_EQ(b->who_has[0].first, "a");
  EXPECT_EQ(s->status("c"), TaskStatus::waiting) << "c waits until b is in memory";
  EXPECT_EQ(count_of<PushTo>(out), 0u);
}

TEST_F(SchedulerAheadTest, DepthOneAssignsOneLevelAndMovesDownAsInputsFinish) {
  configure(SchedulerConfig{.assign_ahead_depth = 1});
  add_worker(1);
  // Dependents first: every task is waiting before the first is placed.
  auto out = submit({make_task("d", {"c"}), make_task("c", {"b"}), make_task("b", {"a"}), make_task("a")}, {"d"});
  EXPECT_TRUE(compute_of(out, "a"));
  auto b = compute_of(out, "b");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->pending, std::vector<std::string>{"a"});
  EXPECT_FALSE(compute_of(out, "c"));
  EXPECT_EQ(s->status("c"), TaskStatus::waiting);
  out = finish(1, "a");
  auto c = compute_of(out, "c");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->pending, std::vector<std::string>{"b"});
  EXPECT_FALSE(compute_of(out, "d"));
  out = finish(1, "b");
  EXPECT_TRUE(compute_of(out, "d"));
}

TEST_F(SchedulerAheadTest, SteppedGraphTwoWideSendsEachStepAheadAndCrossPushes) {
  add_worker(1);
  add_worker(2);
  // Three steps two wide: each task reads both outputs of the step before.
  std::vector<TaskSpecPtr> graph{make_task("x-0"), make_task("y-0")};
  for (int i = 1; i <= 3; ++i) {
    auto prev = std::to_string(i - 1), cur = std::to_string(i);
    graph.push_back(make_task("x-" + cur, {"x-" + prev, "y-" + prev}));
    graph.push_back(make_task("y-" + cur, {"x-" + prev, "y-" + prev}));
  }
  auto out = submit(graph, {"x-3", "y-3"});
  auto x0 = compute_of(out, "x-0"), y0 = compute_of(out, "y-0");
  ASSERT_TRUE(x0 && y0);
  ASSERT_NE(x0->worker, y0->worker) << "the roots spread over both workers";
  auto check_step = [&](const std::vector<Action>& acts, int i, WorkerId x_prev_on, WorkerId y_prev_on) {
    auto prev = std::to_string(i - 1), cur = std::to_string(i);
    auto x = compute_of(acts, "x-" + cur), y = compute_of(acts, "y-" + cur);
    ASSERT_TRUE(x && y) << "step " << i;
    EXPECT_NE(x->worker, y->worker) << "step " << i << " spreads over both workers";
    for (const auto& t : {*x, *y}) {
      EXPECT_EQ(as_set(t.pending), as_set({"x-" + prev, "y-" + prev})) << t.spec->key;
      EXPECT_TRUE(t.who_has.empty()) << t.spec->key;
    }
    // Each producer pushes to the task on the other worker, not to its own.
    auto px = pushes_of(acts, "x-" + prev), py = pushes_of(acts, "y-" + prev);
    std::set<std::pair<WorkerId, std::string>> want_x, want_y;
    for (const auto& t : {*x, *y}) {
      if (t.worker != x_prev_on) want_x.emplace(x_prev_on, address_of(t.worker));
      if (t.worker != y_prev_on) want_y.emplace(y_prev_on, address_of(t.worker));
    }
    EXPECT_EQ(px, want_x) << "step " << i;
    EXPECT_EQ(py, want_y) << "step " << i;
    EXPECT_EQ(want_x.size() + want_y.size(), 2u);
  };
  check_step(out, 1, x0->worker, y0->worker);
  WorkerId x1_on = s->processing_on("x-1"), y1_on = s->processing_on("y-1");
  check_step(out, 2, x1_on, y1_on);
  EXPECT_FALSE(compute_of(out, "x-3")) << "three levels deep";
  EXPECT_EQ(s->status("x-3"), TaskStatus::waiting);

  // Step 0 done on both: step 3 is two levels from a result now, and goes ahead too.
  finish(x0->worker, "x-0");
  out = finish(y0->worker, "y-0");
  check_step(out, 3, s->processing_on("x-2"), s->processing_on("y-2"));
  EXPECT_EQ(count_of<ComputeTask>(out), 2u) << "only step 3 is new";
  for (int i = 1; i <= 3; ++i) {
    auto cur = std::to_string(i);
    out = finish(s->processing_on("x-" + cur), "x-" + cur);
    out = finish(s->processing_on("y-" + cur), "y-" + cur);
    EXPECT_EQ(count_of<ComputeTask>(out), 0u);
  }
  EXPECT_EQ(s->status("x-3"), TaskStatus::memory);
  EXPECT_EQ(s->status("y-3"), TaskStatus::memory);
  EXPECT_EQ(s->n_processing(1) + s->n_processing(2), 0u);
}

TEST_F(SchedulerAheadTest, TaskGoesToTheWorkerHoldingMostBytesOfItsInputs) {
  auto out = split();
  auto b = compute_of(out, "b");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->worker, 2u) << "c's 100 bytes are on w2";
  EXPECT_EQ(b->pending, std::vector<std::string>{"a"});
  ASSERT_EQ(b->who_has.size(), 1u);
  EXPECT_EQ(b->who_has[0].first, "c");
  EXPECT_EQ(b->who_has[0].second, std::vector<std::string>{address_of(2)});
  EXPECT_EQ(pushes_of(out, "a"), (std::set<std::pair<WorkerId, std::string>>{{1, address_of(2)}}));
  EXPECT_EQ(s->n_processing(2), 1u);
}

// ---- taking back ----

TEST_F(SchedulerAheadTest, ProducersWorkerDiesTheAheadTaskIsFreedAndAssignedAgain) {
  split();
  auto old_run = run_ids["b"];
  auto out = step(RemoveWorker{1});
  EXPECT_TRUE(stops(out, 2, "b")) << "b expected a push from the dead worker";
  // a runs again on w2, and b with it, ahead again, under a new run id.
  auto a = compute_of(out, "a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->worker, 2u);
  auto b = compute_of(out, "b");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->worker, 2u);
  EXPECT_EQ(b->pending, std::vector<std::string>{"a"});
  EXPECT_NE(b->run_id, old_run);
  EXPECT_EQ(count_of<PushTo>(out), 0u) << "a is computed where b waits";
  // The free goes out before the new assignment (the wire sends frees first too).
  std::size_t free_at = 0, compute_at = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (auto* f = std::get_if<FreeKeys>(&out[i]); f && f->worker == 2) free_at = i;
    if (auto* c = std::get_if<ComputeTask>(&out[i]); c && c->spec->key == "b") compute_at = i;
  }
  EXPECT_LT(free_at, compute_at);
  EXPECT_EQ(s->processing_on("b"), 2u);
  finish(2, "a");
  finish(2, "b");
  EXPECT_EQ(s->status("b"), TaskStatus::memory);
}

TEST_F(SchedulerAheadTest, AheadTasksWorkerDiesWithTheOnlyCopyOfItsOtherInput) {
  add_worker(1);
  add_worker(2);
  step(Scattered{1, {{"c", "i32", 100, {2}}}});
  submit({make_task("b", {"a", "c"}), make_task("a")}, {"b", "a"});
  ASSERT_EQ(s->processing_on("b"), 2u);
  auto out = step(RemoveWorker{2});  // c was scattered: it cannot be recomputed
  EXPECT_EQ(s->status("b"), TaskStatus::erred);
  EXPECT_EQ(count_of<PushTo>(out), 0u);
  EXPECT_EQ(s->processing_on("a"), 1u) << "a is wanted, and goes on";
  out = finish(1, "a");
  EXPECT_EQ(count_of<ComputeTask>(out), 0u);
}

TEST_F(SchedulerAheadTest, AheadTaskIsNotSuspectedWhenItsWorkerDies) {
  // KilledWorker counts the workers a task died on while it could run: one assigned ahead
  // was only waiting there.
  configure(SchedulerConfig{.allowed_failures = 1});
  add_worker(1);
  add_worker(2);
  add_worker(3);
  step(Scattered{1, {{"c", "i32", 100, {2, 3}}}});
  auto out = submit({make_task("b", {"a", "c"}), make_task("a")}, {"b"});
  ASSERT_EQ(s->processing_on("a"), 1u);
  ASSERT_EQ(s->processing_on("b"), 2u);
  out = step(RemoveWorker{2});
  EXPECT_NE(s->status("b"), TaskStatus::erred);
  EXPECT_EQ(count_of<KeyErred>(out), 0u);
  finish(1, "a");
  EXPECT_EQ(s->status("b"), TaskStatus::processing);
  EXPECT_EQ(s->processing_on("b"), 3u) << "c is still on w3";
}

TEST_F(SchedulerAheadTest, RetriedProducerTakesTheAheadTaskBack) {
  split(/*a_retries=*/1);
  auto old_run = run_ids["b"];
  auto out = step(TaskErred{1, "a", "std::runtime_error", "flaky", run_ids["a"]});
  EXPECT_TRUE(stops(out, 2, "b"));
  EXPECT_EQ(count_of<KeyErred>(out), 0u);
  auto a = compute_of(out, "a");
  ASSERT_TRUE(a);
  auto b = compute_of(out, "b");
  ASSERT_TRUE(b) << "b goes ahead again with the retry";
  EXPECT_NE(b->run_id, old_run);
  EXPECT_EQ(b->pending, std::vector<std::string>{"a"});
  if (b->worker != a->worker) {
    EXPECT_EQ(pushes_of(out, "a"), (std::set<std::pair<WorkerId, std::string>>{{a->worker, address_of(b->worker)}}));
  }
  // The old run's report of b (it cannot have run, but say it did) is not believed.
  step(TaskFinished{2, "b", "i32", 8, 0.001, std::nullopt, old_run});
  EXPECT_EQ(s->status("b"), TaskStatus::processing);
}

TEST_F(SchedulerAheadTest, ErredProducerWithoutRetriesErrsTheAheadTask) {
  split();
  auto out = step(TaskErred{1, "a", "std::runtime_error", "boom", run_ids["a"]});
  EXPECT_TRUE(stops(out, 2, "b"));
  EXPECT_EQ(s->status("b"), TaskStatus::erred);
  EXPECT_EQ(s->n_processing(2), 0u);
}

TEST_F(SchedulerAheadTest, StolenProducerTakesItsAheadDependentBackAndPlacesItAgain) {
  add_worker(1);
  step(AddClient{1});
  submit({make_task("r"), make_task("p-0", {"r"})}, {"r", "p-0"});
  finish(1, "r");
  finish(1, "p-0", 10'000'000);  // p's results are large: q is best where they are computed
  // Four tasks on w1, where their input is; w2 joins idle and asks for one.
  submit({make_task("p-1", {"r"}), make_task("p-2", {"r"}), make_task("p-3", {"r"}), make_task("p-4", {"r"})},
         {"p-1", "p-2", "p-3", "p-4"});
  auto out = add_worker(2);
  auto steals = all_of_type<StealRequest>(out);
  ASSERT_EQ(steals.size(), 1u);
  const std::string stolen = steals[0].key;
  std::string other = stolen == "p-1" ? "p-2" : "p-1";
  // While the request travels, q(stolen, other) goes ahead on w1, where both are computed.
  out = submit({make_task("q", {stolen, other})}, {"q"});
  auto q = compute_of(out, "q");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->worker, 1u);
  EXPECT_EQ(as_set(q->pending), as_set({stolen, other}));
  EXPECT_EQ(count_of<PushTo>(out), 0u);
  out = finish(1, other);
  EXPECT_FALSE(compute_of(out, "q"));
  auto old_run = run_ids["q"];
  // w1 gives the stolen task up: q must not wait for it on w1.
  out = step(StealResponse{1, stolen, true, run_ids[stolen]});
  EXPECT_TRUE(stops(out, 1, "q"));
  auto moved = compute_of(out, stolen);
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->worker, 2u);
  auto q2 = compute_of(out, "q");
  ASSERT_TRUE(q2) << "q goes ahead again, waiting for the thief";
  EXPECT_NE(q2->run_id, old_run);
  EXPECT_EQ(q2->pending, std::vector<std::string>{stolen});
  if (q2->worker != 2)
    EXPECT_EQ(pushes_of(out, stolen), (std::set<std::pair<WorkerId, std::string>>{{2, address_of(q2->worker)}}));
  else
    EXPECT_TRUE(pushes_of(out, stolen).empty());
}

TEST_F(SchedulerAheadTest, StealingSkipsTasksAssignedAheadAndProducersTheyWaitFor) {
  add_worker(1);
  step(AddClient{1});
  submit({make_task("r")}, {"r"});
  finish(1, "r");
  std::vector<TaskSpecPtr> graph;
  std::vector<std::string> wanted;
  for (int i = 1; i <= 4; ++i) {  // dependents first: each q goes ahead as its p is placed
    auto n = std::to_string(i);
    graph.push_back(make_task("q-" + n, {"p-" + n}));
    graph.push_back(make_task("p-" + n, {"r"}));
    wanted.push_back("q-" + n);
  }
  submit(graph, wanted);
  ASSERT_EQ(s->n_processing(1), 8u);
  // Only a task nothing waits for may be stolen, once w2 joins.
  submit({make_task("p-5", {"r"})}, {"p-5"});
  ASSERT_EQ(s->n_processing(1), 9u);
  auto out = add_worker(2);
  auto steals = all_of_type<StealRequest>(out);
  ASSERT_EQ(steals.size(), 1u) << "every other task on w1 is ahead or awaited by one ahead";
  EXPECT_EQ(steals[0].key, "p-5");
}

TEST_F(SchedulerAheadTest, ALongProducerIsStolenDespiteTheTasksAheadOnIt) {
  add_worker(1);
  step(AddClient{1});
  submit({make_task("r"), make_task("p-0", {"r"})}, {"r", "p-0"});
  finish(1, "r");
  step(TaskFinished{1, "p-0", "i32", 8, 0.005, std::nullopt, run_ids["p-0"]});  // p tasks take 5 ms
  std::vector<TaskSpecPtr> graph;
  for (int i = 1; i <= 4; ++i) {
    auto n = std::to_string(i);
    graph.push_back(make_task("q-" + n, {"p-" + n}));
    graph.push_back(make_task("p-" + n, {"r"}));
  }
  submit(graph, {"q-1", "q-2", "q-3", "q-4"});
  ASSERT_EQ(s->n_processing(1), 8u);
  auto out = add_worker(2);
  auto steals = all_of_type<StealRequest>(out);
  ASSERT_EQ(steals.size(), 1u) << "moving a 5 ms task is worth taking back what waits for it";
  EXPECT_EQ(steals[0].key.rfind("p-", 0), 0u) << steals[0].key;
  const std::string p = steals[0].key, q = "q-" + p.substr(2);
  out = step(StealResponse{1, p, true, run_ids[p]});
  EXPECT_TRUE(stops(out, 1, q));
  EXPECT_EQ(s->processing_on(p), 2u);
  EXPECT_EQ(s->status(q), TaskStatus::processing) << "placed again, ahead of the thief's run";
}

TEST_F(SchedulerAheadTest, AWorkerWhoseTasksAllWaitForInputsGetsWorkPlacedOrStolen) {
  split();  // w2's only task, b, waits for a
  step(Scattered{1, {{"r", "i32", 8, {1}}}});
  auto out = submit({make_task("p-1", {"r"}), make_task("p-2", {"r"}), make_task("p-3", {"r"})}, {"p-1", "p-2", "p-3"});
  std::size_t for_w2 = 0;
  for (const auto* k : {"p-1", "p-2", "p-3"}) for_w2 += s->processing_on(k) == 2u;
  for (const auto& steal : all_of_type<StealRequest>(out)) for_w2 += steal.worker == 1u;
  EXPECT_GE(for_w2, 1u) << "w2 has an idle thread: a p is placed there or stolen for it";
}

TEST_F(SchedulerAheadTest, LostInputTakesTheAheadTaskBackUntilItIsRecomputed) {
  step(AddClient{1});
  add_worker(2);
  submit({make_task("c")}, {"c"});  // computed (so it can be recomputed) on w2
  finish(2, "c", 10);
  add_worker(1);
  submit({make_task("a-0")}, {"a-0"});
  ASSERT_EQ(s->processing_on("a-0"), 1u);
  finish(1, "a-0", 1000);  // results of prefix `a` are about 1000 bytes
  auto out = submit({make_task("b", {"a-1", "c"}), make_task("a-1")}, {"b"});
  ASSERT_EQ(s->processing_on("a-1"), 1u);
  auto b = compute_of(out, "b");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->worker, 1u) << "a-1 (about 1000 bytes) outweighs c (10 bytes)";
  EXPECT_EQ(b->pending, std::vector<std::string>{"a-1"});
  ASSERT_EQ(b->who_has.size(), 1u);
  EXPECT_EQ(b->who_has[0].second, std::vector<std::string>{address_of(2)});
  // w1 cannot get c from its only holder: c is lost, and b waits for its recomputation.
  out = step(MissingData{1, "c", address_of(2)});
  EXPECT_TRUE(stops(out, 1, "b"));
  auto c = compute_of(out, "c");
  ASSERT_TRUE(c) << "c is recomputed";
  auto b2 = compute_of(out, "b");
  ASSERT_TRUE(b2) << "b goes ahead again, on both inputs";
  EXPECT_NE(b2->run_id, b->run_id);
  EXPECT_EQ(b2->worker, 1u);
  EXPECT_EQ(as_set(b2->pending), as_set({"a-1", "c"}));
  EXPECT_TRUE(b2->who_has.empty());
  if (c->worker != 1u) {
    EXPECT_EQ(pushes_of(out, "c"), (std::set<std::pair<WorkerId, std::string>>{{c->worker, address_of(1)}}));
  }
  finish(c->worker, "c", 10);
  finish(1, "a-1", 1000);
  out = finish(1, "b");
  EXPECT_EQ(s->status("b"), TaskStatus::memory);
}

// ---- pushes that fail, and reports that race ----

TEST_F(SchedulerAheadTest, PushFailedTellsTheWaitingWorkerWhereToFetch) {
  split();
  // Before a is in memory there is nowhere to send w2.
  auto out = step(PushFailed{1, "a", address_of(2)});
  EXPECT_EQ(count_of<KeyLocations>(out), 0u);
  finish(1, "a");
  EXPECT_EQ(s->status("b"), TaskStatus::processing);
  out = step(PushFailed{1, "a", address_of(2)});
  auto kl = all_of_type<KeyLocations>(out);
  ASSERT_EQ(kl.size(), 1u);
  EXPECT_EQ(kl[0].worker, 2u);
  EXPECT_EQ(kl[0].key, "a");
  EXPECT_EQ(kl[0].addresses, std::vector<std::string>{address_of(1)});
  EXPECT_EQ(count_of<ComputeTask>(out), 0u);
  // A target where nothing waits for it gets nothing.
  out = step(PushFailed{1, "a", "tcp://elsewhere"});
  EXPECT_EQ(count_of<KeyLocations>(out), 0u);
}

TEST_F(SchedulerAheadTest, DependentFinishingBeforeItsProducersReportKeepsTheStateValid) {
  split();
  // a's result was pushed to w2, b ran and its report overtook a's.
  auto out = finish(2, "b");
  EXPECT_EQ(s->status("b"), TaskStatus::memory);
  EXPECT_EQ(s->n_processing(2), 0u);
  EXPECT_NE(s->status("a"), TaskStatus::memory);
  out = finish(1, "a");
  EXPECT_EQ(s->n_processing(1), 0u);
  EXPECT_EQ(s->status("b"), TaskStatus::memory);
  EXPECT_EQ(count_of<ComputeTask>(out), 0u);
}

TEST_F(SchedulerAheadTest, DependentFinishingFirstThenItsProducersWorkerDies) {
  split();
  step(UpdateGraph{1, {}, {"a"}});  // a is wanted too: it stays processing
  finish(2, "b");
  ASSERT_EQ(s->status("a"), TaskStatus::processing);
  auto out = step(RemoveWorker{1});
  EXPECT_EQ(s->status("b"), TaskStatus::memory);
  auto a = compute_of(out, "a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->worker, 2u);
  EXPECT_EQ(count_of<FreeKeys>(out), 0u) << "b is done: nothing to take back";
  finish(2, "a");
  EXPECT_EQ(s->status("a"), TaskStatus::memory);
}

// ---- clients ----

TEST_F(SchedulerAheadTest, CancellingAProducerStopsItsAheadDependentsToo) {
  add_worker(1);
  step(AddClient{1});
  submit({make_task("a"), make_task("b", {"a"}), make_task("c", {"b"})}, {"a", "b", "c"});
  ASSERT_EQ(s->n_processing(1), 3u);
  auto out = step(CancelKeys{1, {"a"}});
  for (const auto* k : {"a", "b", "c"}) EXPECT_TRUE(stops(out, 1, k)) << k;
  EXPECT_EQ(s->n_tasks(), 0u);
  EXPECT_EQ(s->n_processing(1), 0u);
}

TEST_F(SchedulerAheadTest, ReleasingTheAheadTaskStopsItAndItsProducerNobodyNeeds) {
  split();
  auto out = step(ReleaseKeys{1, {"b"}});
  EXPECT_TRUE(stops(out, 2, "b"));
  EXPECT_TRUE(stops(out, 1, "a")) << "a was computed only for b";
  EXPECT_EQ(s->n_processing(1) + s->n_processing(2), 0u);
  EXPECT_FALSE(s->status("b"));
}

TEST_F(SchedulerAheadTest, ScatteringAnInputTwiceKeepsTheAheadTaskWaitingForTheOther) {
  add_worker(1);
  add_worker(2);
  step(AddClient{1});
  submit({make_task("y")}, {"y"});
  step(Scattered{1, {{"d", "i32", 4, {1}}}});
  auto out = submit({make_task("t", {"d", "y"})}, {"t"});
  auto t = compute_of(out, "t");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->pending, std::vector<std::string>{"y"});
  out = step(Scattered{2, {{"d", "i32", 4, {2}}}});  // another client, same content
  EXPECT_EQ(count_of<ComputeTask>(out), 0u);
  EXPECT_EQ(s->status("t"), TaskStatus::processing);
  out = finish(s->processing_on("y"), "y");
  EXPECT_EQ(count_of<ComputeTask>(out), 0u) << "t is there already";
  finish(t->worker, "t");
  EXPECT_EQ(s->status("t"), TaskStatus::memory);
}

// ---- queuing ----

TEST_F(SchedulerAheadTest, RootSaturationDoesNotCountTasksAssignedAhead) {
  add_worker(1);  // one thread: ceil(1 * 1.1) = 2 root tasks at a time
  submit({make_task("c", {"b"}), make_task("b", {"a"}), make_task("a")}, {"c"});
  ASSERT_EQ(s->n_processing(1), 3u) << "a, and b and c ahead";
  auto out = submit({make_task("x-1"), make_task("x-2"), make_task("x-3")}, {"x-1", "x-2", "x-3"});
  EXPECT_EQ(count_of<ComputeTask>(out), 1u) << "a is the only runnable task: room for one more";
  EXPECT_EQ(s->n_processing(1), 4u);
  EXPECT_EQ(s->status("x-2"), TaskStatus::queued);
  EXPECT_EQ(s->status("x-3"), TaskStatus::queued);
}

// As a client's submit loop sends it (bench_stepped): one task per graph update, each step
// after the one it reads, whose futures are then let go. Each step must spread over both
// workers, or the two tasks of every step run one after the other.
TEST_F(SchedulerAheadTest, SteppedGraphSubmittedTaskByTaskSpreadsEveryStep) {
  add_worker(1);
  add_worker(2);
  step(AddClient{1});
  submit({make_task("x-0")}, {"x-0"});
  submit({make_task("y-0")}, {"y-0"});
  constexpr int kSteps = 12;
  for (int i = 1; i <= kSteps; ++i) {
    auto prev = std::to_string(i - 1), cur = std::to_string(i);
    submit({make_task("x-" + cur, {"x-" + prev, "y-" + prev})}, {"x-" + cur});
    submit({make_task("y-" + cur, {"x-" + prev, "y-" + prev})}, {"y-" + cur});
    step(ReleaseKeys{1, {"x-" + prev, "y-" + prev}});
  }
  // The loop ran ahead of the work (as a fast client does); steps finish in order, the
  // first to finish alternating between the workers.
  for (int i = 0; i <= kSteps; ++i) {
    auto cur = std::to_string(i);
    std::vector<std::string> keys{"x-" + cur, "y-" + cur};
    if (i % 2) std::swap(keys[0], keys[1]);
    for (const auto& k : keys) {
      ASSERT_EQ(s->status(k), TaskStatus::processing) << k;
      finish(s->processing_on(k), k);
    }
  }
  for (int i = 0; i <= kSteps; ++i) {
    auto cur = std::to_string(i);
    ASSERT_TRUE(placed.count("x-" + cur) && placed.count("y-" + cur)) << "step " << i;
    EXPECT_NE(placed["x-" + cur], placed["y-" + cur]) << "step " << i;
  }
}

}  // namespace
}  // namespace distrib::detail::sched
