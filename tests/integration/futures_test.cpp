// Futures end to end: dependencies across workers, large transfers, scatter, cancel, pure
// keys, retries, restrictions and resources, waiting helpers, graphs, and bad input.
//
// Threads-mode clusters (processes = false) run their workers in this process, so tasks
// from tasks_for_tests.cpp that record their calls (count_calls, fail_times) can be
// counted here with calls_of(). Processes-mode clusters are used where placement is
// checked through process ids, and where a long task should not delay teardown.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <distrib/distrib.hpp>
#include <future>
#include <numeric>
#include <optional>
#include <set>

#include "helpers.hpp"
#include "tasks_for_tests.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

using Clock = std::chrono::steady_clock;

// The address of the worker called `name`, from the scheduler's worker list.
std::string address_of(Client& client, const std::string& name) {
  for (const auto& w : client.scheduler_info().workers)
    if (w.name == name) return w.address;
  ADD_FAILURE() << "no worker named " << name;
  return {};
}

// result() for a future that should succeed: an exception becomes a failure of the calling
// test (naming the key and the line) instead of ending it.
template <class T>
std::optional<T> value_at(const Future<T>& f, int line) {
  try {
    return f.result(60s);
  } catch (const std::exception& e) {
    ADD_FAILURE_AT(__FILE__, line) << "result of '" << f.key() << "' raised: " << e.what();
    return std::nullopt;
  }
}
#define VALUE(f) value_at((f), __LINE__)

// Names for the call counters of count_calls / fail_times, fresh each time a test runs
// (the counters live as long as the process, e.g. under --gtest_repeat).
struct Names {
  int id = next_id();
  std::string operator()(const std::string& base) const { return base + "#" + std::to_string(id); }
  static int next_id() {
    static std::atomic<int> n{0};
    return ++n;
  }
};

template <class T>
std::set<std::string> holders(Client& client, const std::vector<Future<T>>& fs) {
  std::set<std::string> out;
  for (const auto& [key, workers] : client.who_has(fs)) out.insert(workers.begin(), workers.end());
  return out;
}

// --- 1. Chains, diamonds and lists of futures -----------------------------------------

class FuturesChains : public ::testing::TestWithParam<bool> {};

TEST_P(FuturesChains, ChainsDiamondsAndFutureVectors) {
  LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .processes = GetParam()});
  Client client(cluster);
  ASSERT_EQ(client.n_workers(), 2u);

  // A 20-link chain whose links alternate between the workers: every link needs the
  // previous result from the other worker.
  std::vector<SubmitOptions> on(2);
  on[0].workers = {"worker-0"};
  on[1].workers = {"worker-1"};
  Future<int> link = client.submit(on[0], inc, 0);
  std::vector<Future<int>> links{link};
  for (int i = 1; i < 20; ++i) {
    link = client.submit(on[i % 2], inc, link);
    links.push_back(link);
  }
  EXPECT_EQ(link.result(60s), 20);
  auto chain_values = client.gather(links);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(chain_values[static_cast<std::size_t>(i)], i + 1);

  // A plain chain, left to the scheduler.
  Future<int> plain = client.submit(inc, 1000);
  for (int i = 1; i < 20; ++i) plain = client.submit(inc, plain);
  EXPECT_EQ(plain.result(60s), 1020);

  // 40 diamonds: a -> (b, c) -> d, free placement.
  std::vector<Future<double>> tops;
  for (int i = 0; i < 40; ++i) {
    auto a = client.submit(add, static_cast<double>(i), 1.0);
    auto b = client.submit(add, a, 10.0);
    auto c = client.submit(add, a, 100.0);
    tops.push_back(client.submit(add, b, c));
  }
  auto ds = client.gather(tops);
  ASSERT_EQ(ds.size(), 40u);
  for (int i = 0; i < 40; ++i) EXPECT_DOUBLE_EQ(ds[static_cast<std::size_t>(i)], 2.0 * (i + 1) + 110.0) << i;

  // A diamond whose branches are forced onto different workers.
  auto a = client.submit(on[0], add, 1.0, 2.0);
  auto b = client.submit(on[1], add, a, 10.0);
  auto c = client.submit(on[0], add, a, 100.0);
  auto d = client.submit(on[1], add, b, c);
  EXPECT_DOUBLE_EQ(d.result(60s), 116.0);
  EXPECT_EQ(holders(client, std::vector<Future<double>>{b, d}), std::set<std::string>{address_of(client, "worker-1")});

  // 100 futures passed as one std::vector<double> argument.
  std::vector<Future<double>> parts;
  for (int i = 0; i < 100; ++i) parts.push_back(client.submit(add, static_cast<double>(i), 0.5));
  auto total = client.submit(sum_vector, parts);
  EXPECT_DOUBLE_EQ(total.result(60s), 4950.0 + 50.0);
  // The same list twice (and an empty list) is fine too.
  std::vector<Future<double>> twice = parts;
  twice.insert(twice.end(), parts.begin(), parts.end());
  EXPECT_DOUBLE_EQ(client.submit(sum_vector, twice).result(60s), 2 * 5000.0);
  EXPECT_DOUBLE_EQ(client.submit(sum_vector, std::vector<Future<double>>{}).result(60s), 0.0);
}

