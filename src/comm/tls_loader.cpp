// Finds and loads libdistrib_tls.so (core/module_loader.hpp).
#include <mutex>

#include "comm/tls.hpp"
#include "core/module_loader.hpp"
#include "distrib/errors.hpp"

namespace distrib::detail {

TlsBackend& tls_backend() {
  static std::mutex mutex;
  static TlsBackend* backend = nullptr;
  std::lock_guard lock(mutex);
  if (backend == nullptr) {
    try {
      backend = reinterpret_cast<TlsBackendFn>(load_module_entry(kTlsModule, kTlsEntryPoint))();
    } catch (const std::runtime_error& e) {
      throw SecurityError(std::string("TLS is unavailable: ") + e.what());
    }
  }
  return *backend;
}

}  // namespace distrib::detail
