// Spill files: writing a value (raw, or in lz4 blocks when its first block compresses) and
// reading it back (mmap, or one read and decompression). The format is in spill_file.hpp.
#include "worker/spill_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <vector>

#if DISTRIB_HAVE_LZ4
#include <lz4.h>
#endif

namespace distrib::detail::wrk {
namespace {

constexpr char kMagic[8] = {'D', 'S', 'P', 'I', 'L', 'L', '\r', '\n'};  // a text-mode copy shows as corrupt
constexpr std::uint32_t kVersion = 1;
constexpr std::uint32_t kFlagLz4 = 1;
// lz4 blocks: small enough that the writer's scratch buffer stays small, large enough that
// the per-block call and length cost nothing.
constexpr std::size_t kBlockBytes = std::size_t{4} << 20;
constexpr std::uint32_t kRawBlock = 0x80000000u;
// One call reads or writes at most this much (Linux caps a call just under 2 GiB).
constexpr std::size_t kMaxIo = std::size_t{1} << 30;

struct RawHeader {
  char magic[8];
  std::uint32_t version;
  std::uint32_t flags;
  std::uint64_t payload_offset;
  std::uint64_t stored_bytes;
  std::uint64_t value_bytes;
  std::uint32_t type_bytes;
  std::uint32_t block_bytes;
};
static_assert(sizeof(RawHeader) == 48);

std::uint64_t round_up(std::uint64_t n, std::uint64_t to) { return (n + to - 1) / to * to; }

std::string errno_text(const char* call, int err) { return std::string(call) + ": " + std::generic_category().message(err); }

// Writes all of [p, p + n) at `offset`; the errno of the failure, 0 on success.
int pwrite_all(int fd, const std::byte* p, std::size_t n, std::uint64_t offset) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, std::min(n, kMaxIo), static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    p += w;
    n -= static_cast<std::size_t>(w);
    offset += static_cast<std::uint64_t>(w);
  }
  return 0;
}

int pread_all(int fd, std::byte* p, std::size_t n, std::uint64_t offset) {
  while (n > 0) {
    ssize_t r = ::pread(fd, p, std::min(n, kMaxIo), static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (r == 0) return EIO;  // shorter than its header says
    p += r;
    n -= static_cast<std::size_t>(r);
    offset += static_cast<std::uint64_t>(r);
  }
  return 0;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // close() reports write-back errors on some file systems (NFS): checked on the write path.
  int close() {
    int err = (::close(fd_) == 0) ? 0 : errno;
    fd_ = -1;
    return err;
  }

 private:
  int fd_;
};

#if DISTRIB_HAVE_LZ4
// Compresses one block into `out` (LZ4_compressBound(n) bytes); its stored length, or 0 if it
// did not shrink.
std::size_t compress_block(const std::byte* in, std::size_t n, char* out, std::size_t out_capacity) {
  int c = LZ4_compress_default(reinterpret_cast<const char*>(in), out, static_cast<int>(n), static_cast<int>(out_capacity));
  return (c > 0 && static_cast<std::size_t>(c) < n) ? static_cast<std::size_t>(c) : 0;
}

// Writes the value as lz4 blocks from `offset`; the payload's length, or the errno of the
// failure in `err`. `first` is the first block, already compressed into `scratch`.
std::uint64_t write_blocks(int fd, const Bytes& bytes, std::uint64_t offset, std::vector<char>& scratch, std::size_t first,
                           int& err) {
  const std::uint64_t start = offset;
  for (std::size_t at = 0; at < bytes.size(); at += kBlockBytes) {
    const std::size_t n = std::min(kBlockBytes, bytes.size() - at);
    const std::size_t c = (at == 0) ? first : compress_block(bytes.data() + at, n, scratch.data(), scratch.size());
    std::uint32_t prefix = c > 0 ? static_cast<std::uint32_t>(c) : (static_cast<std::uint32_t>(n) | kRawBlock);
    iovec iov[2] = {{&prefix, sizeof prefix},
                    {c > 0 ? static_cast<void*>(scratch.data()) : const_cast<std::byte*>(bytes.data() + at), c > 0 ? c : n}};
    const std::size_t total = sizeof prefix + iov[1].iov_len;
    ssize_t w;
    do w = ::pwritev(fd, iov, 2, static_cast<off_t>(offset));
    while (w < 0 && errno == EINTR);
    if (w < 0) return err = errno, 0;
    if (static_cast<std::size_t>(w) != total) {  // short: finish it the slow way
      std::vector<std::byte> joined(total);
      std::memcpy(joined.data(), &prefix, sizeof prefix);
      std::memcpy(joined.data() + sizeof prefix, iov[1].iov_base, iov[1].iov_len);
      if ((err = pwrite_all(fd, joined.data() + w, total - static_cast<std::size_t>(w), offset + static_cast<std::uint64_t>(w))))
        return 0;
    }
    offset += total;
  }
  return offset - start;
}

void decompress_blocks(const std::byte* in, std::size_t in_bytes, std::byte* out, std::size_t out_bytes, const std::string& name) {
  auto corrupt = [&](const std::string& why) { return std::runtime_error("spill file " + name + " is corrupt: " + why); };
  std::size_t at = 0, produced = 0;
  while (produced < out_bytes) {
    if (in_bytes - at < 4) throw corrupt("truncated block length");
    std::uint32_t prefix;
    std::memcpy(&prefix, in + at, 4);
    at += 4;
    const std::size_t want = std::min(kBlockBytes, out_bytes - produced);
    const std::size_t stored = prefix & ~kRawBlock;
    if (stored > in_bytes - at) throw corrupt("block past the end");
    if (prefix & kRawBlock) {
      if (stored != want) throw corrupt("raw block of the wrong size");
      std::memcpy(out + produced, in + at, stored);
    } else {
      int d = LZ4_decompress_safe(reinterpret_cast<const char*>(in + at), reinterpret_cast<char*>(out + produced),
                                  static_cast<int>(stored), static_cast<int>(want));
      if (d < 0 || static_cast<std::size_t>(d) != want) throw corrupt("lz4 block does not decompress");
    }
    at += stored;
    produced += want;
  }
  if (at != in_bytes) throw corrupt("bytes after the last block");
}
#endif

}  // namespace

