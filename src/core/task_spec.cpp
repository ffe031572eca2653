#include "core/task_spec.hpp"

#include <algorithm>

namespace distrib::detail {

std::vector<std::string> TaskSpec::dependencies() const {
  std::vector<std::string> deps;
  for (const auto& a : args)
    if (a.is_key() && std::find(deps.begin(), deps.end(), a.key()) == deps.end()) deps.push_back(a.key());
  return deps;
}

std::string key_prefix(const std::string& key) {
  auto dash = key.rfind('-');
  return dash == std::string::npos || dash == 0 ? key : key.substr(0, dash);
}

}  // namespace distrib::detail
