#include "client/client_impl.hpp"

#include <fstream>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>

#include "comm/io_loop.hpp"
#include "comm/message.hpp"
#include "comm/security_defaults.hpp"
#include "core/log.hpp"
#include "core/task_spec.hpp"

namespace distrib::detail {

ClientImpl::ClientImpl(ClientOptions options) : options_(std::move(options)), work_(asio::make_work_guard(io_)) {
  options_.security = with_environment_defaults(std::move(options_.security));
  std::random_device rd;
  token_base_ = (std::uint64_t{rd()} << 32) ^ rd();
  // Unique among the scheduler's clients: it re-attaches by it after a dropped connection.
  char id[40];
  std::snprintf(id, sizeof id, "-%016llx%08x", static_cast<unsigned long long>(token_base_), rd());
  client_id_ = options_.name.substr(0, 64) + id;
}

ClientImpl::~ClientImpl() { close(); }

void ClientImpl::trim_buffers_later() {
  trim_timer_->expires_after(std::chrono::seconds(5));
  trim_timer_->async_wait([self = weak_from_this(), this](asio::error_code ec) {
    auto alive = self.lock();
    if (ec || !alive || io_finished_) return;
    trim_pooled_buffers();
    trim_buffers_later();
  });
}

void ClientImpl::check_open() {
  std::lock_guard lock(mutex_);
  if (closed_ || !lost_reason_.empty())
    throw CommError("the client cannot reach the cluster: " +
                    (lost_reason_.empty() ? std::string("the client is closed") : lost_reason_));
}

FutureHandle ClientImpl::future_for(const std::string& key, bool& fresh) {
  return core_.future_for(key, fresh, [&] { return std::make_shared<FutureState>(key, shared_from_this()); });
}

void ClientImpl::post_message(OutMessage m) {
  std::lock_guard lock(mutex_);
  core_.queue_message(std::move(m));
  schedule_flush();
}

void ClientImpl::post_graph(OutMessage m, std::vector<TaskSpec> tasks, std::vector<std::string> wanted) {
  std::lock_guard lock(mutex_);
  core_.queue_graph(std::move(m), std::move(tasks), std::move(wanted));
  schedule_flush();
}

void ClientImpl::on_io_and_wait(std::size_t parts, std::function<void(std::function<void()>)> start) {
  struct Shared {
    std::mutex mutex;
    std::condition_variable cv;
    std::size_t remaining;
  };
  auto shared = std::make_shared<Shared>();
  shared->remaining = parts;
  auto done = [shared] {
    std::lock_guard lock(shared->mutex);
    if (--shared->remaining == 0) shared->cv.notify_all();
  };
  check_open();  // the io loop would never run `start`
  // Nothing to wait for: `start` must not run at all, as it refers to the caller's frame,
  // which would be gone by then (a scatter of values the client already holds crashed so).
  if (parts == 0) return;
  asio::post(io_, [start = std::move(start), done] { start(done); });
  spin_until_locked(shared->mutex, [&] { return shared->remaining == 0; }, default_io_spin());
  std::unique_lock lock(shared->mutex);
  // If close() on another thread stopped the io loop before `start` ran, it never will:
  // give up once that loop is over (only then, as `start` refers to the caller's frame).
  while (!shared->cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return shared->remaining == 0; }))
    if (io_finished_) throw CommError("the client was closed while waiting for workers");
}

