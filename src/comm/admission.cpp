#include "comm/admission.hpp"

#include "core/log.hpp"

namespace distrib::detail {

void Admission::prune_handshaken() {
  std::erase_if(unauthenticated_, [](const std::weak_ptr<Connection>& w) {
    auto c = w.lock();
    return !c || !c->is_open() || !c->awaiting_handshake();
  });
}

bool Admission::admit(const ConnectionPtr& conn) {
  if (caps_.max_connections > 0 && open_ >= caps_.max_connections) {
    ++refused_;
    if (log_limiter_.allow())
      log().warn("{}: refused a connection from {}: {} connections are open (the cap, max_connections){}", what_,
                 conn->peer(), open_, log_limiter_.note());
    return false;
  }
  if (unauthenticated_.size() >= caps_.max_unauthenticated) prune_handshaken();
  while (unauthenticated_.size() >= caps_.max_unauthenticated && !unauthenticated_.empty()) {
    auto oldest = unauthenticated_.front().lock();
    unauthenticated_.pop_front();  // first: its close handler may run inside close()
    if (!oldest || !oldest->is_open() || !oldest->awaiting_handshake()) continue;
    ++refused_;  // the server's close handler logs it, with the reason
    oldest->close("rejected: more than " + std::to_string(caps_.max_unauthenticated) +
                  " connections waiting for their handshake (max_unauthenticated); this was the oldest");
  }
  ++open_;
  if (caps_.max_unauthenticated > 0) unauthenticated_.push_back(conn);
  return true;
}

void Admission::closed() {
  if (open_ > 0) --open_;
}

}  // namespace distrib::detail
