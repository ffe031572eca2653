// Source kernels: every element is a function of its global position, so a block can be
// made anywhere, in any order, and the same seed gives the same array for any chunking.
#include <stdexcept>

#include "array/dispatch.hpp"
#include "array/kernels.hpp"
#include "array/philox.hpp"

namespace distrib::array::detail {


NDArray generate(const Generator& g, const std::vector<std::int64_t>& offset, const std::vector<std::int64_t>& shape) {
  const DType dtype = static_cast<DType>(g.dtype);
  const auto kind = static_cast<GenKind>(g.kind);
  if (kind == GenKind::full) return NDArray::full(shape, g.a, dtype);
  const std::size_t n = shape.size();
  if (offset.size() != n || g.global_shape.size() != n) throw std::invalid_argument("generate: bad block position");
  NDArray out(shape, dtype);
  if (out.size() == 0) return out;
  std::vector<std::int64_t> gstride(n, 1);
  for (std::size_t k = n; k-- > 1;) gstride[k - 1] = gstride[k] * g.global_shape[k];
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
