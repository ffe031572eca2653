// The configuration (include/distrib/config.hpp): the schema's defaults, the YAML file of
// DISTRIB_CONFIG (read with yaml-cpp) and the environment, read once and then on reload().
#include "distrib/config.hpp"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>

#include "config/schema.hpp"

extern char** environ;

namespace distrib::config {

namespace {
using detail::config::SettingSpec;

struct Loaded {
  bool done = false;
  std::string error;  // why the configuration cannot be used, thrown by every lookup
  std::string file;
  std::map<std::string, std::string> from_file;
};

std::mutex& mutex() {
  static std::mutex m;
  return m;
}
Loaded& loaded() {
  static Loaded l;
  return l;
}

std::string known_keys_like(const std::string& key) {
  const auto section = key.substr(0, key.find('.'));
  std::string out;
  for (const auto& s : detail::config::schema())
    if (s.key.rfind(section + ".", 0) == 0) out += (out.empty() ? "" : ", ") + s.key;
  return out.empty() ? "sections are scheduler, worker, comm, security, client, local-cluster" : "known: " + out;
}

void flatten(const YAML::Node& node, const std::string& prefix, Loaded& into) {
  if (node.IsMap()) {
    for (const auto& item : node) {
      const auto name = item.first.as<std::string>();
      flatten(item.second, prefix.empty() ? name : prefix + "." + name, into);
    }
    return;
  }
  if (!detail::config::find(prefix))
    throw std::invalid_argument("config file " + into.file + ": unknown key '" + prefix + "' (" +
                                known_keys_like(prefix) + ")");
  if (node.IsSequence()) {  // a list (worker.preload): one item per line
    std::string joined;
    for (const auto& item : node) joined += (joined.empty() ? "" : "\n") + item.as<std::string>();
    into.from_file[prefix] = joined;
  } else {
    into.from_file[prefix] = node.IsNull() ? "" : node.as<std::string>();
  }
}

void load(Loaded& l) {
  l = Loaded{};
  l.done = true;
  try {
    if (const char* path = std::getenv("DISTRIB_CONFIG"); path && *path) {
      l.file = path;
      YAML::Node root;
      try {
        root = YAML::LoadFile(path);
      } catch (const YAML::BadFile&) {
        throw std::invalid_argument("config file " + l.file + " (DISTRIB_CONFIG) cannot be read");
      } catch (const YAML::Exception& e) {
        throw std::invalid_argument("config file " + l.file + ": " + e.what());
      }
      if (!root.IsNull() && !root.IsMap()) throw std::invalid_argument("config file " + l.file + ": not a YAML mapping");
      if (root.IsMap()) flatten(root, "", l);
    }
    // A DISTRIB_<SECTION>__<KEY> variable that names no key is a typo (as in a Helm chart).
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry = *e;
      const auto name = entry.substr(0, entry.find('='));
      if (name.rfind("DISTRIB_", 0) != 0 || name.find("__") == std::string::npos) continue;
      bool known = false;
      for (const auto& s : detail::config::schema()) known |= detail::config::env_name(s) == name;
      if (!known)
        throw std::invalid_argument("unknown setting " + name +
                                    " in the environment: no configuration key has that name (--print-config lists them)");
    }
  } catch (const std::invalid_argument& e) {
    l.error = e.what();
  } catch (const YAML::Exception& e) {
    l.error = "config file " + l.file + ": " + e.what();
  }
}

Setting lookup(const SettingSpec& spec, const Loaded& l) {
  Setting s{spec.key, spec.default_value, "default", detail::config::env_name(spec), spec.help};
  if (auto it = l.from_file.find(spec.key); it != l.from_file.end()) {
    s.value = it->second;
    s.source = "file " + l.file;
  }
  if (const char* v = std::getenv(s.env.c_str())) {
    s.value = v;
    s.source = "env " + s.env;
  }
  return s;
}

Setting setting_of(const std::string& key) {
  std::lock_guard lock(mutex());
  auto& l = loaded();
  if (!l.done) load(l);
  if (!l.error.empty()) throw std::invalid_argument(l.error);
  const auto* spec = detail::config::find(key);
  if (!spec) throw std::invalid_argument("unknown configuration key '" + key + "' (" + known_keys_like(key) + ")");
  return lookup(*spec, l);
}

[[noreturn]] void bad(const Setting& s, const char* expected) {
  throw std::invalid_argument("configuration " + s.key + " = '" + s.value + "' (" + s.source + ") is not " + expected);
}
}  // namespace

std::string get(const std::string& key) { return setting_of(key).value; }

namespace {
// The setting's whole text read by `parse` (std::stoll, std::stod): a number with anything
// after it, or none, is refused naming the key.
template <class T, class Parse>
T whole_number(const Setting& s, Parse parse, const char* expected) {
  std::size_t used = 0;
  T v{};
  try {
    v = parse(s.value, &used);
  } catch (const std::exception&) {
    bad(s, expected);
  }
  if (used != s.value.size()) bad(s, expected);
  return v;
}

double number_of(const Setting& s) {
  return whole_number<double>(s, [](const std::string& t, std::size_t* used) { return std::stod(t, used); }, "a number");
}
}  // namespace

long long get_int(const std::string& key) {
  return whole_number<long long>(
      setting_of(key), [](const std::string& t, std::size_t* used) { return std::stoll(t, used); }, "an integer");
}

double get_double(const std::string& key) { return number_of(setting_of(key)); }

bool get_bool(const std::string& key) {
  const auto s = setting_of(key);
  std::string v;
  for (char c : s.value) v += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (v == "true" || v == "yes" || v == "on" || v == "1") return true;
  if (v == "false" || v == "no" || v == "off" || v == "0") return false;
  bad(s, "a boolean (true or false)");
}

std::chrono::milliseconds get_duration(const std::string& key) {
  const auto s = setting_of(key);
  std::size_t used = 0;
  double number = 0;
  try {
    number = std::stod(s.value, &used);
  } catch (const std::exception&) {
    bad(s, "a duration (90, 90s, 500ms, 2m, 1h)");
  }
  const std::string unit = s.value.substr(used);
  double scale = 0;
  if (unit.empty() || unit == "s") scale = 1000;
  else if (unit == "ms") scale = 1;
  else if (unit == "m" || unit == "min") scale = 60'000;
  else if (unit == "h") scale = 3'600'000;
  if (scale == 0 || number < 0 || !std::isfinite(number)) bad(s, "a duration (90, 90s, 500ms, 2m, 1h)");
  return std::chrono::milliseconds(static_cast<long long>(number * scale));
}

std::optional<double> get_fraction(const std::string& key) {
  const auto s = setting_of(key);
  if (s.value == "false" || s.value == "none" || s.value == "False") return std::nullopt;
  const double v = number_of(s);  // the setting already looked up
  if (!(v >= 0 && v <= 1)) bad(s, "a fraction between 0 and 1, or false");
  return v;
}

std::vector<Setting> settings(const std::string& prefix) {
  std::lock_guard lock(mutex());
  auto& l = loaded();
  if (!l.done) load(l);
  if (!l.error.empty()) throw std::invalid_argument(l.error);
  std::vector<Setting> out;
  for (const auto& spec : detail::config::schema())
    if (spec.key.rfind(prefix, 0) == 0) out.push_back(lookup(spec, l));
  return out;
}

void reload() {
  std::lock_guard lock(mutex());
  loaded() = Loaded{};
}

}  // namespace distrib::config
