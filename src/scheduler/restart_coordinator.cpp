#include "scheduler/restart_coordinator.hpp"

#include <algorithm>

#include "core/log.hpp"

namespace distrib::detail {

OutMessage restart_reply(const RestartAnswer& a) {
  MessageBuilder mb;
  auto r = mb.root().initRestartReply();
  r.setId(a.id);
  r.setOk(a.ok);
  r.setWorkersBefore(a.workers_before);
  r.setWorkersNow(a.workers_now);
  r.setReason(a.reason);
  return mb.finish();
}

RestartCoordinator::RestartCoordinator(asio::io_context& io, std::function<std::uint32_t()> workers,
                                       std::function<void(std::uint64_t, OutMessage)> send)
    : timer_(io), workers_(std::move(workers)), send_(std::move(send)) {}

void RestartCoordinator::begin(std::uint64_t client, std::uint64_t id, std::uint32_t before,
                               std::chrono::milliseconds timeout, bool wait) {
  const auto now = workers_();
  // Workers an earlier restart still waits for were told to go too: they count here.
  for (const auto& w : waiting_) before = std::max(before, w.answer.workers_before);
  Waiting w{RestartAnswer{client, id, true, before, now, {}}, timeout, Clock::now() + timeout};
  if (!wait || now >= before) return answer(w, now, true);
  waiting_.push_back(std::move(w));
  arm_timer();
}

void RestartCoordinator::workers_changed() {
  if (waiting_.empty()) return;
  const auto now = workers_();
  auto done = std::stable_partition(waiting_.begin(), waiting_.end(),
                                    [&](const Waiting& w) { return now < w.answer.workers_before; });
  for (auto it = done; it != waiting_.end(); ++it) answer(*it, now, true);
  waiting_.erase(done, waiting_.end());
  if (waiting_.empty()) timer_.cancel();
}

void RestartCoordinator::answer(Waiting& w, std::uint32_t now, bool ok) {
  auto& a = w.answer;
  a.ok = ok;
  a.workers_now = now;
  if (!ok) {
    a.reason = "restart: " + std::to_string(now) + " of " + std::to_string(a.workers_before) +
               " workers came back within " + std::to_string(w.timeout.count()) +
               " ms (a worker without a nanny is closed and comes back only if something outside distrib starts it "
               "again); every task was cancelled all the same. Use a longer timeout, or wait_for_workers = false";
    log().warn("{}", a.reason);
  } else {
    log().info("restart: {} workers registered ({} before)", now, a.workers_before);
  }
  send_(a.client, restart_reply(a));
}

void RestartCoordinator::arm_timer() {
  if (waiting_.empty()) return;
  auto first = std::min_element(waiting_.begin(), waiting_.end(),
                                [](const Waiting& a, const Waiting& b) { return a.deadline < b.deadline; });
  timer_.expires_at(first->deadline);
  timer_.async_wait([this](asio::error_code ec) {
    if (!ec) on_timer();
  });
}

void RestartCoordinator::on_timer() {
  const auto now = Clock::now();
  const auto workers = workers_();
  auto late = std::stable_partition(waiting_.begin(), waiting_.end(),
                                    [&](const Waiting& w) { return w.deadline > now; });
  for (auto it = late; it != waiting_.end(); ++it) answer(*it, workers, false);
  waiting_.erase(late, waiting_.end());
  arm_timer();
}

}  // namespace distrib::detail
