// Shared buffers (core/shared_memory.hpp) and their wire form (comm/same_host.hpp): pooled
// buffers live in memfds, describing one with freeze makes later writes here private, a
// mapping sees the bytes described and none of the peer's writes, described buffers are
// reused only once no peer maps them, everything is unmapped when the last Bytes goes, and bad
// descriptors are refused with a reason.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <numeric>

#include "comm/message.hpp"
#include "comm/same_host.hpp"
#include "core/shared_memory.hpp"

namespace distrib::detail {
namespace {

constexpr std::size_t kSize = std::size_t{6} << 20;

Bytes filled(std::size_t size, unsigned char seed) {
  Bytes b = Bytes::allocate(size);
  for (std::size_t i = 0; i < size; ++i) b.mutable_data()[i] = static_cast<std::byte>((i * 7 + seed) & 0xff);
  return b;
}

bool same_bytes(const Bytes& a, const Bytes& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}

class SharedMemory : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!shm::enabled()) GTEST_SKIP() << "shared memory is off here (DISTRIB_SHARED_MEMORY or no memfd)";
  }
};

TEST_F(SharedMemory, APooledBufferIsDescribedAndMappedWithTheSameBytes) {
  auto before = shm::stats();
  Bytes b = filled(kSize, 1);
  auto d = shm::describe(b.data(), b.size(), false);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->pid, static_cast<std::uint32_t>(getpid()));
  EXPECT_EQ(d->length, kSize);
  auto m = shm::map(*d);
  ASSERT_EQ(m.error, "");
  EXPECT_NE(m.bytes.data(), b.data());  // another mapping of the same pages
  EXPECT_TRUE(same_bytes(m.bytes, b));
  auto during = shm::stats();
  EXPECT_EQ(during.bytes_described - before.bytes_described, kSize);
  EXPECT_EQ(during.bytes_mapped - before.bytes_mapped, kSize);
  EXPECT_GE(during.exported_bytes, kSize);
  EXPECT_GE(during.mapped_bytes, kSize);
}

TEST_F(SharedMemory, AfterAFreezeWritesStayOnTheirSide) {
  Bytes b = filled(kSize, 2);
  auto d = shm::describe(b.data(), b.size(), true);
  ASSERT_TRUE(d.has_value());
  auto m = shm::map(*d);
  ASSERT_EQ(m.error, "");
  Bytes original = Bytes::copy_of(b.data(), b.size());
  // Holder side: the user refills an array it scattered.
  b.mutable_data()[100] = std::byte{0xAB};
  EXPECT_EQ(b.data()[100], std::byte{0xAB});
  EXPECT_TRUE(same_bytes(m.bytes, original));
  // Receiver side: a task writes to its input.
  m.bytes.mutable_data()[200] = std::byte{0xCD};
  EXPECT_EQ(b.data()[200], original.data()[200]);
  // A second mapping still sees the bytes as described.
  auto again = shm::map(*d);
  ASSERT_EQ(again.error, "");
  EXPECT_TRUE(same_bytes(again.bytes, original));
  // Our view of it may have diverged from the file: never described with freeze (a client
  // re-scattering an array it gathered and changed goes through the socket); a worker's
  // stored value may be (nobody writes those).
  EXPECT_FALSE(shm::describe(m.bytes.data(), m.bytes.size(), true).has_value());
  EXPECT_TRUE(shm::describe(again.bytes.data(), again.bytes.size(), false).has_value());
}

TEST_F(SharedMemory, WithoutAFreezeThePeerMapsTheHoldersPages) {
  Bytes b = filled(kSize, 8);
  auto d = shm::describe(b.data(), b.size(), false);
  ASSERT_TRUE(d.has_value());
  auto m = shm::map(*d);
  ASSERT_EQ(m.error, "");
  EXPECT_TRUE(same_bytes(m.bytes, b));
  m.bytes.mutable_data()[300] = std::byte{0x11};  // copy-on-write at the peer
  EXPECT_EQ(b.data()[300], static_cast<std::byte>((300 * 7 + 8) & 0xff));
}

TEST_F(SharedMemory, ReleasingBothSidesUnmapsEverything) {
  auto before = shm::stats();
  {
    Bytes b = filled(kSize, 3);
    auto d = shm::describe(b.data(), b.size(), false);
    ASSERT_TRUE(d.has_value());
    auto m = shm::map(*d);
    ASSERT_EQ(m.error, "");
    b = Bytes();  // the holder lets go first: the mapping keeps the pages
    EXPECT_EQ(m.bytes.data()[12], static_cast<std::byte>((12 * 7 + 3) & 0xff));
  }
  trim_pooled_buffers();  // the holder's pool takes back what no peer maps any more
  auto after = shm::stats();
  EXPECT_EQ(after.exported_bytes, before.exported_bytes);
  EXPECT_EQ(after.mapped_bytes, before.mapped_bytes);
  EXPECT_LE(after.fds, before.fds + 1);  // at most the holder's buffer, back in its pool
}

