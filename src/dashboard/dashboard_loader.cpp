// Finds and loads libdistrib_dashboard.so (core/module_loader.hpp).
#include <mutex>

#include "core/module_loader.hpp"
#include "dashboard/dashboard.hpp"

namespace distrib::detail {

std::unique_ptr<Dashboard> start_dashboard(const DashboardAddress& address, std::shared_ptr<const SnapshotBox> snapshots) {
  static std::mutex mutex;
  static StartDashboardFn entry = nullptr;
  {
    std::lock_guard lock(mutex);
    if (entry == nullptr) {  // a failure is retried by the next scheduler
      try {
        entry = reinterpret_cast<StartDashboardFn>(load_module_entry(kDashboardModule, kDashboardEntryPoint));
      } catch (const std::runtime_error& e) {
        throw DashboardUnavailable(std::string("cannot load the dashboard module: ") + e.what());
      }
    }
  }
  return std::unique_ptr<Dashboard>(entry(address, std::move(snapshots)));
}

}  // namespace distrib::detail
