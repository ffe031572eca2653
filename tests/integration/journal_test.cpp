// A scheduler with --journal survives its own restart: SIGKILLed in the middle of a graph
// and started again on the same journal and port, it carries on, and the client gets the
// undisturbed result; a scattered value is still known; a journal whose last record was
// cut short replays; a damaged one refuses to start, naming the file and the offset.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <distrib/distrib.hpp>
#include <filesystem>
#include <fstream>

#include "comm/endpoint.hpp"
#include "helpers.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

namespace fs = std::filesystem;

class JournalDir {
 public:
  JournalDir() {
    char tmpl[] = "/tmp/distrib-journal-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~JournalDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string journal_file() const { return path_ + "/journal-0000000000"; }

 private:
  std::string path_;
};

std::uint16_t port_of(const std::string& address) { return detail::parse_address(address).second; }

/// A scheduler whose log the test reads (to see what it recovered).
Watched watched_scheduler(std::uint16_t port, const std::string& journal) {
  return spawn_watched({DSCHEDULER_PATH, "--host", "127.0.0.1", "--port", std::to_string(port), "--journal", journal,
                        "--log-level", "info", "--dashboard-address", "none"});
}

ClientOptions patient() {
  ClientOptions o;
  o.reconnect_timeout = 60s;
  return o;
}

TEST(Journal, SchedulerKilledMidGraphRestartsFromItsJournalWithTheUndisturbedResult) {
  JournalDir dir;
  auto first = watched_scheduler(0, dir.path());
  auto at = first.wait_for("distrib scheduler at ", 30s);
  ASSERT_NE(at, std::string::npos) << first.output;
  ASSERT_TRUE(first.wait_for("\n", 10s, at) != std::string::npos);
  auto line = first.output.substr(at + std::string("distrib scheduler at ").size());
  auto address = line.substr(0, line.find('\n'));
  auto port = port_of(address);
  std::vector<Daemon> workers;
  for (int i = 0; i < 2; ++i) workers.push_back(start_worker(address, {"--preload", TEST_TASKS_PATH}));
  Client client(address, patient());
  client.wait_for_workers(2, 30s);

  std::vector<Future<int>> parts;
  for (int i = 0; i < 24; ++i) parts.push_back(client.submit(slow_triple, i, 100));
  ASSERT_EQ(parts[0].result(60s), 0);  // under way
  first.process.signal(SIGKILL);
  ASSERT_TRUE(first.process.wait(30s));

  auto second = watched_scheduler(port, dir.path());
  EXPECT_NE(second.wait_for("recovered ", 30s), std::string::npos) << second.output;
  for (int i = 0; i < 24; ++i) EXPECT_EQ(parts[i].result(120s), 3 * i) << "part " << i;
  EXPECT_TRUE(eventually([&] { return client.n_workers() == 2; }, 60s)) << "the workers registered again";
  EXPECT_EQ(client.submit(triple, 14).result(60s), 42);
  client.shutdown();
}

TEST(Journal, AScatteredValueOutlivesTheSchedulersRestart) {
  JournalDir dir;
  auto first = start_scheduler({"--journal", dir.path()});
  auto port = port_of(first.address);
  auto worker = start_worker(first.address, {"--preload", TEST_TASKS_PATH});
  Client client(first.address, patient());
  client.wait_for_workers(1, 30s);
  auto x = client.scatter(7);
  ASSERT_EQ(client.submit(triple, x).result(60s), 21);
  first.process.signal(SIGKILL);
  ASSERT_TRUE(first.process.wait(30s));

  auto second = watched_scheduler(port, dir.path());
  ASSERT_NE(second.wait_for("recovered ", 30s), std::string::npos) << second.output;
  // Without the journal the new scheduler would not know x: the worker holding it tells
  // it that it still has it, and the scheduler knows whose it is.
  EXPECT_NE(second.wait_for("registered again", 60s), std::string::npos) << second.output;
  EXPECT_EQ(client.submit(slow_triple, x, 1).result(60s), 21);
  EXPECT_EQ(x.result(60s), 7);
  client.shutdown();
}

// An uploaded library is kept next to the journal: a worker that first registers with the
// restarted scheduler gets it, without the client uploading it again.
TEST(Journal, AnUploadOutlivesTheSchedulersRestart) {
  JournalDir dir;
  auto first = start_scheduler({"--journal", dir.path()});
  auto port = port_of(first.address);
  Client client(first.address, patient());
  {
    auto early = start_worker(first.address, {"--name", "early"});  // no --preload
    client.wait_for_workers(1, 30s);
    client.upload_file(TEST_TASKS_PATH);
    ASSERT_EQ(client.submit(triple, 4).result(60s), 12);
  }
  ASSERT_TRUE(eventually([&] { return client.n_workers() == 0; }, 60s)) << "the early worker left";
  first.process.signal(SIGKILL);
  ASSERT_TRUE(first.process.wait(30s));

  auto second = watched_scheduler(port, dir.path());
  EXPECT_NE(second.wait_for("1 upload(s) kept", 30s), std::string::npos) << second.output;
  auto late = start_worker(first.address, {"--name", "late"});  // never saw the upload
  client.wait_for_workers(1, 60s);
  SubmitOptions there;
  there.workers = {"late"};
  EXPECT_EQ(client.submit(there, triple, 5).result(60s), 15);
  client.shutdown();
}

TEST(Journal, AJournalWithItsLastBytesChoppedReplaysWithAWarning) {
  JournalDir dir;
  {
    auto first = start_scheduler({"--journal", dir.path()});
    auto worker = start_worker(first.address, {"--preload", TEST_TASKS_PATH});
    Client client(first.address, patient());
    std::vector<Future<int>> parts;
    for (int i = 0; i < 5; ++i) parts.push_back(client.submit(triple, i));
    for (auto& p : parts) ASSERT_GE(p.result(60s), 0);
    first.process.signal(SIGKILL);
    ASSERT_TRUE(first.process.wait(30s));
  }
  auto size = fs::file_size(dir.journal_file());
  ASSERT_GT(size, 100u);
  fs::resize_file(dir.journal_file(), size - 3);
  auto second = watched_scheduler(0, dir.path());
  EXPECT_NE(second.wait_for("was cut short", 30s), std::string::npos) << second.output;
  auto at = second.wait_for("distrib scheduler at ", 30s);
  ASSERT_NE(at, std::string::npos) << second.output;
}

TEST(Journal, ADamagedJournalRefusesToStartNamingTheFileAndOffset) {
  JournalDir dir;
  {
    auto first = start_scheduler({"--journal", dir.path()});
    auto worker = start_worker(first.address, {"--preload", TEST_TASKS_PATH});
    Client client(first.address, patient());
    EXPECT_EQ(client.submit(triple, 2).result(60s), 6);
    first.process.signal(SIGKILL);
    ASSERT_TRUE(first.process.wait(30s));
  }
  {
    std::fstream f(dir.journal_file(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);  // inside the first record, which others follow
    f.put('\x7f');
  }
  auto run = run_command({DSCHEDULER_PATH, "--host", "127.0.0.1", "--port", "0", "--journal", dir.path()}, 30s);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.output.find(dir.journal_file()), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("offset 8"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace distrib::test
