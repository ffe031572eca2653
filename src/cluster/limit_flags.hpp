#pragma once
// The connection limits dscheduler and dworker share (issue 17, part 5): how long a peer
// has for its handshake, and how many connections the daemon keeps.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "comm/admission.hpp"
#include "comm/framing.hpp"

namespace distrib::daemons {

struct LimitFlags {
  double handshake_timeout_s = static_cast<double>(detail::default_handshake_timeout().count()) / 1000;
  detail::ConnectionCaps caps;

  void add_to(CLI::App& app) {
    app.add_option("--handshake-timeout", handshake_timeout_s,
                   "Seconds a peer has, from its connect, for TLS, the token proof and its first message; "
                   "then it is closed")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--max-connections", caps.max_connections,
                   "Connections kept open at once; past it a new one is closed at once (0: no cap)")
        ->capture_default_str();
    app.add_option("--max-unauthenticated-connections", caps.max_unauthenticated,
                   "Connections kept that have not finished their handshake; past it the oldest of them is "
                   "closed (0: no cap)")
        ->capture_default_str();
  }

  /// Applies the flags to a daemon's limits; the handshake timeout also becomes the
  /// process's default, for the connections it makes elsewhere.
  void apply(detail::FrameLimits& limits, detail::ConnectionCaps& connection_caps) const {
    const auto t = std::chrono::milliseconds(static_cast<std::int64_t>(handshake_timeout_s * 1000));
    detail::set_default_handshake_timeout(t);
    limits.handshake_timeout = t;
    connection_caps = caps;
  }
};

}  // namespace distrib::daemons
