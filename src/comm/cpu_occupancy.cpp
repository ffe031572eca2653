#include "comm/cpu_occupancy.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>

namespace distrib::detail {

namespace {

constexpr int kSlots = 512;
constexpr std::uint32_t kMagic = 0x44435055;  // "DCPU"

struct Slot {
  std::atomic<std::int32_t> pid;   // the process that owns it, 0 when free
  std::atomic<std::int32_t> busy;  // its task threads running a task
};

struct Table {
  std::atomic<std::uint32_t> magic;
  std::atomic<std::int32_t> used;  // slots [0, used) have been claimed at some time
  Slot slots[kSlots];
};
static_assert(std::atomic<std::int32_t>::is_always_lock_free, "the table is shared between processes");

Table* open_table(const std::string& name) {
  if (name.empty()) return nullptr;  // off
  int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return nullptr;
  // Every process sizes it the same; a fresh one is zero-filled, which is a valid table.
  if (::ftruncate(fd, sizeof(Table)) != 0) {
    ::close(fd);
    return nullptr;
  }
  void* p = ::mmap(nullptr, sizeof(Table), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return nullptr;
  auto* t = static_cast<Table*>(p);
  std::uint32_t zero = 0;
  t->magic.compare_exchange_strong(zero, kMagic);
  return t->magic.load() == kMagic ? t : nullptr;
}

bool dead(std::int32_t pid) { return pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH; }

Slot* claim_slot(Table* t) {
  if (!t) return nullptr;
  const auto me = static_cast<std::int32_t>(::getpid());
  for (int pass = 0; pass < 2; ++pass) {
    for (int i = 0; i < kSlots; ++i) {
      auto& s = t->slots[i];
      std::int32_t owner = s.pid.load(std::memory_order_relaxed);
      bool free = owner == 0 || (pass == 1 && dead(owner));
      if (!free || !s.pid.compare_exchange_strong(owner, me)) continue;
      s.busy.store(0);
      std::int32_t used = t->used.load();
      while (used < i + 1 && !t->used.compare_exchange_weak(used, i + 1)) {
      }
      return &s;
    }
  }
  return nullptr;  // every slot is taken by a live process: this one is not counted
}

/// Frees the slots of processes that died (perhaps in the middle of a task).
void sweep_dead(Table* t, int used) {
  for (int i = 0; i < used; ++i) {
    auto& s = t->slots[i];
    std::int32_t owner = s.pid.load(std::memory_order_relaxed);
    if (owner != 0 && s.busy.load(std::memory_order_relaxed) != 0 && dead(owner) &&
        s.pid.compare_exchange_strong(owner, 0))
      s.busy.store(0);
  }
}

}  // namespace

CpuOccupancyTable::CpuOccupancyTable(const std::string& shm_name) : table_(open_table(shm_name)) {}

CpuOccupancyTable::~CpuOccupancyTable() {
  auto* s = static_cast<Slot*>(slot_);
  if (s) s->pid.store(0);  // a table closed by its process (tests) gives its slot back
  if (table_) ::munmap(table_, sizeof(Table));
}

std::int32_t* CpuOccupancyTable::busy_counter_of_this_process() {
  if (!claimed_) {
    claimed_ = true;
    slot_ = claim_slot(static_cast<Table*>(table_));
  }
  auto* s = static_cast<Slot*>(slot_);
  return s ? reinterpret_cast<std::int32_t*>(&s->busy) : nullptr;
}

int CpuOccupancyTable::busy(int sweep_interval_ms) {
  auto* t = static_cast<Table*>(table_);
  if (!t) return 0;
  const int used = std::min(t->used.load(std::memory_order_relaxed), kSlots);
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
                 .count();
  if (now - last_sweep_ms_ >= sweep_interval_ms) {
    last_sweep_ms_ = now;
    sweep_dead(t, used);
  }
  int busy = 0;
  for (int i = 0; i < used; ++i)
    if (t->slots[i].pid.load(std::memory_order_relaxed) != 0) busy += t->slots[i].busy.load(std::memory_order_relaxed);
  return busy;
}

namespace {

CpuOccupancyTable& host_table() {
  // DISTRIB_CPU_TABLE=off: count nothing, poll as if the host were idle (the unit tests, so
  // that task threads of other test processes on the host do not change what they see).
  static CpuOccupancyTable* t = [] {
    const char* mode = std::getenv("DISTRIB_CPU_TABLE");
    const bool off = mode != nullptr && std::string(mode) == "off";
    return new CpuOccupancyTable(off ? std::string() : "/distrib-cpu-" + std::to_string(::getuid()));
  }();  // never freed: used until exit
  return *t;
}

std::atomic<std::int32_t>* my_counter() {
  static auto* c = reinterpret_cast<std::atomic<std::int32_t>*>(host_table().busy_counter_of_this_process());
  return c;
}

}  // namespace

BusyTaskThread::BusyTaskThread() {
  if (auto* c = my_counter()) c->fetch_add(1, std::memory_order_relaxed);
}

BusyTaskThread::~BusyTaskThread() {
  if (auto* c = my_counter()) c->fetch_sub(1, std::memory_order_relaxed);
}

int host_busy_task_threads() {
  static std::mutex m;  // the table's sweep clock is not atomic
  std::lock_guard lock(m);
  return host_table().busy();
}

int usable_cores() {
  static const int cores = [] {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? static_cast<int>(n) : 1;
  }();
  return cores;
}

bool cores_taken_by_tasks() { return host_busy_task_threads() >= usable_cores(); }

}  // namespace distrib::detail
