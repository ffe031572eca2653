#pragma once
// Philox 4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", the
// generator of Random123), evaluated for many counters at once so the compiler can use
// vector instructions. Counter `p` gives two 64-bit words; random arrays use them for
// the elements 2p and 2p + 1. Checked against Random123 in the unit tests.
#include <cstdint>

namespace distrib::array::detail {

/// Fills x0[i], x1[i] with the words of counters first + i, for i < n.
void philox_words(std::uint64_t seed, std::uint64_t first, std::size_t n, std::uint64_t* x0, std::uint64_t* x1);

/// Values of the elements [g0, g0 + len) of a uniform [low, low + width) array.
void uniform_values(std::uint64_t seed, std::uint64_t g0, std::size_t len, double low, double width, double* out);
/// Values of the elements [g0, g0 + len) of a normal (mean, stddev) array (Box-Muller).
void normal_values(std::uint64_t seed, std::uint64_t g0, std::size_t len, double mean, double stddev, double* out);

}  // namespace distrib::array::detail
