// The scheduler file (cluster/scheduler_file.hpp): atomic writes under concurrent readers,
// and clear errors for what is not a scheduler file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "cluster/scheduler_file.hpp"
#include "proto/distrib.capnp.h"

namespace distrib::detail {
namespace {

struct TempFile {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("distrib-sf-" + std::to_string(getpid()) + "-" + std::to_string(std::rand()));
  TempFile() { std::filesystem::create_directories(dir); }
  ~TempFile() { std::filesystem::remove_all(dir); }
  std::string path(const char* name = "scheduler.json") const { return (dir / name).string(); }
};

SchedulerFileContents sample(int port) {
  SchedulerFileContents c;
  c.address = "tcp://10.0.0.1:" + std::to_string(port);
  c.protocol = proto::PROTOCOL_VERSION;
  c.dashboard = "http://10.0.0.1:8787/status";
  c.pid = 42;
  return c;
}

std::string error_of(const std::string& path) {
  try {
    read_scheduler_file(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(SchedulerFile, RoundTripHoldsNoSecret) {
  TempFile t;
  auto c = sample(8786);
  c.tls_ca_sha256 = "AB:CD";
  write_scheduler_file(t.path(), c);
  auto r = read_scheduler_file(t.path());
  EXPECT_EQ(r.address, c.address);
  EXPECT_EQ(r.protocol, c.protocol);
  EXPECT_EQ(r.dashboard, c.dashboard);
  EXPECT_EQ(r.tls_ca_sha256, "AB:CD");
  EXPECT_EQ(r.pid, 42u);
  std::ifstream in(t.path());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find("token"), std::string::npos) << text;
  // No temporary file is left next to it.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(t.dir), std::filesystem::directory_iterator()), 1);
}

TEST(SchedulerFile, ReadersNeverSeeAPartialFile) {
  TempFile t;
  write_scheduler_file(t.path(), sample(1));
  std::atomic<bool> done{false};
  std::atomic<int> reads{0}, bad{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i)
    readers.emplace_back([&] {
      while (!done) {
        try {
          auto c = read_scheduler_file(t.path());
          if (c.address.rfind("tcp://10.0.0.1:", 0) != 0) ++bad;
        } catch (const std::exception&) {
          ++bad;  // the file always exists once written: any failure is a torn read
        }
        ++reads;
      }
    });
  for (int port = 2; port < 400; ++port) write_scheduler_file(t.path(), sample(port));
  done = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(read_scheduler_file(t.path()).address, "tcp://10.0.0.1:399");
}

TEST(SchedulerFile, BadFilesAreNamed) {
  TempFile t;
  EXPECT_NE(error_of(t.path("missing.json")).find("does not exist"), std::string::npos);
  std::ofstream(t.path("junk.json")) << "not json";
  EXPECT_NE(error_of(t.path("junk.json")).find("is not JSON"), std::string::npos);
  std::ofstream(t.path("other.json")) << R"({"type": "Scheduler", "address": "tcp://x:1"})";
  EXPECT_NE(error_of(t.path("other.json")).find("not a distrib scheduler file"), std::string::npos);
  std::ofstream(t.path("old.json")) << R"({"type": "distrib-scheduler", "address": "tcp://x:1", "protocol": 1})";
  EXPECT_NE(error_of(t.path("old.json")).find("protocol 1"), std::string::npos);
}

TEST(SchedulerFile, WaitGivesUpWithTheReason) {
  TempFile t;
  try {
    wait_for_scheduler_file(t.path(), std::chrono::milliseconds(120));
    FAIL() << "waited for a file that never came";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no scheduler file within 120 ms"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  // A file that appears while waiting is taken.
  std::thread writer([&] { write_scheduler_file(t.path(), sample(5)); });
  EXPECT_EQ(wait_for_scheduler_file(t.path(), std::chrono::seconds(30)).address, "tcp://10.0.0.1:5");
  writer.join();
}

TEST(SchedulerFile, RemovedOnlyByItsScheduler) {
  TempFile t;
  write_scheduler_file(t.path(), sample(1));  // pid 42
  remove_scheduler_file(t.path(), 43);        // another scheduler's exit: not ours to remove
  EXPECT_TRUE(std::filesystem::exists(t.path()));
  remove_scheduler_file(t.path(), 42);
  EXPECT_FALSE(std::filesystem::exists(t.path()));
}

}  // namespace
}  // namespace distrib::detail
