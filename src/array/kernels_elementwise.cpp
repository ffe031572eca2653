// Elementwise kernels: casts, unary and binary operations with broadcasting.
#include <cmath>
#include <stdexcept>

#include "array/dispatch.hpp"
#include "array/kernels.hpp"

namespace distrib::array::detail {

bool is_comparison(OpCode op) { return op >= OpCode::lt && op <= OpCode::ne; }

const char* op_name(OpCode op) {
  static const char* names[] = {"add", "sub", "mul", "truediv", "lt", "le", "gt", "ge",
                                "eq",  "ne",  "neg", "absolute", "sqrt", "exp", "log"};
  return names[static_cast<int>(op)];
}

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
  if (a.dtype() == to) return a;
  NDArray out(a.shape(), to);
  with_dtype(a.dtype(), [&](auto from) {
    using F = decltype(from);
    with_dtype(to, [&](auto into) {
      using T = decltype(into);
      auto src = a.values<F>();
      auto dst = out.values<T>();
      for (std::size_t i = 0; i < src.size(); ++i) dst[i] = static_cast<T>(src[i]);
    });
  });
  return out;
}

namespace {
template <class T>
T apply_unary(OpCode op, T x) {
  switch (op) {
    case OpCode::neg: return static_cast<T>(-x);
    case OpCode::abs: return x < T{} ? static_cast<T>(-x) : x;
    case OpCode::sqrt: return static_cast<T>(std::sqrt(x));
    case OpCode::exp: return static_cast<T>(std::exp(x));
    case OpCode::log: return static_cast<T>(std::log(x));
    default: throw std::invalid_argument(std::string("not a unary operation: ") + op_name(op));
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
    case OpCode::add: return binary_loop(a, b, out, shape, as, bs, [](T x, T y) { return static_cast<R>(x + y); });
    case OpCode::sub: return binary_loop(a, b, out, shape, as, bs, [](T x, T y) { return static_cast<R>(x - y); });
    case OpCode::mul: return binary_loop(a, b, out, shape, as, bs, [](T x, T y) { return static_cast<R>(x * y); });
    case OpCode::div: return binary_loop(a, b, out, shape, as, bs, [](T x, T y) { return static_cast<R>(x / y); });
    case OpCode::lt: return binary_loop(a, b, out, shape, as, bs, [](T x, T y) { return static_cast<R>(x < y); });
    case OpCode::le: return binary_loop(a, b, out, shape, as, bs, [](T x, T y) { return static_cast<R>(x <= y); });
    case OpCode::gt: return binary_loop(a, b, out, shape, as, bs, [](T x, T y) { return static_cast<R>(x > y); });
    case OpCode::ge: return binary_loop(a, b, out, shape, as, bs, [](T x, T y) { return static_cast<R>(x >= y); });
    case OpCode::eq: return binary_loop(a, b, out, shape, as, bs, [](T x, T y) { return static_cast<R>(x == y); });
    case OpCode::ne: return binary_loop(a, b, out, shape, as, bs, [](T x, T y) { return static_cast<R>(x != y); });
    default: throw std::invalid_argument(std::string("not a binary operation: ") + op_name(op));
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
  DType rd = result_dtype(op, a.dtype(), a.dtype());
  NDArray in = cast(a, rd);
  NDArray out(a.shape(), rd);
  with_dtype(rd, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bool>) {
      auto src = in.values<bool>();
      auto dst = out.values<bool>();
      for (std::size_t i = 0; i < src.size(); ++i) dst[i] = src[i];  // abs of bool
    } else {
      auto src = in.values<T>();
      auto dst = out.values<T>();
      switch (op) {
        case OpCode::neg: for (std::size_t i = 0; i < src.size(); ++i) dst[i] = static_cast<T>(-src[i]); break;
        default: for (std::size_t i = 0; i < src.size(); ++i) dst[i] = apply_unary(op, src[i]); break;
      }
    }
  });
  return out;
}

NDArray binary(OpCode op, const NDArray& a, const NDArray& b, const std::vector<std::int64_t>& out_shape) {
  if (a.ndim() != out_shape.size() || b.ndim() != out_shape.size())
    throw std::invalid_argument("binary kernel: operands do not have the output's dimensions");
  DType common = promote(a.dtype(), b.dtype());
  if (op == OpCode::div) common = result_dtype(op, a.dtype(), b.dtype());
  DType rd = result_dtype(op, a.dtype(), b.dtype());
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

NDArray binary_scalar(OpCode op, const NDArray& a, double s, bool scalar_left) {
  // A Python float scalar does not widen float32 (numpy's value-based casting); integers
  // and bools become float64 only if the scalar is not a whole number.
  DType sd = std::floor(s) == s && a.dtype() != DType::float32 && a.dtype() != DType::float64 ? DType::int64
             : a.dtype() == DType::float32                                                    ? DType::float32
                                                                                              : DType::float64;
  if (a.dtype() == DType::boolean && sd == DType::int64 && is_comparison(op)) sd = DType::int64;
  NDArray scalar = NDArray::full(std::vector<std::int64_t>(a.ndim(), 1), s, sd);
  return scalar_left ? binary(op, scalar, a, a.shape()) : binary(op, a, scalar, a.shape());
}

}  // namespace distrib::array::detail
