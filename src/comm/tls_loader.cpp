// Finds and loads libdistrib_tls.so, as dashboard_loader.cpp does the dashboard's module:
// next to libdistrib.so first (the build tree and an installation both keep it there), then
// the loader's search path. The module is never unloaded: every TlsContext's and
// ByteStream's vtable lives in it.
#include <dlfcn.h>

#include <string>

#include "comm/tls.hpp"
#include "distrib/errors.hpp"

namespace distrib::detail {
namespace {

std::string own_directory() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&tls_backend), &info) == 0 || info.dli_fname == nullptr) return {};
  std::string path = info.dli_fname;
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string{} : path.substr(0, slash + 1);
}

TlsBackend& load_backend() {
  std::string errors;
  void* handle = nullptr;
  for (const std::string& candidate : {own_directory() + kTlsModule, std::string(kTlsModule)}) {
    handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle != nullptr) break;
    if (const char* e = dlerror()) errors += std::string(errors.empty() ? "" : "; ") + e;
  }
  if (handle == nullptr) throw SecurityError("TLS is unavailable: cannot load its module (OpenSSL): " + errors);
  auto* entry = reinterpret_cast<TlsBackendFn>(dlsym(handle, kTlsEntryPoint));
  if (entry == nullptr) throw SecurityError(std::string("TLS is unavailable: ") + kTlsModule + " has no " + kTlsEntryPoint);
  TlsBackend* backend = entry();
  if (backend == nullptr) throw SecurityError(std::string("TLS is unavailable: ") + kTlsEntryPoint + " gave no backend");
  return *backend;
}

}  // namespace

TlsBackend& tls_backend() {
  // A static's initialisation runs once, other threads waiting for it; if it throws, the
  // next call tries again (a module installed meanwhile is then found).
  static TlsBackend& backend = load_backend();
  return backend;
}

}  // namespace distrib::detail
