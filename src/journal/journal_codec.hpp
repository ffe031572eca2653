#pragma once
// The journal's records: SchedulerState events (and snapshots of the durable state) to
// and from JournalEntry messages (proto/journal.capnp). No I/O.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "comm/framing.hpp"
#include "scheduler/scheduler_state.hpp"

namespace distrib::detail::journal {

/// A client's scheduler-side id and its own id (the token it re-attaches with).
struct ClientToken {
  sched::ClientId id = 0;
  std::string token;
};

/// Whether `e` goes into the journal: metrics do not, they change nothing durable.
bool is_journaled(const sched::Event& e);
/// Whether `e` came from a client (a submission, release, cancel, scatter, a client
/// joining or leaving, a restart): it is on disk before what it causes reaches a client.
bool needs_sync(const sched::Event& e);

/// One event as a record; `token` goes with an AddClient.
OutMessage encode_event(const sched::Event& e, sched::StimulusId stimulus, const std::string& token = {});

/// Tasks per snapshot record: records stay far below the frame limits.
inline constexpr std::size_t kSnapshotTasksPerRecord = 4096;

/// A snapshot as records: a header (clients, workers, counters), then the tasks.
void encode_snapshot(const sched::DurableState& state, const std::vector<ClientToken>& clients,
                     std::uint64_t next_id, const std::function<void(OutMessage)>& emit);

/// Gathers a snapshot's records.
struct SnapshotParts {
  sched::DurableState state;
  std::vector<ClientToken> clients;
  std::uint64_t next_id = 1;
  std::uint64_t expected_tasks = 0;
  bool has_header = false;
  bool complete() const { return has_header && state.tasks.size() == expected_tasks; }
};

/// One record read back: an event, or a part of a snapshot (added to `snapshot`).
struct DecodedEntry {
  sched::StimulusId stimulus = 0;
  std::optional<sched::Event> event;
  std::string token;  // with an AddClient
};
/// Throws std::invalid_argument for a record that is not a journal entry this version knows.
DecodedEntry decode_entry(const InMessage& m, SnapshotParts& snapshot);

}  // namespace distrib::detail::journal
