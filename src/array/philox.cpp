// Built with -O3 -ffast-math (see CMakeLists): the loops below vectorise, and log, sqrt,
// sin and cos come from glibc's vector math library.
#include "array/philox.hpp"

#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <cmath>
#include <cstddef>
#include <numbers>

namespace distrib::array::detail {

namespace {
constexpr std::size_t kBatch = 64;  // counters per vector pass

#define DISTRIB_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

// Portable version: 32-bit words held in 64-bit lanes.
void philox_batch_scalar(std::uint64_t seed, std::uint64_t first, std::uint64_t* x0, std::uint64_t* x1) {
  constexpr std::uint64_t low = 0xFFFFFFFFull;
  for (std::size_t i = 0; i < kBatch; ++i) {
    const std::uint64_t p = first + i;
    std::uint64_t c0 = p & low, c1 = p >> 32, c2 = 0, c3 = 0;
    std::uint64_t k0 = seed & low, k1 = seed >> 32;
    for (int round = 0; round < 10; ++round) {
      const std::uint64_t p0 = 0xD2511F53ull * c0;
      const std::uint64_t p1 = 0xCD9E8D57ull * c2;
      c0 = (p1 >> 32) ^ c1 ^ k0;
      c2 = (p0 >> 32) ^ c3 ^ k1;
      c1 = p1 & low;
      c3 = p0 & low;
      k0 = (k0 + 0x9E3779B9ull) & low;
      k1 = (k1 + 0xBB67AE85ull) & low;
    }
    x0[i] = c0 | (c1 << 32);
    x1[i] = c2 | (c3 << 32);
  }
}

// AVX2: vpmuludq multiplies the low 32 bits of each 64-bit lane, which is exactly the
// 32 x 32 -> 64 product Philox needs; two vectors are in flight to hide its latency.
__attribute__((target("avx2"))) void philox_batch_avx2(std::uint64_t seed, std::uint64_t first, std::uint64_t* x0,
                                                       std::uint64_t* x1) {
  const __m256i m0 = _mm256_set1_epi64x(0xD2511F53ll), m1 = _mm256_set1_epi64x(0xCD9E8D57ll);
  const __m256i low = _mm256_set1_epi64x(0xFFFFFFFFll);
  const __m256i w0 = _mm256_set1_epi64x(0x9E3779B9ll), w1 = _mm256_set1_epi64x(0xBB67AE85ll);
  for (std::size_t i = 0; i < kBatch; i += 8) {
    const auto f = static_cast<long long>(first + i);
    __m256i pa = _mm256_add_epi64(_mm256_set1_epi64x(f), _mm256_setr_epi64x(0, 1, 2, 3));
    __m256i pb = _mm256_add_epi64(pa, _mm256_set1_epi64x(4));
    __m256i a0 = _mm256_and_si256(pa, low), a1 = _mm256_srli_epi64(pa, 32), a2 = _mm256_setzero_si256(), a3 = a2;
    __m256i b0 = _mm256_and_si256(pb, low), b1 = _mm256_srli_epi64(pb, 32), b2 = a2, b3 = a2;
    __m256i k0 = _mm256_set1_epi64x(static_cast<long long>(seed & 0xFFFFFFFFull));
    __m256i k1 = _mm256_set1_epi64x(static_cast<long long>(seed >> 32));
    for (int round = 0; round < 10; ++round) {
      const __m256i pa0 = _mm256_mul_epu32(a0, m0), pa1 = _mm256_mul_epu32(a2, m1);
      const __m256i pb0 = _mm256_mul_epu32(b0, m0), pb1 = _mm256_mul_epu32(b2, m1);
      a0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(pa1, 32), a1), k0);
      a2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(pa0, 32), a3), k1);
      a1 = _mm256_and_si256(pa1, low);
      a3 = _mm256_and_si256(pa0, low);
      b0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(pb1, 32), b1), k0);
      b2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(pb0, 32), b3), k1);
      b1 = _mm256_and_si256(pb1, low);
      b3 = _mm256_and_si256(pb0, low);
      k0 = _mm256_and_si256(_mm256_add_epi64(k0, w0), low);
      k1 = _mm256_and_si256(_mm256_add_epi64(k1, w1), low);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(x0 + i), _mm256_or_si256(a0, _mm256_slli_epi64(a1, 32)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(x1 + i), _mm256_or_si256(a2, _mm256_slli_epi64(a3, 32)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(x0 + i + 4), _mm256_or_si256(b0, _mm256_slli_epi64(b1, 32)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(x1 + i + 4), _mm256_or_si256(b2, _mm256_slli_epi64(b3, 32)));
  }
}

