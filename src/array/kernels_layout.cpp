// Layout kernels: transpose, strided slices, reshape, assembling blocks, matrix products.
// Also the checks of untrusted shapes and codes that every kernel uses (see "Checks").
//
// Specs and blocks arrive from clients over the network, so every kernel checks what it
// is given once per block (never per element) and throws std::invalid_argument on
// anything that would read or write outside a block or allocate absurd memory.
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "array/dispatch.hpp"
#include "array/kernels.hpp"
#include "array/transpose_tile.hpp"

namespace distrib::array::detail {

// ---------------------------------------------------------------------------------------
// Checks. Declared in the kernel files that use them (kernels.hpp is shared with code
// being edited elsewhere; they belong there).

std::uint64_t max_block_bytes() {
  static const std::uint64_t limit = [] {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return std::uint64_t{1} << 40;
    return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page);
  }();
  return limit;
}

DType checked_dtype(std::uint8_t code, const char* what) {
  switch (static_cast<DType>(code)) {
    case DType::float64:
    case DType::float32:
    case DType::int64:
    case DType::boolean: return static_cast<DType>(code);
  }
  throw std::invalid_argument(std::string(what) + ": unknown dtype code " + std::to_string(code));
}

std::int64_t checked_product(const std::vector<std::int64_t>& shape, const char* what) {
  if (shape.size() > 32) throw std::invalid_argument(std::string(what) + ": more than 32 dimensions");
  // The product of the non-zero extents must fit, so that no partial product overflows.
  std::int64_t nonzero = 1;
  bool empty = false;
  for (auto e : shape) {
    if (e < 0) throw std::invalid_argument(std::string(what) + ": negative extent in shape " + shape_text(shape));
    if (e == 0) {
      empty = true;
      continue;
    }
    if (__builtin_mul_overflow(nonzero, e, &nonzero))
      throw std::invalid_argument(std::string(what) + ": shape " + shape_text(shape) + " has too many elements");
  }
  return empty ? 0 : nonzero;
}

std::int64_t checked_count(const std::vector<std::int64_t>& shape, DType dtype, const char* what) {
  const std::int64_t count = checked_product(shape, what);
  const std::uint64_t limit = max_block_bytes(), item = itemsize(dtype);
  if (static_cast<std::uint64_t>(count) > limit / item)
    throw std::invalid_argument(std::string(what) + ": a block of shape " + shape_text(shape) + " (" + to_string(dtype) +
                                ") would need more than this machine's memory (" + std::to_string(limit) + " bytes)");
  return count;
}

void check_position(const std::vector<std::int64_t>& offset, const std::vector<std::int64_t>& shape,
                    const std::vector<std::int64_t>& global_shape, const char* what) {
  const std::size_t n = shape.size();
  if (offset.size() != n || global_shape.size() != n)
    throw std::invalid_argument(std::string(what) + ": the block offset " + shape_text(offset) + " and the array shape " +
                                shape_text(global_shape) + " do not have the block's " + std::to_string(n) + " dimensions");
  checked_product(global_shape, what);
  for (std::size_t k = 0; k < n; ++k)
    if (offset[k] < 0 || shape[k] < 0 || shape[k] > global_shape[k] || offset[k] > global_shape[k] - shape[k])
      throw std::invalid_argument(std::string(what) + ": a block of shape " + shape_text(shape) + " at " + shape_text(offset) +
                                  " lies outside the array of shape " + shape_text(global_shape));
}

// ---------------------------------------------------------------------------------------

namespace {
// Visits every row (all axes but the last) of `shape` in C order.
template <class F>
void for_each_row(const std::vector<std::int64_t>& shape, F&& f) {
  const std::size_t n = shape.size();
  if (n == 0) {
    f(std::vector<std::int64_t>{}, 0);
    return;
  }
  std::int64_t rows = 1;
  for (std::size_t k = 0; k + 1 < n; ++k) rows *= shape[k];
  if (rows == 0 || shape[n - 1] == 0) return;
  std::vector<std::int64_t> index(n - 1, 0);
  for (std::int64_t r = 0; r < rows; ++r) {
    f(index, r);
    for (std::size_t k = n - 1; k-- > 0;) {
      if (++index[k] < shape[k]) break;
      index[k] = 0;
    }
  }
}
}  // namespace

