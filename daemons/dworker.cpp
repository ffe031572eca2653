// dworker: the distrib worker daemon; its command line is in libdistrib
// (src/cluster/worker_main.cpp), shared with programs started with --distrib-worker.
// By default this process is the worker's nanny: it runs the worker as a child process
// (this same command line plus --no-nanny) and restarts it when it dies.
#include <string>
#include <vector>

#include "cluster/daemon_main.hpp"
#include "cluster/process.hpp"

int main(int argc, char** argv) {
  return distrib::detail::worker_main("dworker", std::vector<std::string>(argv + 1, argv + argc),
                                      {distrib::detail::current_executable()});
}