// The same with 8 lanes.
__attribute__((target("avx512f"))) void philox_batch_avx512(std::uint64_t seed, std::uint64_t first, std::uint64_t* x0,
                                                       std::uint64_t* x1) {
  const __m512i m0 = _mm512_set1_epi64(0xD2511F53ll), m1 = _mm512_set1_epi64(0xCD9E8D57ll);
  const __m512i low = _mm512_set1_epi64(0xFFFFFFFFll);
  const __m512i w0 = _mm512_set1_epi64(0x9E3779B9ll), w1 = _mm512_set1_epi64(0xBB67AE85ll);
  for (std::size_t i = 0; i < kBatch; i += 16) {
    const auto f = static_cast<long long>(first + i);
    __m512i pa = _mm512_add_epi64(_mm512_set1_epi64(f), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
    __m512i pb = _mm512_add_epi64(pa, _mm512_set1_epi64(8));
    __m512i a0 = _mm512_and_si512(pa, low), a1 = _mm512_srli_epi64(pa, 32), a2 = _mm512_setzero_si512(), a3 = a2;
    __m512i b0 = _mm512_and_si512(pb, low), b1 = _mm512_srli_epi64(pb, 32), b2 = a2, b3 = a2;
    __m512i k0 = _mm512_set1_epi64(static_cast<long long>(seed & 0xFFFFFFFFull));
    __m512i k1 = _mm512_set1_epi64(static_cast<long long>(seed >> 32));
    for (int round = 0; round < 10; ++round) {
      const __m512i pa0 = _mm512_mul_epu32(a0, m0), pa1 = _mm512_mul_epu32(a2, m1);
      const __m512i pb0 = _mm512_mul_epu32(b0, m0), pb1 = _mm512_mul_epu32(b2, m1);
      a0 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(pa1, 32), a1), k0);
      a2 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(pa0, 32), a3), k1);
      a1 = _mm512_and_si512(pa1, low);
      a3 = _mm512_and_si512(pa0, low);
      b0 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(pb1, 32), b1), k0);
      b2 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(pb0, 32), b3), k1);
      b1 = _mm512_and_si512(pb1, low);
      b3 = _mm512_and_si512(pb0, low);
      k0 = _mm512_and_si512(_mm512_add_epi64(k0, w0), low);
      k1 = _mm512_and_si512(_mm512_add_epi64(k1, w1), low);
    }
    _mm512_storeu_si512(x0 + i, _mm512_or_si512(a0, _mm512_slli_epi64(a1, 32)));
    _mm512_storeu_si512(x1 + i, _mm512_or_si512(a2, _mm512_slli_epi64(a3, 32)));
    _mm512_storeu_si512(x0 + i + 8, _mm512_or_si512(b0, _mm512_slli_epi64(b1, 32)));
    _mm512_storeu_si512(x1 + i + 8, _mm512_or_si512(b2, _mm512_slli_epi64(b3, 32)));
  }
}

void philox_batch(std::uint64_t seed, std::uint64_t first, std::uint64_t* x0, std::uint64_t* x1) {
  static const bool avx512 = __builtin_cpu_supports("avx512f"), avx2 = __builtin_cpu_supports("avx2");
  if (avx512) philox_batch_avx512(seed, first, x0, x1);
  else if (avx2) philox_batch_avx2(seed, first, x0, x1);
  else philox_batch_scalar(seed, first, x0, x1);
}