INSTANTIATE_TEST_SUITE_P(FuturesModes, FuturesChains, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "processes" : "threads"; });

// --- 2. A 100 MB value moving between worker processes --------------------------------

TEST(FuturesTransfer, HundredMegabytesBetweenWorkers) {
  LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .processes = true});
  Client client(cluster);
  const std::uint64_t n = 100'000'000;
  const std::uint32_t seed = 7;
  auto w0 = address_of(client, "worker-0");
  auto w1 = address_of(client, "worker-1");
  ASSERT_NE(w0, w1);

  SubmitOptions on0, on1;
  on0.workers = {"worker-0"};
  on1.workers = {"worker-1"};
  auto data = client.submit(on0, make_pattern, n, seed);
  auto sum = client.submit(on1, checksum_bytes, data);

  auto expected = make_pattern(n, seed);
  EXPECT_EQ(sum.result(60s), checksum_bytes(expected));
  EXPECT_EQ(client.who_has(std::vector<Future<std::uint64_t>>{sum})[sum.key()], std::vector<std::string>{w1});
  auto where = client.who_has(std::vector<Future<std::vector<std::uint8_t>>>{data})[data.key()];
  EXPECT_NE(std::find(where.begin(), where.end(), w0), where.end()) << "the input is not on worker-0";

  // And byte for byte at the client.
  auto back = data.result(60s);
  ASSERT_EQ(back.size(), n);
  EXPECT_TRUE(back == expected) << "the 100 MB value came back different";
}

// --- 3. Scatter --------------------------------------------------------------------------

TEST(FuturesScatter, RoundTripHashEachBroadcastAndAsArgument) {
  LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .processes = false});
  Client client(cluster);
  auto w0 = address_of(client, "worker-0");
  auto w1 = address_of(client, "worker-1");

  // Round trip.
  std::map<std::string, std::vector<double>> value{{"x", {1.0, 2.5}}, {"y", {}}};
  auto f = client.scatter(value);
  EXPECT_TRUE(f.done());
  EXPECT_EQ(f.result(60s), value);

  // hash = true: same content, same key; hash = false: a fresh key each time.
  auto s1 = client.scatter(std::string("same content"));
  auto s2 = client.scatter(std::string("same content"));
  EXPECT_EQ(s1.key(), s2.key());
  auto s3 = client.scatter(std::string("other content"));
  EXPECT_NE(s1.key(), s3.key());
  auto u1 = client.scatter(std::string("same content"), ScatterOptions{.hash = false});
  auto u2 = client.scatter(std::string("same content"), ScatterOptions{.hash = false});
  EXPECT_NE(u1.key(), u2.key());
  EXPECT_NE(u1.key(), s1.key());
  EXPECT_EQ(u2.result(60s), "same content");

  // scatter_each spreads 10 elements over both workers.
  std::vector<int> xs{10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
  auto each = client.scatter_each(xs);
  ASSERT_EQ(each.size(), 10u);
  std::set<std::string> keys;
  for (const auto& e : each) keys.insert(e.key());
  EXPECT_EQ(keys.size(), 10u);
  EXPECT_EQ(client.gather(each), xs);
  EXPECT_EQ(holders(client, each), (std::set<std::string>{w0, w1}));
  auto has = client.has_what();
  for (const auto& w : {w0, w1}) {
    std::size_t mine = 0;
    for (const auto& k : has[w]) mine += keys.count(k);
    EXPECT_GE(mine, 1u) << w << " holds none of the scattered elements";
  }

  // broadcast: one value on both workers.
  auto b = client.scatter(std::vector<double>{3.0, 4.0, 5.0}, ScatterOptions{.broadcast = true});
  auto bw = client.who_has(std::vector<Future<std::vector<double>>>{b})[b.key()];
  EXPECT_EQ(std::set<std::string>(bw.begin(), bw.end()), (std::set<std::string>{w0, w1}));

  // To one named worker.
  auto only1 = client.scatter(std::vector<double>{1.0, 2.0}, ScatterOptions{.workers = {"worker-1"}});
  EXPECT_EQ(client.who_has(std::vector<Future<std::vector<double>>>{only1})[only1.key()], std::vector<std::string>{w1});

  // Scattered futures as task arguments, alone and in a list.
  EXPECT_DOUBLE_EQ(client.submit(sum_vector, b).result(60s), 12.0);
  EXPECT_DOUBLE_EQ(client.submit(sum_vector, only1).result(60s), 3.0);
  auto plus = client.map(inc, each);
  EXPECT_EQ(client.gather(plus), (std::vector<int>{11, 12, 13, 14, 15, 16, 17, 18, 19, 20}));
  auto doubles = client.scatter_each(std::vector<double>{0.5, 1.5, 2.5});
  EXPECT_DOUBLE_EQ(client.submit(sum_vector, doubles).result(60s), 4.5);
}

