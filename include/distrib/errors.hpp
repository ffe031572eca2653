#pragma once
// The exceptions distrib throws. Every one derives from distrib::Error, itself a
// std::runtime_error, so `catch (const std::exception&)` sees them all.
#include <stdexcept>
#include <string>

namespace distrib {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A value could not be decoded: wrong type, truncated or corrupt bytes.
class DecodeError : public Error {
 public:
  using Error::Error;
};

/// The connection to the scheduler or a worker failed or was closed.
class CommError : public Error {
 public:
  using Error::Error;
};

/// Security settings that cannot be used: a missing or unreadable certificate or key, a key
/// that does not match its certificate, TLS asked of a build without OpenSSL, or a daemon
/// that refuses to listen unprotected (protected mode).
class SecurityError : public Error {
 public:
  using Error::Error;
};

/// Future::result(timeout) or a wait ran out of time.
class TimeoutError : public Error {
 public:
  using Error::Error;
};

/// A name the scheduler does not have, or already has, as Dask's KeyError: get_dataset or
/// unpublish_dataset of an unknown dataset, publish_dataset of a name taken (without override).
class KeyError : public Error {
 public:
  using Error::Error;
};

/// A Lock or Semaphore (coordination.hpp) released by an object that holds no lease of it:
/// never acquired, released more often than acquired, or its lease was dropped (its client
/// was removed, or the scheduler restarted).
class NotHeldError : public Error {
 public:
  using Error::Error;
};

/// The task was cancelled (or its key released) before its result was obtained.
class CancelledError : public Error {
 public:
  explicit CancelledError(const std::string& key)
      : Error("task '" + key + "' was cancelled"), key_(key) {}
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

/// A task raised an exception on a worker (or could not be run at all). Carries the remote
/// exception's type name and message and the key of the task.
class TaskError : public Error {
 public:
  TaskError(std::string key, std::string remote_type, std::string remote_message)
      : Error("task '" + key + "' failed: " + remote_type + ": " + remote_message),
        key_(std::move(key)),
        remote_type_(std::move(remote_type)),
        remote_message_(std::move(remote_message)) {}
  const std::string& key() const { return key_; }
  const std::string& remote_type() const { return remote_type_; }
  const std::string& remote_message() const { return remote_message_; }

 private:
  std::string key_;
  std::string remote_type_;
  std::string remote_message_;
};

/// A task was processing on `allowed_failures` workers that each died while it ran there
/// (`dscheduler --allowed-failures`, default 3), so it is taken for the cause and not tried
/// again, as Dask's KilledWorker. Its dependents fail with it; the rest of the graph goes on.
/// remote_type() is "distrib::KilledWorker".
class KilledWorker : public TaskError {
 public:
  KilledWorker(std::string key, std::string message, std::string last_worker)
      : TaskError(std::move(key), "distrib::KilledWorker", std::move(message)), last_worker_(std::move(last_worker)) {}
  /// The address of the last worker that died running it.
  const std::string& last_worker() const { return last_worker_; }

 private:
  std::string last_worker_;
};

}  // namespace distrib
