#pragma once
// BytesLoan: memory the caller owns, lent as Bytes without a copy, for a synchronous send:
// the caller waits until no Bytes refers to it any more before it may free the memory.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>

#include "distrib/bytes.hpp"

namespace distrib::detail {

class BytesLoan {
 public:
  BytesLoan(const void* data, std::size_t size) : state_(std::make_shared<State>()) {
    auto* p = static_cast<std::byte*>(const_cast<void*>(data));
    // The deleter holds the state, not the loan: a copy dropped after the caller stopped
    // waiting (give_up) still finds it.
    bytes_ = Bytes::adopt(std::shared_ptr<std::byte[]>(p, [state = state_](std::byte*) { state->returned(); }), size);
  }
  BytesLoan(const BytesLoan&) = delete;
  BytesLoan& operator=(const BytesLoan&) = delete;
  ~BytesLoan() {
    if (!waited_) wait_returned();
  }

  const Bytes& bytes() const { return bytes_; }

  /// Drops the loan's own reference and waits until every copy of bytes() is gone, or until
  /// `give_up()` (checked every 100 ms) says nothing can read the memory any more.
  void wait_returned(const std::function<bool()>& give_up = {}) {
    bytes_ = Bytes();
    waited_ = true;
    std::unique_lock lock(state_->mutex);
    while (!state_->cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return state_->done; }))
      if (give_up && give_up()) return;
  }

 private:
  struct State {
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
    void returned() {
      std::lock_guard lock(mutex);
      done = true;
      cv.notify_all();
    }
  };
  std::shared_ptr<State> state_;
  Bytes bytes_;
  bool waited_ = false;
};

}  // namespace distrib::detail
