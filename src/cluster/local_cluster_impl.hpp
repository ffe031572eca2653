#pragma once
#include <asio/io_context.hpp>

#include <memory>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "cluster/nanny.hpp"
#include "cluster/process.hpp"
#include "comm/io_loop.hpp"
#include "distrib/local_cluster.hpp"
#include "scheduler/scheduler_server.hpp"
#include "worker/worker_server.hpp"

namespace distrib {

/// A server with its own io thread, for LocalCluster(processes = false).
template <class Server>
struct InProcessNode {
  int index = 0;  // its name is worker-<index>
  asio::io_context io{1};
  std::unique_ptr<Server> server;
  std::thread thread;
  void run() {
    thread = std::thread([this] { detail::run_io(io, detail::default_io_spin()); });
  }
  /// Stops the server on its own thread, then joins it.
  template <class StopFn>
  void stop(StopFn stop_server) {
    if (!thread.joinable()) return;
    asio::post(io, [this, stop_server] {
      stop_server(*server);
      io.stop();
    });
    thread.join();
    server.reset();
  }
};

class LocalCluster::Impl {
 public:
  explicit Impl(LocalClusterOptions options);
  ~Impl();
  void close();
  /// local_cluster_scale.cpp.
  void scale(int n);
  void adapt(int minimum, int maximum, AdaptOptions adapt_options);
  void stop_adapting();
  int count() const;

  LocalClusterOptions options;
  std::uint64_t memory_limit_bytes = 0;  // options.memory_limit read (0: none)
  /// The four fractions for a worker process's environment: "0.6,0.7,false,0.95".
  std::string memory_fractions_text() const;
  std::string address;        // the scheduler's tcp:// address, for everyone
  std::string local_address;  // its unix:// socket, which this cluster's workers and clients use

 private:
  void start_processes();
  void start_threads();
  /// Starts workers worker-<i> for each i and waits until they are ready.
  void add_process_workers(const std::vector<int>& indices, std::chrono::steady_clock::time_point deadline);
  void add_thread_workers(const std::vector<int>& indices, std::chrono::steady_clock::time_point deadline);
  /// Starts this program again as `role`; `ready_write` (or -1) gets its ready line.
  detail::ChildProcess spawn_child(const std::string& role, std::vector<std::pair<std::string, std::string>> env,
                                   int ready_write);
  std::vector<std::pair<std::string, std::string>> worker_env(int index, std::uint32_t restarts) const;

  mutable std::mutex mutex_;
  bool closed_ = false;
  // processes = true: each worker process has a nanny, a thread of this process that
  // restarts it when it dies (as Dask's LocalCluster, whose nannies live in the parent).
  struct SupervisedWorker {
    int index = 0;  // its name is worker-<index>
    std::unique_ptr<detail::Nanny> nanny;
    std::thread thread;  // runs nanny->run()
  };
  std::vector<SupervisedWorker> workers_;
  std::string exe_;
  detail::ChildProcess scheduler_;
  int parent_pipe_write_ = -1;  // children exit when it closes, i.e. when this process dies
  int parent_pipe_read_ = -1;
  // processes = false
  std::unique_ptr<InProcessNode<detail::SchedulerServer>> scheduler_node_;
  std::vector<std::unique_ptr<InProcessNode<detail::WorkerServer>>> worker_nodes_;
  int next_index_ = 0;  // the next new worker's name is worker-<next_index_>
  std::mutex scale_mutex_;  // one scale() at a time (the caller's or adapt's)
  /// Retires the workers named `names` through a client of this cluster, then reaps them.
  void retire(const std::vector<std::string>& names);
  // adapt(): its thread, woken early by stop_adapting().
  std::thread adapt_thread_;
  std::mutex adapt_mutex_;
  std::condition_variable adapt_cv_;
  bool adapt_stop_ = false;
};

/// Dask's choice of workers x threads for a machine with `cores` cores.
std::pair<int, int> default_workers_and_threads(int cores);

}  // namespace distrib
