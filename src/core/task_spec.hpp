#pragma once
// The in-memory form of a task, shared by the client, the scheduler and the workers.
#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "distrib/codec.hpp"

namespace distrib::detail {

/// The results of several tasks passed as one std::vector argument.
struct KeyList {
  std::vector<std::string> keys;
  std::string type;  // the vector's type name, "vector<...>"
};

/// An argument: an encoded value, the key of the task whose result is passed, or a list
/// of such keys.
struct TaskArg {
  std::variant<Value, std::string, KeyList> v;
  bool is_key() const { return std::holds_alternative<std::string>(v); }
  bool is_key_list() const { return std::holds_alternative<KeyList>(v); }
  const std::string& key() const { return std::get<std::string>(v); }
  const KeyList& key_list() const { return std::get<KeyList>(v); }
  const Value& value() const { return std::get<Value>(v); }
};

struct TaskSpec {
  std::string key;
  std::string function;
  std::vector<TaskArg> args;
  std::int64_t priority = 0;
  std::uint32_t retries = 0;
  std::vector<std::string> workers;  // restrictions: names or addresses
  bool allow_other_workers = false;
  std::vector<std::pair<std::string, double>> resources;

  /// The distinct keys this task's arguments name, in argument order.
  std::vector<std::string> dependencies() const;
};

/// Builds the encoded std::vector<T> from the encoded Ts, checking each element's type.
/// Throws DecodeError.
Value assemble_vector(const KeyList& list, const std::vector<const Value*>& elements);

using TaskSpecPtr = std::shared_ptr<const TaskSpec>;

/// The part of a key before the token ("inc-5f3a..." -> "inc"); groups tasks for statistics.
std::string key_prefix(const std::string& key);

}  // namespace distrib::detail
