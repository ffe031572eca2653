#pragma once
// The scheduler file (dscheduler --scheduler-file, as Dask's): a small JSON file through
// which a scheduler tells workers and clients started elsewhere (srun, mpirun, a batch job
// on a shared filesystem) where it is. It holds no secret: never the token.
//
//   {"type": "distrib-scheduler", "address": "tcp://node1:8786", "protocol": 2,
//    "dashboard": "http://node1:8787/status", "tls_ca_sha256": "AB:CD:...", "pid": 4242}
//
// Written atomically (a temporary file in the same directory, fsync, rename), so a reader
// sees the old file, no file, or the whole new one; readers poll rather than use inotify,
// which does not see writes made on another host of a shared filesystem.
#include <chrono>
#include <cstdint>
#include <string>

namespace distrib::detail {

struct SchedulerFileContents {
  std::string address;        // where workers and clients connect
  std::uint32_t protocol = 0;  // the wire protocol's version
  std::string dashboard;      // the dashboard's URL, "" without one
  std::string tls_ca_sha256;  // the fingerprint of the cluster's CA, "" without TLS
  std::uint32_t pid = 0;      // the scheduler's process (on its host)
};

/// Writes `contents` to `path` atomically; throws std::runtime_error naming the path and
/// the reason if it cannot.
void write_scheduler_file(const std::string& path, const SchedulerFileContents& contents);

/// Reads and checks the file; throws std::runtime_error (missing, unreadable, not a
/// scheduler file, another protocol version) naming the path.
SchedulerFileContents read_scheduler_file(const std::string& path);

/// Waits up to `timeout` for `path` to exist and hold a scheduler file, checking every
/// 50 ms, and returns it; throws std::runtime_error when the time is up (with what was
/// wrong with the file last seen, if any).
SchedulerFileContents wait_for_scheduler_file(const std::string& path, std::chrono::milliseconds timeout);

/// Removes `path` if it still names the scheduler of process `pid` (a newer scheduler may
/// have replaced it); errors are ignored.
void remove_scheduler_file(const std::string& path, std::uint32_t pid);

}  // namespace distrib::detail
