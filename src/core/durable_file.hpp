// Writing a whole file so that a reader (on this host or another, over NFS) sees either the
// old contents or all of the new ones, and a crash right after leaves the new ones on disk.
#pragma once

#include <cstddef>
#include <string>

namespace distrib::detail {

/// Writes `size` bytes to a temporary file next to `path` (rename() is atomic only within a
/// filesystem), fsyncs it, and renames it over `path`. Throws std::runtime_error naming the
/// step and errno's text; the temporary file is removed then.
void write_file_durably(const std::string& path, const void* data, std::size_t size, int mode = 0644);

}  // namespace distrib::detail