// --- 4. Cancel ---------------------------------------------------------------------------

TEST(FuturesCancel, PendingTasksNeverRun) {
  const Names name;
  LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1, .processes = false});
  Client client(cluster);
  // One thread, busy: everything submitted after the blocker waits behind it.
  auto blocker = client.submit(SubmitOptions{.pure = false}, sleep_ms, 1000);
  auto pending = client.submit(count_calls, name("cancel-pending"), 1);
  auto dependent = client.submit(count_calls, name("cancel-dependent"), pending);
  std::vector<Future<int>> many;
  for (int i = 0; i < 5; ++i) many.push_back(client.submit(count_calls, name("cancel-many"), i));
  pending.cancel();
  client.cancel(many);
  EXPECT_EQ(pending.status(), FutureStatus::cancelled);
  EXPECT_THROW(pending.result(60s), CancelledError);
  // The dependent is cancelled by the scheduler.
  ASSERT_TRUE(dependent.wait_for(60s));
  EXPECT_EQ(dependent.status(), FutureStatus::cancelled);
  EXPECT_THROW(dependent.result(60s), CancelledError);
  try {
    many[3].result(60s);
    FAIL() << "expected CancelledError";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.key(), many[3].key());
  }
  // Cancelling again is harmless.
  pending.cancel();
  client.cancel(pending);
  client.cancel(many);

  // A task submitted after them runs on the same single thread: by the time it is done,
  // the cancelled ones would have run.
  auto after = client.submit(count_calls, name("cancel-after"), 1);
  EXPECT_EQ(VALUE(after), 2);
  EXPECT_EQ(blocker.result(60s), 1000);
  EXPECT_EQ(calls_of(name("cancel-after")), 1);
  EXPECT_EQ(calls_of(name("cancel-pending")), 0) << "a cancelled pending task ran";
  EXPECT_EQ(calls_of(name("cancel-many")), 0) << "cancelled pending tasks ran";
  EXPECT_EQ(calls_of(name("cancel-dependent")), 0);

  // Cancelling a finished future is harmless.
  client.cancel(after);
  EXPECT_THROW(after.result(60s), CancelledError);
  EXPECT_EQ(VALUE(client.submit(count_calls, name("cancel-other"), 1)), 2);
  // The cancelled pending call, submitted again (long after its cancel), now runs.
  auto resubmitted = client.submit(count_calls, name("cancel-pending"), 1);
  EXPECT_EQ(VALUE(resubmitted), 2);
  EXPECT_EQ(calls_of(name("cancel-pending")), 1);
}

TEST(FuturesCancel, RunningTaskAndItsDependents) {
  LocalCluster cluster({.n_workers = 1, .threads_per_worker = 2, .processes = true});
  Client client(cluster);
  auto running = client.submit(sleep_ms, 2000);
  auto dependent = client.submit(inc, running);
  auto grand = client.submit(inc, dependent);
  ASSERT_TRUE(eventually([&] { return client.scheduler_info().tasks["processing"] >= 1; }, 60s));
  auto start = Clock::now();
  client.cancel(running);
  EXPECT_THROW(running.result(60s), CancelledError);
  EXPECT_LT(Clock::now() - start, 1500ms) << "result() waited for the cancelled task to finish";
  ASSERT_TRUE(dependent.wait_for(60s));
  ASSERT_TRUE(grand.wait_for(60s));
  EXPECT_EQ(dependent.status(), FutureStatus::cancelled);
  EXPECT_EQ(grand.status(), FutureStatus::cancelled);
  EXPECT_THROW(grand.result(60s), CancelledError);
  auto e = dependent.exception();
  ASSERT_TRUE(e);
  EXPECT_THROW(std::rethrow_exception(e), CancelledError);
  running.cancel();  // twice: harmless

  // The cluster keeps working (on the other thread), and a finished future cancelled is
  // harmless too.
  auto ok = client.submit(inc, 41);
  EXPECT_EQ(VALUE(ok), 42);
  client.cancel(ok);
  EXPECT_EQ(VALUE(client.submit(inc, 42)), 43);

  // The cancelled call submitted again (same pure key) completes with its value.
  auto rerun = client.submit(sleep_ms, 2000);
  EXPECT_EQ(rerun.key(), running.key());
  EXPECT_EQ(VALUE(rerun), 2000);
  EXPECT_EQ(VALUE(client.submit(inc, rerun)), 2001);
}

