#pragma once
// RestartCoordinator: the scheduler's side of client.restart() over time. Once the server
// has cancelled every key (sched::Restart) and told every worker to restart (or, without a
// nanny, to close), each request waits here until as many workers as before have
// registered again, or its timeout passes, and is then answered with restartReply (as
// Dask's Scheduler.restart with wait_for_workers). Runs on the scheduler's io thread; it
// sends nothing itself but through `send`, so the server keeps its connections.
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "comm/message.hpp"

namespace distrib::detail {

/// How one restart request ends.
struct RestartAnswer {
  std::uint64_t client = 0;
  std::uint64_t id = 0;  // the client's request id
  bool ok = true;        // false: not every worker came back in time
  std::uint32_t workers_before = 0;
  std::uint32_t workers_now = 0;
  std::string reason;    // why not ok
};

/// The restartReply message for `a`.
OutMessage restart_reply(const RestartAnswer& a);

class RestartCoordinator {
 public:
  using Clock = std::chrono::steady_clock;
  /// `workers()` counts the registered workers; `send(client, message)` delivers an answer
  /// (a client that left meanwhile is skipped).
  RestartCoordinator(asio::io_context& io, std::function<std::uint32_t()> workers,
                     std::function<void(std::uint64_t, OutMessage)> send);

  /// A restart asked for by `client` (request `id`) began: `before` workers were registered
  /// and were told to go. With `wait`, the answer comes once `before` workers are
  /// registered, or after `timeout`; without, at once. A request made while another waits
  /// counts the workers that one waits for too.
  void begin(std::uint64_t client, std::uint64_t id, std::uint32_t before, std::chrono::milliseconds timeout,
             bool wait);
  /// A worker registered: the requests it completes are answered.
  void workers_changed();
  /// Requests still waiting.
  std::size_t waiting() const { return waiting_.size(); }

 private:
  struct Waiting {
    RestartAnswer answer;
    std::chrono::milliseconds timeout{0};
    Clock::time_point deadline;
  };
  void answer(Waiting& w, std::uint32_t now, bool ok);
  void arm_timer();
  void on_timer();

  asio::steady_timer timer_;
  std::function<std::uint32_t()> workers_;
  std::function<void(std::uint64_t, OutMessage)> send_;
  std::vector<Waiting> waiting_;
};

}  // namespace distrib::detail
