// LocalCluster::scale and adapt: workers started as the constructor starts them, and removed
// by the scheduler's graceful retirement (Client::retire_workers), never by killing them.
#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "cluster/adaptive.hpp"
#include "cluster/local_cluster_impl.hpp"
#include "core/log.hpp"
#include "distrib/client.hpp"
#include "distrib/errors.hpp"

namespace distrib {

namespace {
ClientOptions cluster_client_options(const Security& security) {
  ClientOptions o;
  o.security = security;
  o.name = "local-cluster";
  o.reconnect_timeout = std::chrono::milliseconds(0);
  return o;
}
}  // namespace

int LocalCluster::Impl::count() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(options.processes ? workers_.size() : worker_nodes_.size());
}

void LocalCluster::Impl::scale(int n) {
  if (n < 0) throw std::invalid_argument("LocalCluster::scale: the number of workers must not be negative");
  std::lock_guard scaling(scale_mutex_);
  std::vector<std::string> newest;  // names, newest first
  {
    std::lock_guard lock(mutex_);
    if (closed_) throw Error("LocalCluster::scale: the cluster is closed");
    const int current = static_cast<int>(options.processes ? workers_.size() : worker_nodes_.size());
    if (n > current) {
      std::vector<int> indices(static_cast<std::size_t>(n - current));
      std::iota(indices.begin(), indices.end(), next_index_);
      next_index_ += n - current;
      const auto deadline = std::chrono::steady_clock::now() + options.start_timeout;
      if (options.processes) add_process_workers(indices, deadline);
      else add_thread_workers(indices, deadline);
      return;
    }
    std::vector<int> indices;
    if (options.processes)
      for (auto& w : workers_) indices.push_back(w.index);
    else
      for (auto& w : worker_nodes_) indices.push_back(w->index);
    std::sort(indices.rbegin(), indices.rend());
    for (int i = 0; i < current - n; ++i) newest.push_back("worker-" + std::to_string(indices[static_cast<std::size_t>(i)]));
  }
  if (!newest.empty()) retire(newest);
}

void LocalCluster::Impl::retire(const std::vector<std::string>& names) {
  // Under scale_mutex_, not mutex_: the retirement takes a round trip to the scheduler. Over
  // the scheduler's TCP address, which every cluster has (its local one may be inproc://).
  Client client(address, cluster_client_options(options.security));
  client.retire_workers(names);
  // Each retired worker was told to shut down: its process exits (and its nanny, seeing it
  // stop on purpose, returns) or its in-process server stops its loop.
  std::lock_guard lock(mutex_);
  auto named = [&](int index) {
    return std::find(names.begin(), names.end(), "worker-" + std::to_string(index)) != names.end();
  };
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (!named(it->index)) {
      ++it;
      continue;
    }
    if (it->thread.joinable()) it->thread.join();
    it = workers_.erase(it);
  }
  for (auto it = worker_nodes_.begin(); it != worker_nodes_.end();) {
    if (!named((*it)->index)) {
      ++it;
      continue;
    }
    (*it)->stop([](detail::WorkerServer& s) { s.stop("retired"); });
    it = worker_nodes_.erase(it);
  }
}

void LocalCluster::Impl::adapt(int minimum, int maximum, AdaptOptions adapt_options) {
  if (minimum < 0 || maximum < minimum)
    throw std::invalid_argument("LocalCluster::adapt: need 0 <= minimum <= maximum, not " + std::to_string(minimum) +
                                " and " + std::to_string(maximum));
  if (adapt_options.interval.count() <= 0 || adapt_options.wait_count < 1)
    throw std::invalid_argument("LocalCluster::adapt: the interval must be positive and wait_count at least 1");
  stop_adapting();
  {
    std::lock_guard lock(adapt_mutex_);
    adapt_stop_ = false;
  }
  adapt_thread_ = std::thread([this, minimum, maximum, adapt_options] {
    detail::AdaptivePolicy policy;
    std::unique_ptr<Client> client;
    while (true) {
      try {
        if (!client)
          client = std::make_unique<Client>(address,
                                            cluster_client_options(options.security));
        const auto info = client->scheduler_info();
        detail::AdaptiveInput in{minimum, maximum, options.threads_per_worker, adapt_options.wait_count, 0, {}};
        for (const char* state : {"processing", "queued", "no-worker"})
          if (auto it = info.tasks.find(state); it != info.tasks.end()) in.runnable_tasks += it->second;
        for (const auto& w : info.workers) in.workers.push_back({w.name, w.processing, w.stored_bytes});
        const auto d = policy.decide(in);
        if (d.scale_to >= 0) {
          detail::log().info("adaptive: {} runnable tasks, scaling to {} workers", in.runnable_tasks, d.scale_to);
          scale(d.scale_to);
        } else if (!d.retire.empty()) {
          detail::log().info("adaptive: retiring {} idle workers", d.retire.size());
          std::lock_guard scaling(scale_mutex_);
          retire(d.retire);
        }
      } catch (const std::exception& e) {
        detail::log().warn("adaptive scaling: {}", e.what());
        client.reset();  // connect afresh next time
      }
      std::unique_lock lock(adapt_mutex_);
      if (adapt_cv_.wait_for(lock, adapt_options.interval, [this] { return adapt_stop_; })) return;
    }
  });
}

void LocalCluster::Impl::stop_adapting() {
  {
    std::lock_guard lock(adapt_mutex_);
    adapt_stop_ = true;
  }
  adapt_cv_.notify_all();
  if (adapt_thread_.joinable() && adapt_thread_.get_id() != std::this_thread::get_id()) adapt_thread_.join();
}

}  // namespace distrib
