#pragma once
// The scheduler's web dashboard: an HTTP server (http_server.hpp: one io thread, two render
// threads) that serves the pages, a JSON API and Prometheus metrics from the latest
// published snapshot. Part of the libdistrib_dashboard.so module (see dashboard.hpp), not of
// libdistrib.
//
// With a token (DashboardAddress::token), every path but /health wants it, as Jupyter does:
// `?token=<t>` in the URL (answered with a cookie, HttpOnly and SameSite=Strict, for the
// pages' own requests, and a redirect to the same URL without the token), that cookie, or
// `Authorization: Bearer <t>` (Prometheus). Without it: 403 and a line saying where the link
// is. Tokens are compared in constant time (auth::tokens_equal).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "dashboard/dashboard.hpp"
#include "dashboard/http.hpp"
#include "dashboard/http_server.hpp"

namespace distrib::detail {

class DashboardServer final : public Dashboard {
 public:
  /// Starts serving; throws CommError if the address cannot be bound (e.g. port in use).
  DashboardServer(const DashboardAddress& address, std::shared_ptr<const SnapshotBox> snapshots, HttpLimits limits = {});
  ~DashboardServer() override;
  DashboardServer(const DashboardServer&) = delete;
  DashboardServer& operator=(const DashboardServer&) = delete;

  std::uint16_t port() const override { return port_; }
  void stop() override;

  /// The name of the token's cookie: per port, since a browser shares cookies between the
  /// ports of a host (two schedulers' dashboards on one machine).
  static std::string cookie_name(std::uint16_t port) { return "distrib-dashboard-" + std::to_string(port); }

 private:
  HttpResponse handle(const HttpRequest& request) const;
  /// A response refusing the request (or the redirect that sets the cookie), or nullopt if it may go on.
  std::optional<HttpResponse> check_token(const HttpRequest& request) const;
  HttpResponse route(const HttpRequest& request) const;

  std::shared_ptr<const SnapshotBox> snapshots_;
  std::string token_, cookie_name_, cookie_value_;
  std::unique_ptr<HttpServer> server_;
  std::uint16_t port_ = 0;
};

// Renderers, separate for tests.
std::string status_json(const DashboardSnapshot& s);
std::string workers_json(const DashboardSnapshot& s);
std::string prefixes_json(const DashboardSnapshot& s);
std::string tasks_json(const DashboardSnapshot& s, double since);
/// {"key": ..., "story": [{"stimulus", "from", "to", "worker", "time"}, ...]}
std::string story_json(const std::string& key, const std::vector<DashboardStoryLine>& lines);
std::string prometheus_metrics(const DashboardSnapshot& s);

// The pages, embedded at build time from src/dashboard/pages/.
extern const char* const kStatusPage;
extern const char* const kWorkersPage;
extern const char* const kTasksPage;

}  // namespace distrib::detail
