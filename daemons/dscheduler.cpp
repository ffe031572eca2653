// dscheduler: the distrib scheduler daemon; its command line is in libdistrib
// (src/cluster/scheduler_main.cpp), shared with drun.
#include <string>
#include <vector>

#include "cluster/daemon_main.hpp"

int main(int argc, char** argv) {
  return distrib::detail::scheduler_main("dscheduler", std::vector<std::string>(argv + 1, argv + argc));
}