NDArray transpose(const NDArray& a, const std::vector<std::int64_t>& axes) {
  const std::size_t n = a.ndim();
  if (axes.size() != n)
    throw std::invalid_argument("transpose: " + std::to_string(axes.size()) + " axes for a block of shape " + a.shape_string());
  std::uint64_t seen = 0;  // n <= 32
  for (auto ax : axes) {
    if (ax < 0 || static_cast<std::size_t>(ax) >= n || (seen >> ax & 1))
      throw std::invalid_argument("transpose: axes " + shape_text(axes) + " are not a permutation of the block's axes");
    seen |= std::uint64_t{1} << ax;
  }
  std::vector<std::int64_t> out_shape(n);
  for (std::size_t k = 0; k < n; ++k) out_shape[k] = a.shape()[static_cast<std::size_t>(axes[k])];
  NDArray out(out_shape, a.dtype());
  auto in_strides = a.strides();
  with_dtype(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = a.values<T>().data();
    T* dst = out.values<T>().data();
    if (n == 2 && axes[0] == 1) {
      constexpr std::int64_t tile = kTransposeTile;
      const std::int64_t rows = out_shape[0], cols = out_shape[1];
      for (std::int64_t i0 = 0; i0 < rows; i0 += tile)
        for (std::int64_t j0 = 0; j0 < cols; j0 += tile)
          transpose_tile(src + j0 * rows + i0, rows, dst + i0 * cols + j0, cols, std::min(tile, rows - i0),
                         std::min(tile, cols - j0));
      return;
    }
    std::vector<std::int64_t> s(n);
    for (std::size_t k = 0; k < n; ++k) s[k] = in_strides[static_cast<std::size_t>(axes[k])];
    const std::int64_t inner = n ? out_shape[n - 1] : 1, inner_stride = n ? s[n - 1] : 0;
    for_each_row(out_shape, [&](const std::vector<std::int64_t>& index, std::int64_t row) {
      std::int64_t off = 0;
      for (std::size_t k = 0; k + 1 < n; ++k) off += index[k] * s[k];
      T* d = dst + row * inner;
      for (std::int64_t j = 0; j < inner; ++j) d[j] = src[off + j * inner_stride];
    });
  });
  return out;
}

NDArray strided_slice(const NDArray& a, const std::vector<std::int64_t>& starts, const std::vector<std::int64_t>& steps,
                      const std::vector<std::int64_t>& shape) {
  const std::size_t n = a.ndim();
  if (starts.size() != n || steps.size() != n || shape.size() != n)
    throw std::invalid_argument("slice: starts " + shape_text(starts) + ", steps " + shape_text(steps) + " and shape " +
                                shape_text(shape) + " do not fit a block of shape " + a.shape_string());
  // Every index read, start + i * step for i < shape[k], must lie inside the block; then
  // the result is no larger than the block.
  const bool empty = checked_product(shape, "slice") == 0;
  for (std::size_t k = 0; k < n; ++k) {
    if (steps[k] == 0) throw std::invalid_argument("slice: a step of 0");
    if (empty) continue;
    const std::int64_t extent = a.shape()[k];
    std::int64_t span = 0, last = 0;
    if (starts[k] < 0 || starts[k] >= extent || __builtin_mul_overflow(shape[k] - 1, steps[k], &span) ||
        __builtin_add_overflow(starts[k], span, &last) || last < 0 || last >= extent)
      throw std::invalid_argument("slice: " + std::to_string(shape[k]) + " elements from " + std::to_string(starts[k]) +
                                  " in steps of " + std::to_string(steps[k]) + " leave axis " + std::to_string(k) +
                                  " of a block of shape " + a.shape_string());
  }
  NDArray out(shape, a.dtype());
  if (empty) return out;
  auto in_strides = a.strides();
  with_dtype(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = a.values<T>().data();
    T* dst = out.values<T>().data();
    const std::int64_t inner = n ? shape[n - 1] : 1;
    const std::int64_t inner_step = n ? steps[n - 1] * in_strides[n - 1] : 0;
    for_each_row(shape, [&](const std::vector<std::int64_t>& index, std::int64_t row) {
      std::int64_t off = n ? starts[n - 1] * in_strides[n - 1] : 0;
      for (std::size_t k = 0; k + 1 < n; ++k) off += (starts[k] + index[k] * steps[k]) * in_strides[k];
      T* d = dst + row * inner;
      if (inner_step == 1) std::copy_n(src + off, inner, d);
      else
        for (std::int64_t j = 0; j < inner; ++j) d[j] = src[off + j * inner_step];
    });
  });
  return out;
}

