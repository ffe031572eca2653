// Spill-to-disk bandwidth (issue 16 part 2): SpillingStore writing 1 GiB in 64 MiB values
// to its directory and reading them back, against a plain dd-style write and read of the
// same bytes to the same file system in the same run; with and without lz4, on random and
// on compressible data (float64 of random small integers, as counts and categories are).
//
// Every figure is GiB/s over the whole 1 GiB, median over the rounds (modes alternate
// order from round to round), with the CPU seconds the process used (all threads: the
// spill thread, the kernel's copy into the page cache, decompression) beside it:
//   spill_write_<data>_<raw|lz4>   put + spill_lru + flush(): files written to the page cache
//   spill_synced_<data>_<..>       the same then fdatasync of every file (reached the disk)
//   spill_read_warm_<data>_<..>    get() of every value + a sum touching every byte, the
//                                  files in the page cache (raw: a mapping, no copy)
//   spill_read_cold_<data>_<..>    the same after the files were dropped from the page cache
//   dd_write, dd_synced, dd_read_warm, dd_read_cold: write() of each value to its own file,
//                                  fdatasync, read() into a reused buffer + the same sum
//   dd_write_direct                O_DIRECT writes of the same buffers (no page cache)
//   sum_only                       the sum alone over the values in memory (the floor of reads)
// then ratios of the spill figures to dd's, and lz4's compressed size over the data's.
//   bench_spill [rounds=3] [total_mib=1024] [value_mib=64] [parent=$TMPDIR or /tmp]
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "worker/spill_directory.hpp"
#include "worker/spill_file.hpp"
#include "worker/spilling_store.hpp"

using bench::Clock;
using bench::seconds_since;
using distrib::Bytes;
using distrib::Value;
using distrib::detail::wrk::SpillDirectory;
using distrib::detail::wrk::SpillingStore;
using distrib::detail::wrk::SpillOptions;

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

struct Figures {
  std::map<std::string, std::vector<double>> gibps, cpu;
  std::vector<std::string> order;
  void add(const std::string& name, double bytes, double seconds, double cpu_used) {
    if (!gibps.count(name)) order.push_back(name);
    gibps[name].push_back(bytes / seconds / kGiB);
    cpu[name].push_back(cpu_used);
  }
  double median(const std::string& name) const { return bench::median(gibps.at(name)); }
};

// Runs fn and records its bandwidth over `bytes` and the CPU it used; returns its seconds.
template <class F>
double timed(Figures& f, const std::string& name, double bytes, F&& fn) {
  const double c0 = cpu_seconds();
  const auto t0 = Clock::now();
  fn();
  const double s = seconds_since(t0);
  f.add(name, bytes, s, cpu_seconds() - c0);
  return s;
}

volatile std::uint64_t g_sink = 0;
// Reads every byte (as words): what a task reading its input does, and what brings in the
// pages of a mapping.
void touch(const std::byte* p, std::size_t n) {
  std::uint64_t sum = 0;
  const std::size_t words = n / 8;
  for (std::size_t i = 0; i < words; ++i) {
    std::uint64_t w;
    std::memcpy(&w, p + 8 * i, 8);
    sum += w;
  }
  g_sink = g_sink + sum;
}

std::vector<Bytes> random_values(std::size_t n, std::size_t size) {
  std::vector<Bytes> out;
  std::uint64_t x = 0x1234567;
  for (std::size_t v = 0; v < n; ++v) {
    Bytes b = Bytes::allocate(size);
    auto* w = reinterpret_cast<std::uint64_t*>(b.mutable_data());
    for (std::size_t i = 0; i < size / 8; ++i) {
      std::uint64_t z = (x += 0x9e3779b97f4a7c15ull);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      w[i] = z ^ (z >> 31);
    }
    out.push_back(std::move(b));
  }
  return out;
}

