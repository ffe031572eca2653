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
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

namespace {
void announce(const char* name) {
  std::printf("started %s\n", name);
  std::fflush(stdout);
}
int ms_since(std::chrono::steady_clock::time_point start) {
  return static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count());
}
}  // namespace

int wait_for_stop(int max_ms, std::stop_token stop) {
  announce("wait_for_stop");
  auto start = std::chrono::steady_clock::now();
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  cv.wait_for(lock, stop, std::chrono::milliseconds(max_ms), [] { return false; });  // wakes on the stop request
  return ms_since(start);
}
DISTRIB_TASK(wait_for_stop);

int poll_cancelled(int max_ms) {
  announce("poll_cancelled");
  auto start = std::chrono::steady_clock::now();
  while (!distrib::cancelled() && ms_since(start) < max_ms)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the task's own work, in slices
  return ms_since(start);
}
DISTRIB_TASK(poll_cancelled);

int stubborn_sleep_ms(int ms) {
  announce("stubborn_sleep_ms");
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
DISTRIB_TASK(stubborn_sleep_ms);

int crash_worker(int) {
  std::abort();  // as a segfault or an OOM kill would: the worker process dies mid-task
}
DISTRIB_TASK(crash_worker);
#include <chrono>
#include <thread>

int slow_triple(int x, int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));  // a task that runs while a test cuts a connection
  return 3 * x;
}
DISTRIB_TASK(slow_triple);
#include <filesystem>

int add_ints(int a, int b) { return a + b; }
DISTRIB_TASK(add_ints);
int mod_add_ints(int a, int b) { return (a + b) % 1000003; }
DISTRIB_TASK(mod_add_ints);

int wait_for_file(std::string path, int max_ms) {
  auto start = std::chrono::steady_clock::now();
  while (!std::filesystem::exists(path)) {
    if (distrib::cancelled() || ms_since(start) >= max_ms) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a gate the test opens, polled in slices
  }
  return 1;
}
DISTRIB_TASK(wait_for_file);

// --- For client_ops_test.cpp
#include <fstream>
#include <stdexcept>

int write_file_after(std::string path, int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  std::ofstream(path) << "written\n";
  return 1;
}
DISTRIB_TASK(write_file_after);

int fail_once(std::string marker) {
  if (!std::filesystem::exists(marker)) {
    std::ofstream(marker) << "failed once\n";
    throw std::runtime_error("the first call fails");
  }
  return 1;
}
DISTRIB_TASK(fail_once);

int fail_if(bool fail) {
  if (fail) throw std::runtime_error("asked to fail");
  return 7;
}
DISTRIB_TASK(fail_if);

std::vector<std::uint8_t> filled_bytes(int n) { return std::vector<std::uint8_t>(static_cast<std::size_t>(n), 7); }
DISTRIB_TASK(filled_bytes);
