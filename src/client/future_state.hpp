#pragma once
// FutureState: what every copy of one Future shares — its key, status, error and where
// its result lives. Settled by the client's io thread, read by user threads.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "distrib/future.hpp"

namespace distrib::detail {

class ClientImpl;

class FutureState {
 public:
  /// `client` may be null (unit tests): the future then releases nothing when dropped.
  FutureState(std::string key, std::shared_ptr<ClientImpl> client);
  /// The last copy of a Future going away releases the key on the cluster.
  ~FutureState();

  /// `value`: the result itself when the scheduler passed a small one on.
  void set_finished(const std::string& worker, std::optional<Value> value = std::nullopt);
  void set_erred(const std::string& type, const std::string& message);
  void set_lost(const std::string& reason);
  void set_cancelled();
  /// client.retry: an erred task computes again; false if it had not erred on the cluster.
  bool set_pending();
  /// Adds a callback run once the future leaves the pending state (now if it has).
  void on_done(std::function<void()> fn);
  bool is_pending() const {
    std::lock_guard lock(mutex);
    return status == FutureStatus::pending;
  }

  const std::string key;
  const std::weak_ptr<ClientImpl> client;
  const ClientImpl* const owner;

  mutable std::mutex mutex;
  mutable std::condition_variable cv;
  FutureStatus status = FutureStatus::pending;
  mutable std::string worker;  // where the result lives; moves if the result is recomputed elsewhere
  std::optional<Value> value;  // a small result that came with the notice (no fetch needed)
  std::string error_type;
  std::string error_message;
  std::string lost_reason;  // set when the cluster connection was lost
  /// Cancel requests sent before this future was made; later replies do not concern it.
  std::uint64_t epoch = 0;

 private:
  // Moves to `next` if allowed; runs the callbacks when leaving pending.
  template <class Update>
  void transition(Update update);
  std::vector<std::function<void()>> callbacks_;
};

}  // namespace distrib::detail
