#pragma once
// Task functions defined in the integration test program itself: LocalCluster's workers
// re-run this program, so they know them without any preload.
#include <string>
#include <vector>

int inc(int x);
double add(double a, double b);
int fail_with(std::string message);
int sleep_ms(int ms);
std::vector<double> make_vector(int n);
double sum_vector(std::vector<double> v);

// --- Added for futures_test.cpp ---
#include <cstdint>

// Records a call under `name` and returns x + 1. In a threads-mode LocalCluster the workers
// share this process's memory, so calls_of(name) (not a task) counts the runs.
int count_calls(std::string name, int x);
int calls_of(const std::string& name);
// Raises for the first `failures` calls made under `name`, then returns the call number.
int fail_times(std::string name, int failures);
// The process id of the worker running it (the argument only makes distinct keys).
int worker_pid(int ignored);
// n bytes of a deterministic pattern, and a position-sensitive checksum of bytes.
std::vector<std::uint8_t> make_pattern(std::uint64_t n, std::uint32_t seed);
std::uint64_t checksum_bytes(std::vector<std::uint8_t> bytes);
