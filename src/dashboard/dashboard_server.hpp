#pragma once
// The scheduler's web dashboard: an HTTP server (cpp-httplib) on its own threads that
// serves the pages, a JSON API and Prometheus metrics from the latest published snapshot.
// Part of the libdistrib_dashboard.so module (see dashboard.hpp), not of libdistrib.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "dashboard/dashboard.hpp"

namespace httplib {
class Server;
}

namespace distrib::detail {

class DashboardServer final : public Dashboard {
 public:
  /// Starts serving; throws CommError if the address cannot be bound (e.g. port in use).
  DashboardServer(const DashboardAddress& address, std::shared_ptr<const SnapshotBox> snapshots);
  ~DashboardServer() override;
  DashboardServer(const DashboardServer&) = delete;
  DashboardServer& operator=(const DashboardServer&) = delete;

  std::uint16_t port() const override { return port_; }
  void stop() override;

 private:
  std::unique_ptr<httplib::Server> server_;
  std::shared_ptr<const SnapshotBox> snapshots_;
  std::thread thread_;
  std::atomic<bool> listener_done_{false};  // listen_after_bind returned
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
