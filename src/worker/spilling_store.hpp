#pragma once
// SpillingStore: a DataStore that keeps values in memory up to a target of managed bytes and
// moves the least recently used ones to files in the worker's private directory beyond it
// (Dask's SpillBuffer over zict's LRU of a fast and a slow mapping, issue 16 part 2).
//
// Threads. The store's callers hold the worker's state mutex (data_store.hpp), so no call
// here waits for the disk:
// - Writing happens on a spill thread the store owns. A value chosen for spilling stays in
//   memory, readable, until its file is written (to the page cache: no fsync, see
//   spill_file.hpp), and only then is its memory dropped. Erasing it meanwhile cancels the
//   write and removes the file. Removing files is queued to the same thread.
// - Reading a spilled value back is an mmap of its file: open and map, the pages come in
//   later wherever the bytes are read (a task thread; or the io thread if it sends the
//   value to a peer, which the worker should avoid by touching it on a task thread first).
//   A compressed value is the exception: one read and decompression inside get(), which is
//   one reason compression is off by default.
// - An internal mutex guards the store against its spill thread; it is never held during
//   I/O, and large buffers are released after it is unlocked.
//
// Unspilling. get() of a spilled value (Dask unspills on get too) makes it a value in
// memory again, most recently used, counted in memory_bytes() (its pages will be resident
// once read, and the target has to see them), but the mapping stays backed by its file and
// the file stays: spilling it again costs nothing (the mapping is dropped, nothing is
// written), as for a clean page. Its file goes when the key is erased or replaced.
//
// Accounting (data_store.hpp): memory_bytes() counts values in memory, including those whose
// write is under way; pending_bytes() is the part of it chosen for spilling and being
// written, which the target does not count twice. A value larger than the whole target is
// accepted and goes straight to disk without pushing others out (as zict does); the caller
// can tell with larger_than_target() and log a warning.
//
// Errors. A failed write (no space, a read-only or removed directory) loses nothing: the
// value stays in memory (the least recently used again), the store records the error
// (last_error(), naming the directory and errno's text) and starts no more writes until
// clear_error(), so that the worker can pause, report, and retry later instead of thrashing
// a full disk. A spilled value that cannot be read back (its file removed by someone else)
// makes get() throw std::runtime_error naming the file.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "worker/data_store.hpp"

namespace distrib::detail::wrk {

struct SpillOptions {
  /// Parent of the worker's spill directory (`--local-directory`); empty: $TMPDIR or /tmp.
  std::string local_directory;
  /// Managed bytes kept in memory before the least recently used values are spilled
  /// (Dask's target fraction times the memory limit); 0: spill only when asked (spill_lru).
  std::uint64_t target_bytes = 0;
  /// lz4 for values whose first 4 MiB block shrinks by an eighth or more. Off by default:
  /// measured by bench/spill.cpp, it costs more time than it saves on these disks.
  bool compress = false;
};

/// Counts since the store was made, and figures now, all read at one time: separate calls
/// to memory_bytes() and spilled_bytes() may see a write finish in between.
struct SpillStats {
  std::uint64_t memory_bytes = 0;     // now
  std::uint64_t spilled_bytes = 0;    // now
  std::uint64_t pending_bytes = 0;    // now
  std::uint64_t values_written = 0;   // spill files written
  std::uint64_t bytes_written = 0;    // their file bytes
  std::uint64_t values_dropped = 0;   // values whose memory was given up for their file
  std::uint64_t values_unspilled = 0; // spilled values read back by get()
  std::uint64_t write_failures = 0;
  std::uint64_t files = 0;            // now: spill files on disk
  std::uint64_t disk_bytes = 0;       // now: their bytes (of spilled values and of values read back)
};

class SpillingStore final : public DataStore {
 public:
  /// Makes the spill directory (SpillDirectory: throws std::runtime_error naming it if it
  /// cannot be made or written) and starts the spill thread.
  explicit SpillingStore(SpillOptions options = {});
  /// Stops the spill thread (after the write under way, if any) and removes the directory.
  ~SpillingStore() override;

  void put(const std::string& key, Value value, std::uint64_t nbytes) override;
  /// Counts as a use. A spilled value is mapped back from its file (see above).
  std::optional<Value> get(const std::string& key) const override;
  bool contains(const std::string& key) const override;
  bool erase(const std::string& key) override;
  std::vector<std::string> keys() const override;
  std::uint64_t managed_bytes() const override;
  std::uint64_t memory_bytes() const override;
  std::uint64_t spilled_bytes() const override;
  std::size_t size() const override;

  /// Of memory_bytes(), the values being written to disk that will then leave memory.
  std::uint64_t pending_bytes() const;
  /// More is waiting to be written than max(target / 8, 4 MiB): new tasks should wait (the
  /// worker's state asks before starting one), or a worker computing faster than its disk
  /// writes would fill its memory with values on their way out.
  bool backlogged() const override;
  /// Called on the spill thread once a backlog that backlogged() reported is written.
  void set_on_drained(std::function<void()> callback);
  std::uint64_t target() const;
  /// A new target (0: none); values past it are chosen for spilling now.
  void set_target(std::uint64_t bytes);
  /// Whether a value of `nbytes` exceeds the whole target (it is then spilled at once).
  bool larger_than_target(std::uint64_t nbytes) const;

  /// Chooses least recently used values in memory for spilling until at least `n_bytes`
  /// more will leave memory (the memory monitor's call when the process passes its spill
  /// threshold); returns the bytes chosen, fewer if nothing else is left or writes are
  /// paused by an error.
  std::uint64_t spill_lru(std::uint64_t n_bytes);
  /// Chooses values as spill_lru() until memory_bytes() - pending_bytes() is at most
  /// `memory_bytes`; returns the bytes chosen.
  std::uint64_t spill_until(std::uint64_t memory_bytes);

  /// Waits until every queued write and file removal is done (tests, shutdown, benchmarks).
  void flush() const;

  /// The first write failure since the last clear_error(), naming the directory, or nullopt.
  std::optional<std::string> last_error() const;
  /// Resumes writing after an error (the worker retries once space may have been freed);
  /// values past the target are chosen again.
  void clear_error();

  /// Whether the value of `key` is held only on disk.
  bool is_spilled(const std::string& key) const;
  /// Keys of the values in memory that may be spilled, least recently used first.
  std::vector<std::string> lru_keys() const;
  const std::string& directory() const;
  SpillStats stats() const;

  /// Tests: while held, the spill thread takes no new job (values chosen stay pending), so
  /// that a test can act on a value whose write has not happened yet. flush() waits for
  /// the release.
  void hold_writes_for_testing(bool hold);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;  // a const get() still counts as a use: the state lives behind this
};

}  // namespace distrib::detail::wrk
