#pragma once
// Helpers shared by the harnesses: fuzz bytes as a message (header + frames) without the
// framing layer, so that decoders are reached by inputs that need not be well framed.
#include <kj/exception.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "comm/framing.hpp"

namespace distrib::fuzz {

/// Layout: u8 frame_count (mod 4) | u8 frame_size[frame_count] | frames | header (the rest,
/// cut to a multiple of 8). Returns false when too short for a header.
inline bool message_from_bytes(std::span<const std::uint8_t> in, detail::InMessage& m) {
  if (in.empty()) return false;
  std::size_t frames = in[0] % 4;
  in = in.subspan(1);
  if (in.size() < frames) return false;
  std::size_t sizes[4]{};
  for (std::size_t i = 0; i < frames; ++i) sizes[i] = in[i];
  in = in.subspan(frames);
  for (std::size_t i = 0; i < frames; ++i) {
    std::size_t n = std::min(sizes[i], in.size());
    m.frames.push_back(Bytes::copy_of(in.data(), n));
    in = in.subspan(n);
  }
  std::size_t words = in.size() / sizeof(capnp::word);
  if (words == 0) return false;
  m.header = kj::heapArray<capnp::word>(words);
  std::memcpy(m.header.begin(), in.data(), words * sizeof(capnp::word));
  return true;
}

}  // namespace distrib::fuzz