// Regression test (was a bug): the scheduler's KeysCancelled reply to a cancel also cancels a new future for the same key submitted right after it.
TEST(FuturesCancel, SameCallSubmittedRightAfterCancelRuns) {
  const Names name;
  LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1, .processes = false});
  Client client(cluster);
  // A finished future, cancelled, then the same pure call at once: a fresh future that
  // must compute (the header: "unknown or finished keys are harmless").
  auto f = client.submit(inc, 41);
  ASSERT_EQ(f.result(60s), 42);
  client.cancel(f);
  auto g = client.submit(inc, 41);
  EXPECT_EQ(g.key(), f.key());
  EXPECT_EQ(VALUE(g), 42);

  // A pending future, cancelled, then submitted again at once: it runs once.
  auto blocker = client.submit(SubmitOptions{.pure = false}, sleep_ms, 300);
  auto p = client.submit(count_calls, name("resubmit-pending"), 1);
  p.cancel();
  auto p2 = client.submit(count_calls, name("resubmit-pending"), 1);
  EXPECT_EQ(VALUE(p2), 2);
  EXPECT_EQ(VALUE(blocker), 300);
  EXPECT_EQ(calls_of(name("resubmit-pending")), 1);
}

// --- 5. Pure keys --------------------------------------------------------------------------

TEST(FuturesKeys, PureImpureAndExplicitKeys) {
  const Names name;
  LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .processes = false});
  Client client(cluster);

  auto p1 = client.submit(count_calls, name("pure"), 5);
  auto p2 = client.submit(count_calls, name("pure"), 5);
  EXPECT_EQ(p1.key(), p2.key());
  EXPECT_EQ(p1.key().rfind("count_calls-", 0), 0u) << p1.key();
  EXPECT_EQ(p1.result(60s), 6);
  EXPECT_EQ(p2.result(60s), 6);
  auto p3 = client.submit(count_calls, name("pure"), 5);  // while p1 is held, after it finished
  EXPECT_EQ(p3.key(), p1.key());
  EXPECT_EQ(p3.result(60s), 6);
  EXPECT_EQ(calls_of(name("pure")), 1);
  // Other arguments, other key.
  EXPECT_NE(client.submit(count_calls, name("pure"), 6).key(), p1.key());
  EXPECT_NE(client.submit(inc, 5).key(), client.submit(inc, 6).key());
  EXPECT_EQ(client.submit(inc, 5).key(), client.submit(inc, 5).key());

  // pure = false: a new key, and a new run, each time.
  SubmitOptions impure{.pure = false};
  auto i1 = client.submit(impure, count_calls, name("impure"), 5);
  auto i2 = client.submit(impure, count_calls, name("impure"), 5);
  EXPECT_NE(i1.key(), i2.key());
  EXPECT_EQ(i1.result(60s), 6);
  EXPECT_EQ(i2.result(60s), 6);
  EXPECT_EQ(calls_of(name("impure")), 2);
  auto im = client.map(impure, inc, std::vector<int>{1, 1, 1});
  EXPECT_EQ(std::set<std::string>({im[0].key(), im[1].key(), im[2].key()}).size(), 3u);
  auto pm = client.map(inc, std::vector<int>{1, 1, 1});
  EXPECT_EQ(std::set<std::string>({pm[0].key(), pm[1].key(), pm[2].key()}).size(), 1u);
  EXPECT_EQ(client.gather(pm), (std::vector<int>{2, 2, 2}));

  // An explicit key is used as is, and a dependent can use it.
  auto named = client.submit(SubmitOptions{.key = "my-own-key"}, inc, 1);
  EXPECT_EQ(named.key(), "my-own-key");
  EXPECT_EQ(named.result(60s), 2);
  EXPECT_EQ(client.who_has(std::vector<Future<int>>{named}).count("my-own-key"), 1u);
  EXPECT_EQ(client.submit(inc, named).result(60s), 3);
  EXPECT_THROW(client.map(SubmitOptions{.key = "one-key"}, inc, std::vector<int>{1, 2}), std::invalid_argument);
}