std::vector<Value> ClientImpl::gather(const std::vector<const FutureState*>& futures) {
  for (auto* f : futures)
    if (auto e = future_exception(*f)) std::rethrow_exception(e);
  check_open();  // as for values still on workers: a closed client gives none
  // Small results came with their notices: those are copied straight into place, and only
  // the others are fetched (each key once, however often it is asked for).
  std::vector<Value> out(futures.size());
  std::vector<std::size_t> pending;
  for (std::size_t i = 0; i < futures.size(); ++i) {
    std::lock_guard lock(futures[i]->mutex);
    if (futures[i]->value) out[i] = *futures[i]->value;
    else pending.push_back(i);
  }
  if (pending.empty()) return out;
  std::vector<const FutureState*> todo;
  for (auto i : pending) todo.push_back(futures[i]);
  std::sort(todo.begin(), todo.end());
  todo.erase(std::unique(todo.begin(), todo.end()), todo.end());
  std::unordered_map<std::string, Value> values;
  auto deadline = std::chrono::steady_clock::now() + std::max(options_.connect_timeout, std::chrono::milliseconds(30'000));
  auto backoff = std::chrono::milliseconds(5);
  while (!todo.empty()) {
    // One request per worker, all in flight at once.
    std::map<std::string, std::vector<std::string>> by_worker;
    for (auto* f : todo) {
      std::lock_guard lock(f->mutex);
      by_worker[f->worker].push_back(f->key);
    }
    std::mutex mutex;
    std::string error;
    on_io_and_wait(by_worker.size(), [&, this](std::function<void()> done) {
      for (auto& [worker, keys] : by_worker) {
        fetcher_->fetch(worker, keys, [&, done, worker = worker](FetchResult r) {
          {
            std::lock_guard lock(mutex);
            if (!r.error.empty()) error = "cannot fetch results from worker " + worker + ": " + r.error;
            else if (!r.missing.empty()) error = "worker " + worker + " no longer holds '" + r.missing.front() + "'";
            for (auto& [k, v] : r.values) values.emplace(std::move(k), std::move(v));
          }
          done();
        });
      }
    });
    std::erase_if(todo, [&](const FutureState* f) { return values.count(f->key) > 0; });
    if (todo.empty()) break;
    // A worker died or dropped the value: ask the scheduler where each key is now (it
    // recomputes lost results), and try again there.
    if (std::chrono::steady_clock::now() > deadline) throw CommError(error);
    std::vector<std::string> keys;
    for (auto* f : todo) keys.push_back(f->key);
    auto snap = snapshot(keys);
    for (auto* f : todo) {
      if (auto e = future_exception(*f)) std::rethrow_exception(e);
      auto it = snap.who_has.find(f->key);
      if (it != snap.who_has.end() && !it->second.empty()) {
        std::lock_guard lock(f->mutex);
        f->worker = it->second.front();
      }
    }
    std::this_thread::sleep_for(backoff);  // the recomputation takes at least this long
    backoff = std::min(backoff * 2, std::chrono::milliseconds(200));
  }
  for (auto i : pending) out[i] = values.at(futures[i]->key);
  return out;
}

void ClientImpl::cancel(const std::vector<FutureHandle>& futures) {
  std::vector<std::string> keys;
  for (const auto& f : futures) {
    if (!f) continue;
    if (f->owner != this) throw std::invalid_argument("distrib: cannot cancel a future of another client");
    keys.push_back(f->key);
  }
  for (const auto& f : futures)
    if (f) f->set_cancelled();
  {
    std::lock_guard lock(mutex_);
    if (closed_ || !lost_reason_.empty() || keys.empty()) return;  // nothing runs any more
  }
  std::lock_guard lock(mutex_);
  core_.queue_cancel(std::move(keys));  // under one lock with the epoch: futures made later see it
  schedule_flush();
}

std::vector<std::pair<std::string, Value>> ClientImpl::run(const TaskRequest& request, const std::vector<std::string>& only) {
  wait_for_workers(1, options_.connect_timeout);
  TaskSpec spec;
  spec.key = request.function->name + "-run";
  spec.function = request.function->name;
  for (const auto& a : request.args) {
    if (a.dependency || a.is_list || !a.graph_key.empty())
      throw std::invalid_argument("distrib: Client::run takes plain values, not futures");
    spec.args.push_back(TaskArg{a.value});
  }
  auto targets = workers();
  if (!only.empty()) {
    // As Dask's workers=: only those, and a name that is not connected is an error.
    std::string unknown;
    for (const auto& name : only)
      if (std::none_of(targets.begin(), targets.end(), [&](const auto& w) { return w.name == name || w.address == name; }))
        unknown += (unknown.empty() ? "" : ", ") + name;
    if (!unknown.empty()) throw std::invalid_argument("distrib::Client::run: no such worker: " + unknown);
    std::erase_if(targets, [&](const WorkerDescription& w) {
      return std::find(only.begin(), only.end(), w.name) == only.end() &&
             std::find(only.begin(), only.end(), w.address) == only.end();
    });
  }
  std::mutex mutex;
  std::vector<std::pair<std::string, Value>> results;
  std::optional<TaskError> failed;
  std::string comm_error;
  on_io_and_wait(targets.size(), [&, this](std::function<void()> done) {
    for (const auto& w : targets)
      fetcher_->run(w.address, spec, [&, done, address = w.address](DataFetcher::RunOutcome r) {
        {
          std::lock_guard lock(mutex);
          if (!r.error.empty()) comm_error = "run on " + address + " failed: " + r.error;
          else if (!r.value) failed.emplace(spec.key + "@" + address, r.exception_type, r.message);
          else results.emplace_back(address, std::move(*r.value));
        }
        done();
      });
  });
  if (failed) throw *failed;
  if (!comm_error.empty()) throw CommError(comm_error);
  return results;
}

ClusterSnapshot ClientImpl::snapshot(const std::vector<std::string>& keys, bool with_story) {
  check_open();
  std::future<ClusterSnapshot> reply;
  std::uint64_t id;
  {
    std::lock_guard lock(mutex_);
    id = next_info_id_++;
    auto& waiting = info_waiting_[id];
    waiting.keys = keys;  // to ask again if the connection drops before the answer
    waiting.with_story = with_story;
    reply = waiting.promise.get_future();
  }
  post_message(info_request(id, keys, with_story));
  // While reconnecting the request waits in the outbox: allow for the reconnection too.
  if (reply.wait_for(std::max(options_.connect_timeout, options_.reconnect_timeout)) != std::future_status::ready) {
    std::lock_guard lock(mutex_);
    info_waiting_.erase(id);
    throw TimeoutError("the scheduler did not answer an information request");
  }
  return reply.get();
}

void ClientImpl::release_key(const std::string& key) {
  // Runs in ~FutureState, which may happen while this thread holds mutex_ (dropping a
  // reference in a lookup): queue the release through the io thread instead of locking.
  // Posting keeps the order with messages queued later by the same thread.
  asio::post(io_, [self = weak_from_this(), key] {
    auto client = self.lock();
    if (!client) return;
    std::lock_guard lock(client->mutex_);
    client->core_.forget(key);
    if (client->closed_ || !client->lost_reason_.empty()) return;
    client->core_.queue_release(key);
    client->schedule_flush();
  });
}

void ClientImpl::restart(std::chrono::milliseconds timeout, bool wait_for_workers) {
  if (timeout.count() <= 0)
    throw std::invalid_argument("distrib::Client::restart: the timeout must be positive, not " +
                                std::to_string(timeout.count()) + " ms");
  if (!restart_unsupported.empty()) throw Error("distrib::Client::restart: " + restart_unsupported);
  check_open();
  timeout = std::min<std::chrono::milliseconds>(timeout, std::chrono::hours(24 * 365));  // no overflow below
  // The scheduler answers by its timeout; allow for the way there and back.
  const auto wait = timeout + options_.connect_timeout;
  auto outcome = ask_scheduler("restart", wait, [&](MessageBuilder& mb, std::uint64_t id) {
    auto req = mb.root().initRestart();
    req.setId(id);
    req.setTimeoutMs(static_cast<std::uint64_t>(timeout.count()));
    req.setWaitForWorkers(wait_for_workers);
  });
  if (!outcome.ok) throw TimeoutError(outcome.reason);
}

std::vector<std::string> ClientImpl::retire_workers(const std::vector<std::string>& workers,
                                                    std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0)
    throw std::invalid_argument("distrib::Client::retire_workers: the timeout must be positive");
  if (workers.empty()) return {};
  check_open();
  timeout = std::min<std::chrono::milliseconds>(timeout, std::chrono::hours(24 * 365));
  const auto wait = timeout + options_.connect_timeout;
  auto outcome = ask_scheduler("retire_workers", wait, [&](MessageBuilder& mb, std::uint64_t id) {
    auto req = mb.root().initRetireWorkers();
    req.setId(id);
    req.setTimeoutMs(static_cast<std::uint64_t>(timeout.count()));
    auto list = req.initWorkers(static_cast<unsigned>(workers.size()));
    for (unsigned i = 0; i < workers.size(); ++i) list.set(i, workers[i]);
  });
  if (!outcome.ok) throw Error("distrib::Client::retire_workers: " + outcome.reason);
  return outcome.retired;
}

void ClientImpl::upload_file(const std::string& path, std::chrono::milliseconds timeout) {
  // Read straight into the buffer that is sent: a library can be tens of megabytes.
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::invalid_argument("distrib::Client::upload_file: cannot read " + path);
  const auto end = in.tellg();  // -1 for what has no size (a directory)
  if (end < 0) throw std::invalid_argument("distrib::Client::upload_file: cannot read " + path);
  const auto size = static_cast<std::size_t>(end);
  Bytes content = Bytes::allocate(size);
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char*>(content.mutable_data()), static_cast<std::streamsize>(size)))
    throw std::invalid_argument("distrib::Client::upload_file: cannot read " + path);
  check_open();
  const auto slash = path.rfind('/');
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  auto outcome = ask_scheduler("upload_file", timeout, [&](MessageBuilder& mb, std::uint64_t id) {
    auto u = mb.root().initUploadFile();
    u.setId(id);
    u.setName(name);
    mb.set_value(u.initData(), Value{"bytes", content});
  });
  if (!outcome.ok) throw Error("distrib::Client::upload_file: " + name + ": " + outcome.reason);
}

