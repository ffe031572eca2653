#include "journal/journal.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace distrib::detail::journal {

namespace fs = std::filesystem;

namespace {

/// The generation in a name like "journal-0000000012", or nullopt.
std::optional<std::uint64_t> generation_of(const std::string& name, const std::string& kind) {
  auto prefix = kind + "-";
  if (name.size() != prefix.size() + 10 || name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  std::uint64_t g = 0;
  for (auto c : name.substr(prefix.size())) {
    if (c < '0' || c > '9') return std::nullopt;
    g = g * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return g;
}

}  // namespace

Journal::Journal(JournalOptions options) : options_(std::move(options)) {
  fs::create_directories(options_.dir);
  auto lock_path = options_.dir + "/LOCK";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) throw std::system_error(errno, std::generic_category(), "cannot open " + lock_path);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    throw std::runtime_error("the journal " + options_.dir + " is in use by another scheduler (" + lock_path +
                             " is locked)");
  }
}

Journal::~Journal() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

std::string Journal::path(const char* kind, std::uint64_t generation) const {
  char name[64];
  std::snprintf(name, sizeof name, "/%s-%010" PRIu64, kind, generation);
  return options_.dir + name;
}

Journal::Replayed Journal::replay(const std::function<void(SnapshotParts&&)>& on_snapshot,
                                  const std::function<void(DecodedEntry&&)>& on_event) {
  Replayed r;
  for (const auto& entry : fs::directory_iterator(options_.dir)) {
    auto name = entry.path().filename().string();
    if (auto g = generation_of(name, "snapshot"); g && (!r.had_snapshot || *g > r.generation)) {
      r.generation = *g;
      r.had_snapshot = true;
    }
  }
  generation_ = r.generation;
  if (r.had_snapshot) {
    SnapshotParts parts;
    auto snapshot_path = path("snapshot", generation_);
    auto summary = read_records(snapshot_path, false, options_.limits, [&](InMessage&& m, std::uint64_t offset) {
      DecodedEntry d;
      try {
        d = decode_entry(m, parts);
      } catch (const std::exception& e) {
        throw JournalCorrupt(snapshot_path + " is damaged at offset " + std::to_string(offset) + ": " + e.what());
      }
      if (d.event) throw JournalCorrupt(snapshot_path + " holds an event at offset " + std::to_string(offset));
    });
    if (!parts.complete())
      throw JournalCorrupt(snapshot_path + " is damaged at offset " + std::to_string(summary.valid_bytes) +
                           ": it ends before the " + std::to_string(parts.expected_tasks) + " tasks its header announced");
    snapshot_size_ = summary.file_bytes;
    on_snapshot(std::move(parts));
  }
  r.journal_path = path("journal", generation_);
  SnapshotParts none;
  auto summary = read_records(r.journal_path, true, options_.limits, [&](InMessage&& m, std::uint64_t offset) {
    DecodedEntry d;
    try {
      d = decode_entry(m, none);
    } catch (const std::exception& e) {
      throw JournalCorrupt(r.journal_path + " is damaged at offset " + std::to_string(offset) + ": " + e.what());
    }
    if (!d.event) throw JournalCorrupt(r.journal_path + " holds a snapshot record at offset " + std::to_string(offset));
    ++r.records;
    on_event(std::move(d));
  });
  r.torn_tail = summary.torn_tail;
  r.torn_offset = summary.valid_bytes;
  writer_ = std::make_unique<RecordWriter>(r.journal_path, summary.valid_bytes);
  writer_->sync();  // the cut tail, or a new file's magic, is on disk before anything follows it
  remove_other_generations();
  return r;
}

void Journal::append(const sched::Event& e, sched::StimulusId stimulus, const std::string& token) {
  if (!writer_) throw std::logic_error("Journal::append before replay");
  if (!is_journaled(e)) return;
  writer_->append(encode_event(e, stimulus, token));
  sync_pending_ = sync_pending_ || needs_sync(e);
}

void Journal::commit() {
  if (!writer_) return;
  if (sync_pending_) {
    writer_->sync();
    sync_pending_ = false;
  } else if (writer_->buffered()) {
    writer_->write();
  }
}

bool Journal::wants_snapshot() const {
  return writer_ && writer_->size() > std::max(options_.snapshot_bytes, 2 * snapshot_size_);
}

void Journal::snapshot(const sched::DurableState& state, const std::vector<ClientToken>& clients,
                       std::uint64_t next_id) {
  commit();
  auto next = generation_ + 1;
  auto final_path = path("snapshot", next);
  auto temporary = final_path + ".tmp";
  {
    RecordWriter out(temporary, 0);
    encode_snapshot(state, clients, next_id, [&](OutMessage m) {
      out.append(std::move(m));
      if (out.buffered() > (std::size_t{4} << 20)) out.write();
    });
    out.sync();
    snapshot_size_ = out.size();
  }
  // The new journal exists (empty) before the snapshot's name does: a crash in between
  // leaves the old generation whole, or the new one with nothing after its snapshot.
  auto next_journal = std::make_unique<RecordWriter>(path("journal", next), 0);
  next_journal->sync();
  fs::rename(temporary, final_path);
  sync_directory(options_.dir);
  writer_ = std::move(next_journal);
  generation_ = next;
  remove_other_generations();
}

void Journal::remove_other_generations() {
  for (const auto& entry : fs::directory_iterator(options_.dir)) {
    auto name = entry.path().filename().string();
    auto g = generation_of(name, "snapshot");
    if (!g) g = generation_of(name, "journal");
    bool stale_temporary = name.size() > 4 && name.ends_with(".tmp");
    if ((g && *g != generation_) || stale_temporary) {
      std::error_code ec;
      fs::remove(entry.path(), ec);
    }
  }
}

}  // namespace distrib::detail::journal