// --- 6. Retries ------------------------------------------------------------------------------

TEST(FuturesRetries, EnoughRetriesSucceedTooFewFail) {
  const Names name;
  LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1, .processes = false});
  Client client(cluster);

  auto ok = client.submit(SubmitOptions{.retries = 2}, fail_times, name("retry-ok"), 2);
  EXPECT_EQ(ok.result(60s), 3);
  EXPECT_EQ(calls_of(name("retry-ok")), 3);

  auto short_of_one = client.submit(SubmitOptions{.retries = 1}, fail_times, name("retry-short"), 2);
  try {
    short_of_one.result(60s);
    FAIL() << "expected TaskError";
  } catch (const TaskError& e) {
    EXPECT_EQ(e.remote_type(), "std::runtime_error");
    EXPECT_EQ(e.remote_message(), "failure 2 of " + name("retry-short"));
  }
  EXPECT_EQ(calls_of(name("retry-short")), 2);

  auto none = client.submit(fail_times, name("retry-none"), 1);
  EXPECT_THROW(none.result(60s), TaskError);
  EXPECT_EQ(calls_of(name("retry-none")), 1);
  EXPECT_EQ(client.submit(inc, 1).result(60s), 2);
}

// --- 7. Restrictions and resources --------------------------------------------------------

TEST(FuturesRestrictions, WorkersByNameAndAddress) {
  LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .processes = true});
  Client client(cluster);
  auto w0 = address_of(client, "worker-0");
  auto w1 = address_of(client, "worker-1");
  auto pids = client.run(worker_pid, 0);
  ASSERT_EQ(pids.size(), 2u);
  ASSERT_EQ(pids.count(w0), 1u);
  ASSERT_EQ(pids.count(w1), 1u);
  EXPECT_NE(pids[w0], pids[w1]);
  EXPECT_NE(pids[w0], static_cast<int>(getpid()));

  std::vector<int> xs(20);
  std::iota(xs.begin(), xs.end(), 0);
  auto on1 = client.map(SubmitOptions{.workers = {"worker-1"}}, worker_pid, xs);
  for (int pid : client.gather(on1)) EXPECT_EQ(pid, pids[w1]);
  EXPECT_EQ(holders(client, on1), std::set<std::string>{w1});

  std::vector<int> ys(20);
  std::iota(ys.begin(), ys.end(), 100);
  auto on0 = client.map(SubmitOptions{.workers = {w0}}, worker_pid, ys);
  for (int pid : client.gather(on0)) EXPECT_EQ(pid, pids[w0]);
  EXPECT_EQ(holders(client, on0), std::set<std::string>{w0});

  // Unrestricted work may go anywhere, and still comes back right.
  std::vector<int> zs(200);
  std::iota(zs.begin(), zs.end(), 1000);
  for (int pid : client.gather(client.map(worker_pid, zs))) EXPECT_TRUE(pid == pids[w0] || pid == pids[w1]);
}

TEST(FuturesResources, OnlyTheWorkerWithTheResourceRunsTheTask) {
  auto scheduler = start_scheduler();
  auto gpu = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", "gpu", "--resources", "GPU=1"});
  auto cpu = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", "cpu"});
  Client client(scheduler.address);
  client.wait_for_workers(2, 30s);
  auto gpu_address = address_of(client, "gpu");
  auto cpu_address = address_of(client, "cpu");
  ASSERT_NE(gpu_address, cpu_address);

  std::vector<int> xs(30);
  std::iota(xs.begin(), xs.end(), 0);
  auto fs = client.map(SubmitOptions{.resources = {{"GPU", 1}}}, triple, xs);
  auto ys = client.gather(fs);
  for (std::size_t i = 0; i < xs.size(); ++i) EXPECT_EQ(ys[i], 3 * xs[i]);
  EXPECT_EQ(holders(client, fs), std::set<std::string>{gpu_address});

  // A fraction of the resource is enough too; a name restriction still works alongside.
  auto half = client.submit(SubmitOptions{.resources = {{"GPU", 0.5}}}, triple, 1000);
  EXPECT_EQ(half.result(60s), 3000);
  EXPECT_EQ(holders(client, std::vector<Future<int>>{half}), std::set<std::string>{gpu_address});
  std::vector<int> zs(10);
  std::iota(zs.begin(), zs.end(), 500);
  auto on_cpu = client.map(SubmitOptions{.workers = {"cpu"}}, triple, zs);
  EXPECT_EQ(client.gather(on_cpu)[0], 1500);
  EXPECT_EQ(holders(client, on_cpu), std::set<std::string>{cpu_address});
}

