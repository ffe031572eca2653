#pragma once
// The scheduler's side of the web dashboard. The server itself (cpp-httplib, which Debian
// builds against OpenSSL) lives in a separate module, libdistrib_dashboard.so, loaded only
// when a scheduler serves a dashboard: workers and clients never map those libraries.
#include <cstdint>
#include <memory>
#include <string>

#include "scheduler/dashboard_data.hpp"

namespace distrib::detail {

/// "host:port", ":port" or "port" ("0": any free port). Empty or "none": no dashboard.
struct DashboardAddress {
  bool enabled = false;
  std::string host;
  std::uint16_t port = 0;
};
/// Throws std::invalid_argument on a malformed address.
DashboardAddress parse_dashboard_address(const std::string& text, const std::string& default_host);

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
