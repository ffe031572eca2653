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

// --- Added for futures_test.cpp ---
#include <unistd.h>

#include <cstring>
#include <map>
#include <mutex>

namespace {
std::mutex calls_mutex;
std::map<std::string, int>& calls_table() {
  static std::map<std::string, int> table;
  return table;
}
int record_call(const std::string& name) {
  std::lock_guard lock(calls_mutex);
  return ++calls_table()[name];
}
}  // namespace

int count_calls(std::string name, int x) {
  record_call(name);
  return x + 1;
}
DISTRIB_TASK(count_calls);

int calls_of(const std::string& name) {
  std::lock_guard lock(calls_mutex);
  auto it = calls_table().find(name);
  return it == calls_table().end() ? 0 : it->second;
}

int fail_times(std::string name, int failures) {
  int call = record_call(name);
  if (call <= failures) throw std::runtime_error("failure " + std::to_string(call) + " of " + name);
  return call;
}
DISTRIB_TASK(fail_times);

int worker_pid(int) { return static_cast<int>(getpid()); }
DISTRIB_TASK(worker_pid);

std::vector<std::uint8_t> make_pattern(std::uint64_t n, std::uint32_t seed) {
  std::vector<std::uint8_t> v(n);
  std::uint64_t x = seed;
  for (std::uint64_t i = 0; i < n; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;  // LCG: every byte depends on its position
    v[i] = static_cast<std::uint8_t>(x >> 56);
  }
  return v;
}
DISTRIB_TASK(make_pattern);

std::uint64_t checksum_bytes(std::vector<std::uint8_t> bytes) {
  std::uint64_t h = 1469598103934665603ULL ^ bytes.size();
  std::size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    std::uint64_t word;
    std::memcpy(&word, bytes.data() + i, 8);
    h = (h ^ word) * 1099511628211ULL;
  }
  for (; i < bytes.size(); ++i) h = (h ^ bytes[i]) * 1099511628211ULL;
  return h;
}
DISTRIB_TASK(checksum_bytes);