// float64 of random integers in [0, 1000): most of each double's bytes are the same, but
// no long run repeats (lz4 halves it; a repeating pattern would flatter it 200 times).
std::vector<Bytes> compressible_values(std::size_t n, std::size_t size) {
  std::vector<Bytes> out;
  std::uint64_t x = 0x7654321;
  for (std::size_t v = 0; v < n; ++v) {
    Bytes b = Bytes::allocate(size);
    auto* d = reinterpret_cast<double*>(b.mutable_data());
    for (std::size_t i = 0; i < size / 8; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      d[i] = static_cast<double>((x >> 33) % 1000);
    }
    out.push_back(std::move(b));
  }
  return out;
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != SpillDirectory::kLockFile) out.push_back(e.path().string());
  return out;
}

void for_each_file(const std::string& dir, int flags, void (*fn)(int fd)) {
  for (const auto& path : files_in(dir)) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("open " + path + ": " + std::strerror(errno));
    fn(fd);
    ::close(fd);
  }
}
void sync_files(const std::string& dir) {
  for_each_file(dir, O_RDONLY, [](int fd) {
    if (::fdatasync(fd) != 0) throw std::runtime_error(std::string("fdatasync: ") + std::strerror(errno));
  });
}
// Written back first (dirty pages cannot be dropped), then dropped from the page cache.
void drop_cached(const std::string& dir) {
  sync_files(dir);
  for_each_file(dir, O_RDONLY, [](int fd) { ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED); });
}

void write_all(int fd, const std::byte* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) throw std::runtime_error(std::string("write: ") + std::strerror(errno));
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}
void read_all(int fd, std::byte* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) throw std::runtime_error(std::string("read: ") + std::strerror(errno));
    p += r;
    n -= static_cast<std::size_t>(r);
  }
}

struct Setup {
  std::string parent;
  std::size_t value_bytes;
  double total;
};

void spill_mode(Figures& f, const Setup& setup, const std::vector<Bytes>& values, const std::string& data, bool lz4,
                std::map<std::string, double>& compressed_ratio) {
  const std::string tag = data + (lz4 ? "_lz4" : "_raw");
  SpillingStore store(SpillOptions{.local_directory = setup.parent, .target_bytes = 0, .compress = lz4});
  double write_s = timed(f, "spill_write_" + tag, setup.total, [&] {
    for (std::size_t i = 0; i < values.size(); ++i) store.put("v" + std::to_string(i), Value{"bytes", values[i]}, values[i].size());
    store.spill_lru(static_cast<std::uint64_t>(setup.total));
    store.flush();
  });
  if (auto e = store.last_error()) throw std::runtime_error(*e);
  compressed_ratio[tag] = static_cast<double>(store.stats().disk_bytes) / setup.total;
  const double c0 = cpu_seconds();
  const auto t0 = Clock::now();
  sync_files(store.directory());
  f.add("spill_synced_" + tag, setup.total, write_s + seconds_since(t0), cpu_seconds() - c0);
  auto read_back = [&] {
    for (std::size_t i = 0; i < values.size(); ++i) {
      auto v = store.get("v" + std::to_string(i));
      touch(v->bytes.data(), v->bytes.size());
    }
  };
  timed(f, "spill_read_warm_" + tag, setup.total, read_back);
  store.spill_lru(static_cast<std::uint64_t>(setup.total));  // files written: dropped at once
  store.flush();
  drop_cached(store.directory());
  timed(f, "spill_read_cold_" + tag, setup.total, read_back);
}

