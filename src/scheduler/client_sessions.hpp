#pragma once
// ClientSessions: which scheduler-side client id each connected or recently vanished client
// has, by the unique id the client sends in its handshake. A client whose connection drops
// keeps its id (and so its wanted keys) for a grace period; re-attaching within it gets
// the same id back, and only once the grace runs out is the client removed. Clients that
// say goodbye, and clients that send no id, are removed at once (as Dask does). No I/O:
// the server calls it on a client's handshake, a client's goodbye and close, and on a timer.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

namespace distrib::detail {

class ClientSessions {
 public:
  using Clock = std::chrono::steady_clock;
  using ClientId = std::uint64_t;
  /// Longest client id accepted: an unidentified peer gets little memory.
  static constexpr std::size_t kMaxTokenLength = 128;

  explicit ClientSessions(std::chrono::milliseconds grace) : grace_(grace) {}

  struct Attached {
    ClientId id = 0;
    /// The id was kept from an earlier connection: its keys are still wanted and the
    /// client should hear about those already finished.
    bool resumed = false;
  };
  /// A client's handshake with `token` (its own unique id, "" if it sent none); `fresh`
  /// makes a new scheduler-side id. Re-attaching to a session that still has a live
  /// connection takes the session over (that connection is stale).
  Attached attach(const std::string& token, const std::function<ClientId()>& fresh);
  /// The client said goodbye: its session ends when its connection closes.
  void goodbye(ClientId id);
  /// The client's connection closed at `now`. True: remove the client now; false: its
  /// session waits out the grace period.
  bool detach(ClientId id, Clock::time_point now);
  /// A client known from the journal of a scheduler that restarted: it is as if its
  /// connection had just dropped at `now`. True: remove it now (it has no token, or there
  /// is no grace); false: it may re-attach within the grace period.
  bool restore(ClientId id, const std::string& token, Clock::time_point now);
  /// Vanished clients whose grace ran out by `now`, to remove; forgotten here.
  std::vector<ClientId> expired(Clock::time_point now);
  /// Clients waiting in their grace period.
  std::size_t vanished() const;

 private:
  struct Session {
    std::string token;
    bool connected = true;
    bool said_goodbye = false;
    Clock::time_point vanished_at{};
  };
  std::chrono::milliseconds grace_;
  std::unordered_map<ClientId, Session> sessions_;
  std::unordered_map<std::string, ClientId> by_token_;
};

}  // namespace distrib::detail