// --- 8. wait, as_completed, callbacks, exceptions, gather, graphs, run, info ------------

TEST(FuturesWaiting, WaitAsCompletedCallbacksAndExceptions) {
  LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .processes = true});
  Client client(cluster);

  std::vector<int> xs(20);
  std::iota(xs.begin(), xs.end(), 0);
  auto fs = client.map(inc, xs);
  auto all = distrib::wait(fs, 60s, ALL_COMPLETED);
  EXPECT_EQ(all.done.size(), 20u);
  EXPECT_TRUE(all.not_done.empty());
  for (const auto& f : fs) EXPECT_EQ(f.status(), FutureStatus::finished);
  EXPECT_TRUE(distrib::wait(std::vector<Future<int>>{}, 1s).done.empty());

  // FIRST_COMPLETED returns with the quick task while the slow one still runs elsewhere.
  auto slow = client.submit(SubmitOptions{.pure = false}, sleep_ms, 1500);
  auto quick = client.submit(inc, 1000);
  auto first = distrib::wait(std::vector<Future<int>>{slow, quick}, 60s, FIRST_COMPLETED);
  ASSERT_GE(first.done.size(), 1u);
  EXPECT_EQ(first.done.front().key(), quick.key());
  EXPECT_EQ(first.done.size() + first.not_done.size(), 2u);
  EXPECT_THROW(distrib::wait(std::vector<Future<int>>{slow}, 10ms), TimeoutError);

  // as_completed yields every future once, including ones added while iterating.
  std::set<std::string> seen;
  std::vector<int> values;
  auto ac = distrib::as_completed(fs);
  bool added = false;
  for (auto& f : ac) {
    EXPECT_TRUE(seen.insert(f.key()).second) << "yielded twice: " << f.key();
    values.push_back(f.result(60s));
    if (!added) {
      ac.add(client.submit(inc, 500));
      added = true;
    }
  }
  EXPECT_EQ(seen.size(), 21u);
  std::sort(values.begin(), values.end());
  EXPECT_EQ(values.back(), 501);
  EXPECT_EQ(values.front(), 1);

  // Callbacks: on a pending future (from the io thread) and on a done one (at once).
  std::promise<int> called;
  auto got = called.get_future();
  auto later = client.submit(inc, 700);
  later.add_done_callback([&called](const Future<int>& f) { called.set_value(static_cast<int>(f.status())); });
  ASSERT_EQ(got.wait_for(60s), std::future_status::ready);
  EXPECT_EQ(got.get(), static_cast<int>(FutureStatus::finished));
  bool at_once = false;
  later.add_done_callback([&at_once](const Future<int>&) { at_once = true; });
  EXPECT_TRUE(at_once);
  std::promise<int> erred_called;
  auto erred_got = erred_called.get_future();
  auto bad = client.submit(fail_with, std::string("callback boom"));
  bad.add_done_callback([&erred_called](const Future<int>& f) { erred_called.set_value(static_cast<int>(f.status())); });
  ASSERT_EQ(erred_got.wait_for(60s), std::future_status::ready);
  EXPECT_EQ(erred_got.get(), static_cast<int>(FutureStatus::error));

  // exception(): null on success, the TaskError otherwise.
  EXPECT_FALSE(later.exception());
  auto e = bad.exception();
  ASSERT_TRUE(e);
  try {
    std::rethrow_exception(e);
  } catch (const TaskError& err) {
    EXPECT_EQ(err.remote_message(), "callback boom");
    EXPECT_EQ(err.key(), bad.key());
  }
  EXPECT_EQ(slow.result(60s), 1500);
}

