// The seed's second array example: a 100000 x 1000 normal array placed on the workers
// block by block, then its mean and standard deviation computed there in parallel.
//   ./seed_array_scatter [rows]     (default 100000)
#include <distrib/distrib.hpp>

#include <cmath>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  const std::int64_t rows = argc > 1 ? std::stoll(argv[1]) : 100000;
  distrib::LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1});
  distrib::Client client(cluster);

  namespace da = distrib::array;
  auto x = da::random::normal({rows, 1000}, {1000, 1000});
  auto xs = client.scatter(x);               // splits into blocks and places them on workers
  auto mean = client.submit(da::mean, xs);   // computed in parallel over the blocks
  auto std = client.submit(da::std, xs);
  double m = client.gather(mean), s = client.gather(std);
  client.cancel(mean); client.cancel(std);
  client.shutdown();

  std::cout << "mean " << m << " (expected about 0), std " << s << " (expected about 1)\n";
  return std::abs(m) < 0.01 && std::abs(s - 1) < 0.01 ? 0 : 1;
}
