// dworker: the distrib worker daemon.
//   dworker tcp://head:8786 --nthreads 8 --preload libmytasks.so
#include <dlfcn.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <sstream>
#include <thread>

#include "cluster/roles.hpp"
#include "core/log.hpp"

int main(int argc, char** argv) {
  CLI::App app{"distrib worker: runs tasks for a distrib scheduler"};
  distrib::detail::WorkerOptions options;
  options.host = "0.0.0.0";
  std::string log_level = "info";
  std::vector<std::string> preload;
  double timeout_s = 10;
  double death_timeout_s = 60;
  double close_timeout_s = 5;
  options.nthreads = std::max(1u, std::thread::hardware_concurrency());
  app.add_option("address", options.scheduler_address, "Scheduler address, tcp://host:port (or unix://@name on this host)")->required();
  app.add_option("--nthreads", options.nthreads, "Threads that run tasks")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--name", options.name, "Worker name (default: its address)");
  app.add_option("--host", options.host, "Interface to serve data to peers on")->capture_default_str();
  app.add_option("--memory-limit", options.memory_limit, "Memory limit in bytes (default: the machine's memory)");
  app.add_option("--preload", preload, "Shared library with DISTRIB_TASK functions to load (repeatable)")
      ->allow_extra_args(false);  // one library per --preload, so the address may follow
  std::vector<std::string> resources;
  app.add_option("--resources", resources, "Resources for tasks that ask for them, as Dask: \"GPU=2 MEM=10e9\"")
      ->allow_extra_args(false);
  app.add_option("--timeout", timeout_s, "Seconds to keep trying to reach the scheduler")->capture_default_str();
  app.add_option("--death-timeout", death_timeout_s,
                 "Seconds to keep trying to reach a scheduler that went away before exiting with code 1")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--close-timeout", close_timeout_s,
                 "Seconds running tasks get to stop when the worker closes, before it exits without them")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    distrib::detail::set_log_level(log_level);
    for (const auto& spec : resources) {
      std::istringstream in(spec);
      std::string item;
      while (in >> item) {
        auto eq = item.find('=');
        double amount = 0;
        try {
          amount = eq == std::string::npos ? 0 : std::stod(item.substr(eq + 1));
        } catch (const std::exception&) {
        }
        if (eq == 0 || !(amount > 0)) {
          std::fprintf(stderr, "dworker: bad resource '%s' (expected NAME=amount, amount > 0)\n", item.c_str());
          return 1;
        }
        options.resources.emplace_back(item.substr(0, eq), amount);
      }
    }
    for (const auto& lib : preload) {
      // Loading runs the library's DISTRIB_TASK registrations into libdistrib's registry.
      if (!dlopen(lib.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
        std::fprintf(stderr, "dworker: cannot preload %s: %s\n", lib.c_str(), dlerror());
        return 1;
      }
      distrib::detail::log().info("preloaded {}", lib);
    }
    options.connect_timeout = std::chrono::milliseconds(static_cast<long long>(timeout_s * 1000));
    options.death_timeout = std::chrono::milliseconds(static_cast<long long>(death_timeout_s * 1000));
    options.close_timeout = std::chrono::milliseconds(static_cast<long long>(close_timeout_s * 1000));
    int code = distrib::detail::run_worker(options, [](const std::string& address) {
      std::printf("distrib worker at %s\n", address.c_str());
      std::fflush(stdout);
    });
    distrib::detail::log().flush();
    std::fflush(nullptr);
    _exit(code);  // a task that ignored its stop request past --close-timeout is not waited for
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dworker: %s\n", e.what());
    return 1;
  }
}