NDArray reshape(const NDArray& a, const std::vector<std::int64_t>& shape) {
  if (checked_product(shape, "reshape") != a.size())
    throw std::invalid_argument("reshape: a block of shape " + a.shape_string() + " cannot become " + shape_text(shape));
  NDArray out(shape, a.dtype());
  if (a.nbytes()) std::memcpy(out.bytes().data(), a.bytes().data(), a.nbytes());
  return out;
}

namespace {
// Whether the pieces (already checked to lie inside `shape`) write every element of it
// exactly once: the non-empty pieces form a grid whose intervals partition each axis, as
// rechunk and concatenate make them. O(pieces log pieces) per block.
bool tiles_exactly(const std::vector<std::int64_t>& shape, std::span<const Piece> pieces) {
  const std::size_t n = shape.size();
  if (checked_product(shape, "assemble") == 0) return true;
  std::vector<const Piece*> full;
  for (const auto& p : pieces)
    if (checked_product(p.extent, "assemble") > 0) full.push_back(&p);
  if (n == 0) return !full.empty();
  using Interval = std::pair<std::int64_t, std::int64_t>;  // start, extent
  std::vector<std::vector<Interval>> cuts(n);
  std::size_t cells = 1;
  for (std::size_t k = 0; k < n; ++k) {
    auto& c = cuts[k];
    for (const Piece* p : full) c.emplace_back(p->dst_start[k], p->extent[k]);
    std::sort(c.begin(), c.end());
    c.erase(std::unique(c.begin(), c.end()), c.end());
    std::int64_t end = 0;
    for (const auto& [start, extent] : c) {
      if (start != end) return false;  // a gap or an overlap
      end = start + extent;
    }
    if (end != shape[k]) return false;
    cells *= c.size();
    if (cells > full.size()) return false;
  }
  if (cells != full.size()) return false;
  std::vector<bool> hit(cells, false);
  for (const Piece* p : full) {
    std::size_t cell = 0;
    for (std::size_t k = 0; k < n; ++k) {
      const auto& c = cuts[k];
      auto it = std::lower_bound(c.begin(), c.end(), Interval{p->dst_start[k], p->extent[k]});
      cell = cell * c.size() + static_cast<std::size_t>(it - c.begin());
    }
    if (hit[cell]) return false;
    hit[cell] = true;
  }
  return true;
}
}  // namespace

NDArray assemble(const std::vector<std::int64_t>& shape, DType dtype, std::span<const Piece> pieces,
                 std::span<const NDArray> inputs) {
  dtype = checked_dtype(static_cast<std::uint8_t>(dtype), "assemble");
  if (pieces.size() != inputs.size()) throw std::invalid_argument("assemble: pieces and inputs differ in number");
  checked_count(shape, dtype, "assemble");
  const std::size_t n = shape.size();
  for (std::size_t p = 0; p < pieces.size(); ++p) {
    const auto& piece = pieces[p];
    const NDArray& in = inputs[p];
    if (in.dtype() != dtype || in.ndim() != n || piece.extent.size() != n || piece.src_start.size() != n ||
        piece.dst_start.size() != n)
      throw std::invalid_argument("assemble: a block does not match the array (dtype " + std::string(to_string(in.dtype())) +
                                  ", shape " + in.shape_string() + ")");
    for (std::size_t k = 0; k < n; ++k) {
      const std::int64_t e = piece.extent[k], s = piece.src_start[k], d = piece.dst_start[k];
      if (e < 0 || s < 0 || d < 0 || e > in.shape()[k] || s > in.shape()[k] - e || e > shape[k] || d > shape[k] - e)
        throw std::invalid_argument("assemble: a piece of shape " + shape_text(piece.extent) + " from " +
                                    shape_text(piece.src_start) + " of a block of shape " + in.shape_string() + " to " +
                                    shape_text(piece.dst_start) + " lies outside its block or the result " + shape_text(shape));
    }
  }
  // Pieces that leave elements unwritten (or overwrite others) would expose old memory:
  // such a layout is filled with zeros first. Rechunk and concatenate never need it.
  NDArray out = tiles_exactly(shape, pieces) ? NDArray(shape, dtype) : NDArray::zeros(shape, dtype);
  auto out_strides = out.strides();
  const std::size_t item = itemsize(dtype);
  std::byte* dst = out.bytes().data();
  for (std::size_t p = 0; p < pieces.size(); ++p) {
    const auto& piece = pieces[p];
    const NDArray& in = inputs[p];
    auto in_strides = in.strides();
    const std::byte* src = in.bytes().data();
    const std::size_t row_bytes = n ? static_cast<std::size_t>(piece.extent[n - 1]) * item : item;
    for_each_row(piece.extent, [&](const std::vector<std::int64_t>& index, std::int64_t) {
      std::int64_t so = 0, dof = 0;
      for (std::size_t k = 0; k < n; ++k) {
        std::int64_t i = k + 1 < n ? index[k] : 0;
        so += (piece.src_start[k] + i) * in_strides[k];
        dof += (piece.dst_start[k] + i) * out_strides[k];
      }
      std::memcpy(dst + dof * static_cast<std::int64_t>(item), src + so * static_cast<std::int64_t>(item), row_bytes);
    });
  }
  return out;
}