TEST_F(SharedMemory, ADescribedBufferIsReusedOnlyOnceNoPeerMapsIt) {
  constexpr std::size_t size = kSize + (2u << 20);  // a size no other test leaves in the pool
  Bytes b = filled(size, 9);
  const std::byte* p = b.data();
  auto d = *shm::describe(b.data(), b.size(), true);
  auto m = shm::map(d);
  ASSERT_EQ(m.error, "");
  b = Bytes();  // lent: the mapping holds it
  Bytes c = Bytes::allocate(size);
  EXPECT_NE(c.data(), p);
  EXPECT_NE(shm::describe(c.data(), c.size(), false)->inode, d.inode);  // a fresh memfd
  m = {};                                  // the peer lets go
  Bytes e = Bytes::allocate(size);         // c is still held: only the lent one fits
  ASSERT_EQ(e.data(), p);
  // Made ours again: shared (not copy-on-write) and a new generation, so a peer that got
  // the old descriptor late is refused rather than shown the new bytes.
  EXPECT_NE(shm::map(d).error.find("reused"), std::string::npos);
  std::memset(e.mutable_data(), 0x5A, 4096);
  auto d2 = *shm::describe(e.data(), 4096, false);
  EXPECT_EQ(d2.inode, d.inode);
  EXPECT_EQ(d2.generation, d.generation + 1);
  auto m2 = shm::map(d2);
  ASSERT_EQ(m2.error, "");
  EXPECT_EQ(m2.bytes.data()[4095], std::byte{0x5A});
}

TEST_F(SharedMemory, AnUndescribedBufferIsReused) {
  const std::byte* p = nullptr;
  {
    Bytes e = Bytes::allocate(kSize + (4u << 20));
    p = e.data();
  }
  Bytes f = Bytes::allocate(kSize + (4u << 20));
  EXPECT_EQ(f.data(), p);
}

TEST_F(SharedMemory, ASliceMapsAtItsOwnOffset) {
  Bytes b = filled(kSize, 4);
  Bytes part = b.slice(12345, 3u << 20);
  auto d = shm::describe(part.data(), part.size(), false);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->offset, 12345u);
  auto m = shm::map(*d);
  ASSERT_EQ(m.error, "");
  EXPECT_TRUE(same_bytes(m.bytes, part));
  // A mapping is described onward with its own fd and the file's offsets.
  auto onward = shm::describe(m.bytes.data() + 10, 100, false);
  ASSERT_TRUE(onward.has_value());
  EXPECT_NE(onward->fd, d->fd);
  EXPECT_EQ(onward->inode, d->inode);
  EXPECT_EQ(onward->offset, 12345u + 10);
  auto m2 = shm::map(*onward);
  ASSERT_EQ(m2.error, "");
  EXPECT_EQ(std::memcmp(m2.bytes.data(), part.data() + 10, 100), 0);
}

TEST_F(SharedMemory, OrdinaryMemoryIsNotDescribed) {
  Bytes small = Bytes::allocate(1000);
  EXPECT_FALSE(shm::describe(small.data(), small.size(), false).has_value());
  // Memory the pool did not hand out (here a plain anonymous mapping) is not described.
  void* anonymous = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(anonymous, MAP_FAILED);
  EXPECT_FALSE(shm::describe(static_cast<const std::byte*>(anonymous), kSize, false).has_value());
  munmap(anonymous, kSize);
  Bytes b = Bytes::allocate(kSize);
  EXPECT_FALSE(shm::describe(b.data(), b.size() + (8u << 20), false).has_value());  // runs past the buffer
}

TEST_F(SharedMemory, ALargeVectorsMemoryComesFromThePoolAndCanBeHandedOver) {
  // libdistrib's operator new serves large blocks from the pool, so a task's returned
  // vector is already in shared memory when it becomes a Value.
  std::vector<std::byte> v(kSize);
  EXPECT_TRUE(shm::describe(v.data(), v.size(), false).has_value());
}

