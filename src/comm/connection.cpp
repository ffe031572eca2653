#include "comm/connection.hpp"

#include <asio/read.hpp>
#include <asio/write.hpp>

#include <kj/exception.h>

#include "core/log.hpp"
#include "distrib/errors.hpp"

namespace distrib::detail {

std::atomic<std::uint64_t>& process_bytes_read() {
  static std::atomic<std::uint64_t> n{0};
  return n;
}
std::atomic<std::uint64_t>& process_bytes_written() {
  static std::atomic<std::uint64_t> n{0};
  return n;
}

namespace {
constexpr std::size_t kReadBufferBytes = 256 * 1024;  // once the peer's first message is read
constexpr std::size_t kFirstReadBufferBytes = 4 * 1024;  // until then, on an accepted connection

std::uint64_t message_bytes(const OutMessage& m) {
  std::uint64_t n = 8 + 8 * m.frames.size() + m.header.size() * sizeof(capnp::word);
  for (const auto& f : m.frames) n += f.size();
  return n;
}

}  // namespace

Connection::Connection(ByteStreamPtr stream, FrameLimits limits, auth::Side side)
    : stream_(std::move(stream)),
      limits_(limits),
      decoder_(limits),
      peer_(stream_->peer()),
      deferred_timer_(stream_->executor()),
      side_(side),
      auth_timer_(stream_->executor()) {
  if (side == auth::Side::acceptor) {
    // Until the peer's first message (its handshake) is read, an accepted connection holds
    // little: a small read buffer and strict limits on that message.
    awaiting_first_message_ = true;
    decoder_.limit_first_message(limits.for_handshake());
  }
}

// Each call moves as much as the kernel takes (Asio's transfer_all stops at 64 KiB a call:
// a 1 GB frame would take 16,000 trips through the reactor).
void Connection::read_exactly(asio::mutable_buffer into, ByteStream::IoCompletion done) {
  auto self = shared_from_this();
  stream_->async_read_some(into, [this, self, into, done = std::move(done)](asio::error_code ec, std::size_t n) mutable {
    if (ec || n == into.size()) return done(ec, n);
    read_exactly(into + n, [done = std::move(done), n](asio::error_code ec2, std::size_t m) mutable { done(ec2, n + m); });
  });
}

// `parts` is consumed in place: the first part shrinks, written parts are dropped.
void Connection::write_all(std::span<asio::const_buffer> parts, ByteStream::IoCompletion done) {
  auto self = shared_from_this();
  stream_->async_write_some(parts, [this, self, parts, done = std::move(done)](asio::error_code ec, std::size_t n) mutable {
    std::size_t left = n;
    while (!parts.empty() && left >= parts.front().size()) {
      left -= parts.front().size();
      parts = parts.subspan(1);
    }
    if (ec || parts.empty()) return done(ec, n);
    parts.front() += left;
    write_all(parts, [done = std::move(done), n](asio::error_code ec2, std::size_t m) mutable { done(ec2, n + m); });
  });
}

Connection::~Connection() = default;

void Connection::start(MessageHandler on_message, CloseHandler on_close) {
  on_message_ = std::move(on_message);
  on_close_ = std::move(on_close);
  authenticating_ = true;  // writes wait until the transport's handshake and the token check pass
  auto self = shared_from_this();
  // One deadline covers the transport's handshake, the token proof and, on an accepted
  // connection, the peer's first message: a peer that connects and says nothing, or drips
  // bytes, is closed once it passes.
  auth_timer_.expires_after(limits_.handshake_timeout);
  auth_timer_.async_wait([this, self](asio::error_code ec) {
    if (ec || closed_) return;
    if (authenticating_) return close("rejected: the handshake timed out (no valid TLS handshake or token proof)");
    if (awaiting_first_message_)
      close("rejected: no handshake message within " + std::to_string(limits_.handshake_timeout.count()) + " ms");
  });
  stream_->async_handshake([this, self](asio::error_code ec) {
    if (closed_) return;
    if (ec) return close("rejected: " + ec.message());
    auto token = stream_->auth_token() ? stream_->auth_token() : auth::process_token();
    if (token && !token->empty()) return authenticate(std::move(*token));
    authenticated();
  });
}

// Both ends run the same four steps: write our hello, read theirs, write our proof, read
// theirs (each end writes before it reads, so neither waits for the other). Only fixed,
// small reads happen before the peer is proven: nothing it declares is allocated.
void Connection::authenticate(std::string token) {
  my_nonce_ = auth::fresh_nonce();
  auth_hello_ = auth::make_hello(my_nonce_);
  hello_parts_[0] = asio::buffer(auth_hello_);
  auto self = shared_from_this();
  write_all(hello_parts_, [this, self, token](asio::error_code ec, std::size_t) {
    if (ec) return close("authentication failed: " + ec.message());
    read_exactly(asio::buffer(peer_hello_), [this, self, token](asio::error_code ec2, std::size_t) {
      if (ec2) return close(ec2 == asio::error::eof ? "rejected: the peer closed the connection before authenticating"
                                                    : "authentication failed: " + ec2.message());
      auto nonce = auth::read_hello(peer_hello_);
      if (!nonce) return close("rejected: the peer did not authenticate (is it given the cluster's auth token?)");
      if (*nonce == my_nonce_) return close("rejected: the peer echoed our nonce");
      peer_nonce_ = *nonce;
      const bool connector = side_ == auth::Side::connector;
      const auto& c = connector ? my_nonce_ : peer_nonce_;
      const auto& a = connector ? peer_nonce_ : my_nonce_;
      auth_proof_ = auth::make_proof(token, side_, c, a);
      const auto peer_side = connector ? auth::Side::acceptor : auth::Side::connector;
      auto expected = auth::make_proof(token, peer_side, c, a);
      proof_parts_[0] = asio::buffer(auth_proof_);
      write_all(proof_parts_, [this, self, expected](asio::error_code ec3, std::size_t) {
        if (ec3) return close("authentication failed: " + ec3.message());
        read_exactly(asio::buffer(peer_proof_), [this, self, expected](asio::error_code ec4, std::size_t) {
          if (ec4) return close(ec4 == asio::error::eof ? "rejected: the peer refused our token (a different one?)"
                                                        : "authentication failed: " + ec4.message());
          if (!auth::proofs_equal(peer_proof_, expected)) return close("rejected: wrong auth token");
          authenticated();
        });
      });
    });
  });
}

void Connection::authenticated() {
  authenticating_ = false;
  if (!awaiting_first_message_) auth_timer_.cancel();
  read_buffer_.resize(awaiting_first_message_ ? kFirstReadBufferBytes : kReadBufferBytes);
  if (!queue_.empty() && !writing_) start_write();
  read_more();
}

void Connection::read_more() {
  if (closed_) return;
  if (held_next_ < held_.size() || over_write_limit()) {
    // The peer is not reading what we write: stop reading (and answering) it until the
    // writes drain below half the limit (start_write resumes).
    if (!read_paused_) ++read_pauses_;
    read_paused_ = true;
    return;
  }
  auto self = shared_from_this();
  auto direct = decoder_.direct_target();
  if (!direct.empty()) {
    // A large frame: read straight into its final buffer, no staging copy.
    read_exactly(asio::buffer(direct.data(), direct.size()), [this, self](asio::error_code ec, std::size_t n) {
                       if (ec) return close(ec == asio::error::eof ? "peer closed the connection" : ec.message());
                       bytes_read_ += n;
  process_bytes_read().fetch_add(n, std::memory_order_relaxed);
                       std::vector<InMessage> messages;
                       try {
                         decoder_.commit_direct(n, messages);
                       } catch (const ProtocolError& e) {
                         return close(std::string("protocol error: ") + e.what());
                       }
                       dispatch(messages);
                       read_more();
                     });
    return;
  }
  stream_->async_read_some(asio::buffer(read_buffer_), [this, self](asio::error_code ec, std::size_t n) {
    if (ec) return close(ec == asio::error::eof ? "peer closed the connection" : ec.message());
    on_read(n);
  });
}

void Connection::on_read(std::size_t n) {
  bytes_read_ += n;
  process_bytes_read().fetch_add(n, std::memory_order_relaxed);
  std::vector<InMessage> messages;
  try {
    decoder_.feed(std::span<const std::byte>(read_buffer_.data(), n), messages);
  } catch (const ProtocolError& e) {
    dispatch(messages);  // messages completed before the bad bytes are still valid
    return close(std::string("protocol error: ") + e.what());
  }
  dispatch(messages);
  read_more();
}

void Connection::dispatch(std::vector<InMessage>& messages) {
  for (auto& m : messages) held_.push_back(std::move(m));
  deliver_held();
}

bool Connection::deliver_held() {
  while (held_next_ < held_.size()) {
    if (closed_ || close_pending_) break;
    if (over_write_limit()) return false;  // the rest waits: read_more pauses
    auto m = std::move(held_[held_next_++]);
    try {
      on_message_(std::move(m));
    } catch (const std::exception& e) {
      close(std::string("bad message: ") + e.what());
    } catch (const kj::Exception& e) {
      close("malformed message: " + std::string(e.getDescription().cStr()));
    } catch (...) {
      close("bad message");
    }
    if (awaiting_first_message_ && !closed_) {
      // The handshake is in: the deadline is met and the normal read buffer replaces the
      // small one (no read is outstanding while messages are handled).
      awaiting_first_message_ = false;
      auth_timer_.cancel();
      read_buffer_.resize(kReadBufferBytes);
    }
  }
  held_.clear();
  held_next_ = 0;
  return !closed_ && !close_pending_;
}

void Connection::queue_message(OutMessage m) {
  pending_write_bytes_ += message_bytes(m);
  peak_pending_write_bytes_ = std::max(peak_pending_write_bytes_, pending_write_bytes_);
  queue_.push_back(std::move(m));
}

void Connection::send(OutMessage m) {
  if (closed_ || close_pending_) return;
  queue_message(std::move(m));
  urgent_queued_ = true;
  if (!writing_) start_write();
}

void Connection::send_later(OutMessage m) {
  if (closed_ || close_pending_) return;
  queue_message(std::move(m));
  if (!writing_) arm_deferred_write();  // else the write's completion decides
}

void Connection::arm_deferred_write() {
  if (deferred_armed_) return;
  deferred_armed_ = true;
  deferred_timer_.expires_after(kDeferredWriteDelay);
  deferred_timer_.async_wait([this, self = shared_from_this()](asio::error_code ec) {
    deferred_armed_ = false;
    // A write in flight takes the queue with it; an empty queue: a send() took it already.
    if (ec || closed_ || writing_ || queue_.empty()) return;
    urgent_queued_ = true;  // the delay is over: write what waited
    start_write();
  });
}

void Connection::start_write() {
  if (authenticating_) return;  // authenticated() writes what waited
  if (queue_.empty()) {
    if (close_pending_) close(close_reason_);
    return;
  }
  if (!urgent_queued_ && !close_pending_) return arm_deferred_write();  // only deferred ones
  writing_ = true;
  urgent_queued_ = false;
  in_flight_.swap(queue_);
  in_flight_bytes_ = 0;
  for (const auto& m : in_flight_) in_flight_bytes_ += message_bytes(m);
  plan_write(in_flight_, staging_, parts_);
  buffers_.clear();
  for (auto p : parts_) buffers_.emplace_back(p.data(), p.size());
  auto self = shared_from_this();
  write_all(buffers_, [this, self](asio::error_code ec, std::size_t n) {
    writing_ = false;
    in_flight_.clear();
    pending_write_bytes_ -= in_flight_bytes_;
    in_flight_bytes_ = 0;
    if (ec) return close("write failed: " + ec.message());
    bytes_written_ += n;
    process_bytes_written().fetch_add(n, std::memory_order_relaxed);
    start_write();
    if (read_paused_ && !closed_ && pending_write_bytes_ <= limits_.max_queued_write_bytes / 2) {
      read_paused_ = false;
      deliver_held();
      read_more();  // pauses again if the handlers filled the queue past the limit
    }
  });
}

void Connection::close_after_flush(const std::string& reason) {
  if (closed_) return;
  close_pending_ = true;
  close_reason_ = reason;
  if (!writing_) start_write();
}

void Connection::close(const std::string& reason) {
  if (closed_) return;
  closed_ = true;
  deferred_timer_.cancel();
  auth_timer_.cancel();
  stream_->close();
  queue_.clear();
  held_.clear();
  held_next_ = 0;
  pending_write_bytes_ = in_flight_bytes_;
  if (on_close_) {
    auto handler = std::move(on_close_);
    on_close_ = nullptr;
    handler(reason);
  }
  on_message_ = nullptr;  // break cycles through captured owners
}

bool is_bad_input_reason(const std::string& reason) {
  for (const char* prefix : {"protocol error", "bad message", "malformed", "rejected"})
    if (reason.rfind(prefix, 0) == 0) return true;
  return false;
}

}  // namespace distrib::detail
