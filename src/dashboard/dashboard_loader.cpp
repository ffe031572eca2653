// Finds and loads libdistrib_dashboard.so. The module is never unloaded: a Dashboard's
// vtable lives in it, and loading costs only the first dashboard.
#include <dlfcn.h>

#include <mutex>

#include "dashboard/dashboard.hpp"

namespace distrib::detail {
namespace {

// The directory libdistrib.so was loaded from: the build tree and an installation both keep
// the module next to it.
std::string own_directory() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&start_dashboard), &info) == 0 || info.dli_fname == nullptr) return {};
  std::string path = info.dli_fname;
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string{} : path.substr(0, slash + 1);
}

StartDashboardFn load_module() {
  std::string errors;
  void* handle = nullptr;
  for (const std::string& candidate : {own_directory() + kDashboardModule, std::string(kDashboardModule)}) {
    handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle != nullptr) break;
    if (const char* e = dlerror()) errors += std::string(errors.empty() ? "" : "; ") + e;
  }
  if (handle == nullptr) throw DashboardUnavailable("cannot load the dashboard module: " + errors);
  auto* entry = reinterpret_cast<StartDashboardFn>(dlsym(handle, kDashboardEntryPoint));
  if (entry == nullptr)
    throw DashboardUnavailable(std::string("the dashboard module has no ") + kDashboardEntryPoint);
  return entry;
}

}  // namespace

std::unique_ptr<Dashboard> start_dashboard(const DashboardAddress& address, std::shared_ptr<const SnapshotBox> snapshots) {
  static std::mutex mutex;
  static StartDashboardFn entry = nullptr;
  {
    std::lock_guard lock(mutex);
    if (entry == nullptr) entry = load_module();  // a failure is retried by the next scheduler
  }
  return std::unique_ptr<Dashboard>(entry(address, std::move(snapshots)));
}

}  // namespace distrib::detail