ClientImpl::RestartOutcome ClientImpl::ask_scheduler(const char* what, std::chrono::milliseconds wait,
                                                      const std::function<void(MessageBuilder&, std::uint64_t)>& build) {
  std::future<RestartOutcome> reply;
  std::uint64_t id;
  {
    std::lock_guard lock(mutex_);
    id = next_restart_id_++;
    reply = restart_waiting_[id].get_future();
  }
  MessageBuilder mb;
  build(mb, id);
  post_message(mb.finish());  // through the outbox: after everything submitted before
  if (reply.wait_for(wait) != std::future_status::ready) {
    std::lock_guard lock(mutex_);
    restart_waiting_.erase(id);
    throw TimeoutError(std::string("distrib::Client::") + what + ": the scheduler did not answer within " +
                       std::to_string(wait.count()) + " ms");
  }
  return reply.get();  // CommError if the client gave up on the scheduler meanwhile
}

void ClientImpl::close() {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
    closing_ = true;
  }
  reconnect_cv_.notify_all();
  if (reconnector_.joinable()) reconnector_.join();
  if (thread_.joinable()) {
    asio::post(io_, [this] {
      if (!scheduler_ || !scheduler_->is_open()) return io_.stop();
      scheduler_->send(make_close());
      scheduler_->close_after_flush("client closed");  // on_lost then stops the loop
    });
    thread_.join();
  }
  io_finished_ = true;
  if (fetcher_) fetcher_->close_all();
  std::vector<Settlement> pending;
  {
    std::lock_guard lock(mutex_);
    if (lost_reason_.empty()) lost_reason_ = "the client is closed";
    pending = core_.fail_pending("the client is closed");
    for (auto& [id, w] : info_waiting_) w.promise.set_exception(std::make_exception_ptr(CommError(lost_reason_)));
    info_waiting_.clear();
    for (auto& [id, p] : restart_waiting_) p.set_exception(std::make_exception_ptr(CommError(lost_reason_)));
    restart_waiting_.clear();
    cv_.notify_all();
  }
  coordination_.fail_all("the client is closed");
  coordination_.stop();
  apply(pending);  // their continuations are posted with the error
  std::shared_ptr<ContinuationThread> continuations;
  {
    std::lock_guard lock(mutex_);
    continuations = continuations_;
  }
  if (continuations) continuations->stop();  // runs what was posted
}