// [0, 1) from the top 52 bits: exponent bits make a double in [1, 2), minus 1.
inline double unit(std::uint64_t x) { return std::bit_cast<double>((x >> 12) | 0x3FF0000000000000ull) - 1.0; }

// Both transforms write element 2i from word 0 and element 2i + 1 from word 1 of counter i.
DISTRIB_VECTOR_CLONES
void uniform_batch(const std::uint64_t* x0, const std::uint64_t* x1, double low, double width, double* out) {
  for (std::size_t i = 0; i < kBatch; ++i) {
    out[2 * i] = low + width * unit(x0[i]);
    out[2 * i + 1] = low + width * unit(x1[i]);
  }
}

DISTRIB_VECTOR_CLONES
void normal_batch(const std::uint64_t* x0, const std::uint64_t* x1, double mean, double stddev, double* out) {
  for (std::size_t i = 0; i < kBatch; ++i) {
    const double radius = std::sqrt(-2.0 * std::log(1.0 - unit(x0[i])));  // 1 - [0, 1) is in (0, 1]
    const double angle = 2.0 * std::numbers::pi * unit(x1[i]);
    // cos(a) as sin(a + pi/2): two calls the compiler does not merge into a scalar sincos,
    // so both stay vectorised.
    out[2 * i] = mean + stddev * radius * std::sin(angle + std::numbers::pi / 2);
    out[2 * i + 1] = mean + stddev * radius * std::sin(angle);
  }
}

// Element g is word (g & 1) of counter g / 2. Batches wholly inside [g0, g0 + len) are
// written in place; the ends of the range go through a small buffer.
template <class Transform>
void fill(std::uint64_t seed, std::uint64_t g0, std::size_t len, double* out, Transform transform) {
  if (len == 0) return;
  std::uint64_t x0[kBatch], x1[kBatch];
  double both[2 * kBatch];
  const std::uint64_t end = g0 + len;
  for (std::uint64_t p = g0 >> 1; 2 * p < end; p += kBatch) {
    philox_batch(seed, p, x0, x1);
    // This batch holds elements [2p, 2p + 2 kBatch); the part inside [g0, end) is kept.
    const std::uint64_t from = std::max(2 * p, g0), to = std::min(2 * p + 2 * kBatch, end);
    if (from == 2 * p && to == 2 * p + 2 * kBatch) {
      transform(x0, x1, out + (from - g0));
      continue;
    }
    transform(x0, x1, both);
    std::memcpy(out + (from - g0), both + (from - 2 * p), (to - from) * sizeof(double));
  }
}
}  // namespace

void philox_words(std::uint64_t seed, std::uint64_t first, std::size_t n, std::uint64_t* x0, std::uint64_t* x1) {
  std::uint64_t b0[kBatch], b1[kBatch];
  for (std::size_t done = 0; done < n; done += kBatch) {
    philox_batch(seed, first + done, b0, b1);
    for (std::size_t i = 0; i < kBatch && done + i < n; ++i) {
      x0[done + i] = b0[i];
      x1[done + i] = b1[i];
    }
  }
}

void uniform_values(std::uint64_t seed, std::uint64_t g0, std::size_t len, double low, double width, double* out) {
  fill(seed, g0, len, out, [&](const std::uint64_t* x0, const std::uint64_t* x1, double* into) {
    uniform_batch(x0, x1, low, width, into);
  });
}

void normal_values(std::uint64_t seed, std::uint64_t g0, std::size_t len, double mean, double stddev, double* out) {
  fill(seed, g0, len, out, [&](const std::uint64_t* x0, const std::uint64_t* x1, double* into) {
    normal_batch(x0, x1, mean, stddev, into);
  });
}

}  // namespace distrib::array::detail
