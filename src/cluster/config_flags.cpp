#include "cluster/config_flags.hpp"

#include <cstdio>
#include <sstream>

#include "config/schema.hpp"
#include "distrib/config.hpp"

namespace distrib::detail {

namespace {
bool in_sections(const std::string& key, const std::vector<std::string>& sections) {
  for (const auto& s : sections)
    if (key.rfind(s, 0) == 0) return true;
  return false;
}
}  // namespace

ConfigFlags::ConfigFlags(CLI::App& app, std::vector<std::string> sections) : app_(app), sections_(std::move(sections)) {
  app_.add_flag("--print-config", print_,
                "Print every configuration key of this daemon with its effective value and source, then exit "
                "(file: DISTRIB_CONFIG; environment: DISTRIB_<SECTION>__<KEY>; flags win)");
}

void ConfigFlags::bind_all() {
  for (const auto& spec : config::schema()) {
    if (spec.flag.empty() || !in_sections(spec.key, sections_)) continue;
    if (auto* option = app_.get_option_no_throw(spec.flag)) bindings_.push_back({spec.key, option});
  }
}

void ConfigFlags::apply() {
  std::vector<distrib::config::Setting> configured;
  for (const auto& prefix : sections_)
    for (auto& s : distrib::config::settings(prefix)) configured.push_back(std::move(s));
  for (auto& b : bindings_) {
    b.from_command_line = b.option->count() > 0;
    if (b.from_command_line) continue;
    for (const auto& s : configured) {
      if (s.key != b.key || s.source == "default") continue;
      try {
        b.option->clear();
        if (b.option->get_items_expected_max() > 1) {  // a list: one item per line (or word)
          std::istringstream in(s.value);
          for (std::string item; std::getline(in, item);)
            if (!item.empty()) b.option->add_result(item);
        } else {
          b.option->add_result(s.value);
        }
        b.option->run_callback();
      } catch (const CLI::Error& e) {
        throw CLI::ValidationError(b.key + " (" + s.source + ")", e.what());
      }
    }
  }
}

std::optional<int> ConfigFlags::parse(const std::string& program, const std::vector<std::string>& args) {
  std::vector<const char*> argv{program.c_str()};
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    app_.parse(static_cast<int>(argv.size()), argv.data());
    apply();
  } catch (const CLI::ParseError& e) {
    return app_.exit(e);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
    return 1;
  }
  if (!print_) return std::nullopt;
  std::fputs(describe().c_str(), stdout);
  return 0;
}

std::string ConfigFlags::describe() const {
  std::ostringstream out;
  for (const auto& prefix : sections_) {
    for (const auto& s : distrib::config::settings(prefix)) {
      std::string value = s.value, source = s.source;
      for (const auto& b : bindings_) {
        if (b.key != s.key) continue;
        if (b.from_command_line) source = "command line";
        if (b.option->count() > 0) {
          value.clear();
          for (const auto& r : b.option->results()) value += (value.empty() ? "" : " ") + r;
        } else if (source == "default") {
          value = b.option->get_default_str();
        }
      }
      out << s.key << " = " << (value.empty() ? "\"\"" : value) << "   # " << source << "; " << s.env << "\n";
    }
  }
  return out.str();
}

}  // namespace distrib::detail