namespace {
// c (m x n) += a (m x kk) @ b (kk x n) in i-k-j order: the inner loop runs along
// contiguous rows of b and c (vectorised). Integers use wrapping unsigned arithmetic, as
// numpy's int64 (signed overflow would be undefined).
template <class T>
void matmul_add(const T* pa, const T* pb, T* c, std::int64_t m, std::int64_t kk, std::int64_t n) {
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t l = 0; l < kk; ++l) {
      const T x = pa[i * kk + l];
      const T* rb = pb + l * n;
      T* rc = c + i * n;
      for (std::int64_t j = 0; j < n; ++j) rc[j] += x * rb[j];
    }
}
}  // namespace

NDArray matmul_sum(std::span<const NDArray> a, std::span<const NDArray> b, DType dtype) {
  dtype = checked_dtype(static_cast<std::uint8_t>(dtype), "dot");
  if (a.size() != b.size() || a.empty()) throw std::invalid_argument("dot: the blocks of the two operands do not pair up");
  for (std::size_t k = 0; k < a.size(); ++k)
    if (a[k].ndim() != 2 || b[k].ndim() != 2)
      throw std::invalid_argument("dot: blocks " + a[k].shape_string() + " and " + b[k].shape_string() + " are not both 2-d");
  const std::int64_t m = a[0].shape()[0], n = b[0].shape()[1];
  bool integers = dtype == DType::int64;
  for (std::size_t k = 0; k < a.size(); ++k) {
    if (a[k].shape()[0] != m || b[k].shape()[1] != n || a[k].shape()[1] != b[k].shape()[0])
      throw std::invalid_argument("dot: blocks " + a[k].shape_string() + " and " + b[k].shape_string() + " do not multiply");
    for (DType d : {a[k].dtype(), b[k].dtype()}) integers = integers && (d == DType::int64 || d == DType::boolean);
  }
  // m and n come from blocks that may be empty (k = 0): the product can still be huge.
  checked_count({m, n}, DType::float64, "dot");
  if (integers) {
    // Exact, as numpy: doubles would round products above 2^53.
    NDArray acc = NDArray::zeros({m, n}, DType::int64);
    auto* c = reinterpret_cast<std::uint64_t*>(acc.values<std::int64_t>().data());
    for (std::size_t k = 0; k < a.size(); ++k) {
      NDArray ak = cast(a[k], DType::int64), bk = cast(b[k], DType::int64);
      matmul_add(reinterpret_cast<const std::uint64_t*>(ak.values<std::int64_t>().data()),
                 reinterpret_cast<const std::uint64_t*>(bk.values<std::int64_t>().data()), c, m, ak.shape()[1], n);
    }
    return acc;
  }
  NDArray acc = NDArray::zeros({m, n}, DType::float64);
  double* c = acc.values<double>().data();
  for (std::size_t k = 0; k < a.size(); ++k) {
    NDArray ak = cast(a[k], DType::float64), bk = cast(b[k], DType::float64);
    matmul_add(ak.values<double>().data(), bk.values<double>().data(), c, m, ak.shape()[1], n);
  }
  return cast(acc, dtype);
}

}  // namespace distrib::array::detail
