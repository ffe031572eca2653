// FrameDecoder over arbitrary bytes, fed in chunks of a size the input chooses, through
// feed() or the direct-read path. Every message it yields must frame back to the same bytes.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "comm/framing.hpp"

using namespace distrib::detail;

namespace {
FrameLimits small_limits() {
  FrameLimits l;
  l.max_header_bytes = 1 << 16;
  l.max_frames = 64;
  l.max_frame_bytes = 1 << 20;
  l.max_message_bytes = 1 << 21;
  return l;
}

// Feeds `in` to `d`; returns false on a ProtocolError.
bool decode(std::span<const std::byte> in, std::size_t chunk, bool direct, std::vector<InMessage>& out) {
  FrameDecoder d(small_limits());
  try {
    while (!in.empty()) {
      if (direct) {
        auto t = d.direct_target();
        if (!t.empty()) {
          std::size_t n = std::min({t.size(), in.size(), chunk * 4096});
          std::memcpy(t.data(), in.data(), n);
          d.commit_direct(n, out);
          in = in.subspan(n);
          continue;
        }
      }
      std::size_t n = std::min(chunk, in.size());
      d.feed(in.first(n), out);
      in = in.subspan(n);
    }
  } catch (const ProtocolError&) {
    return false;
  }
  return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::size_t chunk = data[0] % 32 + 1;
  bool direct = data[0] & 0x80;
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  std::vector<InMessage> out;
  decode(in, chunk, direct, out);
  // The messages decoded re-frame to a prefix of the input, and decode again to themselves.
  std::vector<std::byte> again;
  for (auto& m : out) {
    OutMessage om{kj::heapArray<capnp::word>(m.header.size()), m.frames};
    std::memcpy(om.header.begin(), m.header.begin(), m.header.size() * sizeof(capnp::word));
    append_framed(om, again);
  }
  if (again.size() > in.size() || !std::equal(again.begin(), again.end(), in.begin())) std::abort();
  std::vector<InMessage> twice;
  if (!decode(again, 7, !direct, twice) || twice.size() != out.size()) std::abort();
  return 0;
}
