#include "array/transpose_tile.hpp"

#include <immintrin.h>

#include <cstring>

namespace distrib::array::detail {

namespace {
using Word = std::uint64_t;

// Elements are copied as bytes (memcpy): they are doubles or int64s, not Words, and
// reading them through another type would break aliasing rules.
void scalar_tile(const Word* src, std::int64_t ss, Word* dst, std::int64_t ds, std::int64_t h, std::int64_t w) {
  for (std::int64_t i = 0; i < h; ++i)
    for (std::int64_t j = 0; j < w; ++j) std::memcpy(dst + (i * ds + j), src + (j * ss + i), sizeof(Word));
}

// Four source rows in, four destination rows out: unpack pairs, then swap 128-bit halves.
__attribute__((target("avx2"))) void avx2_tile(const Word* src, std::int64_t ss, Word* dst, std::int64_t ds,
                                               std::int64_t h, std::int64_t w) {
  const std::int64_t h4 = h & ~std::int64_t{3}, w4 = w & ~std::int64_t{3};
  const auto* s = reinterpret_cast<const double*>(src);
  auto* d = reinterpret_cast<double*>(dst);
  for (std::int64_t i = 0; i < h4; i += 4)
    for (std::int64_t j = 0; j < w4; j += 4) {
      const __m256d r0 = _mm256_loadu_pd(s + (j + 0) * ss + i), r1 = _mm256_loadu_pd(s + (j + 1) * ss + i);
      const __m256d r2 = _mm256_loadu_pd(s + (j + 2) * ss + i), r3 = _mm256_loadu_pd(s + (j + 3) * ss + i);
      const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
      const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
      _mm256_storeu_pd(d + (i + 0) * ds + j, _mm256_permute2f128_pd(t0, t2, 0x20));
      _mm256_storeu_pd(d + (i + 1) * ds + j, _mm256_permute2f128_pd(t1, t3, 0x20));
      _mm256_storeu_pd(d + (i + 2) * ds + j, _mm256_permute2f128_pd(t0, t2, 0x31));
      _mm256_storeu_pd(d + (i + 3) * ds + j, _mm256_permute2f128_pd(t1, t3, 0x31));
    }
  // The edges that are not a multiple of 4.
  if (w4 < w) scalar_tile(src + w4 * ss, ss, dst + w4, ds, h4, w - w4);
  if (h4 < h) scalar_tile(src + h4, ss, dst + h4 * ds, ds, h - h4, w);
}
}  // namespace

void transpose_tile_8(const void* src, std::int64_t src_stride, void* dst, std::int64_t dst_stride, std::int64_t h,
                      std::int64_t w) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  const auto* s = static_cast<const Word*>(src);
  auto* d = static_cast<Word*>(dst);
  if (avx2) avx2_tile(s, src_stride, d, dst_stride, h, w);
  else scalar_tile(s, src_stride, d, dst_stride, h, w);
}

}  // namespace distrib::array::detail
