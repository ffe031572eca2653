#pragma once
// A cap on how often one kind of log line is written (issue 17, part 5). A peer that opens
// thousands of connections, or a listener out of file descriptors, would otherwise write one
// line per event: hundreds of MB in seconds, and the disk or the log collector is the next
// thing to fail. Up to `burst` lines go out per `interval`; past that they are counted, and
// the next line written says how many were left out.
#include <chrono>
#include <cstdint>
#include <string>

namespace distrib::detail {

class LogLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LogLimiter(std::uint32_t burst = 10, Clock::duration interval = std::chrono::seconds(10))
      : burst_(burst), interval_(interval) {}

  /// Whether a line may be written now. When it may, `suppressed()` is the number of lines
  /// left out since the last one written (0 most of the time), for the caller to mention.
  bool allow(Clock::time_point now = Clock::now()) {
    if (now - window_start_ >= interval_) {
      window_start_ = now;
      written_in_window_ = 0;
    }
    if (written_in_window_ >= burst_) {
      ++pending_suppressed_;
      return false;
    }
    ++written_in_window_;
    suppressed_ = pending_suppressed_;
    pending_suppressed_ = 0;
    return true;
  }
  std::uint64_t suppressed() const { return suppressed_; }

  /// " (N similar lines left out)" after an allowed line's text, or "" when none were.
  std::string note() const {
    return suppressed_ == 0 ? std::string() : " (" + std::to_string(suppressed_) + " similar line(s) left out before this one)";
  }

 private:
  std::uint32_t burst_;
  Clock::duration interval_;
  Clock::time_point window_start_{};
  std::uint32_t written_in_window_ = 0;
  std::uint64_t pending_suppressed_ = 0;
  std::uint64_t suppressed_ = 0;
};

}  // namespace distrib::detail
