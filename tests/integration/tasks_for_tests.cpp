#include "tasks_for_tests.hpp"

#include <distrib/task.hpp>

#include <numeric>
#include <stdexcept>
#include <thread>

int inc(int x) { return x + 1; }
DISTRIB_TASK(inc);

double add(double a, double b) { return a + b; }
DISTRIB_TASK(add);

int fail_with(std::string message) { throw std::runtime_error(message); }
DISTRIB_TASK(fail_with);

int sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));  // a task that takes time on purpose
  return ms;
}
DISTRIB_TASK(sleep_ms);

std::vector<double> make_vector(int n) {
  std::vector<double> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0.0);
  return v;
}
DISTRIB_TASK(make_vector);

double sum_vector(std::vector<double> v) { return std::accumulate(v.begin(), v.end(), 0.0); }
DISTRIB_TASK(sum_vector);
