#pragma once
// The inner step of every 2-d transpose: one tile, small enough that the rows it reads and
// the rows it writes stay in L1. Used by the transpose kernel and by binary operations
// with a transposed operand (which never materialise the transpose).
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace distrib::array::detail {

/// Tiles are kTransposeTile x kTransposeTile elements (32 x 32 doubles: 8 KiB).
inline constexpr std::int64_t kTransposeTile = 32;

/// dst[i * dst_stride + j] = src[j * src_stride + i] for 8-byte elements, i < h, j < w;
/// 4 x 4 AVX2 shuffles where the CPU has them (defined in transpose_tile.cpp).
void transpose_tile_8(const void* src, std::int64_t src_stride, void* dst, std::int64_t dst_stride, std::int64_t h,
                      std::int64_t w);

template <class T>
void transpose_tile(const T* src, std::int64_t src_stride, T* dst, std::int64_t dst_stride, std::int64_t h, std::int64_t w) {
  if constexpr (sizeof(T) == 8 && std::is_trivially_copyable_v<T>) {
    transpose_tile_8(src, src_stride, dst, dst_stride, h, w);
  } else {
    for (std::int64_t i = 0; i < h; ++i)
      for (std::int64_t j = 0; j < w; ++j) dst[i * dst_stride + j] = src[j * src_stride + i];
  }
}

}  // namespace distrib::array::detail
