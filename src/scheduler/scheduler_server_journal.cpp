// The scheduler server's journal (dscheduler --journal DIR): replaying it on start, and
// the group commit that puts clients' events on disk before what they cause is sent.
#include <asio/post.hpp>

#include <cstdlib>

#include "core/log.hpp"
#include "scheduler/scheduler_server.hpp"

namespace distrib::detail {

using Clock = std::chrono::steady_clock;

namespace {
std::vector<journal::ClientToken> tokens_of(const std::unordered_map<std::uint64_t, std::string>& tokens) {
  std::vector<journal::ClientToken> out;
  for (const auto& [id, token] : tokens) out.push_back({id, token});
  return out;
}
}  // namespace

void SchedulerServer::recover() {
  const auto started = Clock::now();
  journal_ = std::make_unique<journal::Journal>(
      journal::JournalOptions{options_.journal_dir, options_.journal_snapshot_bytes, options_.limits});
  std::vector<sched::Action> ignored;  // nobody to tell yet
  std::size_t snapshot_tasks = 0;
  auto replayed = journal_->replay(
      [&](journal::SnapshotParts&& s) {
        snapshot_tasks = s.state.tasks.size();
        for (auto& c : s.clients) client_tokens_[c.id] = c.token;
        next_id_ = std::max(next_id_, s.next_id);
        try {
          state_.restore(std::move(s.state));
        } catch (const std::invalid_argument& e) {
          throw journal::JournalCorrupt("the snapshot in " + options_.journal_dir + " is inconsistent: " + e.what());
        }
      },
      [&](journal::DecodedEntry&& d) {
        auto& e = *d.event;
        if (auto* c = std::get_if<sched::AddClient>(&e)) {
          client_tokens_[c->client] = d.token;
          next_id_ = std::max(next_id_, c->client + 1);
        } else if (auto* r = std::get_if<sched::RemoveClient>(&e)) {
          client_tokens_.erase(r->client);
        } else if (auto* w = std::get_if<sched::AddWorker>(&e)) {
          next_id_ = std::max(next_id_, w->worker + 1);
        }
        state_.handle(std::move(e), ignored, d.stimulus);
        ignored.clear();
      });
  load_kept_uploads();
  if (replayed.torn_tail)
    log().warn("journal {}: its last record (offset {}) was cut short by a crash while it was written; skipped",
               replayed.journal_path, replayed.torn_offset);
  // The workers it knew are ghosts now: those still alive register again with the keys
  // they hold, and only then is the ghost removed (so a scattered key, which cannot be
  // recomputed, is never without a holder in between). A ghost that does not come back
  // within the worker TTL is removed as a silent worker would be, but safely: its tasks
  // did not kill it.
  const auto now = Clock::now();
  for (const auto& w : state_.workers()) ghosts_[w.name] = {w.id, now + options_.worker_timeout};
  for (const auto& [id, token] : std::unordered_map(client_tokens_))
    if (sessions_.restore(id, token, now)) apply(sched::RemoveClient{id});  // cannot re-attach
  actions_.clear();
  journal_->commit();
  if (options_.validate) state_.validate();
  if (journal_->wants_snapshot()) journal_->snapshot(state_.durable_state(), tokens_of(client_tokens_), next_id_);
  auto ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  if (replayed.had_snapshot || replayed.records > 0)
    log().info("journal {}: recovered {} tasks and {} clients (a snapshot of {} tasks and {} events) in {:.0f} ms",
               options_.journal_dir, state_.n_tasks(), sessions_.vanished(), snapshot_tasks, replayed.records, ms);
  else
    log().info("journal {}: empty, starting afresh", options_.journal_dir);
}

void SchedulerServer::forget_ghost(const std::string& name, const char* why) {
  auto it = ghosts_.find(name);
  if (it == ghosts_.end()) return;
  auto id = it->second.first;
  ghosts_.erase(it);
  log().info("worker '{}' from before the restart {}", name, why);
  handle(sched::RemoveWorker{id, true});
}

void SchedulerServer::remove_late_ghosts(Clock::time_point now) {
  std::vector<std::string> late;
  for (const auto& [name, ghost] : ghosts_)
    if (now >= ghost.second) late.push_back(name);
  for (const auto& name : late) forget_ghost(name, "did not come back: its work goes elsewhere");
}

void SchedulerServer::schedule_commit() {
  if (commit_posted_) return;
  commit_posted_ = true;
  // Posted: every message read in this turn of the loop shares one write and one sync.
  asio::post(io_, [this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    commit_posted_ = false;
    commit_journal();
    auto held = std::move(held_for_sync_);
    held_for_sync_.clear();
    for (auto& o : held) send(o);
    flush(actions_);
  });
}

void SchedulerServer::commit_journal() {
  try {
    journal_->commit();
    if (!journal_->wants_snapshot()) return;
    const auto started = Clock::now();
    journal_->snapshot(state_.durable_state(), tokens_of(client_tokens_), next_id_);
    log().info("journal {}: snapshot of {} tasks in {:.0f} ms", options_.journal_dir, state_.n_tasks(),
               std::chrono::duration<double, std::milli>(Clock::now() - started).count());
  } catch (const std::exception& e) {
    // Going on would acknowledge work that a restart could not bring back.
    log().critical("cannot write the journal in {}: {}; the scheduler stops", options_.journal_dir, e.what());
    log().flush();
    std::_Exit(EXIT_FAILURE);
  }
}

}  // namespace distrib::detail
