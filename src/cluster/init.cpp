// distrib::init: in a process that LocalCluster started (DISTRIB_ROLE is set), run the
// scheduler or worker role and exit; with --distrib-worker on the command line, be a
// worker with the dworker flags that follow (your program as the worker on any host) and
// exit; otherwise note that init was called and return.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "cluster/daemon_main.hpp"
#include "cluster/nanny.hpp"
#include "cluster/process.hpp"
#include "cluster/roles.hpp"
#include "core/log.hpp"
#include "core/memory_limit.hpp"
#include "distrib/local_cluster.hpp"

namespace distrib {

namespace {
std::atomic<bool> g_initialized{false};

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : fallback;
}

int env_fd(const char* name) { return std::stoi(env_or(name, "-1")); }

// Exits this process as soon as the parent's end of the pipe closes (the parent died).
void watch_parent(int fd) {
  if (fd < 0) return;
  std::thread([fd] {
    char c;
    while (true) {
      auto n = read(fd, &c, 1);
      if (n == 0 || (n < 0 && errno != EINTR)) _exit(3);
    }
  }).detach();
}

[[noreturn]] void run_role(const std::string& role) {
  int code = 1;
  try {
    detail::set_log_level(env_or("DISTRIB_LOG_LEVEL", "warn"));
    watch_parent(env_fd("DISTRIB_PARENT_FD"));
    int ready_fd = env_fd("DISTRIB_READY_FD");
    auto on_ready = [ready_fd](const std::string& address) {
      if (ready_fd < 0) return;
      auto line = address + "\n";
      if (write(ready_fd, line.data(), line.size()) < 0) { /* the parent gave up waiting */
      }
      ::close(ready_fd);
    };
    if (role == "scheduler") {
      detail::SchedulerOptions o;
      o.host = env_or("DISTRIB_HOST", "127.0.0.1");
      o.port = 0;
      o.dashboard_address = env_or("DISTRIB_DASHBOARD", "none");
      o.dashboard_fallback = true;
      o.local_socket = env_or("DISTRIB_LOCAL_SOCKET", "");
      o.security = Security::from_environment();
      code = detail::run_scheduler(o, on_ready);
    } else if (role == "worker") {
      detail::WorkerOptions o;
      o.scheduler_address = env_or("DISTRIB_SCHEDULER", "");
      o.host = env_or("DISTRIB_HOST", "127.0.0.1");
      o.security = Security::from_environment();
      o.nthreads = static_cast<std::uint32_t>(std::stoul(env_or("DISTRIB_NTHREADS", "1")));
      o.name = env_or("DISTRIB_NAME", "");
      o.memory_limit = std::stoull(env_or("DISTRIB_MEMORY_LIMIT", "0"));
      o.local_directory = env_or("DISTRIB_LOCAL_DIRECTORY", "");
      auto fractions = env_or("DISTRIB_MEMORY_FRACTIONS", "");
      std::optional<double>* into[] = {&o.memory_fractions.target, &o.memory_fractions.spill,
                                       &o.memory_fractions.pause, &o.memory_fractions.terminate};
      for (std::size_t i = 0, start = 0; i < 4 && !fractions.empty(); ++i) {
        auto end = fractions.find(',', start);
        *into[i] = detail::parse_memory_fraction(fractions.substr(start, end - start));
        if (end == std::string::npos) break;
        start = end + 1;
      }
      auto nanny = detail::take_nanny_context();  // LocalCluster supervises its workers
      o.nanny = nanny.nanny;
      o.restarts = nanny.restarts;
      code = detail::run_worker(o, on_ready);
    } else {
      std::fprintf(stderr, "distrib: unknown DISTRIB_ROLE '%s'\n", role.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "distrib %s: %s\n", role.c_str(), e.what());
    code = 1;
  }
  detail::log().flush();
  std::fflush(nullptr);
  _exit(code);  // skip static destructors and running task threads: the role is over
}
}  // namespace

void init(int argc, char** argv) {
  g_initialized = true;
  for (int i = 1; i < argc && argv != nullptr; ++i) {
    if (std::string(argv[i]) != "--distrib-worker") continue;
    // Everything after the marker is dworker's command line; the nanny restarts the worker
    // as this program with the same marker.
    int code = detail::worker_main(std::string(argv[0]) + " --distrib-worker",
                                   std::vector<std::string>(argv + i + 1, argv + argc),
                                   {detail::current_executable(), "--distrib-worker"});
    detail::log().flush();
    std::fflush(nullptr);
    _exit(code);
  }
  if (const char* role = std::getenv("DISTRIB_ROLE")) run_role(role);
}

bool initialized() { return g_initialized; }

}  // namespace distrib
