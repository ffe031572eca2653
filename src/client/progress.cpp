#include "distrib/progress.hpp"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>

#include "core/task_spec.hpp"

namespace distrib::detail {

namespace {
struct Counts {
  std::size_t total = 0;
  std::size_t done = 0;
  std::size_t erred = 0;
  int last_decile = -1;  // for line mode
};

bool is_terminal(std::ostream* out) {
  if (out == &std::cerr) return isatty(STDERR_FILENO);
  if (out == &std::cout) return isatty(STDOUT_FILENO);
  return false;
}

std::string bar(const Counts& c, int width) {
  int filled = c.total ? static_cast<int>(width * c.done / c.total) : width;
  return "[" + std::string(filled, '#') + std::string(width - filled, ' ') + "]";
}
}  // namespace

void progress(const std::vector<FutureHandle>& futures, const ProgressOptions& options) {
  struct Shared {
    std::mutex mutex;
    std::condition_variable cv;
    std::map<std::string, Counts> by_prefix;
    std::size_t remaining = 0;
  };
  auto shared = std::make_shared<Shared>();
  for (const auto& f : futures) {
    auto prefix = key_prefix(future_key(*f));
    ++shared->by_prefix[prefix].total;
    ++shared->remaining;
  }
  for (const auto& f : futures) {
    auto prefix = key_prefix(future_key(*f));
    std::weak_ptr<FutureState> weak = f;
    future_on_done(f, [shared, prefix, weak] {
      auto state = weak.lock();
      bool failed = state && future_status(*state) != FutureStatus::finished;
      std::lock_guard lock(shared->mutex);
      auto& c = shared->by_prefix[prefix];
      ++c.done;
      c.erred += failed;
      --shared->remaining;
      shared->cv.notify_all();
    });
  }
  bool bars = options.mode == ProgressOptions::Mode::bars ||
              (options.mode == ProgressOptions::Mode::automatic && is_terminal(options.out));
  auto& out = *options.out;
  std::size_t drawn_lines = 0;
  auto draw = [&](bool final) {
    if (bars) {
      if (drawn_lines) out << "\x1b[" << drawn_lines << "A";  // back to the first bar
      drawn_lines = 0;
      for (auto& [prefix, c] : shared->by_prefix) {
        out << "\r" << bar(c, options.width) << " " << c.done << "/" << c.total << " " << prefix;
        if (c.erred) out << " (" << c.erred << " failed)";
        out << "\x1b[K\n";
        ++drawn_lines;
      }
    } else {
      for (auto& [prefix, c] : shared->by_prefix) {
        int decile = c.total ? static_cast<int>(10 * c.done / c.total) : 10;
        if (decile == c.last_decile && !final) continue;
        if (final && c.last_decile == 10) continue;
        c.last_decile = decile;
        out << prefix << ": " << c.done << "/" << c.total << " done";
        if (c.erred) out << ", " << c.erred << " failed";
        out << "\n";
      }
    }
    out.flush();
  };
  std::unique_lock lock(shared->mutex);
  while (shared->remaining > 0) {
    draw(false);
    shared->cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return shared->remaining == 0; });
  }
  draw(true);
}

}  // namespace distrib::detail