void ClientImpl::shutdown() {
  bool open = false;
  {
    std::lock_guard lock(mutex_);
    open = !closed_ && lost_reason_.empty();
    no_reconnect_ = true;  // the cluster goes away on purpose
  }
  if (open)
    asio::post(io_, [this] {
      if (scheduler_ && scheduler_->is_open()) scheduler_->send(make_shutdown());
    });
  close();
  if (close_cluster) close_cluster();
}

void ClientImpl::wait_for_workers(std::size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!cv_.wait_for(lock, timeout, [&] { return members_.size() >= n || !lost_reason_.empty() || closed_; }))
    throw TimeoutError("only " + std::to_string(members_.size()) + " of " + std::to_string(n) + " workers after " +
                       std::to_string(timeout.count()) + " ms");
  if (members_.size() < n) throw CommError(lost_reason_.empty() ? "the client is closed" : lost_reason_);
}

std::uint16_t ClientImpl::dashboard_port() const {
  std::lock_guard lock(mutex_);
  return dashboard_port_;
}

std::size_t ClientImpl::n_workers() const {
  std::lock_guard lock(mutex_);
  return members_.size();
}

std::vector<WorkerDescription> ClientImpl::workers() const {
  std::lock_guard lock(mutex_);
  return members_;
}

}  // namespace distrib::detail
