// Unit tests of a worker's spill directory and of the spill file format: the directory is
// private, removed with its owner, and removed by the next worker after a SIGKILL (a forked
// child holds it); spill files round-trip, keep the payload page-aligned and compress only
// what shrinks.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "spill_test_support.hpp"
#include "worker/spill_directory.hpp"
#include "worker/spill_file.hpp"

namespace distrib::detail::wrk {
namespace {

using test_support::names_in;
using test_support::random_bytes;
using test_support::TempDir;
using test_support::TmpfsMount;

bool exists(const std::string& path) { return std::filesystem::exists(path); }

TEST(SpillDirectory, IsPrivateLockedAndRemovedWithItsOwner) {
  TempDir parent;
  std::string path;
  {
    SpillDirectory d(parent.path());
    path = d.path();
    EXPECT_EQ(path.rfind(parent.path() + "/" + SpillDirectory::kPrefix, 0), 0u) << path;
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);  // other users cannot read spilled values
    EXPECT_EQ(names_in(path), std::vector<std::string>{SpillDirectory::kLockFile});
    // Files left in it go with it.
    int fd = ::openat(d.fd(), "left.spill", O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ::close(fd);
    // A live directory is never taken for a stale one.
    EXPECT_TRUE(SpillDirectory::remove_stale(parent.path()).empty());
    EXPECT_TRUE(exists(path));
  }
  EXPECT_FALSE(exists(path));
  EXPECT_TRUE(names_in(parent.path()).empty());
}

TEST(SpillDirectory, WorkersStartingTogetherNeverTakeEachOthersDirectoryForADeadOnes) {
  // Each one cleans the parent as it starts: a directory whose lock file was not locked yet
  // used to be removed under its owner (seen as "cannot open the lock file").
  TempDir parent;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        try {
          SpillDirectory dir(parent.path());
          if (!std::filesystem::exists(dir.path() + "/" + SpillDirectory::kLockFile)) ++failures;
        } catch (const std::exception&) {
          ++failures;
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(SpillDirectory, DefaultParentIsTmpdirAndAGivenOneIsCreated) {
  TempDir tmp;
  const char* saved = std::getenv("TMPDIR");
  const std::string saved_value = saved ? saved : "";
  ::setenv("TMPDIR", tmp.path().c_str(), 1);
  EXPECT_EQ(SpillDirectory::default_parent(), tmp.path());
  {
    SpillDirectory d;
    EXPECT_EQ(d.path().rfind(tmp.path() + "/" + SpillDirectory::kPrefix, 0), 0u) << d.path();
  }
  ::unsetenv("TMPDIR");
  EXPECT_EQ(SpillDirectory::default_parent(), "/tmp");
  if (saved) ::setenv("TMPDIR", saved_value.c_str(), 1);

  const std::string nested = tmp.path() + "/a/b";  // --local-directory that does not exist yet
  SpillDirectory d(nested);
  EXPECT_EQ(d.path().rfind(nested + "/", 0), 0u) << d.path();
}

TEST(SpillDirectory, UnwritableParentThrowsNamingIt) {
  TempDir parent;
  // Root ignores permission bits: a read-only file system refuses it too.
  TmpfsMount ro(parent.path(), "size=1m", MS_RDONLY);
  if (::geteuid() == 0 && !ro.mounted()) GTEST_SKIP() << "cannot mount a read-only tmpfs here";
  if (::geteuid() != 0) {
    ASSERT_EQ(::chmod(parent.path().c_str(), 0500), 0);
  }
  try {
    SpillDirectory d(parent.path());
    FAIL() << "made " << d.path() << " in an unwritable directory";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(parent.path()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(::geteuid() == 0 ? "Read-only file system" : "Permission denied"), std::string::npos)
        << e.what();
  }
  if (::geteuid() != 0) ::chmod(parent.path().c_str(), 0700);
}

// A worker is SIGKILLed: its directory stays, with the lock released by the kernel; the
// next worker made in the same parent removes it. The child makes the directory itself (a
// lock made before fork() would be shared with this process and never be released).
TEST(SpillDirectory, TheNextWorkerRemovesTheDirectoryOfASigkilledOne) {
  TempDir parent;
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(pipe_fds[0]);
    try {
      SpillDirectory d(parent.path());
      int fd = ::openat(d.fd(), "0000000000000001.spill", O_CREAT | O_WRONLY, 0600);
      if (fd < 0 || ::write(fd, "x", 1) != 1) ::_exit(2);
      ::close(fd);
      if (::write(pipe_fds[1], d.path().data(), d.path().size()) != static_cast<ssize_t>(d.path().size())) ::_exit(3);
      ::close(pipe_fds[1]);
      for (;;) ::pause();
    } catch (...) {
      ::_exit(1);
    }
  }
  ::close(pipe_fds[1]);
  std::string path;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;) path.append(buf, static_cast<std::size_t>(n));
  ::close(pipe_fds[0]);
  ASSERT_FALSE(path.empty()) << "the child did not make its directory";

  EXPECT_TRUE(SpillDirectory::remove_stale(parent.path()).empty());  // its owner lives
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_TRUE(exists(path + "/0000000000000001.spill"));  // nobody removed it

  SpillDirectory next(parent.path());
  EXPECT_FALSE(exists(path));
  EXPECT_EQ(names_in(parent.path()), std::vector<std::string>{next.path().substr(parent.path().size() + 1)});
}

TEST(SpillDirectory, AnUnlockedDirectoryIsRemovedOnlyOnceAMinuteOld) {
  TempDir parent;
  const std::string young = parent.path() + "/" + SpillDirectory::kPrefix + "young";
  const std::string old = parent.path() + "/" + SpillDirectory::kPrefix + "old";
  const std::string other = parent.path() + "/not-a-worker";
  for (const auto& d : {young, old, other}) ASSERT_EQ(::mkdir(d.c_str(), 0700), 0);
  timespec times[2] = {{::time(nullptr) - 120, 0}, {::time(nullptr) - 120, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, old.c_str(), times, 0), 0);
  ASSERT_EQ(::utimensat(AT_FDCWD, other.c_str(), times, 0), 0);
  EXPECT_EQ(SpillDirectory::remove_stale(parent.path()), std::vector<std::string>{old});
  EXPECT_TRUE(exists(young));  // maybe a worker between mkdir and its lock
  EXPECT_TRUE(exists(other));  // not a worker's
}

// ---- spill files ---------------------------------------------------------------------------

class SpillFileTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = std::make_unique<SpillDirectory>(parent_.path()); }
  int fd() const { return dir_->fd(); }
  TempDir parent_;
  std::unique_ptr<SpillDirectory> dir_;
};

