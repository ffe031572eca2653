// Array tasks on plain dscheduler / dworker processes: the kernels live in libdistrib, so
// workers need no --preload to run them.
#include <gtest/gtest.h>

#include <distrib/distrib.hpp>

#include "helpers.hpp"

namespace da = distrib::array;
using namespace distrib::test;

TEST(ArrayDaemons, PlainWorkersRunArrayTasks) {
  auto scheduler = start_scheduler();
  auto w1 = start_worker(scheduler.address);
  auto w2 = start_worker(scheduler.address);
  distrib::Client client(scheduler.address);
  client.wait_for_workers(2);

  auto x = da::random::random({300, 200}, {70, 50}, 11);
  auto z = (x + 1.0).sum(1) / x.max();
  distrib::NDArray remote = client.compute(z).result(std::chrono::seconds(60));
  EXPECT_TRUE(remote.equals(z.compute()));

  auto xs = client.scatter(da::random::normal({4000, 100}, {500, 100}, 0, 1, 5));
  double s = client.submit(da::std, xs).result(std::chrono::seconds(60));
  EXPECT_NEAR(s, 1.0, 0.02);
  // The 8 persisted blocks are held on the workers.
  std::size_t held = 0;
  for (const auto& [worker, keys] : client.has_what()) held += keys.size();
  EXPECT_GE(held, 8u);
  client.close();
}
