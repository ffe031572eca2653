// More of Dask's Client: fire_and_forget, retry, nbytes, replicate, rebalance and
// run_on_scheduler, each a clientOp message to the scheduler (fire_and_forget is not
// answered; the others wait for the answer with their request id), and the continuation
// thread (continuation.hpp).
#include <algorithm>

#include "client/client_impl.hpp"
#include "comm/message.hpp"
#include "core/task_spec.hpp"

namespace distrib::detail {

namespace {
constexpr auto kLongOperation = std::chrono::minutes(10);  // copies, a function on the scheduler

template <class List>
void set_keys(List list, const std::vector<std::string>& keys) {
  for (unsigned i = 0; i < keys.size(); ++i) list.set(i, keys[i]);
}
}  // namespace

std::vector<std::string> ClientImpl::own_keys(const std::vector<FutureHandle>& futures, const char* what) const {
  std::vector<std::string> keys;
  keys.reserve(futures.size());
  for (const auto& f : futures) {
    if (!f) throw std::invalid_argument(std::string("distrib::Client::") + what + ": an empty Future was passed");
    if (f->owner != this)
      throw std::invalid_argument(std::string("distrib::Client::") + what + ": future '" + f->key +
                                  "' belongs to another client");
    keys.push_back(f->key);
  }
  return keys;
}

void ClientImpl::fire_and_forget(const std::vector<FutureHandle>& futures) {
  auto keys = own_keys(futures, "fire_and_forget");
  check_open();
  if (keys.empty()) return;
  MessageBuilder mb;
  auto op = mb.root().initClientOp();
  set_keys(op.getOp().initFireAndForget(static_cast<unsigned>(keys.size())), keys);
  post_message(mb.finish());  // after the graphs that made these keys, before their releases
}

void ClientImpl::retry(const std::vector<FutureHandle>& futures) {
  auto keys = own_keys(futures, "retry");
  check_open();
  if (keys.empty()) return;
  // The answer (retried) makes the futures pending before it wakes this thread.
  auto outcome = ask_scheduler("retry", std::max(options_.connect_timeout, options_.reconnect_timeout),
                               [&](MessageBuilder& mb, std::uint64_t id) {
                                 auto op = mb.root().initClientOp();
                                 op.setId(id);
                                 set_keys(op.getOp().initRetry(static_cast<unsigned>(keys.size())), keys);
                               });
  if (!outcome.ok) throw Error("distrib::Client::retry: " + outcome.reason);
}

std::map<std::string, std::uint64_t> ClientImpl::nbytes(const std::vector<FutureHandle>& futures) {
  auto keys = own_keys(futures, "nbytes");
  check_open();
  auto outcome = ask_scheduler("nbytes", std::max(options_.connect_timeout, options_.reconnect_timeout),
                               [&](MessageBuilder& mb, std::uint64_t id) {
                                 auto op = mb.root().initClientOp();
                                 op.setId(id);
                                 set_keys(op.getOp().initNbytes(static_cast<unsigned>(keys.size())), keys);
                               });
  return outcome.sizes;
}

void ClientImpl::copy_op(const std::vector<FutureHandle>& futures, std::size_t n, bool rebalance) {
  const char* what = rebalance ? "rebalance" : "replicate";
  auto keys = own_keys(futures, what);
  check_open();
  if (!rebalance && n > n_workers())
    throw std::invalid_argument("distrib::Client::replicate: " + std::to_string(n) + " copies, but only " +
                                std::to_string(n_workers()) + " workers are connected");
  if (!rebalance && keys.empty()) return;
  for (const auto& f : futures) future_wait(*f, std::nullopt);  // as Dask: the values first
  auto outcome = ask_scheduler(what, kLongOperation, [&](MessageBuilder& mb, std::uint64_t id) {
    auto op = mb.root().initClientOp();
    op.setId(id);
    if (rebalance) {
      set_keys(op.getOp().initRebalance(static_cast<unsigned>(keys.size())), keys);
    } else {
      auto r = op.getOp().initReplicate();
      set_keys(r.initKeys(static_cast<unsigned>(keys.size())), keys);
      r.setN(static_cast<std::uint32_t>(n));
    }
  });
  if (!outcome.ok) throw Error(std::string("distrib::Client::") + what + ": " + outcome.reason);
}

Value ClientImpl::run_on_scheduler(const TaskRequest& request) {
  TaskSpec spec;
  spec.key = request.function->name + "-run-on-scheduler";
  spec.function = request.function->name;
  for (const auto& a : request.args) {
    if (a.dependency || a.is_list || !a.graph_key.empty())
      throw std::invalid_argument("distrib::Client::run_on_scheduler takes plain values, not futures");
    spec.args.push_back(TaskArg{a.value});
  }
  check_open();
  auto outcome = ask_scheduler("run_on_scheduler", kLongOperation, [&](MessageBuilder& mb, std::uint64_t id) {
    auto op = mb.root().initClientOp();
    op.setId(id);
    write_task_spec(mb, op.getOp().initRunOnScheduler(), spec);
  });
  if (!outcome.value) throw TaskError(spec.key, outcome.error_type, outcome.reason);
  return std::move(*outcome.value);
}

void ClientImpl::on_client_op(MessageReader& mr, proto::ClientOp::Reader op) {
  auto answer = op.getOp();
  RestartOutcome outcome{true, "", {}};
  std::vector<Settlement> settle;
  switch (answer.which()) {
    case proto::ClientOp::Op::RETRIED: {
      std::vector<std::string> keys;
      for (auto k : answer.getRetried()) keys.emplace_back(k);
      std::lock_guard lock(mutex_);
      settle = core_.on_retried(keys);
      break;
    }
    case proto::ClientOp::Op::SIZES:
      for (auto s : answer.getSizes()) outcome.sizes.emplace(s.getKey(), s.getNbytes());
      break;
    case proto::ClientOp::Op::RUN_RESULT: {
      auto r = answer.getRunResult();
      if (r.isValue()) {
        outcome.value = mr.value(r.getValue());
      } else {
        outcome.ok = false;
        outcome.error_type = r.getError().getExceptionType();
        outcome.reason = r.getError().getMessage();
      }
      break;
    }
    case proto::ClientOp::Op::DONE:
      outcome.reason = answer.getDone();
      outcome.ok = outcome.reason.empty();
      break;
    default:
      throw std::runtime_error("a clientOp the client does not take from the scheduler");
  }
  apply(settle);  // pending again before retry() returns
  if (op.getId() == 0) return;  // another client's retry
  std::lock_guard lock(mutex_);
  auto it = restart_waiting_.find(op.getId());
  if (it == restart_waiting_.end()) return;  // given up on (timed out)
  it->second.set_value(std::move(outcome));
  restart_waiting_.erase(it);
}

std::shared_ptr<ContinuationThread> ClientImpl::continuation_thread() {
  std::lock_guard lock(mutex_);
  if (!continuations_) continuations_ = std::make_shared<ContinuationThread>();
  return continuations_;
}

}  // namespace distrib::detail

namespace distrib {

void Client::fire_and_forget_handles(const std::vector<detail::FutureHandle>& futures) {
  impl_->fire_and_forget(futures);
}
void Client::retry_handles(const std::vector<detail::FutureHandle>& futures) { impl_->retry(futures); }
std::map<std::string, std::uint64_t> Client::nbytes_of(const std::vector<detail::FutureHandle>& futures) {
  return impl_->nbytes(futures);
}
void Client::replicate_handles(const std::vector<detail::FutureHandle>& futures, std::size_t n) {
  impl_->copy_op(futures, n, false);
}
void Client::rebalance_handles(const std::vector<detail::FutureHandle>& futures) { impl_->copy_op(futures, 0, true); }
Value Client::run_scheduler_function(detail::TaskRequest request) { return impl_->run_on_scheduler(request); }

}  // namespace distrib
