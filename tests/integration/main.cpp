// Test main: distrib::init first, so that LocalCluster(processes = true) can re-run this
// executable as its scheduler and workers.
#include <gtest/gtest.h>

#include <distrib/local_cluster.hpp>

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