void dd_mode(Figures& f, const Setup& setup, const std::vector<Bytes>& values) {
  SpillDirectory dir(setup.parent);  // a directory of the same kind, removed afterwards
  auto name = [&](std::size_t i) { return dir.path() + "/dd-" + std::to_string(i); };
  const double write_s = timed(f, "dd_write", setup.total, [&] {
    for (std::size_t i = 0; i < values.size(); ++i) {
      int fd = ::open(name(i).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fd < 0) throw std::runtime_error("open: " + std::string(std::strerror(errno)));
      write_all(fd, values[i].data(), values[i].size());
      ::close(fd);
    }
  });
  const double c0 = cpu_seconds();
  const auto t0 = Clock::now();
  sync_files(dir.path());
  f.add("dd_synced", setup.total, write_s + seconds_since(t0), cpu_seconds() - c0);
  Bytes buffer = Bytes::allocate(setup.value_bytes);
  std::memset(buffer.mutable_data(), 0, buffer.size());  // warm: the reader's buffer is reused
  auto read_back = [&] {
    for (std::size_t i = 0; i < values.size(); ++i) {
      int fd = ::open(name(i).c_str(), O_RDONLY | O_CLOEXEC);
      read_all(fd, buffer.mutable_data(), values[i].size());
      ::close(fd);
      touch(buffer.data(), values[i].size());
    }
  };
  timed(f, "dd_read_warm", setup.total, read_back);
  drop_cached(dir.path());
  timed(f, "dd_read_cold", setup.total, read_back);
  for (std::size_t i = 0; i < values.size(); ++i) ::unlink(name(i).c_str());
  // O_DIRECT needs aligned buffers: the pool's large ones are (2 MiB).
  bool aligned = true;
  for (const auto& v : values) aligned = aligned && reinterpret_cast<std::uintptr_t>(v.data()) % 4096 == 0 && v.size() % 4096 == 0;
  if (!aligned) return;
  timed(f, "dd_write_direct", setup.total, [&] {
    for (std::size_t i = 0; i < values.size(); ++i) {
      int fd = ::open(name(i).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0600);
      if (fd < 0) throw std::runtime_error("open O_DIRECT: " + std::string(std::strerror(errno)));
      write_all(fd, values[i].data(), values[i].size());
      ::close(fd);
    }
  });
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 3;
  const std::size_t total_mib = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1024;
  const std::size_t value_mib = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 64;
  Setup setup{argc > 4 ? argv[4] : SpillDirectory::default_parent(), value_mib << 20, 0};
  const std::size_t n = total_mib / value_mib;
  setup.total = static_cast<double>(n * setup.value_bytes);
  bench::report_value("loadavg_1min_at_start", "", bench::loadavg_1min());
  std::printf("{\"bench\": \"setup\", \"parent\": \"%s\", \"values\": %zu, \"value_mib\": %zu, \"lz4\": %s}\n",
              bench::json_escape(setup.parent).c_str(), n, value_mib,
              distrib::detail::wrk::spill_compression_available() ? "true" : "false");
  std::fflush(stdout);

  const auto random = random_values(n, setup.value_bytes);
  const auto compressible = compressible_values(n, setup.value_bytes);
  Figures f;
  std::map<std::string, double> compressed_ratio;
  std::vector<std::function<void()>> modes = {
      [&] { dd_mode(f, setup, random); },
      [&] { spill_mode(f, setup, random, "random", false, compressed_ratio); },
      [&] { spill_mode(f, setup, compressible, "compressible", false, compressed_ratio); },
      [&] { spill_mode(f, setup, random, "random", true, compressed_ratio); },
      [&] { spill_mode(f, setup, compressible, "compressible", true, compressed_ratio); },
      [&] {
        timed(f, "sum_only", setup.total, [&] {
          for (const auto& v : random) touch(v.data(), v.size());
        });
      },
  };
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t m = 0; m < modes.size(); ++m) {
      const std::size_t i = (r % 2 == 0) ? m : modes.size() - 1 - m;  // alternate the order
      bench::section("round " + std::to_string(r), modes[i]);
    }
  }
  for (const auto& name : f.order) {
    bench::report(name, "GiB/s", f.gibps[name]);
    bench::report(name + "_cpu", "s", f.cpu[name]);
  }
  auto ratio = [&](const std::string& a, const std::string& b) {
    if (f.gibps.count(a) && f.gibps.count(b)) bench::report_value(a + "_over_" + b, "x", f.median(a) / f.median(b));
  };
  for (const char* data : {"random", "compressible"}) {
    for (const char* comp : {"_raw", "_lz4"}) {
      const std::string tag = std::string(data) + comp;
      ratio("spill_write_" + tag, "dd_write");
      ratio("spill_synced_" + tag, "dd_synced");
      ratio("spill_read_warm_" + tag, "dd_read_warm");
      ratio("spill_read_cold_" + tag, "dd_read_cold");
      if (compressed_ratio.count(tag)) bench::report_value("disk_bytes_over_data_" + tag, "x", compressed_ratio[tag]);
    }
  }
  bench::report_value("loadavg_1min_at_end", "", bench::loadavg_1min());
  return 0;
}
