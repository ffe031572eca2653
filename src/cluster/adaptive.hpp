#pragma once
// The decision of LocalCluster::adapt, apart from its loop, so that it can be tested: as
// Dask's Adaptive, more workers when there is more work than threads, and idle workers
// retired only after they stayed idle for `wait_count` checks in a row (a short lull does not
// make the cluster shrink and grow again).
#include <map>
#include <string>
#include <vector>

namespace distrib::detail {

struct AdaptiveInput {
  int minimum = 0, maximum = 0;
  int threads_per_worker = 1;
  int wait_count = 3;
  std::size_t runnable_tasks = 0;  // processing + queued + no-worker on the scheduler
  struct Worker {
    std::string name;
    std::size_t processing = 0;
    std::uint64_t stored_bytes = 0;
  };
  std::vector<Worker> workers;
};

struct AdaptiveDecision {
  int scale_to = -1;                 // start workers up to this many (-1: none to start)
  std::vector<std::string> retire;   // or retire these
};

class AdaptivePolicy {
 public:
  /// One check: what to do now. Remembers how long each worker has been idle.
  AdaptiveDecision decide(const AdaptiveInput& in);

 private:
  std::map<std::string, int> idle_checks_;  // consecutive checks each worker was idle
};

}  // namespace distrib::detail
