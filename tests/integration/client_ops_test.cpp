// More of Dask's Client against real dscheduler / dworker processes: map over zipped
// ranges and constants, as_completed's batches, results and timeout, continuations
// (then, when_all, when_any), fire_and_forget, retry, run on some workers and on the
// scheduler, nbytes, replicate and rebalance. The workers preload libdistrib_test_tasks.
#include <gtest/gtest.h>

#include <atomic>
#include <distrib/distrib.hpp>
#include <filesystem>
#include <list>
#include <set>
#include <thread>

#include "helpers.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

struct Cluster {
  Daemon scheduler;
  std::vector<Daemon> workers;
};

Cluster start_cluster(std::size_t n_workers, const std::vector<std::string>& scheduler_args = {}) {
  Cluster c{start_scheduler(scheduler_args), {}};
  for (std::size_t i = 0; i < n_workers; ++i)
    c.workers.push_back(start_worker(c.scheduler.address, {"--preload", TEST_TASKS_PATH, "--name", "w" + std::to_string(i)}));
  return c;
}

std::string address_of(Client& client, const std::string& name) {
  for (const auto& w : client.scheduler_info().workers)
    if (w.name == name) return w.address;
  ADD_FAILURE() << "no worker named " << name;
  return {};
}

template <class T>
std::vector<T> values(Client& client, const std::vector<Future<T>>& fs) {
  return client.gather(fs);
}

TEST(ClientOps, MapZipsRangesStopsAtTheShortestAndTakesConstants) {
  auto cluster = start_cluster(2);
  Client client(cluster.scheduler.address);
  std::vector<int> xs{1, 2, 3};
  std::list<int> ys{10, 20};  // any input range; the shorter one ends the map, as Dask's zip
  auto zipped = client.map(add_ints, xs, ys);
  ASSERT_EQ(zipped.size(), 2u);
  EXPECT_EQ(values(client, zipped), (std::vector<int>{11, 22}));

  auto with_constant = client.map(add_ints, xs, distrib::constant(100));
  EXPECT_EQ(values(client, with_constant), (std::vector<int>{101, 102, 103}));

  // A future as the constant: every task depends on it.
  auto six = client.submit(triple, 2);
  auto on_future = client.map(add_ints, distrib::constant(six), xs);
  EXPECT_EQ(values(client, on_future), (std::vector<int>{7, 8, 9}));

  // A range of futures, zipped with plain values, and options for every task.
  auto from_futures = client.map({.pure = false}, add_ints, with_constant, std::views::iota(0, 3));
  EXPECT_EQ(values(client, from_futures), (std::vector<int>{101, 103, 105}));
  EXPECT_TRUE(client.map(add_ints, xs, std::vector<int>{}).empty());
  EXPECT_THROW(client.map({.key = "one"}, add_ints, xs, ys), std::invalid_argument);
}

TEST(ClientOps, AsCompletedBatchesResultsAndTimeout) {
  auto cluster = start_cluster(2);
  Client client(cluster.scheduler.address);
  auto fs = client.map(slow_triple, std::vector<int>{1, 2, 3, 4}, distrib::constant(50));
  std::size_t seen = 0;
  auto ac = distrib::as_completed(fs);
  for (auto& batch : ac.batches()) {
    EXPECT_FALSE(batch.empty());
    for (auto& f : batch) EXPECT_TRUE(f.done());
    seen += batch.size();
  }
  EXPECT_EQ(seen, 4u);
  EXPECT_TRUE(ac.is_empty());

  std::set<int> got;
  for (auto& [f, value] : distrib::as_completed(fs).with_results()) {
    EXPECT_EQ(value, f.result());
    got.insert(value);
  }
  EXPECT_EQ(got, (std::set<int>{3, 6, 9, 12}));
  std::size_t in_batches = 0;
  for (auto& batch : distrib::as_completed(fs).with_results().batches()) in_batches += batch.size();
  EXPECT_EQ(in_batches, 4u);

  // with_results raises a failed future's error, as Dask's raise_errors=True.
  auto failing = client.map(fail_if, std::vector<bool>{true});
  auto failing_ac = distrib::as_completed(failing);
  EXPECT_THROW(for (auto& pair : failing_ac.with_results()) (void)pair, TaskError);

  // A timeout counted from as_completed's call: next() raises once it has passed.
  TempDir dir;
  auto never = client.submit(wait_for_file, (dir.path() / "gate").string(), 60'000);
  auto timed = distrib::as_completed(std::vector{never}, std::chrono::milliseconds(300));
  const auto started = std::chrono::steady_clock::now();
  EXPECT_THROW(timed.next(), TimeoutError);
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(250));
  EXPECT_EQ(timed.count(), 1u);
  never.cancel();
}

