// SpillDirectory: making, locking and removing a worker's spill directory, and removing
// those of dead workers (see spill_directory.hpp for the locking scheme).
#include "worker/spill_directory.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace distrib::detail::wrk {
namespace {

// A directory without a lock file younger than this may be a worker between mkdir and
// taking its lock.
constexpr std::time_t kUnlockedGraceSeconds = 60;

std::string errno_text(int err) { return std::generic_category().message(err); }

std::runtime_error failure(const std::string& what, const std::string& path, int err) {
  return std::runtime_error("cannot " + what + " " + path + ": " + errno_text(err));
}

// Whether `dir` belongs to no living worker. If so and it has a lock file, `held` is that
// file, locked: it is closed only once the directory is gone, so that two workers cleaning
// up at once do not both work on it.
bool is_stale(const std::string& dir, int& held) {
  held = -1;
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return false;  // gone, or not ours to judge
  const std::string lock = dir + "/" + SpillDirectory::kLockFile;
  int fd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return errno == ENOENT && std::time(nullptr) - st.st_mtime > kUnlockedGraceSeconds;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return false;
  }
  held = fd;
  return true;
}

}  // namespace

std::string SpillDirectory::default_parent() {
  const char* tmp = std::getenv("TMPDIR");
  return (tmp != nullptr && *tmp != '\0') ? std::string(tmp) : std::string("/tmp");
}

std::vector<std::string> SpillDirectory::remove_stale(const std::string& parent) {
  std::vector<std::string> removed;
  DIR* d = ::opendir(parent.c_str());
  if (d == nullptr) return removed;
  std::vector<std::string> candidates;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.rfind(kPrefix, 0) == 0) candidates.push_back(parent + "/" + name);
  }
  ::closedir(d);
  for (const auto& dir : candidates) {
    int held = -1;
    if (!is_stale(dir, held)) continue;
    std::error_code ec;  // another worker may be removing it too: whatever is left is fine
    std::filesystem::remove_all(dir, ec);
    if (held >= 0) ::close(held);
    if (!std::filesystem::exists(dir, ec)) removed.push_back(dir);
  }
  return removed;
}

SpillDirectory::SpillDirectory(const std::string& parent_in) {
  const std::string parent = parent_in.empty() ? default_parent() : parent_in;
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (ec) throw std::runtime_error("cannot create the local directory " + parent + ": " + ec.message());
  remove_stale(parent);
  std::string templ = parent + "/" + kPrefix + "XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr)  // mode 0700: other users cannot read spilled values
    throw failure("create a spill directory in", parent, errno);
  path_ = templ;
  auto fail = [this](const std::string& what, int err) {
    auto error = failure(what, path_, err);
    if (lock_fd_ >= 0) ::close(lock_fd_);
    if (dir_fd_ >= 0) ::close(dir_fd_);
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
    return error;
  };
  dir_fd_ = ::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) throw fail("open the spill directory", errno);
  // Read-only: a held lock works as well, and a file open for writing would keep the file
  // system from being remounted read-only (what an administrator, or a test, may do). Made
  // under another name, locked, then renamed into place: a worker starting next to this one
  // never sees an unlocked lock file and takes the directory for a dead worker's.
  constexpr const char* kNewLock = "lock.new";
  lock_fd_ = ::openat(dir_fd_, kNewLock, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) throw fail("write to the spill directory", errno);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) throw fail("lock", errno);
  if (::renameat(dir_fd_, kNewLock, dir_fd_, kLockFile) != 0) throw fail("rename the lock file of", errno);
}

SpillDirectory::~SpillDirectory() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
  // Closed after the removal: until then a cleaner sees the directory as alive.
  ::close(dir_fd_);
  ::close(lock_fd_);
}

}  // namespace distrib::detail::wrk
