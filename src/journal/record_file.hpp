#pragma once
// Record files: the on-disk framing of the scheduler's journal and snapshots. A file is
// an 8-byte magic followed by records, each
//   u32 payload_bytes | u32 crc32c(payload_bytes, payload) | payload
// little-endian; a payload is one framed message (comm/framing.hpp). Appending is
// buffered: write() hands the bytes to the kernel (they survive the process being
// killed), sync() also waits until they are on disk (fdatasync).
#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "comm/framing.hpp"

namespace distrib::detail::journal {

/// A journal or snapshot file that cannot be read: damaged somewhere other than its last
/// record. The message names the file and the offset of the bad record.
class JournalCorrupt : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// CRC-32C (Castagnoli) of `bytes`, continuing from `crc` (0 to start).
std::uint32_t crc32c(std::span<const std::byte> bytes, std::uint32_t crc = 0);

class RecordWriter {
 public:
  /// Opens `path` for appending after its first `valid_bytes` (what read_records found
  /// intact; anything after, a torn record, is cut off). A missing or empty file is
  /// created with its magic. Throws std::system_error.
  RecordWriter(std::string path, std::uint64_t valid_bytes);
  ~RecordWriter();
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;

  /// Frames `m` into the buffer.
  void append(OutMessage m);
  /// Writes the buffer to the file.
  void write();
  /// Writes the buffer and waits until the file's data is on disk.
  void sync();
  /// The file's size once the buffer is written.
  std::uint64_t size() const { return written_ + buffer_.size(); }
  std::size_t buffered() const { return buffer_.size(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t written_ = 0;
  std::vector<std::byte> buffer_;
};

struct ReadSummary {
  std::uint64_t records = 0;
  /// Bytes of intact records (with the magic): where appending may go on.
  std::uint64_t valid_bytes = 0;
  /// The last record was cut short or damaged (a crash while appending): it was skipped.
  bool torn_tail = false;
  std::uint64_t file_bytes = 0;
};

/// Reads every record of `path` in order, calling `on_record` with each message and its
/// offset. A missing file reads as empty. With `allow_torn_tail` a damaged last record
/// is skipped and reported in the summary; any other damage throws JournalCorrupt naming
/// the file and offset. Exceptions from `on_record` pass through.
ReadSummary read_records(const std::string& path, bool allow_torn_tail, const FrameLimits& limits,
                         const std::function<void(InMessage&&, std::uint64_t offset)>& on_record);

/// Makes a rename or creation in `dir` durable (fsync of the directory).
void sync_directory(const std::string& dir);

}  // namespace distrib::detail::journal
