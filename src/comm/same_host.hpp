#pragma once
// Same-host hand-over of values through shared memory, on the wire: who may do it with whom
// (the handshake's sameHost: same boot id, same uid, shared memory on at both ends), writing
// and reading SharedBuffer values, and telling the user once why it fell back to the socket.
// The memory side is core/shared_memory.hpp.
#include <string>

#include "comm/framing.hpp"
#include "core/shared_memory.hpp"
#include "distrib/codec.hpp"
#include "proto/distrib.capnp.h"

namespace distrib::detail {

/// Values smaller than this are copied through the socket: only pooled buffers (1 MiB and
/// more) live in shared memory, and mapping costs more than copying a few pages.
inline constexpr std::size_t kSharedValueBytes = kPooledBufferBytes;

/// Sets `h.sameHost` when shared memory is on in this process.
void offer_same_host(proto::Handshake::Builder h);
/// Whether values may travel as SharedBuffer to and from the peer that sent this handshake:
/// shared memory is on here and the peer offered it with this host's boot id and our uid.
bool same_host_peer(proto::Handshake::Reader h);

/// Writes `v` into `out` as a SharedBuffer if it is large enough and lies in memory that can
/// be shared; false if not (write it as usual then). `freeze`: the caller's memory may be
/// written later (a client's scatter; see shared_memory.hpp).
bool set_shared_value(proto::Value::Builder out, const Value& v, bool freeze);
/// The descriptor of a SharedBuffer value.
shm::Descriptor read_descriptor(proto::SharedBuffer::Reader r);

/// A sharedDone message (the requester is done with the shared values of reply `id`).
OutMessage make_shared_done(std::uint64_t id);

/// Logs, once per process at warning level (later ones at debug), that a hand-over through
/// shared memory with `peer` failed and the socket is used instead, and why.
void note_shared_fallback(const std::string& peer, const std::string& why);

}  // namespace distrib::detail
