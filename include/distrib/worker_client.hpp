#pragma once
// Tasks that launch tasks, as Dask's get_client, secede, rejoin and worker_client.
//
// A task may submit more tasks and wait on them, with a client of its own scheduler that
// the worker's tasks share:
//
//   long fib(int n) {
//     if (n < 2) return n;
//     distrib::WorkerClient c;  // gives this task's thread back while it waits
//     auto a = c->submit(fib, n - 1);
//     auto b = c->submit(fib, n - 2);
//     return a.result() + b.result();
//   }
//   DISTRIB_TASK(fib);
//
// A task that waits on other tasks while holding its thread can deadlock a cluster whose
// threads are all taken by waiting tasks. secede() gives the thread back: the worker starts
// another task in its place and the scheduler stops counting the task against the worker's
// threads (Dask's "long-running" state). rejoin() takes a thread again, waiting until one is
// free. The WorkerClient guard secedes for its lifetime.
//
// Tasks submitted from a task run newest first (depth first): a recursion finishes its
// deepest calls before starting new branches, which keeps the number of waiting tasks (and
// of threads blocked in them) near the recursion's depth.
#include <map>
#include <string>

#include "distrib/client.hpp"

namespace distrib {

/// The worker that runs the calling task (get_worker()).
struct TaskWorker {
  std::string name;
  std::string address;            // its data port, as the scheduler knows it
  std::string scheduler_address;  // the scheduler it belongs to
  unsigned nthreads = 1;
  std::map<std::string, double> resources;  // e.g. {"GPU", 2}, as given to dworker --resources
};

/// Inside a task: the worker running it. Throws distrib::Error when not called from a task.
TaskWorker get_worker();

/// Inside a task: a client of the task's own scheduler, made on first use and shared by all
/// the worker's tasks (thread-safe; do not close it). It uses the worker's security (token,
/// TLS). Futures it makes may be waited on, gathered or passed to other tasks. Throws
/// distrib::Error when not called from a task, or CommError if the scheduler cannot be
/// reached. Waiting on its futures holds the thread: see secede() and WorkerClient.
Client& get_client();

/// Inside a task: gives the task's thread back to the worker (another task may start) and
/// tells the scheduler the task no longer takes one of the worker's threads. The task keeps
/// running on its thread. Calling it again does nothing. Throws distrib::Error outside a task.
void secede();

/// Inside a task that seceded: waits until the worker has a thread free and takes it
/// again; seceded tasks that rejoin go before tasks that have not started. Does nothing for a
/// task that did not secede. Throws distrib::Error outside a task.
void rejoin();

/// An RAII guard, Dask's worker_client: secedes when made (unless the task already has),
/// rejoins when destroyed (if it seceded), and gives the shared get_client() meanwhile.
class WorkerClient {
 public:
  WorkerClient();
  ~WorkerClient();
  WorkerClient(const WorkerClient&) = delete;
  WorkerClient& operator=(const WorkerClient&) = delete;

  Client& client() const { return *client_; }
  Client* operator->() const { return client_; }
  Client& operator*() const { return *client_; }

 private:
  Client* client_;
  bool seceded_here_;
};
/// Dask's spelling.
using worker_client = WorkerClient;

}  // namespace distrib