TEST_F(SharedMemory, BadDescriptorsAreRefusedWithAReason) {
  Bytes b = filled(kSize, 5);
  auto d = *shm::describe(b.data(), b.size(), false);
  auto wrong_inode = d;
  wrong_inode.inode += 1;
  EXPECT_NE(shm::map(wrong_inode).error.find("not the buffer described"), std::string::npos);
  auto too_long = d;
  too_long.length = std::uint64_t{1} << 40;
  EXPECT_NE(shm::map(too_long).error.find("outside"), std::string::npos);
  auto no_fd = d;
  no_fd.fd = 1 << 20;
  EXPECT_NE(shm::map(no_fd).error.find("open /proc/"), std::string::npos);

  // A memfd nobody sealed could change or shrink under the mapping: refused.
  int fd = memfd_create("unsealed", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 1 << 20), 0);
  struct stat st {};
  ASSERT_EQ(fstat(fd, &st), 0);
  shm::Descriptor unsealed{static_cast<std::uint32_t>(getpid()), fd, static_cast<std::uint64_t>(st.st_ino), 0, 4096};
  EXPECT_NE(shm::map(unsealed).error.find("not sealed against shrinking"), std::string::npos);
  close(fd);
}

TEST_F(SharedMemory, PastTheFdBudgetBuffersAreOrdinaryMemory) {
  auto now = shm::stats();
  auto previous = shm::set_fd_budget_for_testing(now.fds);
  Bytes b = Bytes::allocate(kSize + (10u << 20));  // no cached buffer of this size
  EXPECT_FALSE(shm::describe(b.data(), b.size(), false).has_value());
  // A peer's buffer is not mapped either (its fd, which holds the lock, must stay open).
  shm::set_fd_budget_for_testing(previous);
  Bytes c = filled(kSize, 10);
  auto d = *shm::describe(c.data(), c.size(), false);
  shm::set_fd_budget_for_testing(shm::stats().fds);
  EXPECT_NE(shm::map(d).error.find("budget"), std::string::npos);
  shm::set_fd_budget_for_testing(previous);
}

TEST_F(SharedMemory, AnotherProcessMapsTheBytes) {
  Bytes b = filled(kSize, 6);
  auto d = *shm::describe(b.data(), b.size(), false);
  const auto expected = std::accumulate(reinterpret_cast<const unsigned char*>(b.data()),
                                        reinterpret_cast<const unsigned char*>(b.data()) + b.size(), std::uint64_t{0});
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // opens /proc/<parent>/fd/<fd>, as a peer does
    auto m = shm::map(d);
    std::uint64_t sum = 0;
    if (m.error.empty())
      sum = std::accumulate(reinterpret_cast<const unsigned char*>(m.bytes.data()),
                            reinterpret_cast<const unsigned char*>(m.bytes.data()) + m.bytes.size(), std::uint64_t{0});
    if (write(fds[1], &sum, sizeof sum) != sizeof sum) _exit(2);
    _exit(m.error.empty() ? 0 : 1);
  }
  close(fds[1]);
  std::uint64_t sum = 0;
  EXPECT_EQ(read(fds[0], &sum, sizeof sum), static_cast<ssize_t>(sizeof sum));
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(sum, expected);
}

TEST_F(SharedMemory, SharedValuesOnTheWire) {
  Bytes b = filled(kSize, 7);
  MessageBuilder mb;
  auto out = mb.root().initPutData().initValues(2);
  EXPECT_TRUE(set_shared_value(out[0].initValue(), Value{"ndarray", b}, false));
  EXPECT_FALSE(set_shared_value(out[1].initValue(), Value{"i32", Bytes::copy_of("abcd")}, false));  // too small
  auto msg = mb.finish();
  EXPECT_TRUE(msg.frames.empty());  // nothing of the value travels in the message

  InMessage in{std::move(msg.header), {}};
  MessageReader mr(in);
  auto v = mr.root().getPutData().getValues()[0].getValue();
  ASSERT_TRUE(v.isShared());
  EXPECT_EQ(std::string(v.getType().cStr()), "ndarray");
  EXPECT_THROW(mr.value(v), ProtocolError);  // only the readers that expect them map them
  auto m = shm::map(read_descriptor(v.getShared()));
  ASSERT_EQ(m.error, "");
  EXPECT_TRUE(same_bytes(m.bytes, b));
}

TEST_F(SharedMemory, APeerIsOnTheSameHostWithTheSameBootIdAndUid) {
  MessageBuilder ours;
  auto h = ours.root().initHandshake();
  offer_same_host(h);
  ASSERT_TRUE(h.hasSameHost());
  EXPECT_TRUE(same_host_peer(h.asReader()));
  h.getSameHost().setUid(h.getSameHost().getUid() + 1);
  EXPECT_FALSE(same_host_peer(h.asReader()));
  h.getSameHost().setUid(static_cast<std::uint32_t>(getuid()));
  h.getSameHost().setBootId("another-boot");
  EXPECT_FALSE(same_host_peer(h.asReader()));
  MessageBuilder none;
  EXPECT_FALSE(same_host_peer(none.root().initHandshake().asReader()));
}

}  // namespace
}  // namespace distrib::detail