bool spill_compression_available() { return DISTRIB_HAVE_LZ4 != 0; }

std::string spill_file_name(std::uint64_t id) {
  char name[32];
  std::snprintf(name, sizeof name, "%016llx.spill", static_cast<unsigned long long>(id));
  return name;
}

SpillWriteResult write_spill_file(int dir_fd, const std::string& name, const Value& value, bool compress) {
  SpillWriteResult result;
  Fd fd(::openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    result.error = errno;
    result.what = errno_text(("create " + name).c_str(), result.error);
    return result;
  }
  const Bytes& bytes = value.bytes;
  SpillFileInfo& info = result.info;
  info.payload_offset = round_up(sizeof(RawHeader) + value.type.size(), kSpillAlignment);
  info.value_bytes = bytes.size();
  int err = 0;
  const char* failed = "write";
#if DISTRIB_HAVE_LZ4
  if (compress && !bytes.empty()) {
    const std::size_t first = std::min(kBlockBytes, bytes.size());
    std::vector<char> scratch(static_cast<std::size_t>(LZ4_compressBound(static_cast<int>(first))));
    const std::size_t c = compress_block(bytes.data(), first, scratch.data(), scratch.size());
    if (c > 0 && c <= first - first / 8) {
      info.compressed = true;
      info.stored_bytes = write_blocks(fd.get(), bytes, info.payload_offset, scratch, c, err);
    }
  }
#endif
  if (!info.compressed) {
    info.stored_bytes = bytes.size();
    err = pwrite_all(fd.get(), bytes.data(), bytes.size(), info.payload_offset);
  }
  if (err == 0) {
    // The header last: a file cut short by a crash has no valid header.
    std::vector<std::byte> header(info.payload_offset);
    RawHeader h{};
    std::memcpy(h.magic, kMagic, sizeof kMagic);
    h.version = kVersion;
    h.flags = info.compressed ? kFlagLz4 : 0;
    h.payload_offset = info.payload_offset;
    h.stored_bytes = info.stored_bytes;
    h.value_bytes = info.value_bytes;
    h.type_bytes = static_cast<std::uint32_t>(value.type.size());
    h.block_bytes = info.compressed ? static_cast<std::uint32_t>(kBlockBytes) : 0;
    std::memcpy(header.data(), &h, sizeof h);
    std::memcpy(header.data() + sizeof h, value.type.data(), value.type.size());
    err = pwrite_all(fd.get(), header.data(), header.size(), 0);
  }
  if (err == 0) {
    failed = "close";
    err = fd.close();
  }
  if (err != 0) {
    ::unlinkat(dir_fd, name.c_str(), 0);  // nothing half-written stays behind
    result.error = err;
    result.what = errno_text((std::string(failed) + " " + name).c_str(), err);
  }
  return result;
}