TEST(FuturesGraphs, ComputePersistGetRunAndInfo) {
  LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .processes = false});
  Client client(cluster);

  Graph g;
  auto a = g.add("g-a", inc, 1);             // 2
  auto b = g.add("g-b", inc, a);             // 3
  auto x = g.add("g-x", add, 1.5, 2.5);      // 4
  auto y = g.add("g-y", add, x, 10.0);       // 14
  auto z = g.add("g-z", add, x, y);          // 18
  auto unused = g.add("g-unused", fail_with, std::string("culled"));
  EXPECT_EQ(g.size(), 6u);
  EXPECT_TRUE(g.contains("g-z"));

  auto fb = client.compute(g, b);
  EXPECT_EQ(fb.key(), "g-b");
  EXPECT_EQ(fb.result(60s), 3);
  auto fzy = client.compute(g, std::vector<Delayed<double>>{z, y});
  ASSERT_EQ(fzy.size(), 2u);
  EXPECT_DOUBLE_EQ(fzy[0].result(60s), 18.0);
  EXPECT_DOUBLE_EQ(fzy[1].result(60s), 14.0);
  EXPECT_DOUBLE_EQ(client.get(g, z), 18.0);
  EXPECT_EQ(client.get(g, a), 2);

  // A graph can use futures computed before.
  Graph h;
  auto h1 = h.add("h-1", add, fzy[0], 0.5);
  auto h2 = h.add("h-2", sum_vector, std::vector<Future<double>>{fzy[0], fzy[1]});
  auto h3 = h.add("h-3", add, h1, h2);
  EXPECT_DOUBLE_EQ(client.get(h, h3), 18.5 + 32.0);

  {
    Graph p;
    auto p1 = p.add("p-1", inc, 10);
    auto p2 = p.add("p-2", inc, p1);
    auto pe = p.add("p-err", fail_with, std::string("persisted boom"));
    auto persisted = client.persist(p);
    EXPECT_EQ(persisted.size(), 3u);
    EXPECT_EQ(persisted[p1].result(60s), 11);
    EXPECT_EQ(persisted[p2].result(60s), 12);
    EXPECT_THROW(persisted[pe].result(60s), TaskError);
    EXPECT_THROW(persisted[unused], std::out_of_range);
    // Everything persisted stays on the cluster.
    auto where = client.who_has(std::vector<Future<int>>{persisted[p1], persisted[p2]});
    EXPECT_EQ(where["p-1"].size(), 1u);
    EXPECT_EQ(where["p-2"].size(), 1u);
  }

  // run: on every worker, outside the scheduler.
  auto threads = client.nthreads();
  ASSERT_EQ(threads.size(), 2u);
  for (const auto& [address, n] : threads) EXPECT_EQ(n, 1u) << address;
  auto ran = client.run(inc, 41);
  ASSERT_EQ(ran.size(), 2u);
  for (const auto& [address, v] : ran) {
    EXPECT_EQ(v, 42);
    EXPECT_EQ(threads.count(address), 1u) << address;
  }
  EXPECT_THROW(client.run(fail_with, std::string("run boom")), TaskError);

  // scheduler_info: the workers by name, and the keys held in memory.
  std::vector<int> ks(30);
  std::iota(ks.begin(), ks.end(), 5000);
  auto held = client.map(inc, ks);
  client.gather(held);
  auto info = client.scheduler_info();
  EXPECT_EQ(info.address, client.scheduler_address());
  ASSERT_EQ(info.workers.size(), 2u);
  std::set<std::string> names;
  for (const auto& w : info.workers) {
    names.insert(w.name);
    EXPECT_EQ(w.nthreads, 1u);
    EXPECT_EQ(threads.count(w.address), 1u) << w.address;
  }
  EXPECT_EQ(names, (std::set<std::string>{"worker-0", "worker-1"}));
  EXPECT_GE(info.tasks["memory"], 30u);
  EXPECT_TRUE(eventually([&] {
    auto now = client.scheduler_info();
    std::size_t stored = 0;
    std::uint64_t bytes = 0;
    for (const auto& w : now.workers) {
      stored += w.stored;
      bytes += w.stored_bytes;
    }
    return stored >= 30 && bytes >= 30 * sizeof(int);
  }, 60s));
  auto has = client.has_what();
  std::size_t held_keys = 0;
  std::set<std::string> wanted;
  for (const auto& f : held) wanted.insert(f.key());
  for (const auto& [address, keys] : has)
    for (const auto& k : keys) held_keys += wanted.count(k);
  EXPECT_EQ(held_keys, 30u);
}

