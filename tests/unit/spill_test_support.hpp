#pragma once
// Test support for the spill tests: a scratch directory, a small tmpfs mounted on one (to
// fill a disk, or make one read-only, when running as root), and the files in a directory.
#include <dirent.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "distrib/bytes.hpp"

namespace distrib::test_support {

/// A fresh directory under $TMPDIR or /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string((tmp && *tmp) ? tmp : "/tmp") + "/distrib-spill-test-XXXXXX";
    if (::mkdtemp(templ.data()) != nullptr) path_ = templ;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// A tmpfs of `options` (e.g. "size=1m", "ro") mounted on `dir`, unmounted when destroyed.
/// Mounting needs root (CAP_SYS_ADMIN): check mounted() and skip the test otherwise.
class TmpfsMount {
 public:
  TmpfsMount(const std::string& dir, const std::string& options, unsigned long flags = 0) : dir_(dir) {
    mounted_ = ::geteuid() == 0 && ::mount("tmpfs", dir.c_str(), "tmpfs", flags, options.c_str()) == 0;
  }
  ~TmpfsMount() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;
  bool mounted() const { return mounted_; }
  /// Makes the mounted file system read-only (files may stay open for reading).
  bool remount_read_only(const std::string& options) const {
    return ::mount(nullptr, dir_.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, options.c_str()) == 0;
  }

 private:
  std::string dir_;
  bool mounted_ = false;
};

/// The names in `dir` other than "." and "..", sorted.
inline std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") out.push_back(name);
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// `n` bytes that do not compress (splitmix64).
inline Bytes random_bytes(std::size_t n, std::uint64_t seed) {
  Bytes b = Bytes::allocate(n);
  for (std::size_t i = 0; i < n; ++i) {
    seed += 0x9e3779b97f4a7c15ull;
    std::uint64_t z = seed;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    b.mutable_data()[i] = static_cast<std::byte>(z ^ (z >> 31));
  }
  return b;
}

}  // namespace distrib::test_support
