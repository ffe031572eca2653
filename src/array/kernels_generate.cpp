// Source kernels: every element is a function of its global position, so a block can be
// made anywhere, in any order, and the same seed gives the same array for any chunking.
#include <Random123/philox.h>

#include <cmath>
#include <numbers>
#include <stdexcept>

#include "array/dispatch.hpp"
#include "array/kernels.hpp"

namespace distrib::array::detail {

namespace {
// Two 64-bit random words for counter `pair` (Philox 4x32-10).
struct PhiloxPair {
  r123::Philox4x32 rng;
  r123::Philox4x32::key_type key;
  explicit PhiloxPair(std::uint64_t seed) {
    key[0] = static_cast<std::uint32_t>(seed);
    key[1] = static_cast<std::uint32_t>(seed >> 32);
  }
  void operator()(std::uint64_t pair, std::uint64_t& x0, std::uint64_t& x1) const {
    r123::Philox4x32::ctr_type c = {{static_cast<std::uint32_t>(pair), static_cast<std::uint32_t>(pair >> 32), 0, 0}};
    auto r = rng(c, key);
    x0 = std::uint64_t{r[0]} | (std::uint64_t{r[1]} << 32);
    x1 = std::uint64_t{r[2]} | (std::uint64_t{r[3]} << 32);
  }
};

inline double unit_closed_open(std::uint64_t x) { return static_cast<double>(x >> 11) * 0x1.0p-53; }  // [0, 1)
inline double unit_open_closed(std::uint64_t x) { return static_cast<double>((x >> 11) + 1) * 0x1.0p-53; }  // (0, 1]

// Fills out[0..len) with the values of global indices g0.. where `pair_values(p, v0, v1)`
// gives the values of indices 2p and 2p + 1.
template <class PairValues>
void fill_row(double* out, std::uint64_t g0, std::int64_t len, const PairValues& pair_values) {
  std::int64_t j = 0;
  double t0, t1;
  if (len > 0 && (g0 & 1)) {
    pair_values(g0 >> 1, t0, t1);
    out[0] = t1;
    j = 1;
  }
  for (; j + 1 < len; j += 2) pair_values((g0 + static_cast<std::uint64_t>(j)) >> 1, out[j], out[j + 1]);
  if (j < len) {
    pair_values((g0 + static_cast<std::uint64_t>(j)) >> 1, t0, t1);
    out[j] = t0;
  }
}
}  // namespace

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
  PhiloxPair philox(g.seed);
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
      case GenKind::uniform: {
        const double low = kind == GenKind::random ? 0.0 : g.a, width = kind == GenKind::random ? 1.0 : g.b - g.a;
        fill_row(out.values<double>().data() + r * inner, start, inner, [&](std::uint64_t p, double& v0, double& v1) {
          std::uint64_t x0, x1;
          philox(p, x0, x1);
          v0 = low + width * unit_closed_open(x0);
          v1 = low + width * unit_closed_open(x1);
        });
        break;
      }
      case GenKind::normal:
        // Box-Muller: one pair of uniforms gives the pair of normals 2p, 2p + 1.
        fill_row(out.values<double>().data() + r * inner, start, inner, [&](std::uint64_t p, double& v0, double& v1) {
          std::uint64_t x0, x1;
          philox(p, x0, x1);
          const double radius = std::sqrt(-2.0 * std::log(unit_open_closed(x0)));
          const double angle = 2.0 * std::numbers::pi * unit_closed_open(x1);
          v0 = g.a + g.b * radius * std::cos(angle);
          v1 = g.a + g.b * radius * std::sin(angle);
        });
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
