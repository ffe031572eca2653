#pragma once
// The on-disk form of one spilled value: one file per value, named by a counter (never by
// the key, which may hold any characters and be any length), holding
//
//   [header: magic, version, flags, payload offset and lengths, type string][zero padding]
//   [payload, starting at a multiple of 4096 bytes]
//
// The payload is the Value's bytes as they were (uncompressed), so a value comes back by
// mmap of the payload alone: a page-aligned buffer, no read into a new buffer, no decoding
// (an NDArray's elements then sit at 8 + 8 * ndim bytes, aligned for every dtype as on the
// wire). Or, when written with compression and its first block shrank, a sequence of lz4
// blocks (each a u32 length, its top bit set for a block stored raw, then its bytes), read
// back with one read and decompressed.
//
// The writer only puts the bytes in the page cache (no fsync): a spill file has no use after
// its worker is gone, so durability buys nothing, and the kernel writes it back on its own.
#include <cstdint>
#include <string>

#include "distrib/codec.hpp"

namespace distrib::detail::wrk {

inline constexpr std::uint64_t kSpillAlignment = 4096;

/// What a spill file holds: kept in memory by the store, so reading a value back needs no
/// read of its header.
struct SpillFileInfo {
  std::uint64_t payload_offset = 0;  // a multiple of kSpillAlignment
  std::uint64_t stored_bytes = 0;    // payload bytes in the file (compressed, if compressed)
  std::uint64_t value_bytes = 0;     // the Value's bytes
  bool compressed = false;
  std::uint64_t file_bytes() const { return payload_offset + stored_bytes; }
};

/// Whether this build has lz4 (without it, compression is never used).
bool spill_compression_available();

/// The file name of the spill file with this id.
std::string spill_file_name(std::uint64_t id);

struct SpillWriteResult {
  SpillFileInfo info;
  int error = 0;      // errno of the failure; 0 on success
  std::string what;   // the failed call and errno's text, on failure
};

/// Writes `value` to a new file `name` in the directory `dir_fd`: blocking I/O, for the
/// spill thread. `compress`: lz4, if the value's first block shrinks by an eighth or more
/// (random data is then written as it is, at no cost but that one block's compression). On
/// failure (no space, a read-only or vanished directory) the partial file is removed.
SpillWriteResult write_spill_file(int dir_fd, const std::string& name, const Value& value, bool compress);

/// Reads a value back from its file. An uncompressed one is a private (copy-on-write) mmap
/// of its payload that the returned Bytes own: open, fstat and mmap, no I/O yet, the pages
/// come in wherever the bytes are read. A compressed one costs one read and decompression
/// here. Throws std::runtime_error naming the file if it is missing, of the wrong size or
/// corrupt.
Value read_spill_file(int dir_fd, const std::string& name, const std::string& type, const SpillFileInfo& info);

/// A file's header, read and checked (tests and tools; the store keeps its own copy).
struct SpillHeader {
  SpillFileInfo info;
  std::string type;
};
SpillHeader read_spill_header(int dir_fd, const std::string& name);

}  // namespace distrib::detail::wrk
