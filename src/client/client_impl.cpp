#include "client/client_impl.hpp"

#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t on the stack: no allocation per task key
#include <xxhash.h>

#include <cstdio>
#include <random>
#include <algorithm>
#include <unordered_set>

#include "comm/io_loop.hpp"
#include "comm/message.hpp"
#include "core/log.hpp"
#include "core/task_spec.hpp"

namespace distrib::detail {

namespace {
std::string hex(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// A short, key-friendly name for a value's type: "vector<f64>" -> "vector", "ns::Point" -> "Point".
std::string type_prefix(const std::string& type) {
  auto end = type.find('<');
  std::string base = type.substr(0, end);
  auto colons = base.rfind("::");
  if (colons != std::string::npos) base = base.substr(colons + 2);
  for (auto& c : base)
    if (c == '-' || c == ' ') c = '_';
  return base.empty() ? "data" : base;
}

// Hashes what makes a pure task: its function and its arguments.
class Tokenizer {
 public:
  Tokenizer() { XXH3_64bits_reset(&state_); }
  void add(std::string_view s) {
    std::uint64_t n = s.size();
    XXH3_64bits_update(&state_, &n, sizeof n);
    XXH3_64bits_update(&state_, s.data(), s.size());
  }
  std::uint64_t digest() const { return XXH3_64bits_digest(&state_); }

 private:
  XXH3_state_t state_;
};

WorkerDescription describe(proto::WorkerInfo::Reader w) {
  return WorkerDescription{w.getName(),        w.getAddress(),  w.getNthreads(), w.getMemoryLimit(),
                           w.getMemoryBytes(), w.getProcessing(), w.getStored(), w.getStoredBytes()};
}

bool matches(const WorkerDescription& w, const std::vector<std::string>& names) {
  for (const auto& n : names)
    if (n == w.name || n == w.address) return true;
  return false;
}
}  // namespace

ClientImpl::ClientImpl(ClientOptions options) : options_(std::move(options)), work_(asio::make_work_guard(io_)) {
  std::random_device rd;
  token_base_ = (std::uint64_t{rd()} << 32) ^ rd();
}

ClientImpl::~ClientImpl() { close(); }

void ClientImpl::connect(const std::string& address, const std::string& via) {
  if (is_unix_address(address)) {
    address_ = address;
  } else {
    auto [host, port] = parse_address(address);
    address_ = format_address(host, port);
  }
  scheduler_ = std::make_shared<Connection>(connect_socket(io_, via.empty() ? address : via, options_.connect_timeout));
  fetcher_ = std::make_unique<DataFetcher>(io_, proto::Role::CLIENT, options_.name);
  scheduler_->start([this](InMessage&& m) { on_message(std::move(m)); },
                    [this](const std::string& reason) { on_lost(reason); });
  scheduler_->send(make_handshake(proto::Role::CLIENT, options_.name));
  trim_timer_ = std::make_unique<asio::steady_timer>(io_);
  trim_buffers_later();
  thread_ = std::thread([this] {
    name_this_thread("distrib-client");
    run_io(io_, default_io_spin());
  });
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
      std::vector<std::tuple<FutureState*, std::string, std::optional<Value>>> done;
      {
        std::lock_guard lock(mutex_);
        for (auto k : root.getKeysInMemory())
          if (auto* f = lookup(k.getKey()))
            done.emplace_back(f, k.getWorker(), k.hasValue() ? std::optional(mr.value(k.getValue())) : std::nullopt);
      }
      for (auto& [f, w, v] : done) f->set_finished(w, std::move(v));
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
    case proto::Message::KEYS_CANCELLED: {
      {
        std::lock_guard lock(mutex_);
        auto request = ++cancel_replies_;
        for (auto k : root.getKeysCancelled())
          if (auto* f = lookup(k); f && f->epoch >= request) hits.pop_back();  // made after that cancel
      }
      for (auto& f : hits) f->set_cancelled();
      return;
    }
    case proto::Message::CLUSTER_INFO: {
      std::lock_guard lock(mutex_);
      members_.clear();
      for (auto w : root.getClusterInfo().getMembers()) members_.push_back(describe(w));
      dashboard_port_ = root.getClusterInfo().getDashboardPort();
      has_cluster_info_ = true;
      cv_.notify_all();
      return;
    }
    case proto::Message::INFO_REPLY: {
      auto reply = root.getInfoReply();
      ClusterSnapshot snap;
      snap.info.address = address_;
      for (auto w : reply.getWorkers()) snap.info.workers.push_back(describe(w));
      for (auto c : reply.getTaskCounts()) snap.info.tasks[c.getState()] = c.getCount();
      for (auto loc : reply.getWhoHas())
        for (auto w : loc.getWorkers()) snap.who_has[loc.getKey()].emplace_back(w);
      for (auto loc : reply.getHasWhat()) {
        auto& keys = snap.has_what[loc.getKey()];
        for (auto k : loc.getWorkers()) keys.emplace_back(k);
      }
      for (auto line : reply.getStory())
        snap.story.push_back(Transition{line.getKey(), line.getStimulus(), line.getFrom(), line.getTo(),
                                        line.getWorker(), line.getTime()});
      std::lock_guard lock(mutex_);
      auto it = info_waiting_.find(reply.getId());
      if (it != info_waiting_.end()) {
        it->second.set_value(std::move(snap));
        info_waiting_.erase(it);
      }
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

void ClientImpl::trim_buffers_later() {
  trim_timer_->expires_after(std::chrono::seconds(5));
  trim_timer_->async_wait([self = weak_from_this(), this](asio::error_code ec) {
    auto alive = self.lock();
    if (ec || !alive || io_finished_) return;
    trim_pooled_buffers();
    trim_buffers_later();
  });
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
    for (auto& [id, p] : info_waiting_) p.set_exception(std::make_exception_ptr(CommError(lost_reason_)));
    info_waiting_.clear();
    cv_.notify_all();
  }
  if (!closing) log().warn("client lost the scheduler at {}: {}", address_, reason);
  for (auto& f : pending) f->set_lost(lost_reason_);
  pending.clear();
  if (fetcher_) fetcher_->close_all();
  if (closing) io_.stop();
}

std::string ClientImpl::next_token() { return hex(token_base_) + hex(++counter_).substr(8); }

void ClientImpl::check_open() {
  std::lock_guard lock(mutex_);
  if (closed_ || !lost_reason_.empty())
    throw CommError("the client cannot reach the cluster: " +
                    (lost_reason_.empty() ? std::string("the client is closed") : lost_reason_));
}

FutureHandle ClientImpl::future_for(const std::string& key, bool& fresh) {
  auto& slot = futures_[key];
  if (auto existing = slot.lock()) {
    std::lock_guard lock(existing->mutex);
    if (existing->status != FutureStatus::cancelled) {
      fresh = false;
      return existing;
    }
  }
  fresh = true;
  auto f = std::make_shared<FutureState>(key, shared_from_this());
  f->epoch = cancels_sent_;
  slot = f;
  return f;
}

void ClientImpl::post_message(OutMessage m) {
  std::lock_guard lock(mutex_);
  outbox_.emplace_back(std::move(m));
  schedule_flush();
}

void ClientImpl::schedule_flush() {
  if (flush_posted_) return;
  flush_posted_ = true;
  asio::post(io_, [self = weak_from_this(), this] {
    if (auto alive = self.lock()) flush_outbox();  // held for the whole flush
  });
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
  asio::post(io_, [start = std::move(start), done] { start(done); });
  spin_until_locked(shared->mutex, [&] { return shared->remaining == 0; }, default_io_spin());
  std::unique_lock lock(shared->mutex);
  // If close() on another thread stopped the io loop before `start` ran, it never will:
  // give up once that loop is over (only then, as `start` refers to the caller's frame).
  while (!shared->cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return shared->remaining == 0; }))
    if (io_finished_) throw CommError("the client was closed while waiting for workers");
}

namespace {
// Raises for arguments that cannot be sent: futures of another client.
void check_args(const std::vector<TaskArgument>& args, const ClientImpl* owner) {
  auto check_owner = [&](const FutureHandle& f) {
    if (f->owner != owner)
      throw std::invalid_argument("distrib: future '" + f->key + "' belongs to another client and cannot be an argument here");
  };
  for (const auto& a : args) {
    if (a.dependency) check_owner(a.dependency);
    for (const auto& f : a.dependency_list) check_owner(f);
  }
}

void check_options(const SubmitOptions& o) {
  for (const auto& [name, amount] : o.resources)
    if (!(amount > 0)) throw std::invalid_argument("distrib: resource '" + name + "' must be a positive amount");
}

// Writes a TaskSpec from a request's arguments (futures become keys); check_args first.
void fill_args(TaskSpec& spec, std::vector<TaskArgument>& args, Tokenizer* token) {
  spec.args.reserve(args.size());
  for (auto& a : args) {
    if (a.dependency) {
      if (token) token->add("key:" + a.dependency->key);
      spec.args.push_back(TaskArg{a.dependency->key});
    } else if (!a.graph_key.empty()) {
      if (token) token->add("key:" + a.graph_key);
      spec.args.push_back(TaskArg{a.graph_key});
    } else if (a.is_list) {
      KeyList list{{}, a.list_type};
      for (auto& f : a.dependency_list) {
        list.keys.push_back(f->key);
        if (token) token->add("key:" + f->key);
      }
      spec.args.push_back(TaskArg{std::move(list)});
    } else {
      if (token) {
        token->add(a.value.type);
        token->add(a.value.bytes.view());
      }
      spec.args.push_back(TaskArg{std::move(a.value)});
    }
  }
}

void apply_options(TaskSpec& spec, const SubmitOptions& o) {
  spec.retries = o.retries;
  spec.workers = o.workers;
  spec.allow_other_workers = o.allow_other_workers;
  spec.resources.assign(o.resources.begin(), o.resources.end());
}
}  // namespace

std::vector<FutureHandle> ClientImpl::submit(std::vector<TaskRequest> batch) {
  // Everything is checked on the caller's thread before anything is sent, so a bad argument
  // raises with nothing sent; encoding happens here too, and the io thread only writes.
  check_open();
  static const SubmitOptions defaults;
  for (const auto& req : batch) {
    check_args(req.args, this);
    check_options(req.options ? *req.options : defaults);
  }
  // Independent tasks go in messages of bounded size, each wanting its own keys, and each
  // is sent as soon as it is encoded: the scheduler starts on the first tasks of a large
  // map while later ones are still being encoded here.
  constexpr std::size_t kTasksPerMessage = 1000;
  std::vector<FutureHandle> out;
  out.reserve(batch.size());
  std::vector<TaskSpec> specs;
  std::vector<const TaskSpec*> to_send;
  for (std::size_t start = 0; start < batch.size(); start += kTasksPerMessage) {
    std::size_t end = std::min(batch.size(), start + kTasksPerMessage);
    specs.clear();
    specs.reserve(end - start);
    for (std::size_t r = start; r < end; ++r) {
      auto& req = batch[r];
      const SubmitOptions& o = req.options ? *req.options : defaults;
      TaskSpec spec;
      spec.function = req.function->name;
      std::optional<Tokenizer> token;
      if (o.pure && o.key.empty()) {
        token.emplace();
        token->add(spec.function);
      }
      fill_args(spec, req.args, token ? &*token : nullptr);
      apply_options(spec, o);
      spec.key = !o.key.empty() ? o.key : spec.function + "-" + (token ? hex(token->digest()) : next_token());
      // Higher user priority first, then submission order.
      spec.priority = -static_cast<std::int64_t>(o.priority) * (std::int64_t{1} << 40) + ++sequence_;
      specs.push_back(std::move(spec));
    }
    to_send.clear();
    {
      std::lock_guard lock(mutex_);
      // Lost or closed while earlier chunks were encoded: futures made now would never hear back.
      if (closed_ || !lost_reason_.empty())
        throw CommError("the client cannot reach the cluster: " +
                        (lost_reason_.empty() ? std::string("the client is closed") : lost_reason_));
      for (auto& spec : specs) {
        bool fresh = false;
        out.push_back(future_for(spec.key, fresh));
        if (fresh) to_send.push_back(&spec);  // a live future for the same key already asked for it
      }
    }
    if (to_send.empty()) continue;
    auto n = static_cast<unsigned>(to_send.size());
    MessageBuilder mb;
    auto graph = mb.root().initUpdateGraph();
    auto tasks = graph.initTasks(n);
    auto wanted = graph.initWanted(n);
    for (unsigned i = 0; i < n; ++i) {
      write_task_spec(mb, tasks[i], *to_send[i]);
      wanted.set(i, to_send[i]->key);
    }
    post_message(mb.finish());
  }
  return out;
}

std::vector<FutureHandle> ClientImpl::submit_graph(const Graph& graph, const std::vector<std::string>& targets, bool all) {
  check_open();
  std::unordered_map<std::string, const Graph::Node*> by_key;
  for (const auto& n : graph.nodes()) by_key.emplace(n.key, &n);
  for (const auto& t : targets)
    if (!by_key.count(t)) throw std::invalid_argument("distrib: '" + t + "' is not a task of this graph");
  // Depth-first, inputs before the task that needs them, in the order the targets are
  // given: running tasks in this order finishes one branch before starting the next (as
  // dask.order), which keeps intermediate results few. Unneeded tasks are culled.
  std::vector<const Graph::Node*> order;
  std::unordered_set<std::string> seen;
  std::vector<std::pair<const Graph::Node*, std::size_t>> stack;
  for (const auto& t : targets) {
    if (!seen.insert(t).second) continue;
    stack.emplace_back(by_key.at(t), 0);
    while (!stack.empty()) {
      auto& [node, next_arg] = stack.back();
      if (next_arg < node->args.size()) {
        const auto& dep = node->args[next_arg++].graph_key;
        if (!dep.empty() && seen.insert(dep).second) stack.emplace_back(by_key.at(dep), 0);
        continue;
      }
      order.push_back(node);
      stack.pop_back();
    }
  }
  for (const auto* node : order) check_args(node->args, this);
  std::int64_t base = sequence_.fetch_add(static_cast<std::int64_t>(order.size())) + 1;
  std::vector<TaskSpec> specs;
  for (std::size_t i = 0; i < order.size(); ++i) {
    TaskSpec spec;
    spec.key = order[i]->key;
    spec.function = order[i]->function->name;
    spec.priority = base + static_cast<std::int64_t>(i);
    auto args = order[i]->args;  // the graph stays reusable
    fill_args(spec, args, nullptr);
    specs.push_back(std::move(spec));
  }
  std::vector<std::string> wanted_keys = targets;
  if (all)
    for (auto* n : order)
      if (std::find(wanted_keys.begin(), wanted_keys.end(), n->key) == wanted_keys.end()) wanted_keys.push_back(n->key);
  std::vector<FutureHandle> out;
  {
    std::lock_guard lock(mutex_);
    for (const auto& k : wanted_keys) {
      bool fresh = false;
      out.push_back(future_for(k, fresh));
    }
  }
  MessageBuilder mb;
  auto update = mb.root().initUpdateGraph();
  auto tasks = update.initTasks(static_cast<unsigned>(specs.size()));
  for (unsigned i = 0; i < specs.size(); ++i) write_task_spec(mb, tasks[i], specs[i]);
  auto wanted = update.initWanted(static_cast<unsigned>(wanted_keys.size()));
  for (unsigned i = 0; i < wanted_keys.size(); ++i) wanted.set(i, wanted_keys[i]);
  post_message(mb.finish());
  return out;
}

std::vector<FutureHandle> ClientImpl::scatter(std::vector<Value> values, const ScatterOptions& options) {
  wait_for_workers(1, options_.connect_timeout);
  std::vector<WorkerDescription> targets;
  for (const auto& w : workers())
    if (options.workers.empty() || matches(w, options.workers)) targets.push_back(w);
  if (targets.empty()) throw std::invalid_argument("distrib: scatter: none of the requested workers is connected");
  // Spread by threads: a worker with 4 threads gets 4 values for every 1 of a 1-thread one.
  std::vector<const WorkerDescription*> slots;
  for (const auto& w : targets)
    for (unsigned t = 0; t < std::max(1u, w.nthreads); ++t) slots.push_back(&w);

  std::vector<std::string> keys;
  std::vector<FutureHandle> out;
  std::map<std::string, std::vector<std::pair<std::string, Value>>> per_worker;
  std::vector<std::vector<std::string>> holders(values.size());
  {
    std::lock_guard lock(mutex_);
    if (closed_) throw CommError("the client is closed");
    for (std::size_t i = 0; i < values.size(); ++i) {
      std::string key;
      if (options.hash) {
        Tokenizer token;
        token.add(values[i].type);
        token.add(values[i].bytes.view());
        key = type_prefix(values[i].type) + "-" + hex(token.digest());
      } else {
        key = type_prefix(values[i].type) + "-" + next_token();
      }
      bool fresh = false;
      out.push_back(future_for(key, fresh));
      keys.push_back(key);
      if (!fresh) continue;  // this client already holds that very value
      if (options.broadcast) {
        for (const auto& w : targets) {
          per_worker[w.address].emplace_back(key, values[i]);
          holders[i].push_back(w.address);
        }
      } else {
        const auto* w = slots[(counter_++) % slots.size()];
        per_worker[w->address].emplace_back(key, values[i]);
        holders[i].push_back(w->address);
      }
    }
  }
  std::string error;
  std::mutex error_mutex;
  on_io_and_wait(per_worker.size(), [&, this](std::function<void()> done) {
    for (auto& [address, kvs] : per_worker)
      fetcher_->put(address, std::move(kvs), [&, done, address = address](std::string e) {
        if (!e.empty()) {
          std::lock_guard lock(error_mutex);
          error = "scatter to " + address + " failed: " + e;
        }
        done();
      });
  });
  if (!error.empty()) throw CommError(error);
  // The data is on the workers: now the scheduler may hand it to tasks.
  MessageBuilder mb;
  std::size_t n = 0;
  for (const auto& h : holders) n += !h.empty();
  auto list = mb.root().initScattered(static_cast<unsigned>(n));
  unsigned j = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (holders[i].empty()) continue;
    list[j].setKey(keys[i]);
    list[j].setType(values[i].type);
    list[j].setNbytes(values[i].bytes.size());
    auto ws = list[j].initWorkers(static_cast<unsigned>(holders[i].size()));
    for (unsigned k = 0; k < holders[i].size(); ++k) ws.set(k, holders[i][k]);
    out[i]->set_finished(holders[i].front());
    ++j;
  }
  if (n > 0) post_message(mb.finish());
  return out;
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
  MessageBuilder mb;
  auto list = mb.root().initCancelKeys(static_cast<unsigned>(keys.size()));
  for (unsigned i = 0; i < keys.size(); ++i) list.set(i, keys[i]);
  std::lock_guard lock(mutex_);
  ++cancels_sent_;  // with the message, under one lock: futures made later see the new count
  outbox_.emplace_back(mb.finish());
  schedule_flush();
}

