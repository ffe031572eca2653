// Source kernels: every element is a function of its global position, so a block can be
// made anywhere, in any order, and the same seed gives the same array for any chunking.
#include <stdexcept>
#include <string>

#include "array/dispatch.hpp"
#include "array/kernels.hpp"
#include "array/philox.hpp"

namespace distrib::array::detail {

namespace {
// Whether int64 can hold x (false for NaN and infinities): converting anything else is undefined.
bool fits_int64(double x) { return x >= -0x1p63 && x < 0x1p63; }
}  // namespace

NDArray generate(const Generator& g, const std::vector<std::int64_t>& offset, const std::vector<std::int64_t>& shape) {
  const DType dtype = checked_dtype(g.dtype, "generate");
  const auto kind = static_cast<GenKind>(g.kind);
  if (g.kind > static_cast<std::uint8_t>(GenKind::normal))
    throw std::invalid_argument("generate: unknown generator kind " + std::to_string(g.kind));
  if ((kind == GenKind::random || kind == GenKind::uniform || kind == GenKind::normal) && dtype != DType::float64)
    throw std::invalid_argument(std::string("generate: random numbers are float64, not ") + to_string(dtype));
  checked_count(shape, dtype, "generate");
  check_position(offset, shape, g.global_shape, "generate");
  if (kind == GenKind::full) {
    if (dtype == DType::int64 && !fits_int64(g.a))
      throw std::invalid_argument("generate: fill value " + std::to_string(g.a) + " does not fit int64");
    return NDArray::full(shape, g.a, dtype);
  }
  const std::size_t n = shape.size();
  NDArray out(shape, dtype);
  if (out.size() == 0) return out;
  std::vector<std::int64_t> gstride(n, 1);
  for (std::size_t k = n; k-- > 1;) gstride[k - 1] = gstride[k] * g.global_shape[k];
  if (kind == GenKind::arange && dtype == DType::int64) {
    // Values grow (or shrink) with the global index, so the block's first and last
    // elements bound them all: checked once per block.
    std::int64_t first = 0, last = 0;
    for (std::size_t k = 0; k < n; ++k) {
      first += offset[k] * gstride[k];
      last += (offset[k] + shape[k] - 1) * gstride[k];
    }
    for (std::int64_t i : {first, last}) {
      const double v = g.a + g.b * static_cast<double>(i);
      if (!fits_int64(v))
        throw std::invalid_argument("generate: arange value " + std::to_string(v) + " does not fit int64");
    }
  }
  const std::int64_t inner = n ? shape[n - 1] : 1;
  const std::int64_t rows = out.size() / inner;
  std::vector<std::int64_t> index(n ? n - 1 : 0, 0);
  for (std::int64_t r = 0; r < rows; ++r) {
    std::int64_t g0 = n ? offset[n - 1] : 0;
    for (std::size_t k = 0; k + 1 < n; ++k) g0 += (offset[k] + index[k]) * gstride[k];
    const auto start = static_cast<std::uint64_t>(g0);
    switch (kind) {
      case GenKind::arange:
        with_dtype(dtype, [&](auto tag) {
          using T = decltype(tag);
          T* o = out.values<T>().data() + r * inner;
          for (std::int64_t j = 0; j < inner; ++j)
            o[j] = static_cast<T>(g.a + g.b * static_cast<double>(g0 + j));
        });
        break;
      case GenKind::random:
        uniform_values(g.seed, start, static_cast<std::size_t>(inner), 0.0, 1.0, out.values<double>().data() + r * inner);
        break;
      case GenKind::uniform:
        uniform_values(g.seed, start, static_cast<std::size_t>(inner), g.a, g.b - g.a, out.values<double>().data() + r * inner);
        break;
      case GenKind::normal:
        normal_values(g.seed, start, static_cast<std::size_t>(inner), g.a, g.b, out.values<double>().data() + r * inner);
        break;
      default:
        throw std::invalid_argument("generate: unknown generator");
    }
    for (std::size_t k = index.size(); k-- > 0;) {
      if (++index[k] < shape[k]) break;
      index[k] = 0;
    }
  }
  return out;
}

}  // namespace distrib::array::detail
