#include <distrib/distrib.hpp>

#include <iostream>

int times_two(int x) { return 2 * x; }
DISTRIB_TASK(times_two);

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  distrib::LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1});
  distrib::Client client(cluster);
  int r = client.submit(times_two, 21).result();
  std::cout << "consumer ok: " << r << "\n";
  client.shutdown();
  return r == 42 ? 0 : 1;
}
