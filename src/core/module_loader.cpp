#include "core/module_loader.hpp"

#include <dlfcn.h>

#include <stdexcept>

namespace distrib::detail {
namespace {

// The directory libdistrib.so was loaded from.
std::string own_directory() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&load_module_entry), &info) == 0 || info.dli_fname == nullptr) return {};
  std::string path = info.dli_fname;
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string{} : path.substr(0, slash + 1);
}

}  // namespace

void* load_module_entry(const char* module, const char* entry) {
  std::string errors;
  void* handle = nullptr;
  for (const std::string& candidate : {own_directory() + module, std::string(module)}) {
    handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle != nullptr) break;
    if (const char* e = dlerror()) errors += std::string(errors.empty() ? "" : "; ") + e;
  }
  if (handle == nullptr) throw std::runtime_error("cannot load " + std::string(module) + ": " + errors);
  void* symbol = dlsym(handle, entry);
  if (symbol == nullptr) throw std::runtime_error(std::string(module) + " has no " + entry);
  return symbol;
}

}  // namespace distrib::detail
