#pragma once
// Test support shared by the unit and integration tests: an NDArray's elements as doubles,
// whatever its dtype, for comparing against naive loops.
#include <distrib/ndarray.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace distrib::test_support {

inline std::vector<double> as_doubles(const NDArray& a) {
  std::vector<double> out(static_cast<std::size_t>(a.size()));
  auto copy = [&](auto span) {
    std::transform(span.begin(), span.end(), out.begin(), [](auto x) { return static_cast<double>(x); });
  };
  switch (a.dtype()) {
    case DType::float64: copy(a.values<double>()); break;
    case DType::float32: copy(a.values<float>()); break;
    case DType::int64: copy(a.values<std::int64_t>()); break;
    case DType::boolean: copy(a.values<bool>()); break;
  }
  return out;
}

}  // namespace distrib::test_support
