#pragma once
// Calls a generic lambda with a value of the C++ type of a dtype, so kernels are written
// once as templates and chosen once per block, not per element.
#include <cstdint>
#include <stdexcept>

#include "distrib/ndarray.hpp"

namespace distrib::array::detail {

template <class F>
decltype(auto) with_dtype(DType d, F&& f) {
  switch (d) {
    case DType::float64: return f(double{});
    case DType::float32: return f(float{});
    case DType::int64: return f(std::int64_t{});
    case DType::boolean: return f(bool{});
  }
  throw std::invalid_argument("distrib::array: unknown dtype");
}

}  // namespace distrib::array::detail
