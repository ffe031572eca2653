// Data larger than memory (issue 16): an array three times the workers' total memory limit
// is persisted on a 2-worker LocalCluster, reduced three ways with the right results, and
// the spill directories hold no spill file once it is released.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <distrib/distrib.hpp>
#include <filesystem>
#include <string>


#include "helpers.hpp"

namespace da = distrib::array;
namespace fs = std::filesystem;

namespace distrib::test {
namespace {

// Blocks of 8 MiB: a task needs a few times its block while it runs, well inside the limit.
constexpr std::int64_t kRows = 24 * 1024, kCols = 4096, kBlockRows = 256;  // 96 blocks
constexpr std::uint64_t kArrayBytes = std::uint64_t(kRows) * kCols * 8;    // 768 MiB
constexpr const char* kLimit = "128MiB";                                   // x 2 workers: a third


std::size_t spill_files_under(const fs::path& dir) {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->path().extension() == ".spill") ++n;
  return n;
}


bool close_to(double got, double want, double rtol) { return std::abs(got - want) <= rtol * (std::abs(want) + 1); }

TEST(SpillWorkload, AnArrayThreeTimesTheMemoryLimitIsPersistedReducedAndCleanedUp) {
  TempDir spill("distrib-spill-test");  // the workers' --local-directory: their private directories go in it
  LocalCluster cluster({.n_workers = 2,
                        .threads_per_worker = 1,
                        .processes = true,
                        .start_timeout = std::chrono::seconds(60),
                        .dashboard_address = "none",
                        .memory_limit = kLimit,
                        .local_directory = spill.str()});
  Client client(cluster);
  auto info = client.scheduler_info();
  ASSERT_EQ(info.workers.size(), 2u);
  std::uint64_t total_limit = 0;
  for (const auto& w : info.workers) total_limit += w.memory_limit;
  ASSERT_EQ(total_limit, 2 * (std::uint64_t{128} << 20));
  ASSERT_GE(kArrayBytes, 3 * total_limit) << "the test's premise";

  auto x = da::random::random({kRows, kCols}, {kBlockRows, kCols}, 16);
  const double want_sum = x.sum().compute().values<double>()[0];
  const double want_mean = (x * 2.0 + 1.0).mean().compute().values<double>()[0];
  const double want_std = x.std(0).sum().compute().values<double>()[0];
  {
    auto p = client.persist(x);
    ASSERT_TRUE(eventually([&] { return keys_on_cluster(client) >= 96; }, 240s)) << keys_on_cluster(client);
    // Most of it is on disk: what the workers keep in memory stays near their targets.
    std::uint64_t spilled = 0, managed = 0;
    ASSERT_TRUE(eventually(
        [&] {
          spilled = managed = 0;
          for (const auto& w : client.scheduler_info().workers) {
            spilled += w.spilled;
            managed += w.managed;
          }
          return managed + spilled >= kArrayBytes;
        },
        60s))
        << "heartbeats report " << managed << " bytes in memory and " << spilled << " spilled";
    EXPECT_GE(spilled, kArrayBytes - total_limit);
    EXPECT_LE(managed, total_limit);

    EXPECT_TRUE(close_to(client.compute(p.sum()).result(300s).values<double>()[0], want_sum, 1e-9));
    EXPECT_TRUE(close_to(client.compute((p * 2.0 + 1.0).mean()).result(300s).values<double>()[0], want_mean, 1e-9));
    EXPECT_TRUE(close_to(client.compute(p.std(0).sum()).result(300s).values<double>()[0], want_std, 1e-9));
    for (const auto& w : client.scheduler_info().workers) EXPECT_EQ(w.restarts, 0u) << w.name << " was restarted";
  }
  ASSERT_TRUE(eventually([&] { return keys_on_cluster(client) == 0; }, 120s)) << keys_on_cluster(client);
  // The files go with their keys (removed on the spill thread, shortly after).
  EXPECT_TRUE(eventually([&] { return spill_files_under(spill.path()) == 0; }, 60s)) << spill_files_under(spill.path());
}

}  // namespace
}  // namespace distrib::test
