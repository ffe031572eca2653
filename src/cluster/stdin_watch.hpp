#pragma once
// --stop-on-stdin-eof: a daemon started over ssh (SSHCluster) stops when its standard input
// closes, i.e. when the ssh session that started it ends, also when the program that ran
// ssh was killed: nothing is left running on the remote host. (Without a terminal, sshd
// sends the remote command no SIGHUP when the session goes.)
#include <CLI/CLI.hpp>

namespace distrib::detail {

struct StdinWatchFlag {
  bool enabled = false;
  void add_to(CLI::App& app) {
    app.add_flag("--stop-on-stdin-eof", enabled,
                 "Stop (as on SIGTERM) when standard input reaches its end: for daemons started over ssh");
  }
  /// Starts the watching thread if the flag was given; SIGTERM this process at EOF.
  void start() const;
};

}  // namespace distrib::detail
