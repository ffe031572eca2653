// The seed's submit / map / gather flow on a LocalCluster.
//   ./map_gather [n_tasks]
#include <distrib/distrib.hpp>

#include <iostream>
#include <numeric>
#include <string>
#include <vector>

int inc(int x) { return x + 1; }
DISTRIB_TASK(inc);

double add(double a, double b) { return a + b; }
DISTRIB_TASK(add);

int main(int argc, char** argv) {
  distrib::init(argc, argv);  // LocalCluster re-runs this program as its workers
  int n = argc > 1 ? std::stoi(argv[1]) : 1000;

  distrib::LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1});
  distrib::Client client(cluster);
  std::cout << "scheduler at " << client.scheduler_address() << "\n";

  distrib::Future<int> f = client.submit(inc, 10);
  std::cout << "inc(10) = " << f.result() << "\n";

  std::vector<int> xs(n);
  std::iota(xs.begin(), xs.end(), 0);
  std::vector<distrib::Future<int>> fs = client.map(inc, xs);
  std::vector<int> ys = client.gather(fs);
  long long total = std::accumulate(ys.begin(), ys.end(), 0LL);
  std::cout << "sum of inc over 0.." << n - 1 << " = " << total << "\n";

  auto a = client.submit(add, 1.5, 2);  // 2 converts to double
  auto b = client.submit(add, a, 10.0);  // a Future argument: runs after a, where a's result is
  std::cout << "add(add(1.5, 2), 10) = " << b.result() << "\n";

  client.shutdown();
  return total == static_cast<long long>(n) * (n + 1) / 2 ? 0 : 1;
}
