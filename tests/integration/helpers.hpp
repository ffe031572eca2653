#pragma once
// Helpers for integration tests: real dscheduler / dworker processes on OS-chosen ports,
// raw sockets for bad-input tests, and waiting on conditions with generous deadlines.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cluster/process.hpp"

namespace distrib {
class Client;
}

namespace distrib::test {

using namespace std::chrono_literals;

/// A daemon process whose first stdout line announced its address.
struct Daemon {
  detail::ChildProcess process;
  std::string address;  // tcp://127.0.0.1:port
  int stdout_fd = -1;
  Daemon() = default;
  Daemon(Daemon&&) noexcept;
  Daemon& operator=(Daemon&&) noexcept;
  ~Daemon();
  /// Reads the rest of the daemon's stdout until it exits (or the timeout).
  std::string rest_of_output(std::chrono::milliseconds timeout = 10s);
};

/// Starts `dscheduler --host 127.0.0.1 --port 0` (+ extra args) and waits for its address.
Daemon start_scheduler(const std::vector<std::string>& extra = {});
/// The same on a given port (e.g. the port of a scheduler that died, to restart it).
Daemon start_scheduler_at(std::uint16_t port, const std::vector<std::string>& extra = {});
/// Starts `dworker <scheduler> --host 127.0.0.1` (+ extra args; one thread unless they say
/// --nthreads) and waits until registered.
Daemon start_worker(const std::string& scheduler, const std::vector<std::string>& extra = {});

/// A daemon whose stdout and stderr (its log) the test reads as it goes.
struct Watched {
  detail::ChildProcess process;
  int output_fd = -1;
  std::string output;  // everything read so far
  Watched() = default;
  Watched(Watched&&) noexcept;
  Watched& operator=(Watched&&) = delete;
  ~Watched();
  /// Reads until the output contains `text` (at or after `from`) or `timeout`; returns
  /// where it starts, or std::string::npos.
  std::size_t wait_for(const std::string& text, std::chrono::milliseconds timeout = 30s, std::size_t from = 0);
};
/// Starts argv with stderr merged into stdout, both read by the test.
Watched spawn_watched(const std::vector<std::string>& argv);

/// Runs a command to completion; returns its exit code and captured stdout+stderr.
struct RunResult {
  int exit_code = -1;
  std::string output;
};
RunResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = 30s);

/// Polls `condition` until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 30s);

/// The process id of each worker, by address (test_tasks' process_id run on every worker).
std::map<std::string, int> worker_pids(Client& client);

/// Opens a TCP connection to `address`, writes `bytes`, and returns what the peer sent back
/// until it closed the connection; `closed` says whether it did before the timeout.
struct RawExchange {
  std::string received;
  bool closed = false;
};
RawExchange raw_exchange(const std::string& address, const std::string& bytes, std::chrono::milliseconds timeout = 10s);

/// A framed message with one Handshake of the given protocol version and role.
std::string framed_handshake(unsigned version, int role);

/// PIDs of the direct children of `parent`, read from /proc.
std::vector<int> child_pids(int parent);
/// The worker process of a dworker under a nanny: the nanny's only child (-1, and a test
/// failure, if it does not have exactly one within 30 s).
int worker_process_of(Daemon& nanny);
/// Keys held by all workers together.
std::size_t keys_on_cluster(Client& client);

/// A fresh directory under /tmp, removed with its contents at the end of the scope.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "distrib-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};
bool process_alive(int pid);

/// Waits until the scheduler lists `workers` workers whose nannies' restarts add up to
/// `restarts` (every killed worker is back).
bool workers_back(Client& client, std::size_t workers, unsigned restarts, std::chrono::milliseconds timeout = 30s);

}  // namespace distrib::test
