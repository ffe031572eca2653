#pragma once
// Framing of messages on a byte stream, without any I/O (sans-IO), so that it can be unit
// tested and fuzzed with plain byte arrays.
//
// One message on the wire:
//   u32 header_bytes | u32 frame_count | u64 frame_size[frame_count]
//   | header (a Cap'n Proto flat array, header_bytes long, a multiple of 8)
//   | frame 0 | frame 1 | ...
// All integers little-endian. Every length is checked against FrameLimits before any
// memory is allocated for it.
#include <capnp/common.h>
#include <kj/array.h>

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "distrib/bytes.hpp"

namespace distrib::detail {

struct FrameLimits {
  std::size_t max_header_bytes = std::size_t{64} << 20;
  std::size_t max_frames = std::size_t{1} << 20;  // the size table is read before it is checked: 8 MiB at most
  std::uint64_t max_frame_bytes = std::uint64_t{4} << 30;
  std::uint64_t max_message_bytes = std::uint64_t{8} << 30;
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

 private:
  enum class Stage { prefix, sizes, header, frames };
  void advance(std::vector<InMessage>& out);
  std::span<std::byte> target();

  FrameLimits limits_;
  Stage stage_ = Stage::prefix;
  std::size_t filled_ = 0;  // bytes of the current target already filled
  std::byte prefix_[8]{};
  std::vector<std::uint64_t> sizes_;
  std::size_t frame_index_ = 0;
  InMessage current_;
};

}  // namespace distrib::detail
