// Starts a LocalCluster with child processes, prints "ready", then waits to be killed.
// The no-orphans test SIGKILLs it and checks that its children die too.
#include <distrib/distrib.hpp>

#include <cstdio>
#include <unistd.h>

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  distrib::LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1});
  std::printf("ready %s\n", cluster.scheduler_address().c_str());
  std::fflush(stdout);
  while (true) pause();
}
