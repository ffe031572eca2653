#pragma once
// One message connection over a ByteStream (a socket, TLS): a reader that turns bytes into messages and a writer that batches
// every message queued while a write is in flight into the next write (an idle connection
// writes at once, a busy one writes in large batches). Housekeeping that nobody waits on
// can be queued with send_later, which rides along with the next write.
//
// All methods except the constructor must be called on the connection's executor.
#include <asio/steady_timer.hpp>

#include <atomic>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "comm/auth.hpp"
#include "comm/byte_stream.hpp"
#include "comm/framing.hpp"

namespace distrib::detail {

/// How long send_later may hold a message when nothing else is written.
inline constexpr std::chrono::milliseconds kDeferredWriteDelay{2};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using MessageHandler = std::function<void(InMessage&&)>;
  using CloseHandler = std::function<void(const std::string& reason)>;

  /// `side`: whether this end connected or accepted; with a process auth token (auth.hpp)
  /// both ends prove they hold it before any message is read or written.
  Connection(ByteStreamPtr stream, FrameLimits limits = {}, auth::Side side = auth::Side::connector);
  /// A plain socket (tcp://, unix://).
  Connection(StreamSocket socket, FrameLimits limits = {}, auth::Side side = auth::Side::connector)
      : Connection(make_socket_stream(std::move(socket)), limits, side) {}
  ~Connection();

  /// Starts reading. A handler that throws closes the connection with the exception's text.
  void start(MessageHandler on_message, CloseHandler on_close);
  void send(OutMessage m);
  /// Queues `m` in order but does not start a write for it: it goes with the next send(),
  /// or after kDeferredWriteDelay. For releases and frees, which nothing waits on: a round
  /// trip then pays no separate system call and wake-up on each side for them.
  void send_later(OutMessage m);
  /// Closes now; queued writes are dropped. `on_close` runs once, with `reason`.
  void close(const std::string& reason);
  /// Writes what is queued (e.g. an Error message), then closes.
  void close_after_flush(const std::string& reason);
  bool is_open() const { return !closed_; }
  /// Accepted, and the peer's first message (its handshake) not yet read.
  bool awaiting_handshake() const { return awaiting_first_message_; }
  const std::string& peer() const { return peer_; }
  asio::any_io_executor executor() { return stream_->executor(); }
  std::uint64_t bytes_read() const { return bytes_read_; }
  std::uint64_t bytes_written() const { return bytes_written_; }
  /// Bytes of messages queued or being written.
  std::uint64_t pending_write_bytes() const { return pending_write_bytes_; }
  /// The most pending_write_bytes() ever reached.
  std::uint64_t peak_pending_write_bytes() const { return peak_pending_write_bytes_; }
  /// Times reading stopped because pending writes exceeded FrameLimits::max_queued_write_bytes.
  std::uint64_t read_pauses() const { return read_pauses_; }

 private:
  /// The token exchange (auth.hpp), then read_more(); messages sent meanwhile wait.
  void authenticate(std::string token);
  /// Reads until `into` is full, writes until every byte of `parts` is written.
  void read_exactly(asio::mutable_buffer into, ByteStream::IoCompletion done);
  void write_all(std::span<asio::const_buffer> parts, ByteStream::IoCompletion done);
  void authenticated();
  void read_more();
  void on_read(std::size_t n);
  void dispatch(std::vector<InMessage>& messages);
  /// Hands held_ to the handler until the writes pending exceed the limit; true if all went.
  bool deliver_held();
  void queue_message(OutMessage m);
  bool over_write_limit() const { return pending_write_bytes_ > limits_.max_queued_write_bytes; }
  void start_write();
  void arm_deferred_write();

  ByteStreamPtr stream_;
  FrameLimits limits_;
  FrameDecoder decoder_;
  std::string peer_;
  MessageHandler on_message_;
  CloseHandler on_close_;
  std::vector<std::byte> read_buffer_;
  std::vector<OutMessage> queue_;
  std::vector<OutMessage> in_flight_;
  std::vector<std::byte> staging_;
  std::vector<std::span<const std::byte>> parts_;
  std::vector<asio::const_buffer> buffers_;
  asio::steady_timer deferred_timer_;
  bool deferred_armed_ = false;
  bool urgent_queued_ = false;  // the queue holds a message from send(): write it now
  bool writing_ = false;
  bool closed_ = false;
  bool close_pending_ = false;
  auth::Side side_;
  bool authenticating_ = false;  // writes wait until the peer proved it holds the token
  auth::Nonce my_nonce_{}, peer_nonce_{};
  auth::Hello auth_hello_{}, peer_hello_{};
  auth::Proof auth_proof_{}, peer_proof_{};
  asio::const_buffer hello_parts_[1], proof_parts_[1];  // write_all consumes them in place
  asio::steady_timer auth_timer_;
  std::string close_reason_;
  std::uint64_t bytes_read_ = 0;
  std::uint64_t bytes_written_ = 0;
  bool awaiting_first_message_ = false;  // accepted, and the peer's first message not yet read
  std::uint64_t pending_write_bytes_ = 0, in_flight_bytes_ = 0, peak_pending_write_bytes_ = 0;
  std::uint64_t read_pauses_ = 0;
  bool read_paused_ = false;         // over the write limit: no read is outstanding
  std::vector<InMessage> held_;      // read but not yet handled while paused, in order
  std::size_t held_next_ = 0;
};

using ConnectionPtr = std::shared_ptr<Connection>;

/// True for close reasons caused by what the peer sent (logged as warnings by servers).
bool is_bad_input_reason(const std::string& reason);

/// Bytes read and written by every connection of this process (for the dashboard).
std::atomic<std::uint64_t>& process_bytes_read();
std::atomic<std::uint64_t>& process_bytes_written();

}  // namespace distrib::detail