TEST(FuturesGather, ErrorsRaiseOrSkip) {
  LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .processes = false});
  Client client(cluster);
  std::vector<Future<int>> fs{client.submit(inc, 1), client.submit(fail_with, std::string("remote boom")),
                              client.submit(inc, 2)};
  try {
    client.gather(fs);
    FAIL() << "expected TaskError";
  } catch (const TaskError& e) {
    EXPECT_EQ(e.remote_message(), "remote boom");
    EXPECT_EQ(e.key(), fs[1].key());
  }
  EXPECT_EQ(client.gather(fs, Errors::skip), (std::vector<int>{2, 3}));
  // A cancelled one is skipped too.
  auto c = client.submit(SubmitOptions{.pure = false}, inc, 3);
  c.cancel();
  fs.push_back(c);
  EXPECT_EQ(client.gather(fs, Errors::skip), (std::vector<int>{2, 3}));
  EXPECT_THROW(client.gather(std::vector<Future<int>>{c}), CancelledError);
  // Dependents of the failed task fail with its error.
  auto dependent = client.submit(inc, fs[1]);
  try {
    dependent.result(60s);
    FAIL() << "expected TaskError";
  } catch (const TaskError& e) {
    EXPECT_EQ(e.remote_message(), "remote boom");
  }
  EXPECT_EQ(client.gather(fs[0]), 2);
}

// --- 9. Bad input --------------------------------------------------------------------------

TEST(FuturesBadInput, ForeignAndEmptyFuturesGraphsAndScatterTargets) {
  const Names name;
  LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .processes = false});
  Client client(cluster);
  Client other(cluster);

  // A future of another client cannot be an argument: nothing is sent.
  auto foreign = other.submit(inc, 1);
  ASSERT_EQ(foreign.result(60s), 2);
  auto own = client.submit(inc, 2);
  EXPECT_THROW(client.submit(count_calls, name("foreign-arg"), foreign), std::invalid_argument);
  EXPECT_THROW(client.map(inc, std::vector<Future<int>>{own, foreign}), std::invalid_argument);
  auto own_d = client.submit(add, 1.0, 1.0);
  auto foreign_d = other.submit(add, 2.0, 2.0);
  EXPECT_THROW(client.submit(sum_vector, std::vector<Future<double>>{own_d, foreign_d}), std::invalid_argument);
  EXPECT_THROW(client.cancel(foreign), std::invalid_argument);
  Graph fg;
  fg.add("uses-foreign", add, foreign_d, 1.0);
  EXPECT_THROW(client.compute(fg, Delayed<double>{"uses-foreign"}), std::invalid_argument);
  // The later task has run on the only path the rejected one could have taken.
  auto later = client.submit(count_calls, name("foreign-later"), 1);
  EXPECT_EQ(later.result(60s), 2);
  EXPECT_EQ(calls_of(name("foreign-arg")), 0);
  EXPECT_EQ(foreign.result(60s), 2);  // the other client's future is untouched
  EXPECT_DOUBLE_EQ(foreign_d.result(60s), 4.0);

  // An empty future.
  Future<int> empty;
  EXPECT_FALSE(empty.valid());
  EXPECT_THROW(client.submit(inc, empty), std::invalid_argument);
  EXPECT_THROW(client.submit(sum_vector, std::vector<Future<double>>{own_d, Future<double>{}}), std::invalid_argument);
  EXPECT_THROW(empty.result(1s), std::logic_error);
  EXPECT_THROW(client.gather(std::vector<Future<int>>{own, empty}), std::invalid_argument);

  // Graphs: a Delayed of another graph, a duplicate key, a target not in the graph.
  Graph g1;
  auto only_in_g1 = g1.add("only-in-g1", inc, 1);
  Graph g2;
  EXPECT_THROW(g2.add("uses-g1", inc, only_in_g1), std::invalid_argument);
  EXPECT_EQ(g2.size(), 0u);
  EXPECT_FALSE(g2.contains("uses-g1"));
  EXPECT_THROW(g1.add("only-in-g1", inc, 2), std::invalid_argument);
  EXPECT_THROW(client.compute(g2, only_in_g1), std::invalid_argument);
  EXPECT_EQ(client.get(g1, only_in_g1), 2);

  // Scatter to a worker that does not exist.
  EXPECT_THROW(client.scatter(5, ScatterOptions{.workers = {"no-such-worker"}}), std::invalid_argument);
  EXPECT_THROW(client.scatter_each(std::vector<int>{1, 2}, ScatterOptions{.workers = {"tcp://127.0.0.1:1"}}),
               std::invalid_argument);

  // A resource amount must be positive.
  EXPECT_THROW(client.submit(SubmitOptions{.resources = {{"GPU", 0}}}, inc, 1), std::invalid_argument);
  EXPECT_THROW(client.submit(SubmitOptions{.resources = {{"GPU", -1}}}, inc, 1), std::invalid_argument);

  // The cluster is fine afterwards, for both clients.
  EXPECT_EQ(client.submit(inc, 100).result(60s), 101);
  EXPECT_EQ(other.submit(inc, 100).result(60s), 101);
}

}  // namespace
}  // namespace distrib::test
