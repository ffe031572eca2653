#pragma once
// The scheduler's side of the web dashboard. The server itself (an HTTP server on Asio, the
// pages, the JSON and Prometheus renderers) lives in a separate module,
// libdistrib_dashboard.so, loaded only when a scheduler serves a dashboard: workers and
// clients never map it.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "scheduler/dashboard_data.hpp"

namespace distrib::detail {

/// "host:port", ":port" or "port" ("0": any free port). Empty or "none": no dashboard.
struct DashboardAddress {
  bool enabled = false;
  std::string host;
  std::uint16_t port = 0;
  /// The cluster's token (auth::process_token()); empty: the dashboard is open. With one,
  /// every path but /health wants it (?token=, the cookie that sets, or a Bearer header).
  std::string token;
};
/// Throws std::invalid_argument on a malformed address.
DashboardAddress parse_dashboard_address(const std::string& text, const std::string& default_host);

/// Escapes every byte but letters, digits and "-._~" (for a query value or a path segment).
std::string percent_encode(std::string_view text);
/// "?token=<token, escaped>" to end a dashboard link with, or "" without a token.
std::string dashboard_token_query(const std::string& token);

/// A running dashboard; destroying it stops it.
class Dashboard {
 public:
  virtual ~Dashboard() = default;
  virtual std::uint16_t port() const = 0;
  virtual void stop() = 0;
};

/// Thrown when the dashboard module cannot be loaded (a broken installation).
struct DashboardUnavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Loads the module (once, next to libdistrib.so, then the loader's search path) and starts
/// serving. Throws DashboardUnavailable if the module is missing, CommError if the address
/// cannot be bound.
std::unique_ptr<Dashboard> start_dashboard(const DashboardAddress& address, std::shared_ptr<const SnapshotBox> snapshots);

/// The module's one entry point, looked up by this name.
using StartDashboardFn = Dashboard* (*)(const DashboardAddress& address, std::shared_ptr<const SnapshotBox> snapshots);
inline constexpr const char* kDashboardModule = "libdistrib_dashboard.so";
inline constexpr const char* kDashboardEntryPoint = "distrib_start_dashboard";

}  // namespace distrib::detail
