// WorkerState's public entry points, queries and validate(); the state machine itself is in
// worker_state_impl.hpp and worker_state_push.cpp.
#include "worker/worker_state.hpp"

#include <stdexcept>

#include "worker/worker_state_impl.hpp"

namespace distrib::detail::wrk {

const char* to_string(TaskStatus s) {
  switch (s) {
    case TaskStatus::waiting: return "waiting";
    case TaskStatus::ready: return "ready";
    case TaskStatus::executing: return "executing";
    case TaskStatus::memory: return "memory";
    case TaskStatus::fetch: return "fetch";
    case TaskStatus::flight: return "flight";
    case TaskStatus::missing: return "missing";
    case TaskStatus::cancelled: return "cancelled";
    case TaskStatus::pending: return "pending";
  }
  return "?";
}

WorkerState::WorkerState(std::uint32_t nthreads, std::size_t max_concurrent_gathers,
                         std::vector<std::pair<std::string, double>> resources, std::unique_ptr<DataStore> store)
    : impl_(std::make_unique<Impl>()) {
  impl_->data = store ? std::move(store) : std::make_unique<MemoryStore>();
  impl_->nthreads = std::max<std::uint32_t>(1, nthreads);
  impl_->max_gathers = std::max<std::size_t>(1, max_concurrent_gathers);
  for (auto& [name, amount] : resources) impl_->available[name] += amount;
}
WorkerState::~WorkerState() = default;

void WorkerState::handle(Event event, std::vector<Instruction>& out) {
  impl_->out = &out;
  std::visit([this](auto& e) { impl_->on(e); }, event);
  impl_->out = nullptr;
}

std::optional<Value> WorkerState::get_data(const std::string& key) const {
  return impl_->data->get(key);
}

std::optional<TaskStatus> WorkerState::status(const std::string& key) const {
  auto* ts = impl_->find(key);
  if (!ts) return std::nullopt;
  return ts->status;
}

std::size_t WorkerState::n_stored() const { return impl_->data->size(); }
std::uint64_t WorkerState::stored_bytes() const { return impl_->data->managed_bytes(); }
std::size_t WorkerState::n_executing() const { return impl_->executing; }
bool WorkerState::paused() const { return impl_->paused; }
std::size_t WorkerState::n_tasks() const { return impl_->tasks.size(); }

std::vector<HeldKey> WorkerState::held_keys() const {
  std::vector<HeldKey> out;
  impl_->tasks.for_each([&](const TaskState& ts) {
    if (ts.status != TaskStatus::memory || !ts.assigned) return;
    const auto v = impl_->stored(ts.key);
    out.push_back(HeldKey{ts.key, v.type, v.bytes.size()});
  });
  return out;
}

std::optional<std::uint64_t> WorkerState::run_id(const std::string& key) const {
  auto* ts = impl_->find(key);
  if (!ts) return std::nullopt;
  return ts->run_id;
}

void WorkerState::validate() const {
  auto fail = [](const std::string& what) { throw std::logic_error("WorkerState invariant broken: " + what); };
  std::size_t executing = 0;
  impl_->tasks.for_each([&](TaskState& task) {
    const TaskState* ts = &task;
    const std::string& key = task.key;
    if (impl_->find(key) != ts) fail(key + " is not found under its key");
    bool has_data = impl_->data->contains(key);
    if ((ts->status == TaskStatus::memory) != has_data) fail(key + " data does not match its status");
    if ((ts->status == TaskStatus::executing || ts->status == TaskStatus::cancelled) && !ts->seceded) ++executing;
    else if (ts->stop_requested) fail(key + " was asked to stop but does not run");
    if ((ts->status == TaskStatus::fetch || ts->status == TaskStatus::flight) && ts->who_has.empty())
      fail(key + " is fetched from nowhere");
    if (ts->status == TaskStatus::pending && ts->dependents.empty()) fail(key + " is awaited by no task");
    for (auto* d : ts->dependencies)
      if (impl_->find(d->key) != d) fail(key + " depends on a forgotten task");
  });
  if (executing != impl_->executing) fail("executing count is wrong");
  if (impl_->data->size() > impl_->tasks.size()) fail("data without a task");
}

}  // namespace distrib::detail::wrk
