#pragma once
// Task functions for memory_test.cpp (worker memory limits, issue 16), compiled into
// libdistrib_test_tasks.so with test_tasks.cpp. Memory they hold is mapped with mmap and
// every page touched, so that it counts in the worker's resident set at once and leaves it
// at once when unmapped (no allocator keeps it).
#include <cstdint>
#include <string>
#include <vector>

/// Run with Client::run. In the process whose id is `pid` (other workers do nothing and
/// return 0): maps and touches memory until the resident set is at least `rss_goal` bytes,
/// kept until release_memory; returns the bytes mapped.
std::uint64_t hold_memory(int pid, std::uint64_t rss_goal);
/// Unmaps what hold_memory mapped in the process `pid`; returns the bytes unmapped.
std::uint64_t release_memory(int pid);

/// A task that needs too much memory once: if `marker` does not exist, creates it, then maps
/// and touches `bytes` and holds them until its worker is killed (returning -1 should it
/// still live after a minute); if it exists (a retry), returns `result` at once.
int hog_memory_once(std::string marker, std::uint64_t bytes, int result);
/// Maps and touches `bytes` on every attempt, holding them until its worker is killed
/// (-1 after a minute).
int hog_memory_always(std::uint64_t bytes);

/// `n` bytes of a pattern that depends on `seed` and on each byte's position.
std::vector<std::uint8_t> pattern_bytes(std::uint64_t n, std::uint32_t seed);
