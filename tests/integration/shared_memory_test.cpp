// Same-host transfers through shared memory (core/shared_memory.hpp, comm/same_host.hpp),
// with real processes: worker to worker, gather and scatter go through shared memory (the
// workers' counters and the client's say so) and bring the right bytes; a scattered array
// written afterwards leaves the worker's copy alone; once every future is released, no
// process holds a buffer for a peer or a mapping of one; with shared memory off on the
// workers, or a worker that cannot map what it is given, the same transfers go through the
// socket and are just as right.
#include <gtest/gtest.h>

#include <distrib/distrib.hpp>

#include "core/shared_memory.hpp"
#include "helpers.hpp"
#include "shared_memory_tasks.hpp"

namespace distrib::test {
namespace {

constexpr std::int64_t kValues = 2'000'000;  // 16 MB: a pooled, shareable buffer
constexpr std::uint64_t kBytes = kValues * 8;

const WorkerDescription* find_worker(const SchedulerInfo& info, const std::string& name) {
  for (const auto& w : info.workers)
    if (w.name == name) return &w;
  return nullptr;
}

// True when no worker (by Client::run) and not this process holds a buffer for a peer or a
// mapping of a peer's.
bool nothing_shared_left(Client& client) {
  for (const auto& [address, state] : client.run(shared_memory_state, 0)) {
    const auto& s = state;
    if (s[0] != 0 || s[1] != 0) return false;
  }
  detail::trim_pooled_buffers();
  auto here = detail::shm::stats();
  return here.exported_bytes == 0 && here.mapped_bytes == 0;
}

class SharedMemoryTransfers : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!detail::shm::enabled()) GTEST_SKIP() << "shared memory is off here (DISTRIB_SHARED_MEMORY or no memfd)";
  }
};

TEST_F(SharedMemoryTransfers, WorkerToWorkerGatherAndScatterMapTheSamePagesAndReleaseThem) {
  LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .dashboard_address = "none"});
  Client client(cluster);
  const double sum1 = block_sum(make_block(kValues, 1.0)), sum2 = block_sum(make_block(kValues, 2.0));
  const auto before = detail::shm::stats();
  {
    // Worker to worker: made on worker-1, summed on worker-0.
    auto src = client.submit({.pure = false, .workers = {"worker-1"}}, make_block, kValues, 1.0);
    EXPECT_EQ(client.submit({.pure = false, .workers = {"worker-0"}}, block_sum, src).result(), sum1);

    // Gather: the client maps worker-1's buffer.
    auto got = src.result();
    EXPECT_TRUE(got.equals(make_block(kValues, 1.0)));
    EXPECT_GE(detail::shm::stats().bytes_mapped - before.bytes_mapped, kBytes);

    // Scatter: the worker maps the client's array; a write to it afterwards stays here.
    auto local = make_block(kValues, 2.0);
    auto f = client.scatter(local, {.hash = false});
    EXPECT_GE(detail::shm::stats().bytes_described - before.bytes_described, kBytes);
    local.values<double>()[0] += 1e6;
    EXPECT_EQ(client.submit({.pure = false}, block_sum, f).result(), sum2);
    // A std::vector goes the same way (its encoded bytes).
    auto vf = client.scatter(make_values(kValues, 1.0), {.hash = false});
    EXPECT_EQ(client.submit({.pure = false}, values_sum, vf).result(), sum1);
    EXPECT_EQ(values_sum(vf.result()), sum1);

    // The workers' heartbeats count what went through shared memory.
    ASSERT_TRUE(eventually([&] {
      auto info = client.scheduler_info();
      auto* w0 = find_worker(info, "worker-0");
      auto* w1 = find_worker(info, "worker-1");
      return w0 && w1 && w0->shared_bytes_in >= kBytes && w1->shared_bytes_out >= 2 * kBytes &&
             w0->shared_bytes_in + w1->shared_bytes_in >= 3 * kBytes;
    }));
  }
  // Every future and value is gone: the holders' buffers come back to their pools and
  // every mapping is unmapped, in the workers and here.
  EXPECT_TRUE(eventually([&] { return nothing_shared_left(client); }));
}

