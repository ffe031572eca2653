#pragma once
// The library logs through one named spdlog logger, "distrib". The host program may
// register its own logger under that name before using distrib; otherwise a stderr logger
// at level "warn" is created on first use. The daemons set the level from --log-level.
#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace distrib::detail {

spdlog::logger& log();
/// Sets the level of the "distrib" logger from a name ("trace" ... "off"); throws
/// std::invalid_argument on an unknown name.
void set_log_level(const std::string& level);

}  // namespace distrib::detail
