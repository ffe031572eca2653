// The dashboard in a real browser: headless Chromium (Debian's `chromium`, installed by
// scripts/test.sh) opens /status while tasks run and must show the workers and a progress
// bar for the running prefix.
#include <gtest/gtest.h>
#include <unistd.h>

#include <distrib/distrib.hpp>
#include <filesystem>

#include "helpers.hpp"
#include "tasks_for_tests.hpp"

using namespace distrib::test;

namespace {
std::string chromium_path() {
  if (const char* env = std::getenv("CHROMIUM")) return env;
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (access(p, X_OK) == 0) return p;
  return {};
}
}  // namespace

TEST(DashboardBrowser, StatusPageShowsWorkersAndProgress) {
  const std::string chromium = chromium_path();
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (scripts/test.sh installs it)";
  distrib::LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .dashboard_address = "0"});
  distrib::Client client(cluster);
  client.wait_for_workers(2);
  // About 6 s of work on two single-thread workers: still running while the page loads.
  auto running = client.map(sleep_ms, std::vector<int>(60, 200));

  char profile_template[] = "/tmp/distrib-chromium-XXXXXX";
  ASSERT_NE(mkdtemp(profile_template), nullptr);
  const std::string profile = profile_template;
  auto page = run_command({chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--no-first-run", "--user-data-dir=" + profile, "--virtual-time-budget=3000", "--dump-dom",
                           client.dashboard_link()},
                          std::chrono::seconds(120));
  std::filesystem::remove_all(profile);
  ASSERT_EQ(page.exit_code, 0) << page.output.substr(0, 2000);
  const std::string& dom = page.output;
  EXPECT_NE(dom.find("data-state=\"connected\""), std::string::npos) << dom.substr(0, 4000);
  EXPECT_NE(dom.find("worker-row"), std::string::npos);
  EXPECT_NE(dom.find("data-name=\"worker-0\""), std::string::npos);
  EXPECT_NE(dom.find("data-name=\"worker-1\""), std::string::npos);
  EXPECT_NE(dom.find("progress-row"), std::string::npos);
  EXPECT_NE(dom.find("data-prefix=\"sleep_ms\""), std::string::npos);
  client.cancel(running);
  client.shutdown();
}
