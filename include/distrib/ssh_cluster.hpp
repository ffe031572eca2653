#pragma once
// SSHCluster: a scheduler on the first host and a worker on each of the others, started with
// the system's `ssh`, as Dask's SSHCluster. They stop when the cluster object goes (or when
// the ssh sessions end, also if this program is killed).
//
//   distrib::SSHCluster cluster({"head", "node1", "node2"});
//   distrib::Client client(cluster);
//
// The hosts need distrib installed (dscheduler and dworker on their PATH, or the paths in
// the options) and key-based ssh that does not prompt. By default the cluster draws a fresh
// token: it reaches each daemon through its ssh session's standard input, never a command
// line, and the daemons then refuse every peer without it.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "distrib/security.hpp"

namespace distrib {

struct SSHClusterOptions {
  /// The ssh program and the arguments given before each host, e.g. {"-p", "2222", "-i",
  /// "/home/me/.ssh/cluster"}. BatchMode=yes is always added: ssh never prompts.
  std::string ssh = "ssh";
  std::vector<std::string> ssh_options;
  /// The command that runs the scheduler on the first host, and its extra arguments.
  std::string scheduler_command = "dscheduler";
  std::vector<std::string> scheduler_args;
  /// The command that runs a worker on each other host: dworker (tasks in a --preload
  /// library), or your program on the hosts, as {"/shared/app", "--distrib-worker"}.
  std::vector<std::string> worker_command = {"dworker"};
  std::vector<std::string> worker_args;
  /// Threads per worker (0: dworker's default, the host's cores).
  int nthreads = 0;
  /// The scheduler's port (0: any free port) and dashboard ("none": off).
  int scheduler_port = 8786;
  std::string dashboard_address = ":8787";
  /// TLS files (paths on the hosts, the same on each) and token. Empty: a fresh token, or
  /// DISTRIB_AUTH_TOKEN and DISTRIB_TLS_* from this program's environment.
  Security security;
  /// How long the constructor waits for the scheduler and every worker.
  std::chrono::milliseconds start_timeout{60'000};
};

class SSHCluster {
 public:
  /// Starts the scheduler on hosts[0] and a worker on each of hosts[1...] (a host may be
  /// named more than once). Throws std::invalid_argument for fewer than two hosts, and
  /// CommError naming the host (with what ssh or the daemon said) if one does not start.
  explicit SSHCluster(std::vector<std::string> hosts, SSHClusterOptions options = {});
  /// Shuts the cluster down and ends the ssh sessions.
  ~SSHCluster();
  SSHCluster(const SSHCluster&) = delete;
  SSHCluster& operator=(const SSHCluster&) = delete;

  /// The scheduler's address as it announced it ("tcp://10.0.0.1:8786").
  const std::string& scheduler_address() const;
  /// What a Client of this cluster needs (the token, the TLS files).
  const Security& security() const;
  /// Workers started.
  int n_workers() const;
  /// Stops the workers and the scheduler (idempotent; the destructor calls it).
  void close();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace distrib
