#include <cstdio>
#include <future>
#include <random>
#include <unordered_set>

#include "client/client_impl.hpp"
#include "comm/message.hpp"
#include "core/log.hpp"
#include "core/task_spec.hpp"

namespace distrib::detail {

ClientImpl::ClientImpl(ClientOptions options) : options_(std::move(options)), work_(asio::make_work_guard(io_)) {
  std::random_device rd;
  token_base_ = (std::uint64_t{rd()} << 32) ^ rd();
}

ClientImpl::~ClientImpl() { close(); }

void ClientImpl::connect(const std::string& address) {
  address_ = address;
  auto [host, port] = parse_address(address);
  address_ = format_address(host, port);
  scheduler_ = std::make_shared<Connection>(connect_socket(io_, address, options_.connect_timeout));
  fetcher_ = std::make_unique<DataFetcher>(io_, proto::Role::CLIENT, options_.name);
  scheduler_->start([this](InMessage&& m) { on_message(std::move(m)); },
                    [this](const std::string& reason) { on_lost(reason); });
  scheduler_->send(make_handshake(proto::Role::CLIENT, options_.name));
  thread_ = std::thread([this] { io_.run(); });
  std::unique_lock lock(mutex_);
  // The scheduler answers with its handshake then the cluster's size: wait for both, so
  // that n_workers() is right as soon as the constructor returns.
  if (!cv_.wait_for(lock, options_.connect_timeout, [&] { return has_cluster_info_ || !lost_reason_.empty(); })) {
    lock.unlock();
    close();
    throw CommError("no answer from a scheduler at " + address + " within " +
                    std::to_string(options_.connect_timeout.count()) + " ms");
  }
  if (!has_cluster_info_) {
    auto why = lost_reason_;
    lock.unlock();
    close();
    throw CommError("cannot talk to the scheduler at " + address + ": " + why);
  }
}

void ClientImpl::on_message(InMessage&& m) {
  MessageReader mr(m);
  auto root = mr.root();
  if (!handshaken_) {
    auto why = check_handshake(root, proto::Role::SCHEDULER, proto::Role::SCHEDULER);
    if (!why.empty()) throw std::runtime_error(why);
    std::lock_guard lock(mutex_);
    handshaken_ = true;
    cv_.notify_all();
    return;
  }
  // Futures are looked up under the lock but updated outside it: updating may drop the
  // last reference, whose destructor takes the lock again.
  std::vector<std::shared_ptr<FutureState>> hits;
  auto lookup = [&](const std::string& key) -> FutureState* {
    auto it = futures_.find(key);
    if (it == futures_.end()) return nullptr;
    auto f = it->second.lock();
    if (!f) return nullptr;
    hits.push_back(std::move(f));
    return hits.back().get();
  };
  switch (root.which()) {
    case proto::Message::KEYS_IN_MEMORY: {
      std::vector<std::pair<FutureState*, std::string>> done;
      {
        std::lock_guard lock(mutex_);
        for (auto k : root.getKeysInMemory())
          if (auto* f = lookup(k.getKey())) done.emplace_back(f, k.getWorker());
      }
      for (auto& [f, w] : done) f->set_finished(w);
      return;
    }
    case proto::Message::TASK_ERRED: {
      std::vector<std::tuple<FutureState*, std::string, std::string>> done;
      {
        std::lock_guard lock(mutex_);
        for (auto e : root.getTaskErred())
          if (auto* f = lookup(e.getKey())) done.emplace_back(f, e.getExceptionType(), e.getMessage());
      }
      for (auto& [f, t, msg] : done) f->set_erred(t, msg);
      return;
    }
    case proto::Message::CLUSTER_INFO: {
      std::lock_guard lock(mutex_);
      n_workers_ = root.getClusterInfo().getWorkers();
      has_cluster_info_ = true;
      cv_.notify_all();
      return;
    }
    case proto::Message::SHUTDOWN:
      return;  // the scheduler is going away; on_lost follows when it closes
    case proto::Message::ERROR:
      throw std::runtime_error("scheduler reported: " + std::string(root.getError().getReason()));
    default:
      throw std::runtime_error("unexpected message from the scheduler");
  }
}

void ClientImpl::on_lost(const std::string& reason) {
  std::vector<std::shared_ptr<FutureState>> pending;
  bool closing = false;
  {
    std::lock_guard lock(mutex_);
    closing = closing_;
    lost_reason_ = closing ? "the client is closed" : "lost the connection to the scheduler: " + reason;
    for (auto& [k, w] : futures_)
      if (auto f = w.lock()) pending.push_back(std::move(f));
    cv_.notify_all();
  }
  if (!closing) log().warn("client lost the scheduler at {}: {}", address_, reason);
  for (auto& f : pending) f->set_lost(lost_reason_);
  pending.clear();
  if (fetcher_) fetcher_->close_all();
  if (closing) io_.stop();
}

std::string ClientImpl::next_key(const std::string& prefix) {
  char token[40];
  std::snprintf(token, sizeof token, "%016llx%llx", static_cast<unsigned long long>(token_base_),
                static_cast<unsigned long long>(++counter_));
  return prefix + "-" + token;
}

std::vector<FutureHandle> ClientImpl::submit(std::vector<TaskRequest> batch) {
  // Everything is checked and encoded on the caller's thread: a bad argument raises before
  // anything is sent, and the io thread only writes.
  MessageBuilder mb;
  auto graph = mb.root().initUpdateGraph();
  auto tasks = graph.initTasks(static_cast<unsigned>(batch.size()));
  auto wanted = graph.initWanted(static_cast<unsigned>(batch.size()));
  std::vector<FutureHandle> out;
  out.reserve(batch.size());
  auto self = shared_from_this();
  for (unsigned i = 0; i < batch.size(); ++i) {
    auto& req = batch[i];
    TaskSpec spec;
    spec.key = next_key(req.function->name);
    spec.function = req.function->name;
    spec.priority = ++priority_;
    spec.args.reserve(req.args.size());
    for (auto& a : req.args) {
      if (a.dependency) {
        if (a.dependency->owner != this)
          throw std::invalid_argument("distrib: future '" + a.dependency->key +
                                      "' belongs to another client and cannot be an argument here");
        spec.args.push_back(TaskArg{a.dependency->key});
      } else {
        spec.args.push_back(TaskArg{std::move(a.value)});
      }
    }
    write_task_spec(mb, tasks[i], spec);
    wanted.set(i, spec.key);
    out.push_back(std::make_shared<FutureState>(spec.key, self));
  }
  {
    std::lock_guard lock(mutex_);
    if (closed_ || !lost_reason_.empty())
      throw CommError("cannot submit: " + (lost_reason_.empty() ? std::string("the client is closed") : lost_reason_));
    for (auto& f : out) futures_[f->key] = f;
  }
  asio::post(io_, [this, msg = std::make_shared<OutMessage>(mb.finish())]() mutable { scheduler_->send(std::move(*msg)); });
  return out;
}

std::vector<Value> ClientImpl::gather(const std::vector<const FutureState*>& futures) {
  auto fail_if_closed = [&] {
    std::lock_guard lock(mutex_);
    if (closed_ || !lost_reason_.empty())
      throw CommError("cannot fetch results: " + (lost_reason_.empty() ? std::string("the client is closed") : lost_reason_));
  };
  for (auto* f : futures) {
    future_wait(*f, std::nullopt);
    std::lock_guard lock(f->mutex);
    if (f->status == FutureStatus::cancelled) throw CancelledError(f->key);
    if (f->status == FutureStatus::error) {
      if (!f->lost_reason.empty()) throw CommError("result of '" + f->key + "' is unavailable: " + f->lost_reason);
      throw TaskError(f->key, f->error_type, f->error_message);
    }
  }
  // One request per worker, all in flight at once.
  std::map<std::string, std::vector<std::string>> by_worker;
  std::unordered_set<const FutureState*> seen;
  for (auto* f : futures) {
    if (!seen.insert(f).second) continue;
    std::lock_guard lock(f->mutex);
    by_worker[f->worker].push_back(f->key);
  }
  struct Shared {
    std::mutex mutex;
    std::condition_variable cv;
    std::size_t remaining;
    std::unordered_map<std::string, Value> values;
    std::string error;
  };
  fail_if_closed();  // the io loop would never run the fetch
  auto shared = std::make_shared<Shared>();
  shared->remaining = by_worker.size();
  asio::post(io_, [this, shared, by_worker] {
    for (auto& [worker, keys] : by_worker) {
      fetcher_->fetch(worker, keys, [shared, worker](FetchResult r) {
        std::lock_guard lock(shared->mutex);
        if (!r.error.empty()) shared->error = "cannot fetch results from worker " + worker + ": " + r.error;
        else if (!r.missing.empty())
          shared->error = "worker " + worker + " no longer holds '" + r.missing.front() + "'";
        for (auto& [k, v] : r.values) shared->values.emplace(std::move(k), std::move(v));
        if (--shared->remaining == 0) shared->cv.notify_all();
      });
    }
  });
  std::unique_lock lock(shared->mutex);
  shared->cv.wait(lock, [&] { return shared->remaining == 0; });
  if (!shared->error.empty()) throw CommError(shared->error);
  std::vector<Value> out;
  out.reserve(futures.size());
  for (auto* f : futures) out.push_back(shared->values.at(f->key));
  return out;
}

void ClientImpl::release_key(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto it = futures_.find(key);
  if (it != futures_.end() && it->second.expired()) futures_.erase(it);
  if (closed_) return;
  released_.push_back(key);
  if (!release_posted_) {
    release_posted_ = true;
    asio::post(io_, [self = weak_from_this(), this] {
      if (self.lock()) flush_releases();
    });
  }
}

// Sends every key released since the last flush in one message.
void ClientImpl::flush_releases() {
  std::vector<std::string> keys;
  {
    std::lock_guard lock(mutex_);
    keys.swap(released_);
    release_posted_ = false;
  }
  if (keys.empty() || !scheduler_->is_open()) return;
  MessageBuilder mb;
  auto list = mb.root().initReleaseKeys(static_cast<unsigned>(keys.size()));
  for (unsigned i = 0; i < keys.size(); ++i) list.set(i, keys[i]);
  scheduler_->send(mb.finish());
}

void ClientImpl::close() {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
    closing_ = true;
  }
  if (thread_.joinable()) {
    asio::post(io_, [this] {
      if (!scheduler_->is_open()) return io_.stop();
      scheduler_->send(make_close());
      scheduler_->close_after_flush("client closed");  // on_lost then stops the loop
    });
    thread_.join();
  }
  if (fetcher_) fetcher_->close_all();
  std::vector<std::shared_ptr<FutureState>> pending;
  {
    std::lock_guard lock(mutex_);
    if (lost_reason_.empty()) lost_reason_ = "the client is closed";
    for (auto& [k, w] : futures_)
      if (auto f = w.lock()) pending.push_back(std::move(f));
  }
  for (auto& f : pending) f->set_lost("the client is closed");
}

void ClientImpl::shutdown() {
  bool open = false;
  {
    std::lock_guard lock(mutex_);
    open = !closed_ && lost_reason_.empty();
  }
  if (open) asio::post(io_, [this] { scheduler_->send(make_shutdown()); });
  close();
  if (close_cluster) close_cluster();
}

void ClientImpl::wait_for_workers(std::size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!cv_.wait_for(lock, timeout, [&] { return n_workers_ >= n || !lost_reason_.empty(); }))
    throw TimeoutError("only " + std::to_string(n_workers_) + " of " + std::to_string(n) + " workers after " +
                       std::to_string(timeout.count()) + " ms");
  if (n_workers_ < n) throw CommError(lost_reason_);
}

std::size_t ClientImpl::n_workers() const {
  std::lock_guard lock(mutex_);
  return n_workers_;
}

}  // namespace distrib::detail
