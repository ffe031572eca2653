// progress(): plain lines when not on a terminal, one per prefix, ending at 100%.
#include <gtest/gtest.h>

#include <distrib/distrib.hpp>
#include <numeric>
#include <sstream>

#include "tasks_for_tests.hpp"

namespace distrib::test {
namespace {
using namespace std::chrono_literals;

TEST(Progress, LinesPerPrefixUntilDone) {
  LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .processes = false});
  Client client(cluster);
  std::vector<int> xs(500);
  std::iota(xs.begin(), xs.end(), 0);
  auto fs = client.map(inc, xs);
  auto bad = client.map(SubmitOptions{.pure = false}, fail_with, std::vector<std::string>{"x", "y"});
  std::ostringstream out;
  progress(fs, {.out = &out, .mode = ProgressOptions::Mode::lines});
  progress(bad, {.out = &out, .mode = ProgressOptions::Mode::lines});
  auto text = out.str();
  EXPECT_NE(text.find("inc: 500/500 done"), std::string::npos) << text;
  EXPECT_NE(text.find("fail_with: 2/2 done, 2 failed"), std::string::npos) << text;
  for (auto& f : fs) EXPECT_TRUE(f.done());
}

TEST(Progress, BarsRedrawInPlace) {
  LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1, .processes = false});
  Client client(cluster);
  auto fs = client.map(inc, std::vector<int>{1, 2, 3});
  std::ostringstream out;
  progress(fs, {.out = &out, .mode = ProgressOptions::Mode::bars, .width = 10});
  EXPECT_NE(out.str().find("[##########] 3/3 inc"), std::string::npos) << out.str();
}

}  // namespace
}  // namespace distrib::test
