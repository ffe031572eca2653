#include "test_tasks.hpp"

#include <distrib/task.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>

int triple(int x) { return 3 * x; }
DISTRIB_TASK(triple);

std::string shout(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s + "!";
}
DISTRIB_TASK(shout);

int crash_worker(int) {
  std::abort();  // as a segfault or an OOM kill would: the worker process dies mid-task
}
DISTRIB_TASK(crash_worker);
