// A program that is its own worker (issue 18): started with --distrib-worker it serves as a
// worker of its own DISTRIB_TASK functions; otherwise it is the client of the scheduler the
// environment names (DISTRIB_SCHEDULER_ADDRESS or DISTRIB_SCHEDULER_FILE, as drun sets),
// waits for `argv[1]` workers, sums app_cube over 0..99 on them and prints
// "sum=<n> workers=<k>", where k is how many distinct worker processes ran the tasks.
#include <distrib/distrib.hpp>

#include <unistd.h>

#include <cstdio>
#include <numeric>
#include <set>
#include <string>
#include <vector>

namespace {
long app_cube(int x) { return static_cast<long>(x) * x * x; }
DISTRIB_TASK(app_cube);

int app_pid(int) {
  usleep(20'000);  // long enough that every worker gets some of the tasks
  return static_cast<int>(getpid());
}
DISTRIB_TASK(app_pid);
}  // namespace

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  const std::size_t workers = argc > 1 ? std::stoul(argv[1]) : 1;
  try {
    distrib::Client client;  // from the environment
    client.wait_for_workers(workers, std::chrono::seconds(60));
    std::vector<int> xs(100);
    std::iota(xs.begin(), xs.end(), 0);
    long sum = 0;
    for (long v : client.gather(client.map(app_cube, xs))) sum += v;
    std::vector<int> ids(40);
    std::iota(ids.begin(), ids.end(), 0);
    distrib::SubmitOptions impure;
    impure.pure = false;
    auto pids = client.gather(client.map(impure, app_pid, ids));
    std::printf("sum=%ld workers=%zu\n", sum, std::set<int>(pids.begin(), pids.end()).size());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "app_worker_helper: %s\n", e.what());
    return 2;
  }
}
