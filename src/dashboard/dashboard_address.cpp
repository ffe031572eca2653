#include <stdexcept>

#include "dashboard/dashboard.hpp"

namespace distrib::detail {

DashboardAddress parse_dashboard_address(const std::string& text, const std::string& default_host) {
  DashboardAddress a;
  if (text.empty() || text == "none" || text == "None" || text == "off") return a;
  a.enabled = true;
  std::string host = default_host, port = text;
  if (auto colon = text.rfind(':'); colon != std::string::npos) {
    host = colon == 0 ? default_host : text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  try {
    std::size_t used = 0;
    const long p = std::stol(port, &used);
    if (used != port.size() || p < 0 || p > 65535) throw std::invalid_argument("range");
    a.port = static_cast<std::uint16_t>(p);
  } catch (const std::exception&) {
    throw std::invalid_argument("dashboard address '" + text + "': expected host:port, :port, a port, or none");
  }
  a.host = host;
  return a;
}

}  // namespace distrib::detail
