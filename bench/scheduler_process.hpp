#pragma once
// A dscheduler child process for the benchmarks that need the scheduler's own CPU and memory
// apart from theirs (bench_journal, bench_many_workers): started on loopback without a
// dashboard, with its announced address read from its first line.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cluster/process.hpp"

namespace bench {

struct SchedulerProcess {
  distrib::detail::ChildProcess process;
  std::string address;
};

/// Starts `dscheduler` (its path) on 127.0.0.1:`port` (0: any) with `extra` arguments and
/// waits for "distrib scheduler at ADDRESS"; throws std::runtime_error with what it printed
/// if it does not start.
inline SchedulerProcess start_dscheduler(const std::string& dscheduler, std::uint16_t port,
                                         const std::vector<std::string>& extra = {}) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  std::vector<std::string> argv{dscheduler, "--host", "127.0.0.1", "--port", std::to_string(port),
                                "--dashboard-address", "none", "--log-level", "warn"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  SchedulerProcess s{distrib::detail::ChildProcess::spawn(argv, {}, {}, fds[1]), {}};
  ::close(fds[1]);
  std::string out;
  char c;
  while (out.find('\n') == std::string::npos && ::read(fds[0], &c, 1) == 1) out.push_back(c);
  ::close(fds[0]);
  const std::string tag = "distrib scheduler at ";
  if (out.rfind(tag, 0) != 0) throw std::runtime_error("dscheduler did not start: " + out);
  s.address = out.substr(tag.size(), out.size() - tag.size() - 1);
  return s;
}

}  // namespace bench