TEST(ClientOps, ContinuationsRunOffTheCallerAndPropagateErrors) {
  auto cluster = start_cluster(2);
  Client client(cluster.scheduler.address);
  const auto caller = std::this_thread::get_id();
  std::atomic<bool> on_caller{false};
  // A large result: the value is fetched on the continuation thread (it would wait on
  // itself on the I/O thread).
  auto big = client.submit(filled_bytes, 200'000);
  Continuation<std::size_t> size = big.then([&](std::vector<std::uint8_t> v) {
    on_caller = std::this_thread::get_id() == caller;
    return v.size();
  });
  auto text = size.then([](std::size_t n) { return std::to_string(n); });
  EXPECT_EQ(text.get(std::chrono::seconds(60)), "200000");
  EXPECT_FALSE(on_caller.load());

  // The task erred: fn is skipped and the continuation fails with the task's error.
  std::atomic<bool> ran{false};
  auto erred = client.submit(fail_if, true).then([&](int) {
    ran = true;
    return 0;
  });
  EXPECT_THROW(erred.get(std::chrono::seconds(60)), TaskError);
  EXPECT_FALSE(ran.load());
  // fn throws: the continuation fails with what it threw, and so does the next one.
  auto thrown = client.submit(triple, 1).then([](int) -> int { throw std::out_of_range("from fn"); });
  auto after = thrown.then([](int v) { return v; });
  EXPECT_THROW(after.get(std::chrono::seconds(60)), std::out_of_range);
  // HPX style: fn takes the future and sees its error itself.
  auto handled = client.submit(fail_if, true).then([](const Future<int>& f) { return f.status() == FutureStatus::error; });
  EXPECT_TRUE(handled.get(std::chrono::seconds(60)));
  // Cancelled: CancelledError.
  TempDir dir;
  auto gate = client.submit(wait_for_file, (dir.path() / "gate").string(), 60'000);
  auto cancelled = gate.then([](int v) { return v; });
  EXPECT_FALSE(cancelled.wait_for(std::chrono::milliseconds(100)));
  gate.cancel();
  EXPECT_THROW(cancelled.get(std::chrono::seconds(60)), CancelledError);

  // when_all: ready once every input is done, errors included; when_any: the first done.
  auto fs = client.map(slow_triple, std::vector<int>{1, 2}, distrib::constant(20));
  auto all = distrib::when_all(fs).then([](std::vector<Future<int>> done) {
    int sum = 0;
    for (auto& f : done) sum += f.result();
    return sum;
  });
  EXPECT_EQ(all.get(std::chrono::seconds(60)), 9);
  auto failed = client.submit(fail_if, true);
  auto mixed = distrib::when_all(client.submit(triple, 5), failed, text).get(std::chrono::seconds(60));
  EXPECT_EQ(std::get<0>(mixed).result(), 15);
  EXPECT_EQ(std::get<1>(mixed).status(), FutureStatus::error);
  EXPECT_EQ(std::get<2>(mixed).get(), "200000");

  auto slow = client.submit(wait_for_file, (dir.path() / "other-gate").string(), 60'000);
  auto fast = client.submit(triple, 7);
  auto any = distrib::when_any(std::vector{slow, fast}).get(std::chrono::seconds(60));
  EXPECT_EQ(any.index, 1u);
  EXPECT_EQ(any.futures[1].result(), 21);
  auto any2 = distrib::when_any(slow, size).get(std::chrono::seconds(60));
  EXPECT_EQ(any2.index, 1u);
  EXPECT_THROW(distrib::when_any(std::vector<Future<int>>{}), std::invalid_argument);
  slow.cancel();
}

TEST(ClientOps, FireAndForgetRunsAfterTheClientLeaves) {
  auto cluster = start_cluster(1);
  TempDir dir;
  const auto path = (dir.path() / "written").string();
  {
    Client client(cluster.scheduler.address);
    auto f = client.submit({.pure = false}, write_file_after, path, 3000);
    client.fire_and_forget(f);
    // The future goes, then the client: without fire_and_forget the task would be freed.
  }
  EXPECT_FALSE(std::filesystem::exists(path)) << "the task should still be sleeping";
  EXPECT_TRUE(eventually([&] { return std::filesystem::exists(path); }, std::chrono::seconds(60)));
  // Done: the scheduler let go of it too.
  Client other(cluster.scheduler.address);
  EXPECT_TRUE(eventually(
      [&] {
        std::size_t n = 0;
        for (const auto& [state, count] : other.scheduler_info().tasks) n += count;
        return n == 0;
      },
      std::chrono::seconds(30)));
}

TEST(ClientOps, RetryComputesErredTasksAgain) {
  auto cluster = start_cluster(1);
  Client client(cluster.scheduler.address);
  TempDir dir;
  auto f = client.submit(fail_once, (dir.path() / "first").string());
  EXPECT_THROW(f.result(std::chrono::seconds(60)), TaskError);
  f.retry();
  EXPECT_EQ(f.result(std::chrono::seconds(60)), 1);

  // Retrying a dependent retries its erred input too.
  auto input = client.submit(fail_once, (dir.path() / "second").string());
  auto dependent = client.submit(triple, input);
  EXPECT_THROW(dependent.result(std::chrono::seconds(60)), TaskError);
  ASSERT_EQ(input.status(), FutureStatus::error);
  client.retry(std::vector{dependent});
  EXPECT_EQ(dependent.result(std::chrono::seconds(60)), 3);
  EXPECT_EQ(input.result(std::chrono::seconds(60)), 1);
  // A task that did not err is left alone.
  auto fine = client.submit(triple, 4);
  EXPECT_EQ(fine.result(std::chrono::seconds(60)), 12);
  fine.retry();
  EXPECT_EQ(fine.status(), FutureStatus::finished);

  // Misuse is an error at the call, before anything is sent.
  Client other(cluster.scheduler.address);
  auto theirs = other.submit(triple, 5);
  EXPECT_THROW(client.retry(std::vector{theirs}), std::invalid_argument);
  EXPECT_THROW(client.fire_and_forget(theirs), std::invalid_argument);
  EXPECT_THROW(client.nbytes(std::vector{theirs}), std::invalid_argument);
  EXPECT_THROW(client.fire_and_forget(Future<int>{}), std::invalid_argument);
  EXPECT_THROW(Future<int>{}.then([](int v) { return v; }), std::logic_error);
  EXPECT_THROW(Continuation<int>{}.get(), std::logic_error);
}

TEST(ClientOps, RunOnSomeWorkersAndOnTheScheduler) {
  auto cluster = start_cluster(2, {"--preload", TEST_TASKS_PATH});
  Client client(cluster.scheduler.address);
  client.wait_for_workers(2);
  auto on_one = client.run({.workers = {"w1"}}, process_id, 0);
  ASSERT_EQ(on_one.size(), 1u);
  EXPECT_EQ(on_one.begin()->first, address_of(client, "w1"));
  EXPECT_EQ(client.run(process_id, 0).size(), 2u);
  EXPECT_THROW(client.run({.workers = {"w1", "nobody"}}, process_id, 0), std::invalid_argument);

  EXPECT_EQ(client.run_on_scheduler(process_id, 0), cluster.scheduler.process.pid());
  EXPECT_EQ(client.run_on_scheduler(shout, std::string("hi")), "HI!");
  try {
    client.run_on_scheduler(fail_if, true);
    ADD_FAILURE() << "fail_if(true) should raise";
  } catch (const TaskError& e) {
    EXPECT_NE(std::string(e.what()).find("asked to fail"), std::string::npos) << e.what();
  }
  // A scheduler that did not load the library does not have the function.
  auto bare = start_scheduler();
  Client to_bare(bare.address);
  try {
    to_bare.run_on_scheduler(process_id, 0);
    ADD_FAILURE() << "the scheduler has no process_id";
  } catch (const TaskError& e) {
    EXPECT_EQ(e.remote_type(), "distrib::UnknownFunction");
  }
}

TEST(ClientOps, NbytesReplicateAndRebalance) {
  auto cluster = start_cluster(3);
  Client client(cluster.scheduler.address);
  client.wait_for_workers(3);
  // Six values of 100 kB, all on w0.
  auto fs = client.map({.pure = false, .workers = {"w0"}}, filled_bytes, std::vector<int>(6, 100'000));
  distrib::wait(fs, std::chrono::milliseconds(60'000));
  auto sizes = client.nbytes(fs);
  ASSERT_EQ(sizes.size(), 6u);
  for (const auto& [key, n] : sizes) {
    EXPECT_GE(n, 100'000u) << key;
    EXPECT_LT(n, 100'100u) << key;
  }
  auto copies = [&] {
    std::map<std::string, std::size_t> out;
    for (const auto& [key, holders] : client.who_has(fs)) out[key] = holders.size();
    return out;
  };
  client.replicate(std::vector{fs[0], fs[1]}, 2);
  EXPECT_EQ(copies()[fs[0].key()], 2u);
  EXPECT_EQ(copies()[fs[1].key()], 2u);
  EXPECT_EQ(copies()[fs[2].key()], 1u);
  client.replicate(std::vector{fs[0]});  // every worker
  EXPECT_EQ(copies()[fs[0].key()], 3u);
  client.replicate(std::vector{fs[0], fs[1]}, 1);  // the surplus copies go
  EXPECT_TRUE(eventually([&] { return copies()[fs[0].key()] == 1 && copies()[fs[1].key()] == 1; }));
  EXPECT_THROW(client.replicate(fs, 4), std::invalid_argument);

  // Rebalance: from 600 kB on w0 and none elsewhere to two values on each worker.
  client.rebalance();
  auto per_worker = [&] {
    std::map<std::string, std::size_t> out;
    for (const auto& [address, keys] : client.has_what()) out[address] = keys.size();
    return out;
  };
  EXPECT_TRUE(eventually([&] {
    auto held = per_worker();
    return held.size() == 3 && std::all_of(held.begin(), held.end(), [](auto& kv) { return kv.second == 2; });
  })) << "keys per worker after rebalance: " << per_worker().size();
  for (const auto& [key, n] : copies()) EXPECT_EQ(n, 1u) << key;
  for (const auto& v : client.gather(fs)) EXPECT_EQ(v, std::vector<std::uint8_t>(100'000, 7));
}

}  // namespace
}  // namespace distrib::test
