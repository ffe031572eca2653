#pragma once
// The scheduler's wire adapter: converts messages from registered clients and workers into
// SchedulerState events, and the state's actions into messages, one per destination and
// kind. No sockets: SchedulerServer moves the bytes, and this is unit-tested on its own
// (tests/unit/scheduler_wire_test.cpp). Handshakes, registration, requests that read the
// state without changing it (info, shutdown) and restarts, which coordinate workers over
// time (restart_coordinator.hpp), stay with the server.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "comm/message.hpp"
#include "scheduler/scheduler_state.hpp"

namespace distrib::detail::wire {

enum class PeerKind { client, worker };

/// Maps a worker's data address to its id (for scattered keys), or nullopt if unknown.
using WorkerByAddress = std::function<std::optional<sched::WorkerId>(const std::string& address)>;

/// The events a message from registered peer `id` stands for, appended to `out`. Returns
/// false if the message is not an event message for this kind of peer (the server handles
/// it, or rejects it). Throws on malformed content (the connection is closed).
bool decode_events(MessageReader& mr, PeerKind kind, std::uint64_t id, const WorkerByAddress& worker_by_address,
                   std::vector<sched::Event>& out);

/// A message for one peer, or for every client: the set of workers changed, and each
/// client gets the server's cluster information (`message` is then empty).
struct Outgoing {
  enum class To { worker, client, every_client };
  To to = To::worker;
  std::uint64_t id = 0;
  OutMessage message;
  /// May wait for the connection's next write (Connection::send_later).
  bool later = false;
};

/// Turns `actions` into messages, in the order they must be sent: frees first (a key freed
/// and recomputed in one step must be dropped before it is rebuilt), then computes, client
/// notices, steals (after the computes on the same connection), key locations, cancels,
/// restart notices and the cluster's new shape.
std::vector<Outgoing> encode_actions(const std::vector<sched::Action>& actions);

}  // namespace distrib::detail::wire
