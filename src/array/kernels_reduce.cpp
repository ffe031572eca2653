// Reduction kernels. A partial result has shape [fields] + the block's shape with the
// reduced axes set to 1:
//   sum, min, max: [value]  (int64 for integer and bool inputs, else float64)
//   mean:          [sum, count]
//   var, std:      [count, mean, M2]  (merged with Chan et al.'s pairwise update)
//   argmin/argmax: [value, global index]
#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>

#include "array/dispatch.hpp"
#include "array/kernels.hpp"

namespace distrib::array::detail {

namespace {
ReduceKind checked_kind(ReduceKind k) {
  if (static_cast<std::uint8_t>(k) > static_cast<std::uint8_t>(ReduceKind::argmax))
    throw std::invalid_argument("reduce: unknown reduction " + std::to_string(static_cast<int>(k)));
  return k;
}

// int64 sums wrap around, as numpy's (signed overflow would be undefined).
std::int64_t wrapping_add(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
}

std::size_t fields_of(ReduceKind k) {
  switch (k) {
    case ReduceKind::mean: return 2;
    case ReduceKind::var:
    case ReduceKind::std: return 3;
    case ReduceKind::argmin:
    case ReduceKind::argmax: return 2;
    default: return 1;
  }
}

bool integer_partial(ReduceKind k, DType input) {
  return (k == ReduceKind::sum || k == ReduceKind::min || k == ReduceKind::max) && (input == DType::int64 || input == DType::boolean);
}

// Calls visit(row pointer, row length, output base, row index) for every row of `block`,
// where the output base is the row's position in the partial (reduced axes count as 0).
template <class T, class Visit>
void visit_rows(const NDArray& block, const std::vector<std::int64_t>& out_strides, Visit&& visit) {
  const auto& shape = block.shape();
  const std::size_t n = shape.size();
  const T* data = block.values<T>().data();
  if (n == 0) {
    std::vector<std::int64_t> none;
    visit(data, std::int64_t{1}, std::int64_t{0}, none);
    return;
  }
  const std::int64_t inner = shape[n - 1];
  if (block.size() == 0) return;
  const std::int64_t rows = block.size() / inner;
  std::vector<std::int64_t> index(n - 1, 0);
  for (std::int64_t r = 0; r < rows; ++r) {
    std::int64_t base = 0;
    for (std::size_t k = 0; k + 1 < n; ++k) base += index[k] * out_strides[k];
    visit(data + r * inner, inner, base, index);
    for (std::size_t k = n - 1; k-- > 0;) {
      if (++index[k] < shape[k]) break;
      index[k] = 0;
    }
  }
}

// A partial result holds `fields` rows of m values: int64 for sum, min and max of integers
// and bools, float64 otherwise. Returns m.
std::int64_t check_partial(ReduceKind kind, const NDArray& partial) {
  const auto fields = static_cast<std::int64_t>(fields_of(kind));
  const bool dtype_ok = partial.dtype() == DType::float64 ||
                        (partial.dtype() == DType::int64 &&
                         (kind == ReduceKind::sum || kind == ReduceKind::min || kind == ReduceKind::max));
  if (partial.ndim() == 0 || partial.shape()[0] != fields || !dtype_ok)
    throw std::invalid_argument(std::string("reduce: a partial ") + reduce_name(kind) + " of shape " + partial.shape_string() +
                                " and dtype " + to_string(partial.dtype()) + " is not " + std::to_string(fields) +
                                " rows of partial results");
  return partial.size() / fields;
}

template <class T>
NDArray chunk_typed(const NDArray& block, const ReduceSpec& spec) {
  const auto kind = static_cast<ReduceKind>(spec.kind);
  const auto& shape = block.shape();
  const std::size_t n = shape.size();
  std::vector<bool> reduced(n, false);
  for (auto a : spec.axes) reduced[static_cast<std::size_t>(a)] = true;
  std::vector<std::int64_t> kshape = shape;
  for (std::size_t k = 0; k < n; ++k)
    if (reduced[k]) kshape[k] = 1;
  std::int64_t m = 1;
  for (auto e : kshape) m *= e;
  std::vector<std::int64_t> out_strides(n, 0);
  {
    std::int64_t s = 1;
    for (std::size_t k = n; k-- > 0;) {
      out_strides[k] = reduced[k] ? 0 : s;
      s *= kshape[k];
    }
  }
  const bool last_reduced = n > 0 && reduced[n - 1];
  const std::size_t fields = fields_of(kind);
  std::vector<std::int64_t> pshape{static_cast<std::int64_t>(fields)};
  pshape.insert(pshape.end(), kshape.begin(), kshape.end());
  const std::int64_t per_output = m ? block.size() / m : 0;

  if (integer_partial(kind, block.dtype())) {
    NDArray out(pshape, DType::int64);
    std::int64_t* acc = out.values<std::int64_t>().data();
    const std::int64_t init = kind == ReduceKind::sum   ? 0
                              : kind == ReduceKind::min ? std::numeric_limits<std::int64_t>::max()
                                                        : std::numeric_limits<std::int64_t>::min();
    std::fill_n(acc, m, init);
    visit_rows<T>(block, out_strides, [&](const T* row, std::int64_t len, std::int64_t base, const auto&) {
      for (std::int64_t j = 0; j < len; ++j) {
        std::int64_t& slot = acc[base + (last_reduced ? 0 : j)];
        const auto x = static_cast<std::int64_t>(row[j]);
        if (kind == ReduceKind::sum) slot = wrapping_add(slot, x);
        else if (kind == ReduceKind::min) slot = x < slot ? x : slot;
        else slot = x > slot ? x : slot;
      }
    });
    return out;
  }

  NDArray out = NDArray::zeros(pshape, DType::float64);
  double* f0 = out.values<double>().data();
  double* f1 = f0 + m;
  double* f2 = f1 + m;
  switch (kind) {
    case ReduceKind::sum:
    case ReduceKind::mean:
    case ReduceKind::var:
    case ReduceKind::std: {
      double* sums = kind == ReduceKind::var || kind == ReduceKind::std ? f1 : f0;
      visit_rows<T>(block, out_strides, [&](const T* row, std::int64_t len, std::int64_t base, const auto&) {
        if (last_reduced) {
          double s = 0;
          for (std::int64_t j = 0; j < len; ++j) s += static_cast<double>(row[j]);
          sums[base] += s;
        } else {
          double* o = sums + base;
          for (std::int64_t j = 0; j < len; ++j) o[j] += static_cast<double>(row[j]);
        }
      });
      if (kind == ReduceKind::mean) std::fill_n(f1, m, static_cast<double>(per_output));
      if (kind == ReduceKind::var || kind == ReduceKind::std) {
        // Second pass around the block's own mean: stable, unlike sum of squares.
        std::fill_n(f0, m, static_cast<double>(per_output));
        for (std::int64_t i = 0; i < m; ++i) f1[i] = per_output ? f1[i] / static_cast<double>(per_output) : 0.0;
        visit_rows<T>(block, out_strides, [&](const T* row, std::int64_t len, std::int64_t base, const auto&) {
          if (last_reduced) {
            const double mu = f1[base];
            double s = 0;
            for (std::int64_t j = 0; j < len; ++j) {
              const double d = static_cast<double>(row[j]) - mu;
              s += d * d;
            }
            f2[base] += s;
          } else {
            for (std::int64_t j = 0; j < len; ++j) {
              const double d = static_cast<double>(row[j]) - f1[base + j];
              f2[base + j] += d * d;
            }
          }
        });
      }
      return out;
    }
    case ReduceKind::min:
    case ReduceKind::max: {
      const bool is_min = kind == ReduceKind::min;
      std::fill_n(f0, m, is_min ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity());
      visit_rows<T>(block, out_strides, [&](const T* row, std::int64_t len, std::int64_t base, const auto&) {
        for (std::int64_t j = 0; j < len; ++j) {
          double& slot = f0[base + (last_reduced ? 0 : j)];
          const auto x = static_cast<double>(row[j]);
          if (std::isnan(x) || (is_min ? x < slot : x > slot)) slot = x;
        }
      });
      return out;
    }
    case ReduceKind::argmin:
    case ReduceKind::argmax: {
      const bool is_min = kind == ReduceKind::argmin;
      std::fill_n(f0, m, std::numeric_limits<double>::quiet_NaN());
      std::fill_n(f1, m, -1.0);
      std::vector<std::int64_t> gstride(n, 1);
      for (std::size_t k = n; k-- > 1;) gstride[k - 1] = gstride[k] * spec.global_shape[k];
      const std::size_t axis = spec.flat_arg || spec.axes.empty() ? 0 : static_cast<std::size_t>(spec.axes[0]);
      visit_rows<T>(block, out_strides, [&](const T* row, std::int64_t len, std::int64_t base, const std::vector<std::int64_t>& index) {
        // The global index of row[0] and how it grows along the row.
        std::int64_t first = 0, step = 0;
        if (spec.flat_arg) {
          for (std::size_t k = 0; k + 1 < n; ++k) first += (index[k] + spec.block_offset[k]) * gstride[k];
          if (n) first += spec.block_offset[n - 1];
          step = 1;
        } else if (n) {
          if (axis == n - 1) {
            first = spec.block_offset[axis];
            step = 1;
          } else {
            first = index[axis] + spec.block_offset[axis];
          }
        }
        for (std::int64_t j = 0; j < len; ++j) {
          const std::int64_t slot = base + (last_reduced ? 0 : j);
          const auto x = static_cast<double>(row[j]);
          // The first NaN wins, as numpy's argmin/argmax.
          const bool take = f1[slot] < 0 || (!std::isnan(f0[slot]) && (std::isnan(x) || (is_min ? x < f0[slot] : x > f0[slot])));
          if (take) {
            f0[slot] = x;
            f1[slot] = static_cast<double>(first + j * step);
          }
        }
      });
      return out;
    }
  }
  throw std::invalid_argument("reduce: unknown reduction");
}
}  // namespace

bool is_arg(ReduceKind k) { return k == ReduceKind::argmin || k == ReduceKind::argmax; }

const char* reduce_name(ReduceKind k) {
  static const char* names[] = {"sum", "mean", "var", "std", "min", "max", "argmin", "argmax"};
  const auto i = static_cast<std::size_t>(k);
  return i < std::size(names) ? names[i] : "unknown reduction";
}

NDArray reduce_chunk(const NDArray& block, const ReduceSpec& spec) {
  const ReduceKind kind = checked_kind(static_cast<ReduceKind>(spec.kind));
  const std::size_t n = block.ndim();
  std::uint64_t seen = 0;  // n <= 32
  for (auto a : spec.axes) {
    if (a < 0 || static_cast<std::size_t>(a) >= n || (seen >> a & 1))
      throw std::invalid_argument("reduce: axes " + shape_text(spec.axes) + " are out of range or repeated for a block of shape " +
                                  block.shape_string());
    seen |= std::uint64_t{1} << a;
  }
  if (is_arg(kind)) {
    // Indices count along one axis, or over the flattened array (all axes).
    if (spec.flat_arg ? spec.axes.size() != n : spec.axes.size() != 1)
      throw std::invalid_argument(std::string("reduce: ") + reduce_name(kind) + " over axes " + shape_text(spec.axes) +
                                  (spec.flat_arg ? " is not over the flattened array" : " is not over one axis"));
    check_position(spec.block_offset, block.shape(), spec.global_shape, "reduce");
  }
  return with_dtype(block.dtype(), [&](auto tag) { return chunk_typed<decltype(tag)>(block, spec); });
}

NDArray reduce_combine(ReduceKind kind, std::span<const NDArray> partials) {
  checked_kind(kind);
  if (partials.empty()) throw std::invalid_argument("reduce: nothing to combine");
  const std::int64_t m = check_partial(kind, partials[0]);
  NDArray out = partials[0].clone();
  for (std::size_t p = 1; p < partials.size(); ++p) {
    const NDArray& in = partials[p];
    if (in.shape() != out.shape() || in.dtype() != out.dtype())
      throw std::invalid_argument("reduce: partial results " + in.shape_string() + " and " + out.shape_string() + " differ");
    if (out.dtype() == DType::int64) {
      auto* a = out.values<std::int64_t>().data();
      const auto* b = in.values<std::int64_t>().data();
      for (std::int64_t i = 0; i < m; ++i) {
        if (kind == ReduceKind::sum) a[i] = wrapping_add(a[i], b[i]);
        else if (kind == ReduceKind::min) a[i] = b[i] < a[i] ? b[i] : a[i];
        else a[i] = b[i] > a[i] ? b[i] : a[i];
      }
      continue;
    }
    double* a0 = out.values<double>().data();
    double* a1 = a0 + m;
    double* a2 = a1 + m;
    const double* b0 = in.values<double>().data();
    const double* b1 = b0 + m;
    const double* b2 = b1 + m;
    for (std::int64_t i = 0; i < m; ++i) {
      switch (kind) {
        case ReduceKind::sum: a0[i] += b0[i]; break;
        case ReduceKind::mean: a0[i] += b0[i]; a1[i] += b1[i]; break;
        case ReduceKind::var:
        case ReduceKind::std: {
          const double na = a0[i], nb = b0[i], total = na + nb;
          if (nb == 0) break;
          const double delta = b1[i] - a1[i];
          a1[i] += delta * nb / total;
          a2[i] += b2[i] + delta * delta * na * nb / total;
          a0[i] = total;
          break;
        }
        case ReduceKind::min: if (std::isnan(b0[i]) || b0[i] < a0[i]) a0[i] = b0[i]; break;
        case ReduceKind::max: if (std::isnan(b0[i]) || b0[i] > a0[i]) a0[i] = b0[i]; break;
        case ReduceKind::argmin:
        case ReduceKind::argmax: {
          if (b1[i] < 0) break;
          const bool a_nan = std::isnan(a0[i]), b_nan = std::isnan(b0[i]);
          const bool better = b_nan ? (!a_nan || b1[i] < a1[i])
                              : a_nan ? false
                                      : (kind == ReduceKind::argmin ? b0[i] < a0[i] : b0[i] > a0[i]) ||
                                            (b0[i] == a0[i] && b1[i] < a1[i]);
          if (a1[i] < 0 || better) {
            a0[i] = b0[i];
            a1[i] = b1[i];
          }
          break;
        }
      }
    }
  }
  return out;
}

NDArray reduce_finalize(ReduceKind kind, const NDArray& partial, int ddof, DType dtype, const std::vector<std::int64_t>& shape) {
  checked_kind(kind);
  dtype = checked_dtype(static_cast<std::uint8_t>(dtype), "reduce");
  const std::int64_t m = check_partial(kind, partial);
  if (checked_count(shape, dtype, "reduce") != m)
    throw std::invalid_argument("reduce: a partial of shape " + partial.shape_string() + " does not fit the result " +
                                shape_text(shape));
  NDArray out(shape, dtype);
  with_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* o = out.values<T>().data();
    if (partial.dtype() == DType::int64) {
      const auto* v = partial.values<std::int64_t>().data();
      for (std::int64_t i = 0; i < m; ++i) o[i] = static_cast<T>(v[i]);
      return;
    }
    const double* f0 = partial.values<double>().data();
    const double* f1 = f0 + m;
    const double* f2 = f1 + m;
    for (std::int64_t i = 0; i < m; ++i) {
      double v = 0;
      switch (kind) {
        case ReduceKind::sum:
        case ReduceKind::min:
        case ReduceKind::max: v = f0[i]; break;
        case ReduceKind::mean: v = f0[i] / f1[i]; break;
        // numpy divides by max(n - ddof, 0): inf or nan when ddof >= n.
        case ReduceKind::var: v = f2[i] / std::max(f0[i] - ddof, 0.0); break;
        case ReduceKind::std: v = std::sqrt(f2[i] / std::max(f0[i] - ddof, 0.0)); break;
        case ReduceKind::argmin:
        case ReduceKind::argmax:
          v = f1[i];
          if (v < 0)
            throw std::invalid_argument(std::string("attempt to get ") + reduce_name(kind) + " of an empty sequence");
          break;
      }
      if constexpr (std::is_same_v<T, std::int64_t>) {
        // Converting NaN or a value out of range would be undefined.
        if (!(v >= -0x1p63 && v < 0x1p63))
          throw std::invalid_argument("reduce: the " + std::string(reduce_name(kind)) + " " + std::to_string(v) +
                                      " does not fit int64");
      }
      o[i] = static_cast<T>(v);
    }
  });
  return out;
}

}  // namespace distrib::array::detail
