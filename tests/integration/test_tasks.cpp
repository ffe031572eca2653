#include "test_tasks.hpp"

#include <distrib/task.hpp>

#include <algorithm>
#include <cctype>

int triple(int x) { return 3 * x; }
DISTRIB_TASK(triple);

std::string shout(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s + "!";
}
DISTRIB_TASK(shout);

#include <chrono>
#include <thread>

int slow_triple(int x, int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));  // a task that runs while a test cuts a connection
  return 3 * x;
}
DISTRIB_TASK(slow_triple);
