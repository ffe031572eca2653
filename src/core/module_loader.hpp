#pragma once
// Optional parts of libdistrib that bring heavy libraries (the dashboard's HTTP server, TLS
// over OpenSSL) are modules, loaded the first time a process needs them: processes that never
// do map none of those libraries.
#include <string>

namespace distrib::detail {

/// dlopens `module` (next to libdistrib.so first, where the build tree and an installation
/// keep it, then the loader's search path) and returns its symbol `entry`. Modules are never
/// unloaded: objects they make keep their vtables there. Throws std::runtime_error with
/// dlerror's text.
void* load_module_entry(const char* module, const char* entry);

}  // namespace distrib::detail
