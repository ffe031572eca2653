#pragma once
// Framing of messages on a byte stream, without any I/O (sans-IO), so that it can be unit
// tested and fuzzed with plain byte arrays.
//
// One message on the wire:
//   u32 header_bytes | u32 frame_count | u64 frame_size[frame_count]
//   | header (a Cap'n Proto flat array, header_bytes long, a multiple of 8)
//   | frame 0 | frame 1 | ...
// All integers little-endian. Every length is checked against FrameLimits before any
// memory is allocated for it, and the size table and the header are read into storage that
// grows with the bytes that arrive (4 KiB, then doubling up to the declared size): a peer
// that declares 1M frames or a 64 MiB header and sends 8 bytes costs 4 KiB, not 72 MiB.
// Frames are allocated at their declared size only when their turn comes, as memory that
// is not touched (committed) until the bytes are written into it.
#include <capnp/common.h>
#include <kj/array.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "distrib/bytes.hpp"

namespace distrib::detail {

/// How long an accepted connection may take, by default, for the transport's handshake, the
/// token proof and its first complete message (10 s; daemons' --handshake-timeout).
std::chrono::milliseconds default_handshake_timeout();
void set_default_handshake_timeout(std::chrono::milliseconds timeout);

struct FrameLimits {
  std::size_t max_header_bytes = std::size_t{64} << 20;
  std::size_t max_frames = std::size_t{1} << 20;  // a size table of 8 MiB at most, stored as it arrives
  std::uint64_t max_frame_bytes = std::uint64_t{4} << 30;
  std::uint64_t max_message_bytes = std::uint64_t{8} << 30;
  /// The first message an accepted connection reads (the peer's handshake, a few hundred
  /// bytes) may be at most this large, header and frames together.
  std::size_t handshake_message_bytes = std::size_t{64} << 10;
  /// An accepted connection that has not delivered its first message by then is closed.
  std::chrono::milliseconds handshake_timeout = default_handshake_timeout();
  /// A connection whose queued and in-flight writes exceed this stops reading (and handling
  /// what it read) until they drain below half: a peer that never reads cannot grow them.
  std::uint64_t max_queued_write_bytes = std::uint64_t{512} << 20;

  /// These limits, capped for the first message of an accepted connection.
  FrameLimits for_handshake() const {
    FrameLimits l = *this;
    l.max_header_bytes = std::min(l.max_header_bytes, handshake_message_bytes);
    l.max_frames = std::min(l.max_frames, handshake_message_bytes / 8);
    l.max_frame_bytes = std::min<std::uint64_t>(l.max_frame_bytes, handshake_message_bytes);
    l.max_message_bytes = std::min<std::uint64_t>(l.max_message_bytes, handshake_message_bytes);
    return l;
  }
};

/// The peer broke the framing rules; the connection must be closed.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A message ready to be written: its Cap'n Proto header and its out-of-band frames.
struct OutMessage {
  kj::Array<capnp::word> header;
  std::vector<Bytes> frames;
};

/// A message read from the wire.
struct InMessage {
  kj::Array<capnp::word> header;
  std::vector<Bytes> frames;
};

/// Frames at least this large are written straight from their own memory (scatter-gather)
/// rather than copied into the staging buffer with the small parts.
inline constexpr std::size_t kDirectWriteBytes = 64 * 1024;

/// Lays out `messages` for one gathered write. Small parts are copied into `staging`;
/// `parts` receives the sequence of byte ranges to write, in order.
void plan_write(const std::vector<OutMessage>& messages, std::vector<std::byte>& staging,
                std::vector<std::span<const std::byte>>& parts);

/// Appends `m`, framed as on the wire with every frame copied in, to `out` (records that
/// are stored rather than sent: the scheduler's journal).
void append_framed(const OutMessage& m, std::vector<std::byte>& out);

/// Turns a byte stream back into messages. Feed it whatever the socket delivered; for
/// large frames, read straight into `direct_target()` and call `commit_direct`.
class FrameDecoder {
 public:
  explicit FrameDecoder(FrameLimits limits = {}) : limits_(limits) {}

  /// Consumes all of `in`; complete messages are appended to `out`. Throws ProtocolError.
  void feed(std::span<const std::byte> in, std::vector<InMessage>& out);
  /// The unfilled rest of the frame being read, when it is large enough to be worth reading
  /// into directly; empty otherwise.
  std::span<std::byte> direct_target();
  /// Records that `n` bytes were written into direct_target().
  void commit_direct(std::size_t n, std::vector<InMessage>& out);
  /// True between messages (nothing partially read).
  bool idle() const { return stage_ == Stage::prefix && filled_ == 0; }
  /// Checks the next message against `strict` instead; the limits given to the constructor
  /// apply again from the message after it (the handshake of an accepted connection).
  void limit_first_message(const FrameLimits& strict) { active_ = strict; }
  /// Bytes allocated for the message being read: its size table, header and frames.
  std::size_t reserved_bytes() const;

 private:
  enum class Stage { prefix, sizes, header, frames };
  void advance(std::vector<InMessage>& out);
  void advance_or_grow(std::vector<InMessage>& out);
  std::span<std::byte> target();
  void start_header();

  FrameLimits limits_;
  FrameLimits active_ = limits_;  // limits_, or stricter ones for the first message
  std::size_t declared_ = 0;      // bytes of the size table or header the peer declared
  std::uint32_t header_bytes_ = 0, frame_count_ = 0;  // the current message's prefix
  Stage stage_ = Stage::prefix;
  std::size_t filled_ = 0;  // bytes of the current target already filled
  std::byte prefix_[8]{};
  std::vector<std::uint64_t> sizes_;
  std::size_t frame_index_ = 0;
  InMessage current_;
};

}  // namespace distrib::detail
