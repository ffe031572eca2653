#pragma once
// Which accepted connections a listening daemon keeps (issue 17, part 5). File descriptors
// and the memory of a connection are finite, and a stranger can open connections faster
// than their handshake deadline closes them: 2,000 idle connections would exhaust a
// default `ulimit -n` and lock legitimate peers out. So a daemon keeps
//  - at most `max_connections` open connections: past that, a new one is closed at once;
//  - at most `max_unauthenticated` that have not finished their handshake: past that, the
//    oldest of them is closed to make room. A legitimate peer finishes its handshake in
//    milliseconds, so the ones closed are those that connect and say nothing (as sshd's
//    MaxStartups, without its randomness).
// A refusal is logged at most ten times per ten seconds, with the count left out.
#include <cstddef>
#include <deque>
#include <memory>
#include <string>

#include "comm/connection.hpp"
#include "core/log_limiter.hpp"

namespace distrib::detail {

/// The caps of one listening daemon (SchedulerOptions / WorkerOptions `connection_caps`).
/// 0: no cap.
struct ConnectionCaps {
  std::size_t max_connections = 4096;
  std::size_t max_unauthenticated = 256;
};

class Admission {
 public:
  /// `what` names the listener in log lines ("scheduler", "worker 'w1' data port").
  Admission(ConnectionCaps caps, std::string what) : caps_(caps), what_(std::move(what)) {}

  /// A connection was accepted. False: refuse it (the caller closes it and drops it; it
  /// was not counted). True: it is counted until `closed()`; an older connection still
  /// without its handshake may have been closed to make room.
  bool admit(const ConnectionPtr& conn);
  /// A connection admitted before has closed.
  void closed();

  std::size_t open_connections() const { return open_; }
  /// Connections refused or closed by these caps so far.
  std::uint64_t refused() const { return refused_; }

 private:
  void prune_handshaken();

  ConnectionCaps caps_;
  std::string what_;
  std::size_t open_ = 0;
  std::uint64_t refused_ = 0;
  std::deque<std::weak_ptr<Connection>> unauthenticated_;  // oldest first
  LogLimiter log_limiter_;
};

}  // namespace distrib::detail
