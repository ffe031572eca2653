#include "shared_memory_tasks.hpp"

#include <distrib/task.hpp>

#include <numeric>

#include "core/shared_memory.hpp"

distrib::NDArray make_block(std::int64_t n, double seed) {
  distrib::NDArray a({n});
  auto v = a.values<double>();
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i % 1000) * 0.5 + seed;
  return a;
}
DISTRIB_TASK(make_block);

double block_sum(distrib::NDArray a) {
  auto v = a.values<double>();
  return std::accumulate(v.begin(), v.end(), 0.0);
}
DISTRIB_TASK(block_sum);

std::vector<double> make_values(std::int64_t n, double seed) {
  auto a = make_block(n, seed);
  auto v = a.values<double>();
  return {v.begin(), v.end()};
}
DISTRIB_TASK(make_values);

double values_sum(std::vector<double> v) { return std::accumulate(v.begin(), v.end(), 0.0); }
DISTRIB_TASK(values_sum);

std::vector<std::uint64_t> shared_memory_state(int) {
  distrib::detail::trim_pooled_buffers();
  auto s = distrib::detail::shm::stats();
  return {s.exported_bytes, s.mapped_bytes, s.bytes_described, s.bytes_mapped};
}
DISTRIB_TASK(shared_memory_state);
