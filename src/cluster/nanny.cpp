#include "cluster/nanny.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <system_error>

#include <optional>

#include "cluster/worker_exit.hpp"
#include "core/log.hpp"
#include "core/memory_limit.hpp"
#include "core/process_memory.hpp"

namespace distrib::detail {

namespace {
using Clock = std::chrono::steady_clock;

constexpr const char* kRestartsVariable = "DISTRIB_NANNY_RESTARTS";

// A descriptor that becomes readable when the process exits (Linux 5.3+), so that the nanny
// sleeps until something happens instead of polling waitpid. -1 where unavailable.
int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));  // close-on-exec by default
#else
  (void)pid;
  return -1;
#endif
}

std::string seconds_text(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(d.count()) / 1000.0);
  return buf;
}
}  // namespace

WorkerEnd classify_worker_exit(const ChildProcess& exited) {
  if (exited.exit_signal() != 0) return WorkerEnd::crashed;
  switch (exited.exit_code()) {
    case worker_exit::kStopped:
      return WorkerEnd::stopped;
    case worker_exit::kGaveUp:
    case worker_exit::kCannotExecute:
      return WorkerEnd::gave_up;
    case worker_exit::kRestart:
      return WorkerEnd::restart;
    default:
      return WorkerEnd::crashed;
  }
}

Nanny::Nanny(NannyOptions options, SpawnWorker spawn) : options_(std::move(options)), spawn_(std::move(spawn)) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
  wake_read_ = fds[0];
  wake_write_ = fds[1];
}

Nanny::~Nanny() {
  ::close(wake_read_);
  ::close(wake_write_);
}

void Nanny::request_stop() noexcept {
  stop_requested_.store(true);
  char c = 1;
  if (write(wake_write_, &c, 1) < 0) { /* the pipe is full: a wake-up is pending anyway */
  }
}

Nanny::Wake Nanny::wait(ChildProcess* child, std::optional<Clock::time_point> until) {
  int pidfd = child ? open_pidfd(child->pid()) : -1;
  struct CloseFd {
    int fd;
    ~CloseFd() {
      if (fd >= 0) ::close(fd);
    }
  } guard{pidfd};
  std::optional<ProcessMemory> memory;
  std::optional<Clock::time_point> over_since;
  if (child && options_.memory_kill_bytes > 0) {
    try {
      memory.emplace(child->pid());
    } catch (const std::exception&) {  // gone already: the loop sees it exit
    }
  }
  while (true) {
    if (stop_requested_.load()) return Wake::stop_requested;
    if (child && !child->running()) return Wake::exited;
    if (memory) {
      const auto rss = memory->rss_bytes();
      if (rss <= options_.memory_kill_bytes) {
        over_since.reset();
      } else if (!over_since) {
        over_since = Clock::now();
      } else if (Clock::now() - *over_since >= std::chrono::seconds(1)) {
        log().error("nanny: {} (pid {}) uses {} of memory, past {} for a second: killing it", options_.name,
                    child->pid(), format_byte_size(rss), format_byte_size(options_.memory_kill_bytes));
        child->signal(SIGKILL);
        memory.reset();
      }
    }
    int timeout_ms = -1;
    if (until) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(*until - Clock::now()).count();
      if (left <= 0) return Wake::timed_out;
      timeout_ms = static_cast<int>(std::min<long long>(left, INT_MAX));
    }
    // Without a pidfd, look at the child again every 50 ms; its memory every 100 ms.
    if (child && pidfd < 0) timeout_ms = timeout_ms < 0 ? 50 : std::min(timeout_ms, 50);
    if (memory) timeout_ms = timeout_ms < 0 ? 100 : std::min(timeout_ms, 100);
    pollfd fds[2] = {{wake_read_, POLLIN, 0}, {pidfd, POLLIN, 0}};  // poll skips a negative fd
    if (poll(fds, 2, timeout_ms) < 0 && errno != EINTR)
      throw std::system_error(errno, std::generic_category(), "nanny: poll");
  }
}

void Nanny::stop_worker(ChildProcess& child) {
  if (!child.running()) return;
  log().info("nanny: stopping {} (pid {})", options_.name, child.pid());
  child.signal(SIGTERM);
  if (!child.wait(options_.close_timeout)) {
    log().warn("nanny: {} (pid {}) still running {} after SIGTERM: killing it", options_.name, child.pid(),
               seconds_text(options_.close_timeout));
    child.stop(std::chrono::milliseconds(0));
  }
  pid_ = 0;
}

