#pragma once
// SpillDirectory: a worker's private directory for its spill files,
// `<parent>/distrib-worker-XXXXXX` (parent: --local-directory, else $TMPDIR, else /tmp),
// removed with everything in it when the directory object is destroyed.
//
// A worker that is SIGKILLed (by its nanny for memory, by the OOM killer) removes nothing,
// so each directory holds a lock file on which its owner keeps an exclusive flock for as
// long as it lives: the kernel drops the lock with the process, however it dies. Making a
// new directory first removes every `distrib-worker-*` directory in the same parent whose
// lock can be taken (as Dask's WorkSpace purges directories whose lock is free). A
// directory without a lock file is a worker between mkdir and locking, or one killed in
// that instant: it is removed only once it is a minute old. The lock fd is close-on-exec,
// so a program the worker starts does not keep its directory alive; a plain fork() child
// does, until it exits.
#include <string>
#include <vector>

namespace distrib::detail::wrk {

class SpillDirectory {
 public:
  static constexpr const char* kPrefix = "distrib-worker-";
  static constexpr const char* kLockFile = "lock";

  /// Makes and locks a new directory in `parent` (created if missing), or in the default
  /// parent if empty, after removing stale ones there. Throws std::runtime_error naming the
  /// directory if it cannot be made or written.
  explicit SpillDirectory(const std::string& parent = {});
  ~SpillDirectory();
  SpillDirectory(const SpillDirectory&) = delete;
  SpillDirectory& operator=(const SpillDirectory&) = delete;

  const std::string& path() const { return path_; }
  /// The directory, open: spill files are made and opened relative to it (openat).
  int fd() const { return dir_fd_; }

  /// $TMPDIR if set and not empty, else /tmp.
  static std::string default_parent();
  /// Removes the directories in `parent` left by workers that died without removing them;
  /// the paths removed. Never touches a directory whose owner lives.
  static std::vector<std::string> remove_stale(const std::string& parent);

 private:
  std::string path_;
  int dir_fd_ = -1;
  int lock_fd_ = -1;
};

}  // namespace distrib::detail::wrk
