#include "core/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <stdexcept>

namespace distrib::detail {

spdlog::logger& log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    if (auto existing = spdlog::get("distrib")) return existing;
    auto l = spdlog::stderr_color_mt("distrib");
    l->set_level(spdlog::level::warn);
    return l;
  }();
  return *logger;
}

void set_log_level(const std::string& level) {
  auto l = spdlog::level::from_str(level);
  if (l == spdlog::level::off && level != "off")
    throw std::invalid_argument("unknown log level '" + level + "' (use trace, debug, info, warn, error, critical or off)");
  log().set_level(l);
}

}  // namespace distrib::detail
