#include "comm/framing.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>

namespace distrib::detail {

namespace {
std::atomic<std::int64_t> handshake_timeout_ms{10'000};
}
std::chrono::milliseconds default_handshake_timeout() { return std::chrono::milliseconds(handshake_timeout_ms.load()); }
void set_default_handshake_timeout(std::chrono::milliseconds timeout) { handshake_timeout_ms = timeout.count(); }

namespace {
template <class T>
void append_le(std::vector<std::byte>& out, T v) {
  static_assert(std::endian::native == std::endian::little, "distrib assumes a little-endian host");
  auto* p = reinterpret_cast<const std::byte*>(&v);
  out.insert(out.end(), p, p + sizeof v);
}
std::span<const std::byte> header_bytes(const OutMessage& m) {
  return {reinterpret_cast<const std::byte*>(m.header.begin()), m.header.size() * sizeof(capnp::word)};
}
}  // namespace

void plan_write(const std::vector<OutMessage>& messages, std::vector<std::byte>& staging,
                std::vector<std::span<const std::byte>>& parts) {
  // Size the staging buffer first so that spans into it stay valid while it is filled.
  std::size_t staged = 0;
  for (const auto& m : messages) {
    staged += 8 + 8 * m.frames.size() + header_bytes(m).size();
    for (const auto& f : m.frames)
      if (f.size() < kDirectWriteBytes) staged += f.size();
  }
  staging.clear();
  staging.reserve(staged);
  parts.clear();
  std::size_t run_start = 0;  // start of the staged bytes not yet referenced by a part
  auto close_run = [&] {
    if (staging.size() > run_start) parts.emplace_back(staging.data() + run_start, staging.size() - run_start);
    run_start = staging.size();
  };
  for (const auto& m : messages) {
    auto header = header_bytes(m);
    append_le<std::uint32_t>(staging, static_cast<std::uint32_t>(header.size()));
    append_le<std::uint32_t>(staging, static_cast<std::uint32_t>(m.frames.size()));
    for (const auto& f : m.frames) append_le<std::uint64_t>(staging, f.size());
    staging.insert(staging.end(), header.begin(), header.end());
    for (const auto& f : m.frames) {
      if (f.size() < kDirectWriteBytes) {
        staging.insert(staging.end(), f.data(), f.data() + f.size());
      } else {
        close_run();
        parts.emplace_back(f.data(), f.size());
      }
    }
  }
  close_run();
}

void append_framed(const OutMessage& m, std::vector<std::byte>& out) {
  auto header = header_bytes(m);
  std::size_t total = 8 + 8 * m.frames.size() + header.size();
  for (const auto& f : m.frames) total += f.size();
  out.reserve(out.size() + total);
  append_le<std::uint32_t>(out, static_cast<std::uint32_t>(header.size()));
  append_le<std::uint32_t>(out, static_cast<std::uint32_t>(m.frames.size()));
  for (const auto& f : m.frames) append_le<std::uint64_t>(out, f.size());
  out.insert(out.end(), header.begin(), header.end());
  for (const auto& f : m.frames) out.insert(out.end(), f.data(), f.data() + f.size());
}

std::span<std::byte> FrameDecoder::target() {
  switch (stage_) {
    case Stage::prefix:
      return {prefix_, sizeof prefix_};
    case Stage::sizes:
      return {reinterpret_cast<std::byte*>(sizes_.data()), sizes_.size() * 8};
    case Stage::header:
      return {reinterpret_cast<std::byte*>(current_.header.begin()), current_.header.size() * sizeof(capnp::word)};
    case Stage::frames: {
      auto& f = current_.frames[frame_index_];
      return {f.mutable_data(), f.size()};
    }
  }
  return {};
}

void FrameDecoder::feed(std::span<const std::byte> in, std::vector<InMessage>& out) {
  while (!in.empty()) {
    auto t = target();
    std::size_t n = std::min(in.size(), t.size() - filled_);
    std::memcpy(t.data() + filled_, in.data(), n);
    filled_ += n;
    in = in.subspan(n);
    if (filled_ == t.size()) advance_or_grow(out);
  }
}

namespace {
// Storage for `filled` bytes of `declared`, once the part read so far is full.
std::size_t grown_capacity(std::size_t filled, std::size_t declared) {
  return std::min(declared, std::max<std::size_t>(4096, 2 * filled));
}
}  // namespace

// The size table and the header grow as their bytes arrive; anything else is full.
void FrameDecoder::advance_or_grow(std::vector<InMessage>& out) {
  try {
    if (stage_ == Stage::sizes && filled_ < declared_) {
      sizes_.resize(grown_capacity(filled_, declared_) / 8);
      return;
    }
    if (stage_ == Stage::header && filled_ < declared_) {
      auto grown = kj::heapArray<capnp::word>(grown_capacity(filled_, declared_) / sizeof(capnp::word));
      std::memcpy(grown.begin(), current_.header.begin(), filled_);
      current_.header = std::move(grown);
      return;
    }
    advance(out);
  } catch (const std::bad_alloc&) {
    throw ProtocolError("cannot allocate memory for the message being read (" + std::to_string(reserved_bytes()) +
                        " bytes held for it)");
  }
}

std::size_t FrameDecoder::reserved_bytes() const {
  std::size_t n = sizes_.capacity() * 8 + current_.header.size() * sizeof(capnp::word);
  for (const auto& f : current_.frames) n += f.size();
  return n;
}

std::span<std::byte> FrameDecoder::direct_target() {
  if (stage_ != Stage::frames) return {};
  auto t = target().subspan(filled_);
  if (t.size() < kDirectWriteBytes) return {};
  return t;
}

void FrameDecoder::commit_direct(std::size_t n, std::vector<InMessage>& out) {
  filled_ += n;
  if (filled_ == target().size()) advance_or_grow(out);
}

// Moves to the next stage once the current target is full, validating what was read.
void FrameDecoder::advance(std::vector<InMessage>& out) {
  filled_ = 0;
  switch (stage_) {
    case Stage::prefix: {
      std::uint32_t header_bytes = 0, frame_count = 0;
      std::memcpy(&header_bytes, prefix_, 4);
      std::memcpy(&frame_count, prefix_ + 4, 4);
      if (header_bytes == 0 || header_bytes % sizeof(capnp::word) != 0)
        throw ProtocolError("bad header length " + std::to_string(header_bytes) + " (must be a positive multiple of 8)");
      if (header_bytes > active_.max_header_bytes)
        throw ProtocolError("header of " + std::to_string(header_bytes) + " bytes exceeds the limit of " +
                            std::to_string(active_.max_header_bytes));
      if (frame_count > active_.max_frames)
        throw ProtocolError(std::to_string(frame_count) + " frames exceed the limit of " +
                            std::to_string(active_.max_frames));
      // Neither the table nor the header is allocated at its declared size: both start at
      // 4 KiB at most and grow as their bytes arrive (advance_or_grow).
      header_bytes_ = header_bytes;
      frame_count_ = frame_count;
      current_ = InMessage{};
      sizes_.clear();
      if (frame_count > 0) {
        stage_ = Stage::sizes;
        declared_ = std::size_t{frame_count} * 8;
        sizes_.resize(grown_capacity(0, declared_) / 8);
      } else {
        start_header();
      }
      return;
    }
    case Stage::sizes: {
      std::uint64_t total = header_bytes_;
      for (auto s : sizes_) {
        if (s > active_.max_frame_bytes)
          throw ProtocolError("frame of " + std::to_string(s) + " bytes exceeds the limit of " +
                              std::to_string(active_.max_frame_bytes));
        if (s > active_.max_message_bytes - std::min(total, active_.max_message_bytes))  // no overflow
          throw ProtocolError("message exceeds the limit of " + std::to_string(active_.max_message_bytes) + " bytes");
        total += s;
        if (total > active_.max_message_bytes)
          throw ProtocolError("message exceeds the limit of " + std::to_string(active_.max_message_bytes) + " bytes");
      }
      start_header();
      return;
    }
    case Stage::header:
      current_.frames.reserve(sizes_.size());
      break;
    case Stage::frames:
      break;
  }
  // Allocate the next frame only now that all sizes are validated; skip empty frames.
  while (current_.frames.size() < sizes_.size()) {
    current_.frames.push_back(Bytes::allocate(sizes_[current_.frames.size()]));
    if (current_.frames.back().size() > 0) {
      frame_index_ = current_.frames.size() - 1;
      stage_ = Stage::frames;
      return;
    }
  }
  out.push_back(std::move(current_));
  current_ = InMessage{};
  stage_ = Stage::prefix;
  active_ = limits_;  // a stricter limit held for one message only
  if (sizes_.capacity() > 4096 / 8) {  // the next message gets fresh, small storage
    sizes_.clear();
    sizes_.shrink_to_fit();
  }
}

void FrameDecoder::start_header() {
  stage_ = Stage::header;
  declared_ = header_bytes_;
  current_.header = kj::heapArray<capnp::word>(grown_capacity(0, declared_) / sizeof(capnp::word));
}

}  // namespace distrib::detail
