// Layout kernels: transpose, strided slices, reshape, assembling blocks, matrix products.
#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "array/dispatch.hpp"
#include "array/kernels.hpp"

namespace distrib::array::detail {

namespace {
std::int64_t count_of(const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (auto e : shape) n *= e;
  return n;
}

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
  std::vector<std::int64_t> out_shape(n);
  for (std::size_t k = 0; k < n; ++k) out_shape[k] = a.shape()[static_cast<std::size_t>(axes[k])];
  NDArray out(out_shape, a.dtype());
  auto in_strides = a.strides();
  with_dtype(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = a.values<T>().data();
    T* dst = out.values<T>().data();
    if (n == 2 && axes[0] == 1) {
      // Tiles keep both the rows read and the rows written in cache.
      constexpr std::int64_t tile = 32;
      const std::int64_t rows = out_shape[0], cols = out_shape[1];
      for (std::int64_t i0 = 0; i0 < rows; i0 += tile)
        for (std::int64_t j0 = 0; j0 < cols; j0 += tile)
          for (std::int64_t i = i0; i < std::min(rows, i0 + tile); ++i)
            for (std::int64_t j = j0; j < std::min(cols, j0 + tile); ++j) dst[i * cols + j] = src[j * rows + i];
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
  NDArray out(shape, a.dtype());
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
  if (count_of(shape) != a.size()) throw std::invalid_argument("reshape kernel: element counts differ");
  NDArray out(shape, a.dtype());
  if (a.nbytes()) std::memcpy(out.bytes().data(), a.bytes().data(), a.nbytes());
  return out;
}

NDArray assemble(const std::vector<std::int64_t>& shape, DType dtype, std::span<const Piece> pieces,
                 std::span<const NDArray> inputs) {
  if (pieces.size() != inputs.size()) throw std::invalid_argument("assemble: pieces and inputs differ in number");
  NDArray out(shape, dtype);
  const std::size_t n = shape.size();
  auto out_strides = out.strides();
  const std::size_t item = itemsize(dtype);
  std::byte* dst = out.bytes().data();
  for (std::size_t p = 0; p < pieces.size(); ++p) {
    const auto& piece = pieces[p];
    const NDArray& in = inputs[p];
    if (in.dtype() != dtype || in.ndim() != n || piece.extent.size() != n)
      throw std::invalid_argument("assemble: a block does not match the array (dtype " + std::string(to_string(in.dtype())) +
                                  ", shape " + in.shape_string() + ")");
    for (std::size_t k = 0; k < n; ++k)
      if (piece.src_start[k] + piece.extent[k] > in.shape()[k] || piece.dst_start[k] + piece.extent[k] > shape[k])
        throw std::invalid_argument("assemble: a piece lies outside its block");
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

NDArray matmul_sum(std::span<const NDArray> a, std::span<const NDArray> b, DType dtype) {
  if (a.size() != b.size() || a.empty()) throw std::invalid_argument("dot: the blocks of the two operands do not pair up");
  const std::int64_t m = a[0].shape()[0], n = b[0].shape()[1];
  NDArray acc = NDArray::zeros({m, n}, DType::float64);
  double* c = acc.values<double>().data();
  for (std::size_t k = 0; k < a.size(); ++k) {
    NDArray ak = cast(a[k], DType::float64), bk = cast(b[k], DType::float64);
    if (ak.ndim() != 2 || bk.ndim() != 2 || ak.shape()[0] != m || bk.shape()[1] != n || ak.shape()[1] != bk.shape()[0])
      throw std::invalid_argument("dot: blocks " + ak.shape_string() + " and " + bk.shape_string() + " do not multiply");
    const std::int64_t kk = ak.shape()[1];
    const double* pa = ak.values<double>().data();
    const double* pb = bk.values<double>().data();
    // i-k-j order: the inner loop runs along contiguous rows of b and c (vectorised).
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t l = 0; l < kk; ++l) {
        const double x = pa[i * kk + l];
        const double* rb = pb + l * n;
        double* rc = c + i * n;
        for (std::int64_t j = 0; j < n; ++j) rc[j] += x * rb[j];
      }
  }
  return cast(acc, dtype);
}

}  // namespace distrib::array::detail
