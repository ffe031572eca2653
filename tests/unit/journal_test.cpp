// Unit tests of the scheduler's journal: record files (torn tails are skipped, damage
// elsewhere is refused with the file and offset), the event codec, snapshots of the
// durable state, and replaying a journal into a fresh SchedulerState.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "comm/message.hpp"
#include "journal/journal.hpp"

namespace distrib::detail::journal {
namespace {

namespace fs = std::filesystem;
using namespace sched;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/distrib-journal-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TaskSpecPtr task(const std::string& key, const std::vector<std::string>& deps = {}) {
  auto t = std::make_shared<TaskSpec>();
  t->key = key;
  t->function = "inc";
  t->args.emplace_back().v = encode_value(std::int32_t{7});
  for (const auto& d : deps) t->args.push_back(TaskArg{d});
  return t;
}

AddWorker worker(WorkerId id) { return AddWorker{id, "w" + std::to_string(id), "tcp://w" + std::to_string(id), 4, 0, {"inc"}, {}}; }

std::vector<std::uint64_t> read_all(const std::string& path, bool allow_torn, ReadSummary* summary = nullptr) {
  std::vector<std::uint64_t> stimuli;
  auto s = read_records(path, allow_torn, {}, [&](InMessage&& m, std::uint64_t) {
    SnapshotParts none;
    stimuli.push_back(decode_entry(m, none).stimulus);
  });
  if (summary) *summary = s;
  return stimuli;
}

void chop(const std::string& path, std::uint64_t bytes) { fs::resize_file(path, fs::file_size(path) - bytes); }

/// A record file holding one event, synced.
void write_one_record(const std::string& path) {
  RecordWriter w(path, 0);
  w.append(encode_event(RemoveClient{1}, 1));
  w.sync();
}

void flip_byte(const std::string& path, std::uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

TEST(RecordFile, Crc32cMatchesTheStandardCheckValueInOneGoAndInPieces) {
  const std::string text = "123456789abcdefghijklmnopqrstuvwxyz";
  auto bytes = std::as_bytes(std::span(text.data(), text.size()));
  EXPECT_EQ(crc32c(bytes.first(9)), 0xE3069283u);  // the CRC-32C check value of "123456789"
  auto whole = crc32c(bytes);
  EXPECT_EQ(crc32c(bytes.subspan(13), crc32c(bytes.first(13))), whole);
  EXPECT_NE(crc32c(bytes.first(34)), whole);
}

TEST(RecordFile, ReadsBackWhatWasAppendedAndSkipsATornTail) {
  TempDir dir;
  auto path = dir.path() + "/records";
  std::vector<std::uint64_t> sizes;
  {
    RecordWriter w(path, 0);
    for (std::uint64_t i = 1; i <= 3; ++i) {
      w.append(encode_event(RemoveClient{i}, 100 + i));
      sizes.push_back(w.size());
    }
    w.sync();
  }
  EXPECT_EQ(read_all(path, false), (std::vector<std::uint64_t>{101, 102, 103}));
  chop(path, 3);
  EXPECT_THROW(read_all(path, false), JournalCorrupt);
  ReadSummary summary;
  EXPECT_EQ(read_all(path, true, &summary), (std::vector<std::uint64_t>{101, 102}));
  EXPECT_TRUE(summary.torn_tail);
  EXPECT_EQ(summary.valid_bytes, sizes[1]);
  {
    RecordWriter w(path, summary.valid_bytes);  // appending goes on after the intact records
    w.append(encode_event(RemoveClient{9}, 109));
    w.sync();
  }
  EXPECT_EQ(read_all(path, false), (std::vector<std::uint64_t>{101, 102, 109}));
}

TEST(RecordFile, RefusesDamageBeforeTheLastRecordNamingFileAndOffset) {
  TempDir dir;
  auto path = dir.path() + "/records";
  std::uint64_t second = 0;
  {
    RecordWriter w(path, 0);
    w.append(encode_event(RemoveClient{1}, 1));
    second = w.size();
    w.append(encode_event(RemoveClient{2}, 2));
    w.append(encode_event(RemoveClient{3}, 3));
    w.sync();
  }
  flip_byte(path, second + 12);
  try {
    read_all(path, true);
    FAIL() << "a damaged middle record was accepted";
  } catch (const JournalCorrupt& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("offset " + std::to_string(second)), std::string::npos) << e.what();
  }
  flip_byte(path, second + 12);
  flip_byte(path, 2);
  EXPECT_THROW(read_all(path, true), JournalCorrupt);  // not a journal at all
}

TEST(RecordFile, RefusesAJournalOfTheVersionBeforeProtocol2) {
  TempDir dir;
  auto path = dir.path() + "/records";
  write_one_record(path);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(7);
    f.put('1');  // DSTJRNL1: its values are encoded as before protocol version 2
  }
  try {
    read_all(path, true);
    FAIL() << "a journal of the older format was accepted";
  } catch (const JournalCorrupt& e) {
    EXPECT_NE(std::string(e.what()).find("another distrib version"), std::string::npos) << e.what();
  }
}

TEST(RecordFile, ZerosAfterTheLastRecordAreATornTail) {
  TempDir dir;
  auto path = dir.path() + "/records";
  write_one_record(path);
  fs::resize_file(path, fs::file_size(path) + 4096);
  ReadSummary summary;
  EXPECT_EQ(read_all(path, true, &summary).size(), 1u);
  EXPECT_TRUE(summary.torn_tail);
}

TEST(JournalCodec, EveryJournaledEventSurvivesTheRoundTrip) {
  std::vector<Event> events;
  auto w = worker(3);
  w.held.push_back({"x", "i32", 4});
  w.resources.emplace_back("GPU", 2);
  events.emplace_back(std::move(w));
  events.emplace_back(UpdateGraph{5, {task("a"), task("b", {"a"})}, {"b"}});
  events.emplace_back(TaskFinished{3, "a", "i32", 4, 0.25, encode_value(std::int32_t{8}), 11});
  events.emplace_back(TaskErred{3, "b", "std::runtime_error", "boom", 12});
  events.emplace_back(Scattered{5, {{"s", "f64", 8, {3, 4}}}});
  events.emplace_back(CancelKeys{5, {"b"}});
  events.emplace_back(StealResponse{3, "a", true, 13});
  events.emplace_back(MissingData{3, "a", "tcp://w4"});
  events.emplace_back(RemoveWorker{3, true});
  events.emplace_back(Restart{});
  events.emplace_back(WorkerPaused{3, true});
  events.emplace_back(TaskSeceded{3, "a", 14});
  events.emplace_back(Replicated{3, {"a"}});
  events.emplace_back(DropReplicas{3, {"a"}});
  events.emplace_back(FireAndForget{5, {"a", "b"}});
  events.emplace_back(RetryKeys{5, 17, {"b"}});
  for (std::size_t i = 0; i < events.size(); ++i) {
    SnapshotParts none;
    auto d = decode_entry([&] {
      auto m = encode_event(events[i], 40 + i);
      InMessage in;
      in.header = std::move(m.header);
      in.frames = std::move(m.frames);
      return in;
    }(), none);
    EXPECT_EQ(d.stimulus, 40 + i);
    ASSERT_TRUE(d.event);
    EXPECT_EQ(d.event->index(), events[i].index());
  }
  {
    SnapshotParts none;
    auto m = encode_event(WorkerPaused{3, true}, 9);
    InMessage paused{std::move(m.header), std::move(m.frames)};
    auto p = std::get<WorkerPaused>(*decode_entry(paused, none).event);
    EXPECT_EQ(p.worker, 3u);
    EXPECT_TRUE(p.paused);
  }
  {
    SnapshotParts none;
    auto m = encode_event(TaskSeceded{3, "a", 14}, 10);
    InMessage seceded{std::move(m.header), std::move(m.frames)};
    auto t = std::get<TaskSeceded>(*decode_entry(seceded, none).event);
    EXPECT_EQ(t.worker, 3u);
    EXPECT_EQ(t.key, "a");
    EXPECT_EQ(t.run_id, 14u);
  }
  {
    SnapshotParts none;
    auto m = encode_event(RetryKeys{5, 17, {"b", "c"}}, 9);
    InMessage retry{std::move(m.header), std::move(m.frames)};
    auto r = std::get<RetryKeys>(*decode_entry(retry, none).event);
    EXPECT_EQ(r.client, 5u);
    EXPECT_EQ(r.request, 17u);
    EXPECT_EQ(r.keys, (std::vector<std::string>{"b", "c"}));
    EXPECT_TRUE(needs_sync(RetryKeys{}));
  }
  auto m = encode_event(AddClient{5}, 1, "client-token");
  InMessage in{std::move(m.header), std::move(m.frames)};
  SnapshotParts none;
  auto d = decode_entry(in, none);
  EXPECT_EQ(d.token, "client-token");
  EXPECT_EQ(std::get<AddClient>(*d.event).client, 5u);
  EXPECT_FALSE(is_journaled(WorkerMetrics{1, 10}));
  EXPECT_TRUE(needs_sync(UpdateGraph{}));
  EXPECT_TRUE(needs_sync(Restart{}));
  EXPECT_FALSE(needs_sync(TaskFinished{}));
}

/// Drives a state through a small workload, journaling every event, and returns it.
struct Driven {
  SchedulerState state;
  Journal journal;
  explicit Driven(const std::string& dir) : journal(JournalOptions{dir}) {
    journal.replay([](SnapshotParts&&) { FAIL() << "no snapshot expected"; }, [](DecodedEntry&&) {});
  }
  std::vector<Action> step(Event e, const std::string& token = {}) {
    auto stimulus = state.last_stimulus() + 1;
    journal.append(e, stimulus, token);
    std::vector<Action> out;
    state.handle(std::move(e), out, stimulus);
    state.validate();
    return out;
  }
  std::uint64_t run_of(const std::vector<Action>& out, const std::string& key) {
    for (auto& a : out)
      if (auto* c = std::get_if<ComputeTask>(&a); c && c->spec->key == key) return c->run_id;
    return 0;
  }
};

/// Replays `dir` into a fresh state.
void replay_into(const std::string& dir, SchedulerState& state, Journal::Replayed* summary = nullptr) {
  Journal j(JournalOptions{dir});
  std::vector<Action> ignored;
  auto r = j.replay([&](SnapshotParts&& s) { state.restore(std::move(s.state)); },
                    [&](DecodedEntry&& d) {
                      state.handle(std::move(*d.event), ignored, d.stimulus);
                      state.validate();
                    });
  if (summary) *summary = r;
}

TEST(Journal, ReplayRebuildsTheStateFromTheEventsAndASnapshot) {
  TempDir dir;
  for (bool with_snapshot : {false, true}) {
    SCOPED_TRACE(with_snapshot ? "snapshot, then events" : "events only");
    fs::remove_all(dir.path());
    SchedulerState replayed;
    {
      Driven d(dir.path());
      d.step(AddClient{1}, "tok");
      d.step(worker(10));
      auto out = d.step(UpdateGraph{1, {task("a"), task("b", {"a"}), task("c"), task("e")}, {"b", "c", "e"}});
      d.step(TaskFinished{10, "a", "i32", 4, 0.1, std::nullopt, d.run_of(out, "a")});
      ASSERT_NE(d.run_of(out, "e"), 0u);
      d.step(TaskErred{10, "e", "std::runtime_error", "boom", d.run_of(out, "e")});
      if (with_snapshot) d.journal.snapshot(d.state.durable_state(), {{1, "tok"}}, 11);
      auto more = d.step(UpdateGraph{1, {task("f", {"a"})}, {"f"}});
      d.journal.commit();
      EXPECT_EQ(d.state.status("b"), TaskStatus::processing);
    }
    replay_into(dir.path(), replayed);
    EXPECT_EQ(replayed.status("a"), TaskStatus::memory);
    EXPECT_EQ(replayed.who_has("a"), std::vector<WorkerId>{10});
    EXPECT_EQ(replayed.status("e"), TaskStatus::erred);
    EXPECT_EQ(replayed.status("b"), TaskStatus::processing);
    EXPECT_EQ(replayed.processing_on("b"), 10u);
    EXPECT_EQ(replayed.wanted_by(1).size(), 4u);
    // The worker left while the scheduler was down: its work waits, its result is lost
    // and recomputed once a worker comes, unless it comes back holding it.
    std::vector<Action> out;
    replayed.handle(RemoveWorker{10, true}, out);
    replayed.validate();
    EXPECT_EQ(replayed.status("b"), TaskStatus::waiting);
    EXPECT_EQ(replayed.status("a"), TaskStatus::no_worker);
    out.clear();
    auto back = worker(12);
    back.held.push_back({"a", "i32", 4});
    replayed.handle(std::move(back), out);
    replayed.validate();
    EXPECT_EQ(replayed.status("a"), TaskStatus::memory);
    EXPECT_EQ(replayed.status("b"), TaskStatus::processing);
    EXPECT_EQ(replayed.status("e"), TaskStatus::erred);
  }
}

TEST(Journal, AReportAfterTheSnapshotIsBelievedForTheRunItWasAssigned) {
  TempDir dir;
  SchedulerState replayed;
  {
    Driven d(dir.path());
    d.step(AddClient{1});
    d.step(worker(10));
    auto out = d.step(UpdateGraph{1, {task("a")}, {"a"}});
    d.journal.snapshot(d.state.durable_state(), {{1, ""}}, 11);
    d.step(TaskFinished{10, "a", "i32", 4, 0.1, std::nullopt, d.run_of(out, "a")});
    d.journal.commit();
  }
  replay_into(dir.path(), replayed);
  EXPECT_EQ(replayed.status("a"), TaskStatus::memory);
}

TEST(Journal, ASecondSchedulerCannotOpenAJournalInUse) {
  TempDir dir;
  Journal first(JournalOptions{dir.path()});
  EXPECT_THROW(Journal(JournalOptions{dir.path()}), std::runtime_error);
}

TEST(Journal, ATornLastRecordIsSkippedAndAppendingGoesOn) {
  TempDir dir;
  {
    Driven d(dir.path());
    d.step(AddClient{1});
    d.step(UpdateGraph{1, {task("a")}, {"a"}});
    d.step(UpdateGraph{1, {task("b")}, {"b"}});
    d.journal.commit();
  }
  chop(dir.path() + "/journal-0000000000", 5);
  SchedulerState replayed;
  Journal::Replayed r;
  replay_into(dir.path(), replayed, &r);
  EXPECT_TRUE(r.torn_tail);
  EXPECT_EQ(r.records, 2u);
  EXPECT_TRUE(replayed.status("a"));
  EXPECT_FALSE(replayed.status("b"));
}

}  // namespace
}  // namespace distrib::detail::journal
