#pragma once
// The in-memory form of a task, shared by the client, the scheduler and the workers.
#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "distrib/codec.hpp"

namespace distrib::detail {

/// An argument: an encoded value, or the key of the task whose result is passed.
struct TaskArg {
  std::variant<Value, std::string> v;
  bool is_key() const { return std::holds_alternative<std::string>(v); }
  const std::string& key() const { return std::get<std::string>(v); }
  const Value& value() const { return std::get<Value>(v); }
};

struct TaskSpec {
  std::string key;
  std::string function;
  std::vector<TaskArg> args;
  std::int64_t priority = 0;

  /// The distinct keys this task's arguments name, in argument order.
  std::vector<std::string> dependencies() const;
};

using TaskSpecPtr = std::shared_ptr<const TaskSpec>;

/// The part of a key before the token ("inc-5f3a..." -> "inc"); groups tasks for statistics.
std::string key_prefix(const std::string& key);

}  // namespace distrib::detail
