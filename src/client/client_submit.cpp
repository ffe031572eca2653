// Submitting work: tasks, graphs and scattered data become futures and messages for the
// scheduler. Everything is checked and encoded on the caller's thread; the io thread only
// writes.
#include "client/client_impl.hpp"

#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t on the stack: no allocation per task key
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <map>
#include <unordered_set>

#include "comm/message.hpp"
#include "core/bytes_loan.hpp"
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

bool matches(const WorkerDescription& w, const std::vector<std::string>& names) {
  for (const auto& n : names)
    if (n == w.name || n == w.address) return true;
  return false;
}
}  // namespace

std::string ClientImpl::next_token() { return hex(token_base_) + hex(++counter_).substr(8); }

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
      spec.priority = -static_cast<std::int64_t>(o.priority) * (std::int64_t{1} << 40) + take_priorities(1);
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
    std::vector<TaskSpec> sent;
    std::vector<std::string> sent_keys;
    sent.reserve(n);
    sent_keys.reserve(n);
    for (unsigned i = 0; i < n; ++i) {
      write_task_spec(mb, tasks[i], *to_send[i]);
      wanted.set(i, to_send[i]->key);
      sent_keys.push_back(to_send[i]->key);
      sent.push_back(std::move(*to_send[i]));  // values are shared, not copied
    }
    post_graph(mb.finish(), std::move(sent), std::move(sent_keys));
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
  std::int64_t base = take_priorities(static_cast<std::int64_t>(order.size()));
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
  post_graph(mb.finish(), std::move(specs), std::move(wanted_keys));
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

FutureHandle ClientImpl::scatter_lent(const std::string& type, const void* data, std::size_t size,
                                      const ScatterOptions& options) {
  BytesLoan loan(data, size);
  std::vector<FutureHandle> out;
  std::exception_ptr error;
  try {
    std::vector<Value> values;
    values.push_back(Value{type, loan.bytes()});
    out = scatter(std::move(values), options);
  } catch (...) {
    error = std::current_exception();
  }
  // The caller may free `data` once this returns. The puts have been answered (or have
  // failed), so what still refers to it is being dropped by the io thread; once that thread
  // is gone nothing reads it any more, whatever is left holding it.
  loan.wait_returned([this] { return io_finished_.load(); });
  if (error) std::rethrow_exception(error);
  return out.front();
}

}  // namespace distrib::detail
