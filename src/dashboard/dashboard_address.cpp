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

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::string dashboard_token_query(const std::string& token) {
  return token.empty() ? std::string() : "?token=" + percent_encode(token);
}

}  // namespace distrib::detail
