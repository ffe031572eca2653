#include <algorithm>
#include <map>
#include <mutex>
#include <stdexcept>

#include "distrib/task.hpp"

namespace distrib::detail {

struct TaskRegistry::Impl {
  mutable std::mutex mutex;
  std::map<std::string, TaskFunction, std::less<>> by_name;
  std::map<AnyFunctionPointer, std::string> by_address;
};

TaskRegistry& TaskRegistry::instance() {
  static TaskRegistry registry;
  return registry;
}

TaskRegistry::Impl& TaskRegistry::impl() const {
  static Impl impl;  // constructed on first use: registration runs during static initialisation
  return impl;
}

void TaskRegistry::add(AnyFunctionPointer address, TaskFunction fn) {
  auto& i = impl();
  std::lock_guard lock(i.mutex);
  auto existing = i.by_name.find(fn.name);
  if (existing != i.by_name.end()) {
    auto same = i.by_address.find(address);
    if (same != i.by_address.end() && same->second == fn.name) return;
    if (existing->second.param_types == fn.param_types && existing->second.result_type == fn.result_type) {
      // The same function seen through another address (e.g. a copy in a preloaded library).
      i.by_address[address] = fn.name;
      return;
    }
    throw std::logic_error("distrib: two different task functions are registered as '" + fn.name + "'");
  }
  i.by_address[address] = fn.name;
  i.by_name.emplace(fn.name, std::move(fn));
}

const TaskFunction* TaskRegistry::find(std::string_view name) const {
  auto& i = impl();
  std::lock_guard lock(i.mutex);
  auto it = i.by_name.find(name);
  return it == i.by_name.end() ? nullptr : &it->second;
}

const TaskFunction* TaskRegistry::find(AnyFunctionPointer address) const {
  auto& i = impl();
  std::lock_guard lock(i.mutex);
  auto a = i.by_address.find(address);
  if (a == i.by_address.end()) return nullptr;
  auto it = i.by_name.find(a->second);
  return it == i.by_name.end() ? nullptr : &it->second;
}

std::vector<std::string> TaskRegistry::names() const {
  auto& i = impl();
  std::lock_guard lock(i.mutex);
  std::vector<std::string> out;
  for (auto& [name, fn] : i.by_name) out.push_back(name);
  return out;
}

}  // namespace distrib::detail
