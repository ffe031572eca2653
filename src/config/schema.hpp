#pragma once
// The configuration schema (include/distrib/config.hpp): every key, its default, its
// environment variable and, for the daemons, its command-line flag. One table, so that a
// knob has one name everywhere.
#include <string>
#include <vector>

namespace distrib::detail::config {

struct SettingSpec {
  std::string key;            // "worker.nthreads"
  std::string default_value;  // as text; for a daemon flag, the flag's own default
  std::string help;
  std::string env;   // "" : derived from the key (env_name)
  std::string flag;  // the daemon flag it sets ("--nthreads"), "" if none
};

const std::vector<SettingSpec>& schema();
/// nullptr for an unknown key.
const SettingSpec* find(const std::string& key);
/// DISTRIB_ + key in capitals, "." -> "__", "-" -> "_"; or the spec's own name.
std::string env_name(const SettingSpec& spec);

}  // namespace distrib::detail::config
