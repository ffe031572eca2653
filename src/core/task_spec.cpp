#include "core/task_spec.hpp"

#include <algorithm>

namespace distrib::detail {

std::vector<std::string> TaskSpec::dependencies() const {
  std::vector<std::string> deps;
  auto add = [&](const std::string& k) {
    if (std::find(deps.begin(), deps.end(), k) == deps.end()) deps.push_back(k);
  };
  for (const auto& a : args) {
    if (a.is_key()) add(a.key());
    else if (a.is_key_list())
      for (const auto& k : a.key_list().keys) add(k);
  }
  return deps;
}

Value assemble_vector(const KeyList& list, const std::vector<const Value*>& elements) {
  // std::vector<T> is encoded as a u64 count then each T's own encoding, so the encoded
  // elements are simply concatenated.
  const std::string prefix = "vector<";
  if (list.type.size() <= prefix.size() + 1 || list.type.rfind(prefix, 0) != 0 || list.type.back() != '>')
    throw DecodeError("'" + list.type + "' is not a vector type");
  std::string element_type = list.type.substr(prefix.size(), list.type.size() - prefix.size() - 1);
  Writer w;
  std::size_t total = 8;
  for (const auto* e : elements) total += e->bytes.size();
  w.reserve(total);
  w.put<std::uint64_t>(elements.size());
  for (const auto* e : elements) {
    if (e->type != element_type)
      throw DecodeError("cannot use a value of type '" + e->type + "' as an element of '" + list.type + "'");
    w.write(e->bytes.data(), e->bytes.size());
  }
  return Value{list.type, std::move(w).finish()};
}

std::string key_prefix(const std::string& key) {
  auto dash = key.rfind('-');
  return dash == std::string::npos || dash == 0 ? key : key.substr(0, dash);
}

}  // namespace distrib::detail
