#pragma once
// What a listening socket does when accept fails (issue 17, part 5): out of file descriptors
// (EMFILE with `ulimit -n` reached), accept fails again at once, and retrying at once spins
// a core and, logging each failure, writes hundreds of MB of the same line. It waits
// instead, 1 ms doubling to 1 s, until an accept succeeds, and logs at most every 10 s,
// with the count of failures since.
#include <asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <string>

#include "core/log.hpp"
#include "core/log_limiter.hpp"

namespace distrib::detail {

class AcceptBackoff {
 public:
  explicit AcceptBackoff(const asio::any_io_executor& executor) : timer_(executor) {}

  /// An accept of `what` failed: calls `retry` after the current delay.
  void failed(const asio::error_code& ec, const std::string& what, std::function<void()> retry) {
    if (log_limiter_.allow())
      log().warn("{}: accept failed: {}; waiting {} ms before the next{}", what, ec.message(), delay_.count(),
                 log_limiter_.note());
    timer_.expires_after(delay_);
    delay_ = std::min(delay_ * 2, kMaxDelay);
    timer_.async_wait([retry = std::move(retry)](asio::error_code e) {
      if (!e) retry();
    });
  }
  /// An accept succeeded: the next failure waits the shortest delay again.
  void succeeded() { delay_ = kFirstDelay; }
  void cancel() { timer_.cancel(); }

 private:
  static constexpr std::chrono::milliseconds kFirstDelay{1};
  static constexpr std::chrono::milliseconds kMaxDelay{1000};
  asio::steady_timer timer_;
  std::chrono::milliseconds delay_ = kFirstDelay;
  LogLimiter log_limiter_{1, std::chrono::seconds(10)};  // one line per 10 s, with the count left out
};

}  // namespace distrib::detail
