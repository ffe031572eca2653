// Keys are released on the cluster when nobody wants them: futures dropped, a client that
// disconnects mid-computation. Scheduler and worker run in this process so that their
// state can be inspected (on their own io threads).
#include <gtest/gtest.h>

#include <distrib/distrib.hpp>
#include <future>

#include "cluster/local_cluster_impl.hpp"
#include "helpers.hpp"
#include "tasks_for_tests.hpp"

namespace distrib::test {
namespace {

class Release : public ::testing::Test {
 protected:
  void SetUp() override {
    detail::SchedulerOptions so;
    so.port = 0;
    scheduler_.server = std::make_unique<detail::SchedulerServer>(scheduler_.io, so);
    scheduler_.server->start();
    scheduler_.run();
    detail::WorkerOptions wo;
    wo.scheduler_address = scheduler_.server->address();
    wo.nthreads = 2;
    worker_.server = std::make_unique<detail::WorkerServer>(worker_.io, wo);
    auto registered = std::make_shared<std::promise<void>>();
    auto ready = registered->get_future();
    worker_.server->on_registered = [registered] { registered->set_value(); };
    asio::post(worker_.io, [this] { worker_.server->start(); });
    worker_.run();
    ASSERT_EQ(ready.wait_for(30s), std::future_status::ready);
  }
  void TearDown() override {
    worker_.stop([](detail::WorkerServer& s) { s.stop("test over"); });
    scheduler_.stop([](detail::SchedulerServer& s) { s.stop(); });
  }
  // Reads scheduler / worker state on their own threads.
  std::size_t scheduler_tasks() {
    std::promise<std::size_t> p;
    asio::post(scheduler_.io, [&] { p.set_value(scheduler_.server->state().n_tasks()); });
    return p.get_future().get();
  }
  std::size_t worker_stored() {
    std::promise<std::size_t> p;
    asio::post(worker_.io, [&] { p.set_value(worker_.server->n_stored()); });
    return p.get_future().get();
  }
  std::uint64_t worker_bytes() {
    std::promise<std::uint64_t> p;
    asio::post(worker_.io, [&] { p.set_value(worker_.server->stored_bytes()); });
    return p.get_future().get();
  }
  InProcessNode<detail::SchedulerServer> scheduler_;
  InProcessNode<detail::WorkerServer> worker_;
};

TEST_F(Release, DroppingTheLastFutureFreesWorkerMemory) {
  Client client(scheduler_.server->address());
  {
    auto v = client.submit(make_vector, 1'000'000);
    auto copy = v;  // copies share one key
    ASSERT_EQ(v.result(60s).size(), 1'000'000u);
    EXPECT_GE(worker_bytes(), 8'000'000u);
    EXPECT_EQ(scheduler_tasks(), 1u);
  }
  EXPECT_TRUE(eventually([&] { return scheduler_tasks() == 0; }));
  EXPECT_TRUE(eventually([&] { return worker_stored() == 0 && worker_bytes() == 0; }));
}

TEST_F(Release, IntermediateResultsAreFreedOnceTheirDependentsAreDone) {
  Client client(scheduler_.server->address());
  {
    auto total = client.submit(sum_vector, client.submit(make_vector, 1000));
    EXPECT_DOUBLE_EQ(total.result(60s), 999.0 * 1000 / 2);
    // Only `total` (one double) stays in worker memory; the scheduler keeps the released
    // input's definition while `total` exists, to recompute it if `total` is lost.
    EXPECT_TRUE(eventually([&] { return worker_stored() == 1 && worker_bytes() == sizeof(double); }))
        << worker_stored() << " keys, " << worker_bytes() << " bytes";
    EXPECT_EQ(scheduler_tasks(), 2u);
  }
  EXPECT_TRUE(eventually([&] { return scheduler_tasks() == 0 && worker_stored() == 0; }));
}

TEST_F(Release, ClientDisconnectingMidComputationReleasesItsKeys) {
  {
    Client leaving(scheduler_.server->address());
    std::vector<int> ms(200, 1);
    auto fs = leaving.map(sleep_ms, ms);
    EXPECT_EQ(fs.front().result(60s), 1);
    leaving.close();
  }
  EXPECT_TRUE(eventually([&] { return scheduler_tasks() == 0; })) << scheduler_tasks() << " tasks left";
  EXPECT_TRUE(eventually([&] { return worker_stored() == 0; })) << worker_stored() << " keys left";
  // The scheduler is healthy for the next client.
  Client next(scheduler_.server->address());
  EXPECT_EQ(next.submit(inc, 1).result(60s), 2);
}

}  // namespace
}  // namespace distrib::test