int Nanny::run(std::optional<ChildProcess> first) {
  if (!first && stop_requested_.load()) return 0;
  ChildProcess child = first ? std::move(*first) : spawn_(0);
  auto backoff = options_.first_backoff;
  while (true) {
    pid_ = child.pid();
    log().info("nanny: {} running as pid {}", options_.name, child.pid());
    const auto started = Clock::now();
    if (wait(&child, std::nullopt) == Wake::stop_requested) {
      stop_worker(child);
      return 0;
    }
    pid_ = 0;
    const auto how = child.exit_description();
    const auto next = restarts_.load() + 1;
    std::chrono::milliseconds delay{0};
    switch (classify_worker_exit(child)) {
      case WorkerEnd::stopped:
        log().info("nanny: {} stopped ({}); the nanny stops too", options_.name, how);
        return 0;
      case WorkerEnd::gave_up:
        log().error("nanny: {} gave up ({}); not restarting it", options_.name, how);
        return child.exit_code();
      case WorkerEnd::restart:
        log().info("nanny: {} asked for a restart ({}); starting a fresh process (restart {})", options_.name, how, next);
        backoff = options_.first_backoff;
        break;
      case WorkerEnd::crashed:
        if (Clock::now() - started >= options_.stable_after) backoff = options_.first_backoff;
        delay = backoff;
        backoff = std::min(backoff * 2, options_.max_backoff);
        log().warn("nanny: {} (pid {}) died ({}); restarting it in {} (restart {})", options_.name, child.pid(), how,
                   seconds_text(delay), next);
        break;
    }
    if (wait(nullptr, Clock::now() + delay) == Wake::stop_requested) return 0;
    try {
      child = spawn_(next);
    } catch (const std::exception& e) {
      log().error("nanny: cannot restart {}: {}", options_.name, e.what());
      return worker_exit::kGaveUp;
    }
    restarts_ = next;
  }
}

std::vector<std::pair<std::string, std::string>> nanny_worker_environment(std::uint32_t restarts) {
  std::vector<std::pair<std::string, std::string>> env;
  // One thread per library call: the worker already runs one task per thread.
  for (const char* name : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}) {
    const char* set = std::getenv(name);
    if (!set || !*set) env.emplace_back(name, "1");
  }
  env.emplace_back(kRestartsVariable, std::to_string(restarts));
  return env;
}

NannyContext take_nanny_context() {
  const char* value = std::getenv(kRestartsVariable);
  if (!value) return {};
  NannyContext context{true, 0};
  char* end = nullptr;
  errno = 0;
  unsigned long n = std::strtoul(value, &end, 10);
  if (errno == 0 && end != value && *end == '\0' && n <= UINT32_MAX) context.restarts = static_cast<std::uint32_t>(n);
  else log().warn("ignoring a bad {}='{}'", kRestartsVariable, value);
  unsetenv(kRestartsVariable);
  return context;
}

namespace {
std::atomic<Nanny*> g_signalled_nanny{nullptr};

void on_stop_signal(int) {
  if (auto* nanny = g_signalled_nanny.load()) nanny->request_stop();
}
}  // namespace

int run_nanny(const std::vector<std::string>& worker_argv, NannyOptions options) {
  // PR_SET_PDEATHSIG (kill_with_thread) follows the thread that forks, which is this one for
  // the nanny's whole life: the worker gets SIGKILL when the nanny dies, however it dies.
  Nanny nanny(std::move(options), [&worker_argv](std::uint32_t restarts) {
    return ChildProcess::spawn(worker_argv, nanny_worker_environment(restarts), {}, -1, /*kill_with_thread=*/true);
  });
  g_signalled_nanny = &nanny;
  struct sigaction action{};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  struct sigaction old_term{}, old_int{};
  sigaction(SIGTERM, &action, &old_term);
  sigaction(SIGINT, &action, &old_int);
  struct Restore {
    const struct sigaction &term, &intr;
    ~Restore() {
      sigaction(SIGTERM, &term, nullptr);
      sigaction(SIGINT, &intr, nullptr);
      g_signalled_nanny = nullptr;
    }
  } restore{old_term, old_int};
  return nanny.run();
}

}  // namespace distrib::detail
