#pragma once
// Timing and JSON output shared by the benchmark programs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// One JSON line: {"bench": name, "unit": unit, "median": ..., "runs": [...]}.
inline void report(const std::string& name, const char* unit, const std::vector<double>& runs) {
  std::printf("{\"bench\": \"%s\", \"unit\": \"%s\", \"median\": %.6g, \"runs\": [", name.c_str(), unit, median(runs));
  for (std::size_t i = 0; i < runs.size(); ++i) std::printf("%s%.6g", i ? ", " : "", runs[i]);
  std::printf("]}\n");
  std::fflush(stdout);
}

}  // namespace bench
