#pragma once
// Reading a worker's memory limit as Dask's --memory-limit does: a number of bytes, a size
// with a unit, a fraction of the machine's memory, "auto", or no limit.
#include <cstdint>
#include <optional>
#include <string_view>

namespace distrib::detail {

/// Bytes of `text`: "4000000000", "4GiB", "512 MB", "1.5GB", "2e9" (decimal units are
/// powers of 1000, binary ones of 1024; k/m/g/t alone are decimal, as Dask's parse_bytes).
/// Throws std::invalid_argument naming the text when it is not a size.
std::uint64_t parse_byte_size(std::string_view text);

/// A memory limit: a size as parse_byte_size, a fraction of `machine_bytes` ("0.5", in
/// (0, 1]), "auto" (the machine's memory times min(1, nthreads / cores), so that workers
/// filling the machine's cores share its memory, as Dask's), or "0" / "none" for no limit
/// (nullopt). Throws std::invalid_argument with a message saying what is accepted.
std::optional<std::uint64_t> parse_memory_limit(std::string_view text, std::uint64_t machine_bytes, unsigned nthreads,
                                                unsigned cores);

}  // namespace distrib::detail
