// Elementwise kernels: casts, unary and binary operations with broadcasting.
#include <cmath>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>

#include "array/dispatch.hpp"
#include "array/kernels.hpp"

namespace distrib::array::detail {

bool is_comparison(OpCode op) { return op >= OpCode::lt && op <= OpCode::ne; }

const char* op_name(OpCode op) {
  static const char* names[] = {"add", "sub", "mul", "truediv", "lt", "le", "gt", "ge",
                                "eq",  "ne",  "neg", "absolute", "sqrt", "exp", "log"};
  const auto i = static_cast<std::size_t>(op);
  return i < std::size(names) ? names[i] : "unknown operation";
}

namespace {
bool is_binary_op(OpCode op) { return op <= OpCode::ne; }
bool is_unary_op(OpCode op) { return op >= OpCode::neg && op <= OpCode::log; }

std::string op_text(OpCode op) {
  return std::string(op_name(op)) + " (code " + std::to_string(static_cast<int>(op)) + ")";
}
}  // namespace

DType promote(DType a, DType b) {
  auto rank = [](DType d) {
    switch (d) {
      case DType::boolean: return 0;
      case DType::int64: return 1;
      case DType::float32: return 2;
      case DType::float64: return 3;
    }
    return 3;
  };
  // numpy: int64 with float32 gives float64.
  if ((a == DType::int64 && b == DType::float32) || (a == DType::float32 && b == DType::int64)) return DType::float64;
  return rank(a) >= rank(b) ? a : b;
}

DType result_dtype(OpCode op, DType a, DType b) {
  if (is_comparison(op)) return DType::boolean;
  DType p = promote(a, b);
  switch (op) {
    case OpCode::div:
    case OpCode::sqrt:
    case OpCode::exp:
    case OpCode::log:
      return p == DType::float32 ? DType::float32 : DType::float64;
    case OpCode::add:
    case OpCode::mul:
      return p;  // on bools: logical or / and, as numpy
    case OpCode::sub:
    case OpCode::neg:
      if (p == DType::boolean)
        throw std::invalid_argument(std::string("distrib::array: ") + op_name(op) +
                                    " is not supported for booleans (as numpy); use != or astype");
      return p;
    default:
      return p;
  }
}

NDArray cast(const NDArray& a, DType to) {
  to = checked_dtype(static_cast<std::uint8_t>(to), "cast");
  if (a.dtype() == to) return a;
  NDArray out(a.shape(), to);
  with_dtype(a.dtype(), [&](auto from) {
    using F = decltype(from);
    with_dtype(to, [&](auto into) {
      using T = decltype(into);
      auto src = a.values<F>();
      auto dst = out.values<T>();
      if constexpr (std::is_floating_point_v<F> && std::is_same_v<T, std::int64_t>) {
        // NaN, infinities and values out of range become INT64_MIN, as numpy gives on x86
        // (converting them directly would be undefined). A select: still vectorised.
        for (std::size_t i = 0; i < src.size(); ++i) {
          const double x = static_cast<double>(src[i]);
          dst[i] = x >= -0x1p63 && x < 0x1p63 ? static_cast<std::int64_t>(x) : std::numeric_limits<std::int64_t>::min();
        }
      } else {
        for (std::size_t i = 0; i < src.size(); ++i) dst[i] = static_cast<T>(src[i]);
      }
    });
  });
  return out;
}

namespace {
// int64 arithmetic wraps around, as numpy's (signed overflow would be undefined).
template <class T>
constexpr bool wraps = std::is_same_v<T, std::int64_t>;

template <class T>
T add_of(T x, T y) {
  if constexpr (wraps<T>) return static_cast<T>(static_cast<std::uint64_t>(x) + static_cast<std::uint64_t>(y));
  else return static_cast<T>(x + y);
}
template <class T>
T sub_of(T x, T y) {
  if constexpr (wraps<T>) return static_cast<T>(static_cast<std::uint64_t>(x) - static_cast<std::uint64_t>(y));
  else return static_cast<T>(x - y);
}
template <class T>
T mul_of(T x, T y) {
  if constexpr (wraps<T>) return static_cast<T>(static_cast<std::uint64_t>(x) * static_cast<std::uint64_t>(y));
  else return static_cast<T>(x * y);
}
template <class T>
T neg_of(T x) {
  if constexpr (wraps<T>) return static_cast<T>(std::uint64_t{0} - static_cast<std::uint64_t>(x));
  else return static_cast<T>(-x);
}
template <class T>
T abs_of(T x) {
  if constexpr (std::is_floating_point_v<T>) return std::fabs(x);  // clears the sign of -0.0 and NaN, as numpy
  else return x < T{} ? neg_of(x) : x;
}

// One loop per operation, so the operation is chosen once per block.
template <class T, class Op>
void map_values(const T* src, T* dst, std::size_t n, Op op) {
  for (std::size_t i = 0; i < n; ++i) dst[i] = op(src[i]);
}

template <class T>
void unary_typed(OpCode op, const T* src, T* dst, std::size_t n) {
  switch (op) {
    case OpCode::neg: return map_values(src, dst, n, [](T x) { return neg_of(x); });
    case OpCode::abs: return map_values(src, dst, n, [](T x) { return abs_of(x); });
    case OpCode::sqrt: return map_values(src, dst, n, [](T x) { return static_cast<T>(std::sqrt(x)); });
    case OpCode::exp: return map_values(src, dst, n, [](T x) { return static_cast<T>(std::exp(x)); });
    case OpCode::log: return map_values(src, dst, n, [](T x) { return static_cast<T>(std::log(x)); });
    default: throw std::invalid_argument("not a unary operation: " + op_text(op));
  }
}

// The loop of one binary operation, with the operation fixed at compile time.
template <class T, class R, class Op>
void binary_loop(const T* a, const T* b, R* out, const std::vector<std::int64_t>& shape,
                 const std::vector<std::int64_t>& a_strides, const std::vector<std::int64_t>& b_strides, Op op) {
  const std::size_t n = shape.size();
  if (n == 0) {
    out[0] = op(a[0], b[0]);
    return;
  }
  const std::int64_t inner = shape[n - 1];
  const std::int64_t as = a_strides[n - 1], bs = b_strides[n - 1];
  std::vector<std::int64_t> index(n - 1, 0);
  std::int64_t outer = 1;
  for (std::size_t k = 0; k + 1 < n; ++k) outer *= shape[k];
  if (outer == 0 || inner == 0) return;
  for (std::int64_t o = 0; o < outer; ++o) {
    std::int64_t ao = 0, bo = 0;
    for (std::size_t k = 0; k + 1 < n; ++k) {
      ao += index[k] * a_strides[k];
      bo += index[k] * b_strides[k];
    }
    const T* pa = a + ao;
    const T* pb = b + bo;
    R* po = out + o * inner;
    if (as == 1 && bs == 1)
      for (std::int64_t j = 0; j < inner; ++j) po[j] = op(pa[j], pb[j]);
    else if (as == 1)
      for (std::int64_t j = 0; j < inner; ++j) po[j] = op(pa[j], pb[0]);
    else if (bs == 1)
      for (std::int64_t j = 0; j < inner; ++j) po[j] = op(pa[0], pb[j]);
    else
      for (std::int64_t j = 0; j < inner; ++j) po[j] = op(pa[0], pb[0]);
    for (std::size_t k = n - 1; k-- > 0;) {
      if (++index[k] < shape[k]) break;
      index[k] = 0;
    }
  }
}

template <class T, class R>
void binary_typed(OpCode op, const T* a, const T* b, R* out, const std::vector<std::int64_t>& shape,
                  const std::vector<std::int64_t>& as, const std::vector<std::int64_t>& bs) {
  switch (op) {
    case OpCode::add: return binary_loop(a, b, out, shape, as, bs, [](T x, T y) { return static_cast<R>(add_of(x, y)); });
    case OpCode::sub: return binary_loop(a, b, out, shape, as, bs, [](T x, T y) { return static_cast<R>(sub_of(x, y)); });
    case OpCode::mul: return binary_loop(a, b, out, shape, as, bs, [](T x, T y) { return static_cast<R>(mul_of(x, y)); });
    case OpCode::div: return binary_loop(a, b, out, shape, as, bs, [](T x, T y) { return static_cast<R>(x / y); });
    case OpCode::lt: return binary_loop(a, b, out, shape, as, bs, [](T x, T y) { return static_cast<R>(x < y); });
    case OpCode::le: return binary_loop(a, b, out, shape, as, bs, [](T x, T y) { return static_cast<R>(x <= y); });
    case OpCode::gt: return binary_loop(a, b, out, shape, as, bs, [](T x, T y) { return static_cast<R>(x > y); });
    case OpCode::ge: return binary_loop(a, b, out, shape, as, bs, [](T x, T y) { return static_cast<R>(x >= y); });
    case OpCode::eq: return binary_loop(a, b, out, shape, as, bs, [](T x, T y) { return static_cast<R>(x == y); });
    case OpCode::ne: return binary_loop(a, b, out, shape, as, bs, [](T x, T y) { return static_cast<R>(x != y); });
    default: throw std::invalid_argument("not a binary operation: " + op_text(op));
  }
}

// Strides in elements, 0 where the operand stretches along an axis.
std::vector<std::int64_t> broadcast_strides(const NDArray& a, const std::vector<std::int64_t>& out_shape) {
  auto strides = a.strides();
  for (std::size_t k = 0; k < out_shape.size(); ++k)
    if (a.shape()[k] == 1 && out_shape[k] != 1) strides[k] = 0;
  return strides;
}
}  // namespace

NDArray unary(OpCode op, const NDArray& a) {
  if (!is_unary_op(op)) throw std::invalid_argument("unary kernel: not a unary operation: " + op_text(op));
  DType rd = result_dtype(op, a.dtype(), a.dtype());
  NDArray in = cast(a, rd);
  NDArray out(a.shape(), rd);
  with_dtype(rd, [&](auto tag) {
    using T = decltype(tag);
    auto src = in.values<T>();
    auto dst = out.values<T>();
    if constexpr (std::is_same_v<T, bool>) {
      // Only abs reaches here (neg throws, the others give floats): abs of a bool is itself.
      std::copy(src.begin(), src.end(), dst.begin());
    } else {
      unary_typed<T>(op, src.data(), dst.data(), src.size());
    }
  });
  return out;
}

NDArray binary(OpCode op, const NDArray& a, const NDArray& b, const std::vector<std::int64_t>& out_shape) {
  if (!is_binary_op(op)) throw std::invalid_argument("binary kernel: not a binary operation: " + op_text(op));
  if (a.ndim() != out_shape.size() || b.ndim() != out_shape.size())
    throw std::invalid_argument("binary kernel: operands " + a.shape_string() + " and " + b.shape_string() +
                                " do not have the dimensions of the result " + shape_text(out_shape));
  // Each operand's extent is the result's or 1 (it stretches), and the result's extent is
  // one of the operands': nothing is read outside an operand.
  for (std::size_t k = 0; k < out_shape.size(); ++k) {
    const std::int64_t ea = a.shape()[k], eb = b.shape()[k], eo = out_shape[k];
    if ((ea != eo && ea != 1) || (eb != eo && eb != 1) || (eo != ea && eo != eb))
      throw std::invalid_argument("binary kernel: operands " + a.shape_string() + " and " + b.shape_string() +
                                  " do not broadcast to " + shape_text(out_shape));
  }
  DType common = promote(a.dtype(), b.dtype());
  if (op == OpCode::div) common = result_dtype(op, a.dtype(), b.dtype());
  DType rd = result_dtype(op, a.dtype(), b.dtype());
  checked_count(out_shape, rd, "binary kernel");  // (n, 1) with (1, n) makes n * n elements
  NDArray ca = cast(a, common), cb = cast(b, common);
  NDArray out(out_shape, rd);
  auto as = broadcast_strides(ca, out_shape), bs = broadcast_strides(cb, out_shape);
  with_dtype(common, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bool>) {
      binary_typed<bool, bool>(op, ca.values<bool>().data(), cb.values<bool>().data(), out.values<bool>().data(),
                               out_shape, as, bs);
    } else if (is_comparison(op)) {
      binary_typed<T, bool>(op, ca.values<T>().data(), cb.values<T>().data(), out.values<bool>().data(), out_shape,
                            as, bs);
    } else {
      binary_typed<T, T>(op, ca.values<T>().data(), cb.values<T>().data(), out.values<T>().data(), out_shape, as, bs);
    }
  });
  return out;
}

DType scalar_dtype(DType array, double s) {
  if (std::floor(s) == s && array != DType::float32 && array != DType::float64) return DType::int64;
  return array == DType::float32 ? DType::float32 : DType::float64;
}

NDArray binary_scalar(OpCode op, const NDArray& a, double s, bool scalar_left) {
  if (!is_binary_op(op)) throw std::invalid_argument("scalar kernel: not a binary operation: " + op_text(op));
  const DType sd = scalar_dtype(a.dtype(), s);
  // A whole number that int64 cannot hold (or an infinity) is out of bounds, as a Python
  // int too large for an int64 array is in numpy; converting it would be undefined.
  if (sd == DType::int64 && !(s >= -0x1p63 && s < 0x1p63))
    throw std::invalid_argument("scalar kernel: " + std::to_string(s) + " is out of bounds for " + to_string(a.dtype()) +
                                " (" + op_name(op) + ")");
  NDArray scalar = NDArray::full(std::vector<std::int64_t>(a.ndim(), 1), s, sd);
  return scalar_left ? binary(op, scalar, a, a.shape()) : binary(op, a, scalar, a.shape());
}

}  // namespace distrib::array::detail
