#pragma once
// The daemons' flags and the configuration schema (include/distrib/config.hpp): each flag
// that has a key takes, when it is not on the command line, the value of the DISTRIB_CONFIG
// file or the environment, checked by the flag's own validators. --print-config shows every
// key of the daemon with its effective value and where it came from.
#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

namespace distrib::detail {

class ConfigFlags {
 public:
  /// `sections`: the keys this daemon reads ("scheduler.", "comm.", "security.").
  ConfigFlags(CLI::App& app, std::vector<std::string> sections);
  /// Binds every option of `app` whose flag a key of `sections` names. Call after the
  /// options are added.
  void bind_all();
  /// After parsing: gives each bound option not on the command line its configured value
  /// (file or environment), through the option's validators. Throws CLI::ParseError (a bad
  /// value, naming the key and its source) or std::invalid_argument (a bad file).
  void apply();
  /// Parses `program args...` and applies the configuration; prints --print-config's
  /// listing. Returns the exit code when the daemon should stop here (a bad flag or value,
  /// a bad configuration, --help, --print-config), nullopt when it should run.
  std::optional<int> parse(const std::string& program, const std::vector<std::string>& args);
  /// True if --print-config was given: print and exit 0.
  bool print_requested() const { return print_; }
  /// Every key of the sections: "key = value  # source".
  std::string describe() const;

 private:
  struct Binding {
    std::string key;
    CLI::Option* option;
    bool from_command_line = false;
  };
  CLI::App& app_;
  std::vector<std::string> sections_;
  std::vector<Binding> bindings_;
  bool print_ = false;
};

}  // namespace distrib::detail
