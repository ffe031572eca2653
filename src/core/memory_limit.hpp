#pragma once
// Reading a worker's memory limit as Dask's --memory-limit does: a number of bytes, a size
// with a unit, a fraction of the machine's memory, "auto", or no limit; and the fractions
// of it at which the worker acts (Dask's distributed.worker.memory.target/spill/pause/terminate).
#include <cstdint>
#include <optional>
#include <string>
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

/// A memory threshold as Dask's distributed.worker.memory.* keys take it: a fraction of the
/// memory limit in (0, 1] ("0.6", ".95", "1"), or "false" / "none" / "off" to disable it
/// (nullopt, Dask's False). Throws std::invalid_argument naming `option` and the text and
/// saying what is accepted.
std::optional<double> parse_memory_fraction(std::string_view text, std::string_view option = "memory fraction");

/// Bytes for people, as Dask's format_bytes: "1.50 GiB", "600.00 MiB", "12 B" (binary
/// units, a unit once the number reaches 0.9 of it).
std::string format_byte_size(std::uint64_t bytes);

}  // namespace distrib::detail
