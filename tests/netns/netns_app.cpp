// The program of the multi-host test (run_netns_test.sh): its own worker in two network
// namespaces (--distrib-worker), and the client in a third. As client it sums the squares
// of 0..199, computed by tasks of 20 ms, and prints "result=<sum>"; with "signal-half" it
// first prints "half" once half of the squares are done, so that the script can cut a
// worker's link in the middle of the graph.
#include <distrib/distrib.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

namespace {
long slow_square(int x) {
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return static_cast<long>(x) * x;
}
DISTRIB_TASK(slow_square);

long add_all(std::vector<long> xs) { return std::accumulate(xs.begin(), xs.end(), 0L); }
DISTRIB_TASK(add_all);
}  // namespace

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  const bool signal_half = argc > 1 && std::string(argv[1]) == "signal-half";
  try {
    distrib::Client client;  // DISTRIB_SCHEDULER_ADDRESS and DISTRIB_AUTH_TOKEN
    client.wait_for_workers(2, std::chrono::seconds(60));
    std::vector<int> xs(200);
    std::iota(xs.begin(), xs.end(), 0);
    auto squares = client.map(slow_square, xs);
    auto total = client.submit(add_all, squares);
    if (signal_half) {
      for (int i = 0; i < 6000; ++i) {  // at most 60 s
        std::size_t done = 0;
        for (auto& f : squares) done += f.done() ? 1 : 0;
        if (done >= squares.size() / 2) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      std::printf("half\n");
      std::fflush(stdout);
    }
    std::printf("result=%ld\n", total.result(std::chrono::seconds(120)));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "netns_app: %s\n", e.what());
    return 2;
  }
}
