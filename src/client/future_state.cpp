#include "client/client_impl.hpp"
#include "comm/io_loop.hpp"

namespace distrib::detail {

FutureState::FutureState(std::string k, std::shared_ptr<ClientImpl> c)
    : key(std::move(k)), client(c), owner(c.get()) {}

FutureState::~FutureState() {
  if (auto c = client.lock()) c->release_key(key);
}

template <class Update>
void FutureState::transition(Update update) {
  std::vector<std::function<void()>> run;
  {
    std::lock_guard lock(mutex);
    bool was_pending = status == FutureStatus::pending;
    if (!update()) return;
    if (was_pending && status != FutureStatus::pending) run.swap(callbacks_);
  }
  cv.notify_all();
  for (auto& fn : run) fn();  // outside the lock: a callback may look at this future
}

void FutureState::set_finished(const std::string& w, std::optional<Value> v) {
  transition([&] {
    if (status != FutureStatus::pending && status != FutureStatus::finished) return false;
    status = FutureStatus::finished;
    worker = w;  // also updated when a lost result was recomputed elsewhere
    if (v) value = std::move(v);
    return true;
  });
}

void FutureState::set_erred(const std::string& type, const std::string& message) {
  transition([&] {
    if (status == FutureStatus::cancelled) return false;
    status = FutureStatus::error;
    error_type = type;
    error_message = message;
    return true;
  });
}

void FutureState::set_lost(const std::string& reason) {
  transition([&] {
    if (status != FutureStatus::pending) return false;
    status = FutureStatus::error;
    lost_reason = reason;
    return true;
  });
}

void FutureState::set_cancelled() {
  transition([&] {
    if (status == FutureStatus::cancelled) return false;
    status = FutureStatus::cancelled;
    return true;
  });
}

bool FutureState::set_pending() {
  std::lock_guard lock(mutex);
  if (status != FutureStatus::error || !lost_reason.empty()) return false;
  status = FutureStatus::pending;
  error_type.clear();
  error_message.clear();
  return true;
}

void FutureState::on_done(std::function<void()> fn) {
  {
    std::lock_guard lock(mutex);
    if (status == FutureStatus::pending) {
      callbacks_.push_back(std::move(fn));
      return;
    }
  }
  fn();
}

const std::string& future_key(const FutureState& f) { return f.key; }

FutureStatus future_status(const FutureState& f) {
  std::lock_guard lock(f.mutex);
  return f.status;
}

bool future_wait(const FutureState& f, std::optional<std::chrono::nanoseconds> timeout) {
  auto done = [&] { return f.status != FutureStatus::pending; };
  auto spin = default_io_spin();
  if (timeout) spin = std::min(spin, std::chrono::duration_cast<std::chrono::microseconds>(*timeout));
  spin_until_locked(f.mutex, done, spin);  // short tasks' results arrive within microseconds
  std::unique_lock lock(f.mutex);
  if (!timeout) {
    f.cv.wait(lock, done);
    return true;
  }
  return f.cv.wait_for(lock, *timeout, done);
}

void future_on_done(const FutureHandle& f, std::function<void()> fn) { f->on_done(std::move(fn)); }

void future_retry(const FutureHandle& f) {
  auto c = f->client.lock();
  if (!c) throw CommError("the client of future '" + f->key + "' is closed");
  c->retry({f});
}

void future_cancel(const FutureHandle& f) {
  auto c = f->client.lock();
  if (!c) return;  // the client is gone: nothing can run any more
  c->cancel({f});
}

std::exception_ptr future_exception(const FutureState& f) {
  future_wait(f, std::nullopt);
  std::lock_guard lock(f.mutex);
  switch (f.status) {
    case FutureStatus::cancelled: return std::make_exception_ptr(CancelledError(f.key));
    case FutureStatus::error:
      if (!f.lost_reason.empty())
        return std::make_exception_ptr(CommError("result of '" + f.key + "' is unavailable: " + f.lost_reason));
      if (f.error_type == "distrib::KilledWorker") {
        // The scheduler's message ends with "the last one was <address>" (scheduler_workers.cpp).
        static const std::string marker = "the last one was ";
        auto at = f.error_message.rfind(marker);
        auto last = at == std::string::npos ? std::string() : f.error_message.substr(at + marker.size());
        return std::make_exception_ptr(KilledWorker(f.key, f.error_message, last));
      }
      return std::make_exception_ptr(TaskError(f.key, f.error_type, f.error_message));
    default: return nullptr;
  }
}

Value future_value(const FutureState& f, std::optional<std::chrono::nanoseconds> timeout) {
  if (!future_wait(f, timeout))
    throw TimeoutError("the result of '" + f.key + "' was not ready after " +
                       std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(*timeout).count()) + " ms");
  if (auto e = future_exception(f)) std::rethrow_exception(e);
  auto c = f.client.lock();
  if (!c) throw CommError("the client of future '" + f.key + "' is closed");
  return c->gather({&f}).front();
}

}  // namespace distrib::detail
