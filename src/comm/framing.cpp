#include "comm/framing.hpp"

#include <algorithm>
#include <cstring>

namespace distrib::detail {

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
    if (filled_ == t.size()) advance(out);
  }
}

std::span<std::byte> FrameDecoder::direct_target() {
  if (stage_ != Stage::frames) return {};
  auto t = target().subspan(filled_);
  if (t.size() < kDirectWriteBytes) return {};
  return t;
}

void FrameDecoder::commit_direct(std::size_t n, std::vector<InMessage>& out) {
  filled_ += n;
  if (filled_ == target().size()) advance(out);
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
      if (header_bytes > limits_.max_header_bytes)
        throw ProtocolError("header of " + std::to_string(header_bytes) + " bytes exceeds the limit of " +
                            std::to_string(limits_.max_header_bytes));
      if (frame_count > limits_.max_frames)
        throw ProtocolError(std::to_string(frame_count) + " frames exceed the limit of " +
                            std::to_string(limits_.max_frames));
      current_ = InMessage{kj::heapArray<capnp::word>(header_bytes / sizeof(capnp::word)), {}};
      sizes_.assign(frame_count, 0);
      stage_ = frame_count > 0 ? Stage::sizes : Stage::header;
      return;
    }
    case Stage::sizes: {
      std::uint64_t total = current_.header.size() * sizeof(capnp::word);
      for (auto s : sizes_) {
        if (s > limits_.max_frame_bytes)
          throw ProtocolError("frame of " + std::to_string(s) + " bytes exceeds the limit of " +
                              std::to_string(limits_.max_frame_bytes));
        if (s > limits_.max_message_bytes - std::min(total, limits_.max_message_bytes))  // no overflow
          throw ProtocolError("message exceeds the limit of " + std::to_string(limits_.max_message_bytes) + " bytes");
        total += s;
        if (total > limits_.max_message_bytes)
          throw ProtocolError("message exceeds the limit of " + std::to_string(limits_.max_message_bytes) + " bytes");
      }
      stage_ = Stage::header;
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
}

}  // namespace distrib::detail
