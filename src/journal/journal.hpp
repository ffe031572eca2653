#pragma once
// Journal: the scheduler's write-ahead log in a directory (dscheduler --journal DIR).
// The events that change durable state are appended to DIR/journal-<gen>; the events of
// clients are on disk (fdatasync) before anything they cause leaves the scheduler, many
// at a time (group commit). When the journal grows, a snapshot of the durable state is
// written as DIR/snapshot-<gen+1> (a temporary file, synced, then renamed) and an empty
// journal-<gen+1> follows it; the older generation is deleted. On start the newest
// snapshot is read, then its journal. DIR/LOCK keeps a second scheduler out.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "journal/journal_codec.hpp"
#include "journal/record_file.hpp"

namespace distrib::detail::journal {

struct JournalOptions {
  std::string dir;
  /// A snapshot is taken once the journal passes this size (and twice the last snapshot).
  std::uint64_t snapshot_bytes = std::uint64_t{64} << 20;
  FrameLimits limits;
};

class Journal {
 public:
  /// Creates DIR if needed and locks it; throws std::runtime_error if another process
  /// holds it, std::system_error if it cannot be created.
  explicit Journal(JournalOptions options);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  struct Replayed {
    std::uint64_t generation = 0;
    bool had_snapshot = false;
    std::uint64_t records = 0;         // journal records after the snapshot
    bool torn_tail = false;            // the journal's last record was cut short: skipped
    std::uint64_t torn_offset = 0;
    std::string journal_path;
  };
  /// Reads the newest snapshot (given to `on_snapshot`, if there is one) and then the
  /// journal after it (each event to `on_event`, in order); afterwards appends go to its
  /// end. Throws JournalCorrupt naming the file and offset of a damaged record.
  Replayed replay(const std::function<void(SnapshotParts&&)>& on_snapshot,
                  const std::function<void(DecodedEntry&&)>& on_event);

  /// Buffers `e` (unless it is not journaled); `token` goes with an AddClient.
  void append(const sched::Event& e, sched::StimulusId stimulus, const std::string& token = {});
  /// Something is buffered.
  bool pending() const { return writer_ && writer_->buffered() > 0; }
  /// A client's event is buffered or written but not yet on disk.
  bool sync_pending() const { return sync_pending_; }
  /// Writes what is buffered, and waits for the disk if a client's event is among it.
  void commit();
  /// The journal has grown enough to be replaced by a snapshot.
  bool wants_snapshot() const;
  /// Writes `state` as the next generation's snapshot and starts its empty journal.
  void snapshot(const sched::DurableState& state, const std::vector<ClientToken>& clients, std::uint64_t next_id);

  const std::string& dir() const { return options_.dir; }
  std::uint64_t journal_bytes() const { return writer_ ? writer_->size() : 0; }
  std::uint64_t generation() const { return generation_; }

 private:
  std::string path(const char* kind, std::uint64_t generation) const;
  void remove_other_generations();

  JournalOptions options_;
  int lock_fd_ = -1;
  std::uint64_t generation_ = 0;
  std::uint64_t snapshot_size_ = 0;
  std::unique_ptr<RecordWriter> writer_;
  bool sync_pending_ = false;
};

}  // namespace distrib::detail::journal
