// LocalCluster::adapt's decisions (cluster/adaptive.hpp).
#include <gtest/gtest.h>

#include "cluster/adaptive.hpp"

namespace distrib::detail {
namespace {

AdaptiveInput input(std::size_t runnable, std::vector<std::size_t> processing) {
  AdaptiveInput in;
  in.minimum = 1;
  in.maximum = 5;
  in.threads_per_worker = 2;
  in.wait_count = 3;
  in.runnable_tasks = runnable;
  for (std::size_t i = 0; i < processing.size(); ++i)
    in.workers.push_back({"w" + std::to_string(i), processing[i], 100 * (processing.size() - i)});
  return in;
}

TEST(Adaptive, GrowsToTheWorkThereIsWithinTheMaximum) {
  AdaptivePolicy p;
  EXPECT_EQ(p.decide(input(7, {2})).scale_to, 4);    // 7 tasks, 2 threads each
  EXPECT_EQ(p.decide(input(100, {2, 2})).scale_to, 5);  // capped
  EXPECT_EQ(p.decide(input(4, {2, 2})).scale_to, -1);   // enough already
  EXPECT_TRUE(p.decide(input(4, {2, 2})).retire.empty());
}

TEST(Adaptive, RetiresOnlyWorkersIdleForWaitCountChecks) {
  AdaptivePolicy p;
  EXPECT_TRUE(p.decide(input(0, {0, 0, 0})).retire.empty());  // idle once
  EXPECT_TRUE(p.decide(input(0, {0, 0, 0})).retire.empty());  // twice
  auto d = p.decide(input(0, {0, 0, 0}));                    // three times: down to the minimum
  ASSERT_EQ(d.retire.size(), 2u);
  EXPECT_EQ(d.retire[0], "w2");  // the least data to move first
  EXPECT_EQ(d.retire[1], "w1");
}

TEST(Adaptive, AWorkerThatWorksIsNotRetired) {
  AdaptivePolicy p;
  p.decide(input(0, {0, 0}));
  p.decide(input(0, {0, 0}));
  auto d = p.decide(input(1, {1, 0}));  // w0 works now; w1 was idle three times
  ASSERT_EQ(d.retire.size(), 1u);
  EXPECT_EQ(d.retire[0], "w1");
  EXPECT_TRUE(p.decide(input(0, {0})).retire.empty());  // at the minimum
}

}  // namespace
}  // namespace distrib::detail
