#include "journal/record_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace distrib::detail::journal {

namespace {

// '2' since protocol version 2 (strings and vectors of numbers as their elements alone):
// records of a '1' file hold values this version would misread.
constexpr std::array<char, 8> kMagic = {'D', 'S', 'T', 'J', 'R', 'N', 'L', '2'};
constexpr std::size_t kRecordHeader = 8;

constexpr std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kCrcTable = make_crc_table();

void put_u32(std::vector<std::byte>& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
}

std::uint32_t get_u32(const std::byte* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t(std::to_integer<std::uint8_t>(p[i])) << (8 * i);
  return v;
}

[[noreturn]] void throw_errno(const std::string& what) { throw std::system_error(errno, std::generic_category(), what); }

std::vector<std::byte> read_whole(const std::string& path, bool& missing) {
  std::vector<std::byte> data;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  missing = fd < 0 && errno == ENOENT;
  if (fd < 0) {
    if (missing) return data;
    throw_errno("cannot open " + path);
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw_errno("cannot stat " + path);
  }
  data.resize(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < data.size()) {
    auto n = ::read(fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      throw_errno("cannot read " + path);
    }
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return data;
}

std::uint32_t crc32c_portable(std::span<const std::byte> bytes, std::uint32_t crc) {
  crc = ~crc;
  for (auto b : bytes) crc = kCrcTable[(crc ^ std::to_integer<std::uint8_t>(b)) & 0xff] ^ (crc >> 8);
  return ~crc;
}

#if defined(__x86_64__)
// The SSE 4.2 instruction computes the same CRC-32C eight bytes at a time.
__attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(std::span<const std::byte> bytes, std::uint32_t crc) {
  std::uint64_t c = ~crc;
  const std::byte* p = bytes.data();
  std::size_t n = bytes.size();
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    c = __builtin_ia32_crc32di(c, word);
  }
  auto c32 = static_cast<std::uint32_t>(c);
  for (; n > 0; ++p, --n) c32 = __builtin_ia32_crc32qi(c32, std::to_integer<std::uint8_t>(*p));
  return ~c32;
}
#endif

}  // namespace

std::uint32_t crc32c(std::span<const std::byte> bytes, std::uint32_t crc) {
#if defined(__x86_64__)
  static const bool hardware = __builtin_cpu_supports("sse4.2");
  if (hardware) return crc32c_sse42(bytes, crc);
#endif
  return crc32c_portable(bytes, crc);
}

RecordWriter::RecordWriter(std::string path, std::uint64_t valid_bytes) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw_errno("cannot open " + path_ + " for writing");
  if (valid_bytes < kMagic.size()) valid_bytes = 0;
  if (::ftruncate(fd_, static_cast<off_t>(valid_bytes)) != 0 ||
      ::lseek(fd_, static_cast<off_t>(valid_bytes), SEEK_SET) < 0) {
    ::close(fd_);
    throw_errno("cannot truncate " + path_);
  }
  written_ = valid_bytes;
  if (valid_bytes == 0)
    for (char c : kMagic) buffer_.push_back(static_cast<std::byte>(c));
}

RecordWriter::~RecordWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void RecordWriter::append(OutMessage m) {
  auto at = buffer_.size();
  put_u32(buffer_, 0);  // the length and the CRC, once the payload is in
  put_u32(buffer_, 0);
  append_framed(m, buffer_);
  const auto total = buffer_.size() - at - kRecordHeader;
  for (int i = 0; i < 4; ++i) buffer_[at + i] = static_cast<std::byte>((total >> (8 * i)) & 0xff);
  auto crc = crc32c(std::span<const std::byte>(buffer_.data() + at, 4));
  crc = crc32c(std::span<const std::byte>(buffer_.data() + at + kRecordHeader, total), crc);
  for (int i = 0; i < 4; ++i) buffer_[at + 4 + i] = static_cast<std::byte>((crc >> (8 * i)) & 0xff);
}

void RecordWriter::write() {
  std::size_t done = 0;
  while (done < buffer_.size()) {
    auto n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("cannot write " + path_);
    done += static_cast<std::size_t>(n);
  }
  written_ += done;
  buffer_.clear();
}

void RecordWriter::sync() {
  write();
  if (::fdatasync(fd_) != 0) throw_errno("cannot sync " + path_);
}

ReadSummary read_records(const std::string& path, bool allow_torn_tail, const FrameLimits& limits,
                         const std::function<void(InMessage&&, std::uint64_t offset)>& on_record) {
  bool missing = false;
  auto data = read_whole(path, missing);
  ReadSummary summary;
  summary.file_bytes = data.size();
  if (data.empty()) return summary;
  auto corrupt = [&](std::uint64_t offset, const std::string& why) {
    return JournalCorrupt(path + " is damaged at offset " + std::to_string(offset) + ": " + why);
  };
  auto torn = [&](std::uint64_t offset, const std::string& why) {
    if (!allow_torn_tail) throw corrupt(offset, why);
    summary.torn_tail = true;
    summary.valid_bytes = offset;
    return summary;
  };
  if (data.size() < kMagic.size()) return torn(0, "the file is shorter than its magic");
  if (std::memcmp(data.data(), kMagic.data(), kMagic.size()) != 0) {
    if (std::memcmp(data.data(), kMagic.data(), kMagic.size() - 1) == 0)
      throw corrupt(0, "a journal of another distrib version (its values are encoded differently)");
    throw corrupt(0, "not a distrib journal file (bad magic)");
  }
  std::uint64_t offset = kMagic.size();
  while (offset < data.size()) {
    const std::uint64_t rest = data.size() - offset;
    const std::byte* at = data.data() + offset;
    // A crash can leave zeros where an append had reserved space (some file systems).
    if (std::all_of(at, static_cast<const std::byte*>(data.data() + data.size()), [](std::byte b) { return b == std::byte{0}; }))
      return torn(offset, "zeros after the last record");
    if (rest < kRecordHeader) return torn(offset, "a record header cut short");
    const std::uint64_t len = get_u32(at);
    const std::uint64_t end = offset + kRecordHeader + len;
    if (end > data.size()) return torn(offset, "a record cut short");
    auto crc = crc32c(std::span<const std::byte>(at, 4));
    crc = crc32c(std::span<const std::byte>(at + kRecordHeader, len), crc);
    if (crc != get_u32(at + 4)) {
      if (end == data.size()) return torn(offset, "the last record's checksum does not match");
      throw corrupt(offset, "checksum mismatch");
    }
    std::vector<InMessage> messages;
    try {
      FrameDecoder decoder(limits);
      decoder.feed(std::span<const std::byte>(at + kRecordHeader, len), messages);
      if (messages.size() != 1 || !decoder.idle()) throw ProtocolError("not exactly one message");
    } catch (const ProtocolError& e) {
      throw corrupt(offset, std::string("a record that is not a message: ") + e.what());
    }
    on_record(std::move(messages.front()), offset);
    ++summary.records;
    offset = end;
  }
  summary.valid_bytes = offset;
  return summary;
}

void sync_directory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open directory " + dir);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) {
    errno = err;
    throw_errno("cannot sync directory " + dir);
  }
}

}  // namespace distrib::detail::journal
