#pragma once
// Large buffers that another process of the same user on this host can map: each one is a
// memfd, mapped here at a 2 MiB-aligned address. A value moves to a same-host peer as a
// descriptor (our pid, the fd, its inode, a range); the peer opens /proc/<pid>/fd/<fd> and
// maps the same pages, so a 1 GB value changes hands without being copied or touched.
//
// Why the rules below:
// - A buffer described to a peer is reused by the pool only once no peer maps it any more:
//   each peer holds a shared flock on the file while it maps it, and the pool tries an
//   exclusive one (fresh pages cost 0.5-1 GB/s to fill on the VMs measured, reused ones
//   about 10 GB/s). Until then, or if nobody asks for that size, it waits in the pool; when
//   it is finally freed its pages live on as long as a peer maps them. Buffers are sealed
//   against resizing when made, so a peer's mapping can never lose pages (SIGBUS).
// - Peers map copy-on-write: a task may write to its input, as to one received by socket,
//   and the holder never sees it.
// - A worker's stored values are immutable by contract (a task that writes to its input
//   already changes it for every other task of that worker), so describing them costs
//   nothing. Memory the user may still write (a client's NDArray being scattered) is
//   *frozen* first: our own mapping becomes a copy-on-write one of the same file, so a
//   later write here (refilling the array) copies the page for us alone and the peer keeps
//   the bytes as scattered. Freezing walks the page tables: 40-90 ms per GB here, paid
//   once per buffer.
// - A peer keeps the fd it opened for as long as it maps the buffer (its lock), so a worker
//   can describe a value it received onward (a scatter, then a gather from that worker).
//   Past the fd budget, values are not mapped but sent through the socket.
// - Everything degrades to ordinary memory and sockets: shared memory off
//   (DISTRIB_SHARED_MEMORY=0), no memfd in the kernel, the fd budget spent.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "distrib/bytes.hpp"

namespace distrib::detail::shm {

/// What a peer needs to map part of one of our buffers.
struct Descriptor {
  std::uint32_t pid = 0;
  std::int32_t fd = -1;
  std::uint64_t inode = 0;   // checked by the peer: the fd number could name another file by then
  std::uint64_t offset = 0;  // of the first byte in the file
  std::uint64_t length = 0;
  std::uint64_t generation = 0;  // of the file's contents: a reused buffer's is higher
};

/// On unless DISTRIB_SHARED_MEMORY is "0", "off" or "false", and memfd works here. Decided
/// once per process; the first call also raises the soft RLIMIT_NOFILE to the hard limit
/// (each shared buffer holds an fd).
bool enabled();

/// A new buffer of `capacity` bytes (a multiple of 2 MiB) in a memfd, mapped read-write at a
/// 2 MiB-aligned address, or nullptr: shared memory off, fd budget spent, or the kernel
/// refused (the caller then uses ordinary memory).
std::byte* create(std::size_t capacity);
/// Whether the pool may hand a buffer from create() out again: never described, or no peer
/// maps it any more (then it is made ours alone again). Cheap: a flock that does not wait.
bool reclaim(const std::byte* p);
/// Unmaps and closes a buffer from create().
void destroy(std::byte* p);

/// A descriptor of [data, data + size) if it lies in a buffer that can be shared (one of
/// ours, or a peer's mapping whose fd we kept); nullopt otherwise. `freeze`: the caller may
/// write to this memory later (see above); a peer's mapping cannot be frozen (where we
/// wrote to it, the file no longer has our bytes), so it is not described then.
std::optional<Descriptor> describe(const std::byte* data, std::size_t size, bool freeze);

/// Maps a peer's descriptor: the Bytes own the mapping (copy-on-write: a task may write to
/// its input as to a received one, the holder never sees it). Empty `error` on success.
struct Mapped {
  Bytes bytes;
  std::string error;
};
Mapped map(const Descriptor& d);

/// Figures for this process.
struct Stats {
  std::uint64_t bytes_described = 0;  // so far: bytes handed to peers as descriptors
  std::uint64_t bytes_mapped = 0;     // so far: bytes mapped from peers
  std::uint64_t exported_bytes = 0;   // now: our buffers that were described and are still held here
  std::uint64_t mapped_bytes = 0;     // now: peers' buffers mapped here
  std::uint64_t fds = 0;              // now: fds held for shared buffers
  std::uint64_t fd_budget = 0;
};
Stats stats();

/// Bytes of described buffers that the pool keeps until no peer maps them (their last
/// Bytes here is gone; defined in buffer_pool.cpp).
std::uint64_t lent_bytes();

/// Tests: a budget of fds for shared buffers other than the default (half the soft
/// RLIMIT_NOFILE, at most 32768); returns the previous one.
std::uint64_t set_fd_budget_for_testing(std::uint64_t budget);

}  // namespace distrib::detail::shm
