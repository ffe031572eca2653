#pragma once
// How many task threads are busy on this host, across the processes of this user: a small
// table in shared memory (/dev/shm/distrib-cpu-<uid>), one slot per process, which each
// task thread counts itself into while it runs a task. The io threads read it before they
// poll for work (io_loop.hpp): polling keeps a thread on a core, which is worth it only if
// that core would otherwise sit idle. When every core this process may use has a task
// running on it, they block at once and leave the cores to the tasks.
//
// If the table cannot be made (no /dev/shm, every slot taken) nothing is counted and the
// io threads poll as before. A process that dies leaves its slot behind; readers notice
// (kill(pid, 0) fails) at most every 200 ms and free it.
#include <cstdint>
#include <string>

namespace distrib::detail {

/// One host's table, by its shared-memory name. The process-wide functions below use
/// "/distrib-cpu-<uid>"; tests open their own.
class CpuOccupancyTable {
 public:
  /// Opens (creating) the table; valid() is false if it cannot be.
  explicit CpuOccupancyTable(const std::string& shm_name);
  ~CpuOccupancyTable();
  CpuOccupancyTable(const CpuOccupancyTable&) = delete;
  CpuOccupancyTable& operator=(const CpuOccupancyTable&) = delete;
  bool valid() const { return table_ != nullptr; }
  /// This process's counter (claimed on first use; nullptr if every slot is taken).
  std::int32_t* busy_counter_of_this_process();
  /// The sum over live processes; frees the slots of dead ones at most every
  /// `sweep_interval_ms`.
  int busy(int sweep_interval_ms = 200);

 private:
  void* table_ = nullptr;
  void* slot_ = nullptr;
  bool claimed_ = false;
  std::int64_t last_sweep_ms_ = 0;
};

/// Counts the calling thread as a busy task thread for its lifetime.
class BusyTaskThread {
 public:
  BusyTaskThread();
  ~BusyTaskThread();
  BusyTaskThread(const BusyTaskThread&) = delete;
  BusyTaskThread& operator=(const BusyTaskThread&) = delete;
};

/// Task threads busy on this host now (0 if the table is unavailable).
int host_busy_task_threads();
/// Cores this process may run on (its affinity mask).
int usable_cores();
/// Every usable core has a busy task thread: polling would take a core from a task.
bool cores_taken_by_tasks();

}  // namespace distrib::detail