std::vector<std::pair<std::string, Value>> ClientImpl::run(const TaskRequest& request) {
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
    reply = info_waiting_[id].get_future();
  }
  MessageBuilder mb;
  auto req = mb.root().initInfoRequest();
  req.setId(id);
  req.setStory(with_story);
  auto list = req.initKeys(static_cast<unsigned>(keys.size()));
  for (unsigned i = 0; i < keys.size(); ++i) list.set(i, keys[i]);
  post_message(mb.finish());
  if (reply.wait_for(options_.connect_timeout) != std::future_status::ready) {
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
    auto it = client->futures_.find(key);
    if (it != client->futures_.end() && it->second.expired()) client->futures_.erase(it);
    if (client->closed_) return;
    client->outbox_.emplace_back(key);
    client->schedule_flush();
  });
}

void ClientImpl::flush_outbox() {
  std::vector<std::variant<OutMessage, std::string>> items;
  std::vector<std::string> releases;
  auto send_releases = [&] {
    if (releases.empty()) return;
    MessageBuilder mb;
    auto list = mb.root().initReleaseKeys(static_cast<unsigned>(releases.size()));
    for (unsigned i = 0; i < releases.size(); ++i) list.set(i, releases[i]);
    scheduler_->send_later(mb.finish());  // nothing waits on it: it goes with the next message
    releases.clear();
  };
  {
    std::lock_guard lock(mutex_);
    items.swap(outbox_);
    flush_posted_ = false;
    // A key submitted again since its release was queued is wanted again: keep it.
    for (auto& item : items)
      if (auto* key = std::get_if<std::string>(&item)) {
        auto it = futures_.find(*key);
        if (it != futures_.end() && !it->second.expired()) key->clear();
      }
  }
  if (!scheduler_->is_open()) return;
  for (auto& item : items) {
    if (auto* key = std::get_if<std::string>(&item)) {
      if (!key->empty()) releases.push_back(std::move(*key));
    } else {
      send_releases();
      scheduler_->send(std::move(std::get<OutMessage>(item)));
    }
  }
  send_releases();
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
  io_finished_ = true;
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
