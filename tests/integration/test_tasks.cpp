#include "test_tasks.hpp"

#include <distrib/task.hpp>

#include <signal.h>
#include <unistd.h>

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

std::string env_value(std::string name) {
  const char* v = std::getenv(name.c_str());
  return v ? std::string(v) : std::string("<unset>");
}
DISTRIB_TASK(env_value);

int process_id(int) { return static_cast<int>(getpid()); }
DISTRIB_TASK(process_id);

int ignore_sigterm(int) {
  signal(SIGTERM, SIG_IGN);  // replaces the worker's own handler: only SIGKILL stops it now
  return 0;
}
DISTRIB_TASK(ignore_sigterm);

int crash_worker(int) {
  std::abort();  // as a segfault or an OOM kill would: the worker process dies mid-task
}
DISTRIB_TASK(crash_worker);