bool same_bytes(const Bytes& a, const Bytes& b) {
  return a.size() == b.size() && (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

TEST_F(SpillFileTest, RawValueComesBackAsAPageAlignedMappingBitForBit) {
  Value v{"some.Type", random_bytes(3 * kSpillAlignment + 17, 1)};
  auto w = write_spill_file(fd(), spill_file_name(1), v, false);
  ASSERT_EQ(w.error, 0) << w.what;
  EXPECT_FALSE(w.info.compressed);
  EXPECT_EQ(w.info.payload_offset, kSpillAlignment);
  EXPECT_EQ(w.info.stored_bytes, v.bytes.size());
  struct stat st {};
  ASSERT_EQ(::fstatat(fd(), spill_file_name(1).c_str(), &st, 0), 0);
  EXPECT_EQ(static_cast<std::uint64_t>(st.st_size), w.info.file_bytes());

  auto header = read_spill_header(fd(), spill_file_name(1));
  EXPECT_EQ(header.type, "some.Type");
  EXPECT_EQ(header.info.payload_offset, w.info.payload_offset);
  EXPECT_EQ(header.info.value_bytes, v.bytes.size());

  Value back = read_spill_file(fd(), spill_file_name(1), "some.Type", w.info);
  EXPECT_EQ(back.type, "some.Type");
  EXPECT_TRUE(same_bytes(back.bytes, v.bytes));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(back.bytes.data()) % kSpillAlignment, 0u);
  // Copy-on-write: a task writing to its input changes neither the file nor a later read.
  back.bytes.mutable_data()[0] = ~back.bytes.data()[0];
  Value again = read_spill_file(fd(), spill_file_name(1), "some.Type", w.info);
  EXPECT_TRUE(same_bytes(again.bytes, v.bytes));
}

TEST_F(SpillFileTest, ALongTypeNameMovesThePayloadToTheNextPage) {
  Value v{std::string(5000, 't'), Bytes::copy_of("payload")};
  auto w = write_spill_file(fd(), spill_file_name(2), v, false);
  ASSERT_EQ(w.error, 0) << w.what;
  EXPECT_EQ(w.info.payload_offset, 2 * kSpillAlignment);
  EXPECT_EQ(read_spill_header(fd(), spill_file_name(2)).type, v.type);
  EXPECT_EQ(read_spill_file(fd(), spill_file_name(2), v.type, w.info).bytes.view(), "payload");
}

TEST_F(SpillFileTest, EmptyValue) {
  Value v{"std::string", Bytes()};
  auto w = write_spill_file(fd(), spill_file_name(3), v, true);
  ASSERT_EQ(w.error, 0) << w.what;
  EXPECT_EQ(w.info.file_bytes(), kSpillAlignment);
  EXPECT_EQ(read_spill_file(fd(), spill_file_name(3), v.type, w.info).bytes.size(), 0u);
}

TEST_F(SpillFileTest, CompressesOnlyValuesThatShrink) {
  if (!spill_compression_available()) GTEST_SKIP() << "built without lz4";
  // Compressible: 9 MiB (three blocks, the last one partial) of a repeating pattern.
  Bytes pattern = Bytes::allocate(9 << 20);
  for (std::size_t i = 0; i < pattern.size(); ++i) pattern.mutable_data()[i] = static_cast<std::byte>((i / 8) % 251);
  Value compressible{"c", pattern};
  auto wc = write_spill_file(fd(), spill_file_name(4), compressible, true);
  ASSERT_EQ(wc.error, 0) << wc.what;
  EXPECT_TRUE(wc.info.compressed);
  EXPECT_LT(wc.info.stored_bytes, pattern.size() / 4);
  EXPECT_TRUE(read_spill_header(fd(), spill_file_name(4)).info.compressed);
  EXPECT_TRUE(same_bytes(read_spill_file(fd(), spill_file_name(4), "c", wc.info).bytes, pattern));

  Value random{"r", random_bytes(5 << 20, 2)};
  auto wr = write_spill_file(fd(), spill_file_name(5), random, true);
  ASSERT_EQ(wr.error, 0) << wr.what;
  EXPECT_FALSE(wr.info.compressed);  // written as it is: mapped back
  EXPECT_TRUE(same_bytes(read_spill_file(fd(), spill_file_name(5), "r", wr.info).bytes, random.bytes));
}

TEST_F(SpillFileTest, AFileOfTheWrongSizeOrHeaderIsReportedNotRead) {
  Value v{"t", random_bytes(10000, 3)};
  auto w = write_spill_file(fd(), spill_file_name(6), v, false);
  ASSERT_EQ(w.error, 0) << w.what;
  ASSERT_EQ(::truncate((dir_->path() + "/" + spill_file_name(6)).c_str(), 5000), 0);
  EXPECT_THROW(read_spill_file(fd(), spill_file_name(6), "t", w.info), std::runtime_error);
  EXPECT_THROW(read_spill_file(fd(), spill_file_name(7), "t", w.info), std::runtime_error);  // missing
  int f = ::openat(fd(), spill_file_name(6).c_str(), O_WRONLY);
  ASSERT_GE(f, 0);
  ASSERT_EQ(::pwrite(f, "X", 1, 0), 1);
  ::close(f);
  EXPECT_THROW(read_spill_header(fd(), spill_file_name(6)), std::runtime_error);
}

TEST_F(SpillFileTest, WritingIntoAMissingDirectoryFailsWithItsErrno) {
  const std::string path = dir_->path();
  // The directory is removed under the store (an administrator cleaning /tmp).
  std::filesystem::remove_all(path);
  auto w = write_spill_file(fd(), spill_file_name(8), Value{"t", Bytes::copy_of("x")}, false);
  EXPECT_EQ(w.error, ENOENT);
  EXPECT_NE(w.what.find(spill_file_name(8)), std::string::npos) << w.what;
}

}  // namespace
}  // namespace distrib::detail::wrk
