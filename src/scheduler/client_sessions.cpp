#include "scheduler/client_sessions.hpp"

namespace distrib::detail {

ClientSessions::Attached ClientSessions::attach(const std::string& token, const std::function<ClientId()>& fresh) {
  if (!token.empty()) {
    if (auto it = by_token_.find(token); it != by_token_.end()) {
      auto& s = sessions_.at(it->second);
      s.connected = true;
      s.said_goodbye = false;
      return {it->second, true};
    }
  }
  auto id = fresh();
  sessions_[id].token = token;
  if (!token.empty()) by_token_[token] = id;
  return {id, false};
}

void ClientSessions::goodbye(ClientId id) {
  if (auto it = sessions_.find(id); it != sessions_.end()) it->second.said_goodbye = true;
}

bool ClientSessions::detach(ClientId id, Clock::time_point now) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return true;
  auto& s = it->second;
  if (s.token.empty() || s.said_goodbye || grace_.count() <= 0) {
    if (!s.token.empty()) by_token_.erase(s.token);
    sessions_.erase(it);
    return true;
  }
  s.connected = false;
  s.vanished_at = now;
  return false;
}

bool ClientSessions::restore(ClientId id, const std::string& token, Clock::time_point now) {
  sessions_[id] = Session{token, true, false, {}};
  if (!token.empty()) by_token_[token] = id;
  return detach(id, now);
}

std::vector<ClientSessions::ClientId> ClientSessions::expired(Clock::time_point now) {
  std::vector<ClientId> out;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (!it->second.connected && now - it->second.vanished_at >= grace_) {
      out.push_back(it->first);
      by_token_.erase(it->second.token);
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

std::size_t ClientSessions::vanished() const {
  std::size_t n = 0;
  for (const auto& [id, s] : sessions_) n += !s.connected;
  return n;
}

}  // namespace distrib::detail
