#include "scheduler/dashboard_data.hpp"

#include <algorithm>
#include <chrono>

#include "core/task_spec.hpp"

namespace distrib::detail {

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void DashboardRecorder::task_finished(const std::string& key, const std::string& worker_address, double duration) {
  const double now = wall_seconds();
  auto prefix = key_prefix(key);
  auto [it, fresh] = prefixes_.try_emplace(prefix);
  if (fresh) it->second.order = next_order_++;
  ++it->second.finished;
  ++completed_;
  if (stream_.size() == kStreamCapacity) stream_.pop_front();
  stream_.push_back(DashboardTaskEvent{key, std::move(prefix), worker_address, now - duration, now});
  if (prefixes_.size() > kMaxPrefixes) {
    // Forget the oldest prefix.
    auto oldest = std::min_element(prefixes_.begin(), prefixes_.end(),
                                   [](const auto& a, const auto& b) { return a.second.order < b.second.order; });
    prefixes_.erase(oldest);
  }
}

void DashboardRecorder::task_erred(const std::string& key) {
  ++erred_;
  auto [it, fresh] = prefixes_.try_emplace(key_prefix(key));
  if (fresh) it->second.order = next_order_++;
}

void DashboardRecorder::worker_metrics(std::uint64_t worker, double cpu_seconds, std::uint32_t executing,
                                       std::uint64_t bytes_in, std::uint64_t bytes_out) {
  const double now = wall_seconds();
  auto& w = workers_[worker];
  if (w.last_time > 0 && now > w.last_time && cpu_seconds >= w.cpu_seconds)
    w.cpu_percent = 100.0 * (cpu_seconds - w.cpu_seconds) / (now - w.last_time);
  w.cpu_seconds = cpu_seconds;
  w.last_time = now;
  w.executing = executing;
  w.bytes_in = bytes_in;
  w.bytes_out = bytes_out;
}

void DashboardRecorder::worker_removed(std::uint64_t worker) {
  auto it = workers_.find(worker);
  if (it == workers_.end()) return;
  removed_bytes_ += it->second.bytes_in;  // keeps the cluster total monotonic
  workers_.erase(it);
}

void DashboardRecorder::worker_registered(std::uint64_t worker, std::uint32_t restarts, bool nanny) {
  auto& w = workers_[worker];
  w.restarts = restarts;
  w.nanny = nanny;
  // Each registration after a restart is one restart seen. (Names cannot tell the nanny's
  // counts apart: a worker named after its address gets a new name with each process.)
  if (restarts > 0) ++restarts_total_;
}

std::shared_ptr<const DashboardSnapshot> DashboardRecorder::snapshot(const sched::SchedulerState& state,
                                                                     const std::string& address) {
  auto s = std::make_shared<DashboardSnapshot>();
  s->time = wall_seconds();
  s->scheduler = address;
  std::uint64_t bytes_in = removed_bytes_;
  for (const auto& w : state.workers()) {
    DashboardWorker row;
    row.name = w.name;
    row.address = w.address;
    row.nthreads = w.nthreads;
    row.memory_bytes = w.memory_bytes;
    row.memory_limit_bytes = w.memory_limit;
    row.managed_bytes = w.managed_bytes;
    row.spilled_bytes = w.spilled_bytes;
    row.paused = w.paused;
    row.processing = w.processing;
    row.stored = w.stored;
    row.stored_bytes = w.stored_bytes;
    if (auto it = workers_.find(w.id); it != workers_.end()) {
      row.cpu_percent = it->second.cpu_percent;
      row.executing = it->second.executing;
      row.bytes_in = it->second.bytes_in;
      row.bytes_out = it->second.bytes_out;
      row.restarts = it->second.restarts;
      row.nanny = it->second.nanny;
    }
    bytes_in += row.bytes_in;
    s->workers.push_back(std::move(row));
  }
  // Per prefix: tasks in the scheduler now, plus those finished and already released.
  auto counts = state.prefix_counts();
  std::vector<std::pair<std::size_t, DashboardPrefix>> rows;
  for (auto& [name, side] : prefixes_) {
    DashboardPrefix p;
    p.name = name;
    if (auto c = counts.find(name); c != counts.end()) {
      p.waiting = c->second.waiting;
      p.processing = c->second.processing;
      p.memory = c->second.memory;
      p.erred = c->second.erred;
      counts.erase(c);
    }
    p.released = side.finished > p.memory ? side.finished - p.memory : 0;
    rows.emplace_back(side.order, std::move(p));
  }
  for (auto& [name, c] : counts) {  // prefixes with no task finished yet
    auto [it, fresh] = prefixes_.try_emplace(name);
    if (fresh) it->second.order = next_order_++;
    rows.emplace_back(it->second.order, DashboardPrefix{name, c.waiting, c.processing, c.memory, c.erred, 0});
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [order, p] : rows) s->prefixes.push_back(std::move(p));
  s->stream.assign(stream_.begin(), stream_.end());
  for (auto& [state_name, n] : state.task_counts()) s->task_states[state_name] = n;
  // Tasks per second over the interval since the last snapshot, smoothed.
  if (last_time_ > 0 && s->time > last_time_) {
    const double instant = static_cast<double>(completed_ - last_completed_) / (s->time - last_time_);
    rate_ = rate_ == 0 ? instant : 0.5 * rate_ + 0.5 * instant;
  }
  last_time_ = s->time;
  last_completed_ = completed_;
  s->tasks_per_second = rate_;
  s->tasks_completed = completed_;
  s->tasks_erred = erred_;
  s->bytes_transferred = bytes_in;
  s->worker_restarts = restarts_total_;
  return s;
}

}  // namespace distrib::detail