Value read_spill_file(int dir_fd, const std::string& name, const std::string& type, const SpillFileInfo& info) {
  Fd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw std::runtime_error("cannot read spill file " + name + ": " + errno_text("open", errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw std::runtime_error("cannot read spill file " + name + ": " + errno_text("fstat", errno));
  if (static_cast<std::uint64_t>(st.st_size) != info.file_bytes())
    throw std::runtime_error("spill file " + name + " has " + std::to_string(st.st_size) + " bytes, not the " +
                             std::to_string(info.file_bytes()) + " written");
  if (info.value_bytes == 0) return Value{type, Bytes()};
  if (!info.compressed) {
    // Private and writable: a task may write to its input (as to one received by socket);
    // the write copies the page, the file never changes.
    void* p = ::mmap(nullptr, info.value_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get(),
                     static_cast<off_t>(info.payload_offset));
    if (p == MAP_FAILED) throw std::runtime_error("cannot map spill file " + name + ": " + errno_text("mmap", errno));
    const std::size_t length = info.value_bytes;
    auto owner = std::shared_ptr<std::byte[]>(static_cast<std::byte*>(p), [length](std::byte* q) { ::munmap(q, length); });
    return Value{type, Bytes::adopt(std::move(owner), length)};
  }
#if DISTRIB_HAVE_LZ4
  Bytes stored = Bytes::allocate(info.stored_bytes);
  if (int err = pread_all(fd.get(), stored.mutable_data(), info.stored_bytes, info.payload_offset))
    throw std::runtime_error("cannot read spill file " + name + ": " + errno_text("read", err));
  Bytes out = Bytes::allocate(info.value_bytes);
  decompress_blocks(stored.data(), stored.size(), out.mutable_data(), out.size(), name);
  return Value{type, std::move(out)};
#else
  throw std::runtime_error("spill file " + name + " is compressed and this build has no lz4");
#endif
}

SpillHeader read_spill_header(int dir_fd, const std::string& name) {
  Fd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw std::runtime_error("cannot read spill file " + name + ": " + errno_text("open", errno));
  RawHeader h{};
  if (int err = pread_all(fd.get(), reinterpret_cast<std::byte*>(&h), sizeof h, 0))
    throw std::runtime_error("cannot read the header of spill file " + name + ": " + errno_text("read", err));
  auto corrupt = [&](const std::string& why) { return std::runtime_error("spill file " + name + " is corrupt: " + why); };
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) throw corrupt("bad magic");
  if (h.version != kVersion) throw corrupt("format version " + std::to_string(h.version));
  if ((h.flags & ~kFlagLz4) != 0) throw corrupt("unknown flags");
  if (h.payload_offset % kSpillAlignment != 0 || h.payload_offset < sizeof h + h.type_bytes) throw corrupt("bad payload offset");
  SpillHeader out;
  out.info = {h.payload_offset, h.stored_bytes, h.value_bytes, (h.flags & kFlagLz4) != 0};
  out.type.resize(h.type_bytes);
  if (int err = pread_all(fd.get(), reinterpret_cast<std::byte*>(out.type.data()), h.type_bytes, sizeof h))
    throw std::runtime_error("cannot read the header of spill file " + name + ": " + errno_text("read", err));
  return out;
}

}  // namespace distrib::detail::wrk
