// The seed's first array example: a 10000 x 10000 random array in 1000 x 1000 blocks,
// y = x + x.T, z = y.mean(axis=0), computed locally and on a 2-worker LocalCluster.
//   ./seed_array_mean [n] [block]     (defaults 10000 1000)
#include <distrib/distrib.hpp>

#include <chrono>
#include <cmath>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  distrib::init(argc, argv);  // LocalCluster re-runs this program as its workers
  const std::int64_t n = argc > 1 ? std::stoll(argv[1]) : 10000;
  const std::int64_t block = argc > 2 ? std::stoll(argv[2]) : 1000;
  distrib::LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1});
  distrib::Client client(cluster);
  std::cout << "dashboard: " << client.dashboard_link() << "\n";

  namespace da = distrib::array;
  auto x = da::random::random({n, n}, {block, block});
  auto y = x + x.T();
  auto z = y.mean(0);
  auto t0 = std::chrono::steady_clock::now();
  distrib::NDArray r1 = z.compute();                  // no cluster: a local thread pool
  auto t1 = std::chrono::steady_clock::now();
  distrib::NDArray r2 = client.compute(z).result();   // on the cluster
  auto t2 = std::chrono::steady_clock::now();

  double sum = 0;
  for (double v : r2.values<double>()) sum += v;
  auto seconds = [](auto d) { return std::chrono::duration<double>(d).count(); };
  std::cout << "z has shape (" << r2.shape()[0] << ",), sum " << sum << " (expected about " << n << ")\n"
            << "tasks after fusion: " << z.graph_size() << " (before: " << z.graph_size(false) << ")\n"
            << "z.compute(): " << seconds(t1 - t0) << " s, client.compute(z): " << seconds(t2 - t1) << " s\n"
            << "local and cluster results identical: " << (r1.equals(r2) ? "yes" : "no") << "\n";
  client.shutdown();
  return r1.equals(r2) && std::abs(sum - static_cast<double>(n)) < 0.01 * static_cast<double>(n) ? 0 : 1;
}
