#pragma once
// Child processes for LocalCluster: spawned so that they die with their parent.
#include <sys/types.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace distrib::detail {

class ChildProcess {
 public:
  ChildProcess() = default;
  /// Starts `argv[0]` with `argv` and the current environment plus `env`. The descriptors
  /// in `inherit` stay open in the child; all others close on exec. If `stdout_fd` >= 0 the
  /// child's standard output goes there. With `kill_with_thread`, the child gets SIGKILL when
  /// the calling *thread* ends (PR_SET_PDEATHSIG follows the thread, not the process), which
  /// suits short-lived helpers; LocalCluster instead watches a pipe (see init.cpp). If
  /// `stdin_fd` >= 0 the child reads its standard input from there.
  /// Throws std::system_error.
  static ChildProcess spawn(const std::vector<std::string>& argv,
                            const std::vector<std::pair<std::string, std::string>>& env,
                            const std::vector<int>& inherit, int stdout_fd = -1, bool kill_with_thread = true,
                            int stdin_fd = -1);
  ChildProcess(ChildProcess&& o) noexcept
      : pid_(std::exchange(o.pid_, -1)), status_(o.status_), reaped_(o.reaped_) {}
  ChildProcess& operator=(ChildProcess&& o) noexcept;
  /// Kills and reaps a child that is still running.
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  /// True while the process has not exited (reaps it if it has).
  bool running();
  void signal(int sig);
  /// Waits up to `timeout` for the exit; true if the process has exited.
  bool wait(std::chrono::milliseconds timeout);
  /// SIGTERM, wait up to `grace`, then SIGKILL; always reaps.
  void stop(std::chrono::milliseconds grace);
  /// Exit description once reaped: "exit code N" or "killed by signal N".
  std::string exit_description() const;
  /// Once reaped: the exit code, or -1 if a signal ended the process (or not reaped yet).
  int exit_code() const;
  /// Once reaped: the signal that ended the process, or 0.
  int exit_signal() const;

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
};

/// The path of the running executable (/proc/self/exe resolved).
std::string current_executable();

/// `name` if it contains a '/', else the first executable file called `name` in $PATH;
/// "" if there is none.
std::string find_in_path(const std::string& name);

}  // namespace distrib::detail
