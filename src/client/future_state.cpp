#include "client/client_impl.hpp"

namespace distrib::detail {

FutureState::FutureState(std::string k, std::shared_ptr<ClientImpl> c)
    : key(std::move(k)), client(c), owner(c.get()) {}

FutureState::~FutureState() {
  if (auto c = client.lock()) c->release_key(key);
}

void FutureState::set_finished(const std::string& w) {
  {
    std::lock_guard lock(mutex);
    if (status != FutureStatus::pending && status != FutureStatus::finished) return;
    status = FutureStatus::finished;
    worker = w;
  }
  cv.notify_all();
}

void FutureState::set_erred(const std::string& type, const std::string& message) {
  {
    std::lock_guard lock(mutex);
    status = FutureStatus::error;
    error_type = type;
    error_message = message;
  }
  cv.notify_all();
}

void FutureState::set_lost(const std::string& reason) {
  {
    std::lock_guard lock(mutex);
    if (status != FutureStatus::pending) return;
    status = FutureStatus::error;
    lost_reason = reason;
  }
  cv.notify_all();
}

const std::string& future_key(const FutureState& f) { return f.key; }

FutureStatus future_status(const FutureState& f) {
  std::lock_guard lock(f.mutex);
  return f.status;
}

bool future_wait(const FutureState& f, std::optional<std::chrono::nanoseconds> timeout) {
  std::unique_lock lock(f.mutex);
  auto done = [&] { return f.status != FutureStatus::pending; };
  if (!timeout) {
    f.cv.wait(lock, done);
    return true;
  }
  return f.cv.wait_for(lock, *timeout, done);
}

Value future_value(const FutureState& f, std::optional<std::chrono::nanoseconds> timeout) {
  if (!future_wait(f, timeout))
    throw TimeoutError("the result of '" + f.key + "' was not ready after " +
                       std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(*timeout).count()) + " ms");
  auto c = f.client.lock();
  if (!c) throw CommError("the client of future '" + f.key + "' is closed");
  return c->gather({&f}).front();
}

}  // namespace distrib::detail