// Workers as threads of this process: their data ports still talk over loopback TCP, and a
// value moves as a second mapping of the same memfd.
TEST_F(SharedMemoryTransfers, WorkersInThisProcessMapEachOthersBuffersToo) {
  LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .processes = false, .dashboard_address = "none"});
  Client client(cluster);
  const double sum1 = block_sum(make_block(kValues, 1.0));
  const auto before = detail::shm::stats();
  {
    auto src = client.submit({.pure = false, .workers = {"worker-1"}}, make_block, kValues, 1.0);
    EXPECT_EQ(client.submit({.pure = false, .workers = {"worker-0"}}, block_sum, src).result(), sum1);
    EXPECT_TRUE(src.result().equals(make_block(kValues, 1.0)));
    auto local = make_block(kValues, 1.0);
    auto f = client.scatter(local, {.hash = false});
    local.values<double>()[7] = -1;
    EXPECT_EQ(client.submit({.pure = false}, block_sum, f).result(), sum1);
    EXPECT_GE(detail::shm::stats().bytes_mapped - before.bytes_mapped, 3 * kBytes);
  }
  EXPECT_TRUE(eventually([&] {
    detail::trim_pooled_buffers();
    auto s = detail::shm::stats();
    return s.exported_bytes == before.exported_bytes && s.mapped_bytes == before.mapped_bytes;
  }));
}

TEST_F(SharedMemoryTransfers, WithSharedMemoryOffOnTheWorkersTheSocketCarriesEverything) {
  LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .dashboard_address = "none", .shared_memory = false});
  Client client(cluster);
  const double sum1 = block_sum(make_block(kValues, 1.0));
  const auto before = detail::shm::stats();
  auto src = client.submit({.pure = false, .workers = {"worker-1"}}, make_block, kValues, 1.0);
  EXPECT_EQ(client.submit({.pure = false, .workers = {"worker-0"}}, block_sum, src).result(), sum1);
  EXPECT_TRUE(src.result().equals(make_block(kValues, 1.0)));
  auto f = client.scatter(make_block(kValues, 1.0), {.hash = false});
  EXPECT_EQ(client.submit({.pure = false}, block_sum, f).result(), sum1);
  auto after = detail::shm::stats();
  EXPECT_EQ(after.bytes_mapped, before.bytes_mapped);
  EXPECT_EQ(after.bytes_described, before.bytes_described);
  for (const auto& [address, state] : client.run(shared_memory_state, 0)) {
    const auto& s = state;
    EXPECT_EQ(s[2] + s[3], 0u) << address;  // nothing described or mapped there
  }
}

// A worker that refuses every mapping (DISTRIB_SHARED_MEMORY_TEST_REFUSE, a test aid): its
// fetches and the scatters to it fall back to the socket, and it says why once.
TEST_F(SharedMemoryTransfers, AMappingThatFailsFallsBackToTheSocket) {
  auto scheduler = start_scheduler();
  auto refusing = spawn_watched({"/usr/bin/env", "DISTRIB_SHARED_MEMORY_TEST_REFUSE=1", DWORKER_PATH, scheduler.address,
                                 "--host", "127.0.0.1", "--nthreads", "1", "--name", "refusing", "--preload",
                                 TEST_TASKS_PATH, "--log-level", "warn"});
  auto plain = start_worker(scheduler.address, {"--name", "plain", "--preload", TEST_TASKS_PATH});
  Client client(scheduler.address);
  client.wait_for_workers(2, 30s);
  const double sum1 = block_sum(make_block(kValues, 1.0));

  // Fetch: the refusing worker is told to map the plain one's buffer, cannot, and asks again.
  auto src = client.submit({.pure = false, .workers = {"plain"}}, make_block, kValues, 1.0);
  EXPECT_EQ(client.submit({.pure = false, .workers = {"refusing"}}, block_sum, src).result(), sum1);
  EXPECT_NE(refusing.wait_for("values go through the socket instead"), std::string::npos) << refusing.output;
  // And again, now without trying.
  auto src2 = client.submit({.pure = false, .workers = {"plain"}}, make_block, kValues, 1.0);
  EXPECT_EQ(client.submit({.pure = false, .workers = {"refusing"}}, block_sum, src2).result(), sum1);

  // Scatter to it: answered putDataUnmapped, sent again as frames.
  auto f = client.scatter(make_block(kValues, 1.0), {.workers = {"refusing"}, .hash = false});
  EXPECT_EQ(client.submit({.pure = false, .workers = {"refusing"}}, block_sum, f).result(), sum1);
  EXPECT_TRUE(f.result().equals(make_block(kValues, 1.0)));  // gathered from it

  auto info = client.scheduler_info();
  auto* w = find_worker(info, "refusing");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->shared_bytes_in, 0u);
}

}  // namespace
}  // namespace distrib::test
