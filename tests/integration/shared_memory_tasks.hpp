#pragma once
// Task functions for the shared-memory tests, in libdistrib_test_tasks.so (so that plain
// dworkers with --preload have them too).
#include <distrib/ndarray.hpp>

#include <cstdint>
#include <vector>

/// n float64 values, value i = (i % 1000) * 0.5 + seed.
distrib::NDArray make_block(std::int64_t n, double seed);
double block_sum(distrib::NDArray a);
/// The same values as a std::vector<double>, and their sum.
std::vector<double> make_values(std::int64_t n, double seed);
double values_sum(std::vector<double> v);
/// This process's shared memory once its pool took back the buffers no peer maps any more:
/// {exported_bytes, mapped_bytes, bytes_described, bytes_mapped} (core/shared_memory.hpp).
std::vector<std::uint64_t> shared_memory_state(int);
