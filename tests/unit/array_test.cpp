// distrib::array (lazy chunked arrays, as dask.array) against naive loops over
// std::vector<double>: creation, random numbers, elementwise arithmetic with broadcasting
// and type promotion, transposes, reshapes, slices, rechunking, astype, reductions over
// every axis (trees with split_every, keepdims), arg-reductions, dot, the seed expression,
// fusion and culling (graph sizes), and bad input. Everything runs through
// Array::compute(), the local thread pool: no sockets, no processes.
//
// Shapes and chunkings are odd on purpose (203 x 197 in 20 x 30 blocks, last blocks of 3
// and 17), so every operation meets partial blocks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <distrib/distrib.hpp>
#include <functional>
#include <iomanip>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>
#include "../ndarray_values.hpp"
#include "array/program.hpp"

namespace da = distrib::array;

namespace distrib {
// gtest prints dtypes by name (found by ADL, so in namespace distrib).
static void PrintTo(DType d, std::ostream* os) { *os << to_string(d); }

namespace {

using da::Shape;
using da::Slice;

// ---------------------------------------------------------------------------------------
// Naive reference arrays.

std::int64_t product(const Shape& s) {
  return std::accumulate(s.begin(), s.end(), std::int64_t{1}, std::multiplies<>());
}

Shape c_strides(const Shape& s) {
  Shape st(s.size(), 1);
  for (std::size_t i = s.size(); i-- > 1;) st[i - 1] = st[i] * s[i];
  return st;
}

std::string shape_text(const Shape& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + ")";
}

/// A naive array: a shape and its elements in C order, as doubles.
struct Ref {
  Shape shape;
  std::vector<double> v;
};

using test_support::as_doubles;

Ref ref_of(const NDArray& a) { return {a.shape(), as_doubles(a)}; }

NDArray nd_f64(const Ref& r) { return NDArray::from_values<double>(r.v, r.shape); }
NDArray nd_i64(const Ref& r) {
  std::vector<std::int64_t> v(r.v.size());
  std::transform(r.v.begin(), r.v.end(), v.begin(), [](double x) { return static_cast<std::int64_t>(x); });
  return NDArray::from_values<std::int64_t>(v, r.shape);
}

/// Uniform doubles in [lo, hi) from a local generator (independent of distrib's Philox).
Ref local_uniform(const Shape& shape, std::uint64_t seed, double lo = 0, double hi = 1) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  Ref r{shape, std::vector<double>(static_cast<std::size_t>(product(shape)))};
  for (auto& x : r.v) x = dist(gen);
  return r;
}

/// Integers lo..hi (inclusive) stored as doubles: many ties, exact arithmetic.
Ref local_ints(const Shape& shape, std::uint64_t seed, int lo, int hi) {
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  Ref r{shape, std::vector<double>(static_cast<std::size_t>(product(shape)))};
  for (auto& x : r.v) x = dist(gen);
  return r;
}

/// Calls fn(index, flat) for every multi-index of `shape` in C order.
template <class F>
void for_each_index(const Shape& shape, F&& fn) {
  const std::int64_t n = product(shape);
  Shape idx(shape.size(), 0);
  for (std::int64_t flat = 0; flat < n; ++flat) {
    fn(idx, flat);
    for (std::size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

template <class F>
Ref map(const Ref& a, F f) {
  Ref r{a.shape, std::vector<double>(a.v.size())};
  std::transform(a.v.begin(), a.v.end(), r.v.begin(), f);
  return r;
}

/// numpy broadcasting: right-aligned shapes, extent-1 axes stretch.
template <class F>
Ref broadcast(const Ref& a, const Ref& b, F f) {
  const std::size_t nd = std::max(a.shape.size(), b.shape.size());
  auto pad = [nd](const Shape& s) {
    Shape p(nd - s.size(), 1);
    p.insert(p.end(), s.begin(), s.end());
    return p;
  };
  Shape pa = pad(a.shape), pb = pad(b.shape), out(nd);
  for (std::size_t d = 0; d < nd; ++d) out[d] = pa[d] == 1 ? pb[d] : pa[d];
  Shape sa = c_strides(pa), sb = c_strides(pb);
  for (std::size_t d = 0; d < nd; ++d) {
    if (pa[d] == 1) sa[d] = 0;
    if (pb[d] == 1) sb[d] = 0;
  }
  Ref r{out, std::vector<double>(static_cast<std::size_t>(product(out)))};
  for_each_index(out, [&](const Shape& idx, std::int64_t flat) {
    std::int64_t ia = 0, ib = 0;
    for (std::size_t d = 0; d < nd; ++d) {
      ia += idx[d] * sa[d];
      ib += idx[d] * sb[d];
    }
    r.v[flat] = f(a.v[ia], b.v[ib]);
  });
  return r;
}

Ref transpose(const Ref& a, std::vector<int> perm = {}) {
  const std::size_t nd = a.shape.size();
  if (perm.empty())
    for (std::size_t i = 0; i < nd; ++i) perm.push_back(static_cast<int>(nd - 1 - i));
  Shape out(nd);
  for (std::size_t i = 0; i < nd; ++i) out[i] = a.shape[perm[i]];
  Shape in_st = c_strides(a.shape);
  Ref r{out, std::vector<double>(a.v.size())};
  for_each_index(out, [&](const Shape& idx, std::int64_t flat) {
    std::int64_t in = 0;
    for (std::size_t i = 0; i < nd; ++i) in += idx[i] * in_st[perm[i]];
    r.v[flat] = a.v[in];
  });
  return r;
}

/// Python's slice.indices(n): first index, step, count.
struct Range {
  std::int64_t start, step, count;
};
Range adjust(std::int64_t n, const Slice& s) {
  const std::int64_t step = s.step;
  const std::int64_t lower = step > 0 ? 0 : -1, upper = step > 0 ? n : n - 1;
  auto bound = [&](std::optional<std::int64_t> v, std::int64_t dflt) {
    if (!v) return dflt;
    std::int64_t x = *v;
    if (x < 0) {
      x += n;
      if (x < lower) x = lower;
    } else if (x > upper) {
      x = upper;
    }
    return x;
  };
  const std::int64_t start = bound(s.start, step > 0 ? lower : upper);
  const std::int64_t stop = bound(s.stop, step > 0 ? upper : lower);
  std::int64_t count = 0;
  if (step > 0 && stop > start) count = (stop - start - 1) / step + 1;
  if (step < 0 && start > stop) count = (start - stop - 1) / (-step) + 1;
  return {start, step, count};
}

Ref slice(const Ref& a, std::vector<Slice> ranges) {
  const std::size_t nd = a.shape.size();
  ranges.resize(nd, Slice{});
  std::vector<Range> rs;
  Shape out;
  for (std::size_t d = 0; d < nd; ++d) {
    rs.push_back(adjust(a.shape[d], ranges[d]));
    out.push_back(rs.back().count);
  }
  Shape st = c_strides(a.shape);
  Ref r{out, std::vector<double>(static_cast<std::size_t>(product(out)))};
  for_each_index(out, [&](const Shape& idx, std::int64_t flat) {
    std::int64_t in = 0;
    for (std::size_t d = 0; d < nd; ++d) in += (rs[d].start + idx[d] * rs[d].step) * st[d];
    r.v[flat] = a.v[in];
  });
  return r;
}

enum class Op { sum, mean, var, std, min, max };

const char* op_name(Op op) {
  switch (op) {
    case Op::sum: return "sum";
    case Op::mean: return "mean";
    case Op::var: return "var";
    case Op::std: return "std";
    case Op::min: return "min";
    case Op::max: return "max";
  }
  return "?";
}

std::vector<int> normalized_axes(std::vector<int> axes, std::size_t nd) {
  if (axes.empty())
    for (std::size_t d = 0; d < nd; ++d) axes.push_back(static_cast<int>(d));
  for (auto& a : axes)
    if (a < 0) a += static_cast<int>(nd);
  return axes;
}

/// numpy's reductions; `axes` empty = all. var/std are two-pass, in long double.
Ref reduce(const Ref& a, std::vector<int> axes, Op op, bool keepdims = false, int ddof = 0) {
  const std::size_t nd = a.shape.size();
  axes = normalized_axes(axes, nd);
  std::vector<bool> reduced(nd, false);
  for (int ax : axes) reduced[ax] = true;
  Shape kept(nd), squeezed;
  for (std::size_t d = 0; d < nd; ++d) {
    kept[d] = reduced[d] ? 1 : a.shape[d];
    if (!reduced[d]) squeezed.push_back(a.shape[d]);
  }
  Shape ost = c_strides(kept);
  const auto nout = static_cast<std::size_t>(product(kept));
  std::vector<long double> sum(nout, 0), m2(nout, 0);
  std::vector<double> mn(nout, std::numeric_limits<double>::infinity()),
      mx(nout, -std::numeric_limits<double>::infinity());
  std::vector<std::int64_t> count(nout, 0);
  auto out_of = [&](const Shape& idx) {
    std::int64_t o = 0;
    for (std::size_t d = 0; d < nd; ++d)
      if (!reduced[d]) o += idx[d] * ost[d];
    return o;
  };
  for_each_index(a.shape, [&](const Shape& idx, std::int64_t flat) {
    const auto o = out_of(idx);
    const double x = a.v[flat];
    sum[o] += x;
    mn[o] = std::min(mn[o], x);
    mx[o] = std::max(mx[o], x);
    ++count[o];
  });
  if (op == Op::var || op == Op::std) {
    for_each_index(a.shape, [&](const Shape& idx, std::int64_t flat) {
      const auto o = out_of(idx);
      const long double dev = a.v[flat] - sum[o] / count[o];
      m2[o] += dev * dev;
    });
  }
  Ref r{keepdims ? kept : squeezed, std::vector<double>(nout)};
  for (std::size_t o = 0; o < nout; ++o) {
    switch (op) {
      case Op::sum: r.v[o] = static_cast<double>(sum[o]); break;
      case Op::mean: r.v[o] = static_cast<double>(sum[o] / count[o]); break;
      case Op::var: r.v[o] = static_cast<double>(m2[o] / (count[o] - ddof)); break;
      case Op::std: r.v[o] = static_cast<double>(std::sqrt(m2[o] / (count[o] - ddof))); break;
      case Op::min: r.v[o] = mn[o]; break;
      case Op::max: r.v[o] = mx[o]; break;
    }
  }
  return r;
}

/// numpy's argmin/argmax: the first occurrence of the extreme; flattened without an axis.
Ref arg_reduce(const Ref& a, std::optional<int> axis, bool is_max, bool keepdims = false) {
  const std::size_t nd = a.shape.size();
  auto better = [&](double x, double best) { return is_max ? x > best : x < best; };
  if (!axis) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < a.v.size(); ++i)
      if (better(a.v[i], a.v[best])) best = i;
    return {keepdims ? Shape(nd, 1) : Shape{}, {static_cast<double>(best)}};
  }
  const int ax = *axis < 0 ? *axis + static_cast<int>(nd) : *axis;
  Shape kept = a.shape, squeezed;
  kept[ax] = 1;
  for (std::size_t d = 0; d < nd; ++d)
    if (static_cast<int>(d) != ax) squeezed.push_back(a.shape[d]);
  Shape ost = c_strides(kept);
  const auto nout = static_cast<std::size_t>(product(kept));
  std::vector<double> best(nout), where(nout, -1);
  for_each_index(a.shape, [&](const Shape& idx, std::int64_t flat) {
    std::int64_t o = 0;
    for (std::size_t d = 0; d < nd; ++d)
      if (static_cast<int>(d) != ax) o += idx[d] * ost[d];
    if (where[o] < 0 || better(a.v[flat], best[o])) {
      best[o] = a.v[flat];
      where[o] = static_cast<double>(idx[ax]);
    }
  });
  return {keepdims ? kept : squeezed, where};
}

Ref matmul(const Ref& a, const Ref& b) {
  const std::int64_t n = a.shape[0], k = a.shape[1], m = b.shape[1];
  Ref r{{n, m}, std::vector<double>(static_cast<std::size_t>(n * m))};
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < m; ++j) {
      long double s = 0;
      for (std::int64_t l = 0; l < k; ++l) s += static_cast<long double>(a.v[i * k + l]) * b.v[l * m + j];
      r.v[i * m + j] = static_cast<double>(s);
    }
  return r;
}

std::vector<std::int64_t> regular(std::int64_t n, std::int64_t block) {
  std::vector<std::int64_t> out(static_cast<std::size_t>(n / block), block);
  if (n % block) out.push_back(n % block);
  return out;
}

// ---------------------------------------------------------------------------------------
// Comparisons.

std::string index_text(std::int64_t flat, const Shape& shape) {
  Shape idx(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] ? flat % shape[d] : 0;
    flat = shape[d] ? flat / shape[d] : 0;
  }
  return shape_text(idx);
}

/// Elementwise |got - want| <= rtol * (|want| + 1); rtol = 0 asks for exact equality.
::testing::AssertionResult values_match(const NDArray& got, const Ref& want, double rtol) {
  if (got.shape() != want.shape)
    return ::testing::AssertionFailure() << "shape " << got.shape_string() << ", expected " << shape_text(want.shape);
  const auto g = as_doubles(got);
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    const double w = want.v[i], x = g[i];
    const bool ok = x == w || (std::isnan(w) && std::isnan(x)) || std::abs(x - w) <= rtol * (std::abs(w) + 1.0);
    if (!ok && bad++ == 0) first = i;
  }
  if (bad) {
    std::ostringstream os;
    os << std::setprecision(17) << bad << " of " << g.size() << " elements differ; first at "
       << index_text(static_cast<std::int64_t>(first), want.shape) << ": got " << g[first] << ", expected "
       << want.v[first];
    return ::testing::AssertionFailure() << os.str();
  }
  return ::testing::AssertionSuccess();
}

/// Computes `a` and checks its metadata (shape, dtype, chunks) against the result and the
/// values against `want`.
::testing::AssertionResult computes_to(const da::Array& a, const Ref& want, double rtol = 0) {
  if (a.shape() != want.shape)
    return ::testing::AssertionFailure() << "lazy shape " << shape_text(a.shape()) << ", expected "
                                         << shape_text(want.shape);
  const auto& chunks = a.chunks();
  if (chunks.size() != a.ndim())
    return ::testing::AssertionFailure() << chunks.size() << " chunk lists for " << a.ndim() << " axes";
  for (std::size_t d = 0; d < chunks.size(); ++d) {
    std::int64_t total = 0;
    for (auto c : chunks[d]) {
      if (c < 0 || (c == 0 && a.shape()[d] != 0))
        return ::testing::AssertionFailure() << "bad block size " << c << " along axis " << d;
      total += c;
    }
    if (total != a.shape()[d])
      return ::testing::AssertionFailure() << "chunks along axis " << d << " add up to " << total << ", not "
                                           << a.shape()[d];
  }
  NDArray got = a.compute();
  if (got.dtype() != a.dtype())
    return ::testing::AssertionFailure() << "computed dtype " << to_string(got.dtype()) << ", lazy dtype "
                                         << to_string(a.dtype());
  return values_match(got, want, rtol);
}

/// The message of the std::invalid_argument that fn throws ("" and a failure otherwise).
template <class F>
std::string invalid_argument_from(F&& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw something other than std::invalid_argument: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

/// Whether `message` names the extents (2, 3) as "2, 3", "2,3", "2x3" or "2 x 3".
bool names_extents(const std::string& message, const std::vector<std::int64_t>& extents) {
  for (const char* sep : {", ", ",", "x", " x "}) {
    std::string text;
    for (std::size_t i = 0; i < extents.size(); ++i) text += (i ? sep : "") + std::to_string(extents[i]);
    if (message.find(text) != std::string::npos) return true;
  }
  return false;
}

bool contains_ci(std::string haystack, std::string needle) {
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
  };
  return lower(std::move(haystack)).find(lower(std::move(needle))) != std::string::npos;
}

// The common operands: 203 x 197 in 20 x 30 blocks (last blocks 3 and 17).
const Shape kShape{203, 197};
const da::ChunkSpec kChunks{20, 30};

// ---------------------------------------------------------------------------------------
// Creation.

TEST(ArrayCreation, ZerosOnesFullShapesChunksAndValues) {
  auto z = da::zeros(kShape, kChunks);
  EXPECT_TRUE(z.valid());
  EXPECT_EQ(z.shape(), kShape);
  EXPECT_EQ(z.ndim(), 2u);
  EXPECT_EQ(z.size(), 203 * 197);
  EXPECT_EQ(z.dtype(), DType::float64);
  EXPECT_EQ(z.nbytes(), 203 * 197 * 8);
  EXPECT_EQ(z.chunks(), (da::Chunks{regular(203, 20), regular(197, 30)}));
  EXPECT_EQ(z.numblocks(), (Shape{11, 7}));
  EXPECT_EQ(z.npartitions(), 77);
  EXPECT_TRUE(computes_to(z, Ref{kShape, std::vector<double>(203 * 197, 0.0)}));
  EXPECT_TRUE(computes_to(da::ones(kShape, kChunks), Ref{kShape, std::vector<double>(203 * 197, 1.0)}));
  EXPECT_TRUE(computes_to(da::full(kShape, 2.5, kChunks), Ref{kShape, std::vector<double>(203 * 197, 2.5)}));

  auto i = da::full({13, 7, 5}, 7, {4, 3, 2}, DType::int64);
  EXPECT_EQ(i.dtype(), DType::int64);
  EXPECT_EQ(i.chunks(), (da::Chunks{{4, 4, 4, 1}, {3, 3, 1}, {2, 2, 1}}));
  EXPECT_TRUE(computes_to(i, Ref{{13, 7, 5}, std::vector<double>(13 * 7 * 5, 7.0)}));
  auto b = da::ones({9, 1}, {4, 1}, DType::boolean);
  EXPECT_EQ(b.dtype(), DType::boolean);
  EXPECT_TRUE(computes_to(b, Ref{{9, 1}, std::vector<double>(9, 1.0)}));
  auto f = da::zeros({10}, {3}, DType::float32);
  EXPECT_EQ(f.dtype(), DType::float32);
  EXPECT_EQ(f.nbytes(), 40);
  EXPECT_TRUE(computes_to(f, Ref{{10}, std::vector<double>(10, 0.0)}));
}

TEST(ArrayCreation, ChunkSpecForms) {
  // -1: one block for the whole axis.
  EXPECT_EQ(da::zeros(kShape, {50, -1}).chunks(), (da::Chunks{{50, 50, 50, 50, 3}, {197}}));
  // Explicit block sizes.
  auto e = da::zeros(kShape, da::ChunkSpec(da::Chunks{{100, 103}, {1, 196}}));
  EXPECT_EQ(e.chunks(), (da::Chunks{{100, 103}, {1, 196}}));
  EXPECT_TRUE(computes_to(e + 1.0, Ref{kShape, std::vector<double>(203 * 197, 1.0)}));
  // A block shape larger than the array: one block.
  EXPECT_EQ(da::zeros(kShape, {1000, 1000}).chunks(), (da::Chunks{{203}, {197}}));
  // resolve() directly.
  EXPECT_EQ((da::ChunkSpec{20, 30}.resolve(kShape, 8)), (da::Chunks{regular(203, 20), regular(197, 30)}));
  // Auto: a small array is one block.
  EXPECT_EQ(da::zeros(kShape).chunks(), (da::Chunks{{203}, {197}}));
  // Auto on 800 MB: blocks of at most 128 MiB, leading axis split first.
  auto big = da::zeros({10000, 10000});
  ASSERT_EQ(big.chunks().size(), 2u);
  EXPECT_EQ(big.chunks()[1], (std::vector<std::int64_t>{10000}));
  EXPECT_GT(big.chunks()[0].size(), 1u);
  for (auto rows : big.chunks()[0]) EXPECT_LE(rows * 10000 * 8, 128LL << 20);
}

TEST(ArrayCreation, ArangeStopForm) {
  auto a = da::arange(std::int64_t{1003}, da::ChunkSpec{100});
  EXPECT_EQ(a.dtype(), DType::int64);
  EXPECT_EQ(a.shape(), (Shape{1003}));
  EXPECT_EQ(a.chunks(), (da::Chunks{regular(1003, 100)}));
  Ref want{{1003}, {}};
  for (int i = 0; i < 1003; ++i) want.v.push_back(i);
  EXPECT_TRUE(computes_to(a, want));
  EXPECT_TRUE(computes_to(da::arange(std::int64_t{5}), Ref{{5}, {0, 1, 2, 3, 4}}));
}

TEST(ArrayCreation, ArangeStartStopStep) {
  auto a = da::arange(0.5, 10.0, 0.25, {7});
  EXPECT_EQ(a.dtype(), DType::float64);
  Ref want{{38}, {}};
  for (int i = 0; i < 38; ++i) want.v.push_back(0.5 + i * 0.25);
  EXPECT_TRUE(computes_to(a, want));
  EXPECT_EQ(a.chunks(), (da::Chunks{regular(38, 7)}));

  // Integral start, stop and step give int64.
  auto b = da::arange(2, 50, 3, {5});
  EXPECT_EQ(b.dtype(), DType::int64);
  Ref wb{{16}, {}};
  for (int v = 2; v < 50; v += 3) wb.v.push_back(v);
  EXPECT_TRUE(computes_to(b, wb));

  // numpy's length: ceil((stop - start) / step); values start + i * step.
  auto c = da::arange(0.0, 1.0, 0.1, {3});
  Ref wc{{10}, {}};
  for (int i = 0; i < 10; ++i) wc.v.push_back(i * 0.1);
  EXPECT_TRUE(computes_to(c, wc, 1e-12));
  auto d = da::arange(-1.5, 2.0, 1.0, {2});  // -1.5 -0.5 0.5 1.5
  EXPECT_EQ(d.dtype(), DType::float64);
  EXPECT_TRUE(computes_to(d, Ref{{4}, {-1.5, -0.5, 0.5, 1.5}}));
}

TEST(ArrayCreation, ArangeNegativeStep) {
  auto a = da::arange(10, 0, -1.5, {3});  // 10 8.5 7 5.5 4 2.5 1
  EXPECT_EQ(a.dtype(), DType::float64);
  EXPECT_TRUE(computes_to(a, Ref{{7}, {10, 8.5, 7, 5.5, 4, 2.5, 1}}));
  auto b = da::arange(10, 0, -3, {2});
  EXPECT_EQ(b.dtype(), DType::int64);
  EXPECT_TRUE(computes_to(b, Ref{{4}, {10, 7, 4, 1}}));
}

TEST(ArrayCreation, LinspaceWithAndWithoutEndpoint) {
  auto a = da::linspace(0, 1, 11, {4});
  EXPECT_EQ(a.dtype(), DType::float64);
  EXPECT_EQ(a.chunks(), (da::Chunks{{4, 4, 3}}));
  Ref wa{{11}, {}};
  for (int i = 0; i < 11; ++i) wa.v.push_back(i / 10.0);
  EXPECT_TRUE(computes_to(a, wa, 1e-14));
  auto va = as_doubles(a.compute());
  EXPECT_EQ(va.front(), 0.0);
  EXPECT_EQ(va.back(), 1.0);  // numpy makes the endpoint exact

  auto b = da::linspace(-3, 7, 1000, {64});
  Ref wb{{1000}, {}};
  for (int i = 0; i < 1000; ++i) wb.v.push_back(-3 + i * (10.0 / 999));
  EXPECT_TRUE(computes_to(b, wb, 1e-13));
  EXPECT_EQ(b.compute().values<double>()[999], 7.0);

  auto c = da::linspace(0, 1, 10, {3}, false);
  Ref wc{{10}, {}};
  for (int i = 0; i < 10; ++i) wc.v.push_back(i * 0.1);
  EXPECT_TRUE(computes_to(c, wc, 1e-14));

  auto d = da::linspace(5, -5, 7, {2}, false);  // step -10/7
  Ref wd{{7}, {}};
  for (int i = 0; i < 7; ++i) wd.v.push_back(5 - i * (10.0 / 7));
  EXPECT_TRUE(computes_to(d, wd, 1e-14));

  EXPECT_TRUE(computes_to(da::linspace(2, 3, 1, {1}), Ref{{1}, {2}}));
}

TEST(ArrayCreation, EmptyArrays) {
  auto z = da::zeros({0, 3}, {10, 3});
  EXPECT_EQ(z.shape(), (Shape{0, 3}));
  EXPECT_EQ(z.size(), 0);
  EXPECT_TRUE(computes_to(z, Ref{{0, 3}, {}}));
  EXPECT_TRUE(computes_to(z.sum(0), Ref{{3}, {0, 0, 0}}));
  EXPECT_TRUE(computes_to(da::arange(5.0, 2.0, 1.0, {4}), Ref{{0}, {}}));
  EXPECT_TRUE(computes_to(da::arange(std::int64_t{0}, da::ChunkSpec{4}), Ref{{0}, {}}));
  EXPECT_TRUE(computes_to(da::linspace(0, 1, 0, {4}), Ref{{0}, {}}));
  // With the default ("auto") chunks too, as numpy and dask.
  EXPECT_TRUE(computes_to(da::zeros({0, 3}), Ref{{0, 3}, {}}));
  EXPECT_TRUE(computes_to(da::arange(5.0, 2.0, 1.0), Ref{{0}, {}}));
}

TEST(ArrayCreation, FromNdarrayRoundTripsEveryDtype) {
  Ref r = local_uniform(kShape, 1);
  auto a = da::from_ndarray(nd_f64(r), kChunks);
  EXPECT_EQ(a.chunks(), (da::Chunks{regular(203, 20), regular(197, 30)}));
  EXPECT_TRUE(computes_to(a, r));
  EXPECT_TRUE(a.compute().equals(nd_f64(r)));

  Ref r3 = local_uniform({13, 17, 11}, 2, -5, 5);
  EXPECT_TRUE(computes_to(da::from_ndarray(nd_f64(r3), {5, 4, 3}), r3));
  // Default chunks: one block for a small array.
  auto one = da::from_ndarray(nd_f64(r3));
  EXPECT_EQ(one.npartitions(), 1);
  EXPECT_TRUE(computes_to(one, r3));

  Ref ints = local_ints({31, 29}, 3, -1000, 1000);
  auto i = da::from_ndarray(nd_i64(ints), {8, 7});
  EXPECT_EQ(i.dtype(), DType::int64);
  EXPECT_TRUE(computes_to(i, ints));

  Ref bits = local_ints({31, 29}, 4, 0, 1);
  NDArray bool_nd({31, 29}, DType::boolean);
  std::transform(bits.v.begin(), bits.v.end(), bool_nd.values<bool>().begin(), [](double x) { return x != 0; });
  auto b = da::from_ndarray(bool_nd, {10, 10});
  EXPECT_EQ(b.dtype(), DType::boolean);
  EXPECT_TRUE(computes_to(b, bits));

  std::vector<float> fv(40);
  for (std::size_t k = 0; k < fv.size(); ++k) fv[k] = 0.5f * static_cast<float>(k) - 3.25f;
  auto f = da::from_ndarray(NDArray::from_values<float>(fv, {5, 8}), {2, 3});
  EXPECT_EQ(f.dtype(), DType::float32);
  Ref wf{{5, 8}, std::vector<double>(fv.begin(), fv.end())};
  EXPECT_TRUE(computes_to(f, wf));
}

// ---------------------------------------------------------------------------------------
// Random numbers.

TEST(ArrayRandom, SameSeedGivesSameValuesAcrossComputesAndArrays) {
  auto a = da::random::random(kShape, kChunks, 42);
  EXPECT_EQ(a.dtype(), DType::float64);
  NDArray r1 = a.compute(), r2 = a.compute();
  EXPECT_TRUE(r1.equals(r2));
  EXPECT_TRUE(da::random::random(kShape, kChunks, 42).compute().equals(r1));
  auto v = as_doubles(r1);
  EXPECT_TRUE(std::all_of(v.begin(), v.end(), [](double x) { return x >= 0 && x < 1; }));
  EXPECT_GT(std::set<double>(v.begin(), v.end()).size(), v.size() * 99 / 100);  // not a constant

  // Another seed: other numbers.
  auto o = as_doubles(da::random::random(kShape, kChunks, 43).compute());
  std::size_t same = 0;
  for (std::size_t i = 0; i < v.size(); ++i) same += v[i] == o[i];
  EXPECT_LT(same, v.size() / 100);

  // A block depends on the seed and its position only: computed alone (through a slice
  // that culls the others) or fused into an expression, it is the same.
  Ref whole = ref_of(r1);
  std::vector<Slice> block{Slice{40, 60}, Slice{30, 60}};
  EXPECT_TRUE(computes_to(a.slice(block), slice(whole, block)));
  EXPECT_TRUE(computes_to(a + 0.0, whole));
  EXPECT_TRUE(computes_to(a * 1.0 + a.slice({Slice{}, Slice{}}), map(whole, [](double x) { return x + x; })));

  for (auto make : {+[](std::uint64_t s) { return da::random::uniform(kShape, kChunks, -2, 3, s); },
                    +[](std::uint64_t s) { return da::random::normal(kShape, kChunks, 1, 2, s); }}) {
    auto x = make(7);
    NDArray x1 = x.compute();
    EXPECT_TRUE(x1.equals(x.compute()));
    EXPECT_TRUE(x1.equals(make(7).compute()));
    EXPECT_FALSE(x1.equals(make(8).compute()));
  }
}

TEST(ArrayRandom, UnseededArrayKeepsItsSeed) {
  auto x = da::random::random({50, 40}, {16, 16});
  NDArray first = x.compute();
  EXPECT_TRUE(first.equals(x.compute()));
  auto copy = x;
  EXPECT_TRUE(first.equals(copy.compute()));
  EXPECT_FALSE(first.equals(da::random::random({50, 40}, {16, 16}).compute()));
  auto n = da::random::normal({50, 40}, {16, 16});
  EXPECT_TRUE(n.compute().equals(n.compute()));
}

TEST(ArrayRandom, RangesOfUniformAndNormal) {
  auto u = as_doubles(da::random::uniform(kShape, kChunks, -2, 3, 5).compute());
  EXPECT_TRUE(std::all_of(u.begin(), u.end(), [](double x) { return x >= -2 && x < 3; }));
  EXPECT_LT(*std::min_element(u.begin(), u.end()), -1.9);
  EXPECT_GT(*std::max_element(u.begin(), u.end()), 2.9);
  auto n = as_doubles(da::random::normal(kShape, kChunks, 0, 1, 6).compute());
  EXPECT_TRUE(std::all_of(n.begin(), n.end(), [](double x) { return std::isfinite(x); }));
  EXPECT_LT(*std::min_element(n.begin(), n.end()), -3);
  EXPECT_GT(*std::max_element(n.begin(), n.end()), 3);
}

TEST(ArrayRandom, StatisticsOfLargeArrays) {
  auto x = da::random::random({2000, 2000}, {500, 500}, 1);
  EXPECT_LT(std::abs(x.mean().item() - 0.5), 0.01);
  EXPECT_NEAR(x.var().item(), 1.0 / 12, 0.001);
  EXPECT_GE(x.min().item(), 0.0);
  EXPECT_LT(x.max().item(), 1.0);

  auto n = da::random::normal({2000, 2000}, {500, 500}, 0, 1, 2);
  EXPECT_NEAR(n.mean().item(), 0.0, 0.01);
  EXPECT_NEAR(n.std().item(), 1.0, 0.01);

  auto u = da::random::uniform({1000, 1000}, {250, 250}, -2, 3, 3);
  EXPECT_NEAR(u.mean().item(), 0.5, 0.01);
  EXPECT_NEAR(u.var().item(), 25.0 / 12, 0.02);

  auto g = da::random::normal({1000, 1000}, {250, 250}, 3, 2, 4);
  EXPECT_NEAR(g.mean().item(), 3.0, 0.01);
  EXPECT_NEAR(g.std().item(), 2.0, 0.01);
  // About 68% within one standard deviation.
  EXPECT_NEAR(((g > 1.0) * (g < 5.0)).mean().item(), 0.6827, 0.005);
}

// ---------------------------------------------------------------------------------------
// Elementwise operations.

TEST(ArrayElementwise, ArithmeticBetweenArrays) {
  Ref A = local_uniform(kShape, 10), B = local_uniform(kShape, 11, 0.5, 1.5);
  auto a = da::from_ndarray(nd_f64(A), kChunks), b = da::from_ndarray(nd_f64(B), kChunks);
  EXPECT_TRUE(computes_to(a + b, broadcast(A, B, std::plus<>()), 1e-15));
  EXPECT_TRUE(computes_to(a - b, broadcast(A, B, std::minus<>()), 1e-15));
  EXPECT_TRUE(computes_to(a * b, broadcast(A, B, std::multiplies<>()), 1e-15));
  EXPECT_TRUE(computes_to(a / b, broadcast(A, B, std::divides<>()), 1e-15));
  EXPECT_TRUE(computes_to((a + b) * (a - b) / b,
                          broadcast(A, B, [](double x, double y) { return (x + y) * (x - y) / y; }), 1e-14));
  EXPECT_TRUE(computes_to(a - a, Ref{kShape, std::vector<double>(A.v.size(), 0.0)}));
  EXPECT_EQ((a + b).chunks(), a.chunks());

  // With a random operand: the random block is made inside the fused task.
  auto x = da::random::random(kShape, kChunks, 3);
  Ref X = ref_of(x.compute());
  EXPECT_TRUE(computes_to(x * a - b, broadcast(broadcast(X, A, std::multiplies<>()), B, std::minus<>()), 1e-15));
}

TEST(ArrayElementwise, ArithmeticWithScalarsOnBothSides) {
  Ref A = local_uniform(kShape, 12, -1, 1), B = local_uniform(kShape, 13, 0.5, 1.5);
  auto a = da::from_ndarray(nd_f64(A), kChunks), b = da::from_ndarray(nd_f64(B), kChunks);
  EXPECT_TRUE(computes_to(a + 2.0, map(A, [](double x) { return x + 2; }), 1e-15));
  EXPECT_TRUE(computes_to(2.0 + a, map(A, [](double x) { return 2 + x; }), 1e-15));
  EXPECT_TRUE(computes_to(a - 2.0, map(A, [](double x) { return x - 2; }), 1e-15));
  EXPECT_TRUE(computes_to(2.0 - a, map(A, [](double x) { return 2 - x; }), 1e-15));
  EXPECT_TRUE(computes_to(a * 3.0, map(A, [](double x) { return x * 3; }), 1e-15));
  EXPECT_TRUE(computes_to(3.0 * a, map(A, [](double x) { return 3 * x; }), 1e-15));
  EXPECT_TRUE(computes_to(a / 4.0, map(A, [](double x) { return x / 4; }), 1e-15));
  EXPECT_TRUE(computes_to(4.0 / b, map(B, [](double x) { return 4 / x; }), 1e-15));
  EXPECT_TRUE(computes_to(-a, map(A, [](double x) { return -x; })));
  EXPECT_TRUE(computes_to(1.0 - 2.0 * a / 3.0, map(A, [](double x) { return 1 - 2 * x / 3; }), 1e-15));
  EXPECT_TRUE(computes_to(a + 1, map(A, [](double x) { return x + 1; }), 1e-15));  // int literal
}

TEST(ArrayElementwise, Broadcasting) {
  Ref A = local_uniform(kShape, 14);
  auto a = da::from_ndarray(nd_f64(A), kChunks);
  // Missing leading axis.
  Ref row = local_uniform({197}, 15);
  auto r = da::from_ndarray(nd_f64(row), {30});
  auto sum = a + r;
  EXPECT_EQ(sum.shape(), kShape);
  EXPECT_EQ(sum.chunks(), a.chunks());
  EXPECT_TRUE(computes_to(sum, broadcast(A, row, std::plus<>()), 1e-15));
  EXPECT_TRUE(computes_to(r - a, broadcast(row, A, std::minus<>()), 1e-15));
  // Extent-1 axis.
  Ref col = local_uniform({203, 1}, 16);
  auto c = da::from_ndarray(nd_f64(col), {20, 1});
  EXPECT_TRUE(computes_to(a * c, broadcast(A, col, std::multiplies<>()), 1e-15));
  // Both sides stretch: (203, 1) - (1, 197).
  Ref row2 = local_uniform({1, 197}, 17);
  auto r2 = da::from_ndarray(nd_f64(row2), {1, 30});
  auto outer = c - r2;
  EXPECT_EQ(outer.shape(), kShape);
  EXPECT_EQ(outer.chunks(), a.chunks());
  EXPECT_TRUE(computes_to(outer, broadcast(col, row2, std::minus<>()), 1e-15));
  // 3-d: (5, 1, 7) / (4, 1) -> (5, 4, 7).
  Ref p = local_uniform({5, 1, 7}, 18), q = local_uniform({4, 1}, 19, 1, 2);
  auto pq = da::from_ndarray(nd_f64(p), {2, 1, 3}) / da::from_ndarray(nd_f64(q), {3, 1});
  EXPECT_EQ(pq.shape(), (Shape{5, 4, 7}));
  EXPECT_EQ(pq.chunks(), (da::Chunks{{2, 2, 1}, {3, 1}, {3, 3, 1}}));
  EXPECT_TRUE(computes_to(pq, broadcast(p, q, std::divides<>()), 1e-15));
  // Broadcasting a random row against a fused expression.
  auto rr = da::random::random({197}, {30}, 20);
  Ref RR = ref_of(rr.compute());
  EXPECT_TRUE(computes_to((a - rr) * 2.0,
                          map(broadcast(A, RR, std::minus<>()), [](double x) { return x * 2; }), 1e-15));
}

TEST(ArrayElementwise, UnaryFunctions) {
  Ref A = local_uniform(kShape, 21, -2, 2), B = local_uniform(kShape, 22, 0.01, 10);
  auto a = da::from_ndarray(nd_f64(A), kChunks), b = da::from_ndarray(nd_f64(B), kChunks);
  EXPECT_TRUE(computes_to(-a, map(A, [](double x) { return -x; })));
  EXPECT_TRUE(computes_to(da::abs(a), map(A, [](double x) { return std::abs(x); })));
  EXPECT_TRUE(computes_to(da::sqrt(b), map(B, [](double x) { return std::sqrt(x); }), 1e-15));
  EXPECT_TRUE(computes_to(da::exp(a), map(A, [](double x) { return std::exp(x); }), 1e-14));
  EXPECT_TRUE(computes_to(da::log(b), map(B, [](double x) { return std::log(x); }), 1e-14));
  EXPECT_TRUE(computes_to(da::sqrt(da::abs(a - 0.5)) * da::exp(-a),
                          map(A, [](double x) { return std::sqrt(std::abs(x - 0.5)) * std::exp(-x); }), 1e-14));
  EXPECT_TRUE(computes_to(da::log(da::exp(a)), A, 1e-14));
  // IEEE results at the edges, as numpy.
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  auto edge = da::from_ndarray(nd_f64(Ref{{4}, {0, -1, 1, -0.0}}), {3});
  EXPECT_TRUE(computes_to(da::log(edge), Ref{{4}, {-inf, nan, 0, -inf}}));
  EXPECT_TRUE(computes_to(da::sqrt(edge), Ref{{4}, {0, nan, 1, 0}}));
  EXPECT_TRUE(computes_to(1.0 / edge, Ref{{4}, {inf, -1, 1, -inf}}));
}

TEST(ArrayElementwise, ComparisonsGiveBool) {
  Ref I = local_ints(kShape, 23, 0, 4), J = local_ints(kShape, 24, 0, 4);
  auto a = da::from_ndarray(nd_f64(I), kChunks), b = da::from_ndarray(nd_f64(J), kChunks);
  auto cmp = [&](auto op) { return broadcast(I, J, [op](double x, double y) { return op(x, y) ? 1.0 : 0.0; }); };
  auto cmp_s = [&](auto op, double s) { return map(I, [op, s](double x) { return op(x, s) ? 1.0 : 0.0; }); };
  for (const auto& [name, array, want] : std::vector<std::tuple<std::string, da::Array, Ref>>{
           {"a < b", a < b, cmp(std::less<>())},
           {"a <= b", a <= b, cmp(std::less_equal<>())},
           {"a > b", a > b, cmp(std::greater<>())},
           {"a >= b", a >= b, cmp(std::greater_equal<>())},
           {"a == b", a == b, cmp(std::equal_to<>())},
           {"a != b", a != b, cmp(std::not_equal_to<>())},
           {"a < 2", a < 2.0, cmp_s(std::less<>(), 2)},
           {"a <= 2", a <= 2.0, cmp_s(std::less_equal<>(), 2)},
           {"a > 2", a > 2.0, cmp_s(std::greater<>(), 2)},
           {"a >= 2", a >= 2.0, cmp_s(std::greater_equal<>(), 2)},
           {"a == 2", a == 2.0, cmp_s(std::equal_to<>(), 2)},
           {"a != 2", a != 2.0, cmp_s(std::not_equal_to<>(), 2)},
       }) {
    SCOPED_TRACE(name);
    EXPECT_EQ(array.dtype(), DType::boolean);
    EXPECT_TRUE(computes_to(array, want));
  }
  // Counting with a bool sum gives int64.
  auto count = (a < b).sum();
  EXPECT_EQ(count.dtype(), DType::int64);
  const Ref less = cmp(std::less<>());
  EXPECT_EQ(count.item(), std::accumulate(less.v.begin(), less.v.end(), 0.0));
  // Comparison with broadcasting.
  Ref row = local_ints({197}, 25, 0, 4);
  auto rb = a >= da::from_ndarray(nd_f64(row), {30});
  EXPECT_EQ(rb.dtype(), DType::boolean);
  EXPECT_TRUE(computes_to(rb, broadcast(I, row, [](double x, double y) { return x >= y ? 1.0 : 0.0; })));
}

TEST(ArrayElementwise, TypePromotion) {
  Ref I = local_ints(kShape, 26, -50, 50), K = local_ints(kShape, 27, 1, 9);
  Ref F = local_uniform(kShape, 28, -1, 1);
  auto i = da::from_ndarray(nd_i64(I), kChunks), k = da::from_ndarray(nd_i64(K), kChunks);
  auto f = da::from_ndarray(nd_f64(F), kChunks);

  EXPECT_EQ((i + f).dtype(), DType::float64);
  EXPECT_TRUE(computes_to(i + f, broadcast(I, F, std::plus<>()), 1e-15));
  EXPECT_EQ((f * i).dtype(), DType::float64);
  EXPECT_TRUE(computes_to(f * i, broadcast(F, I, std::multiplies<>()), 1e-15));

  EXPECT_EQ((i + k).dtype(), DType::int64);
  EXPECT_TRUE(computes_to(i + k, broadcast(I, K, std::plus<>())));
  EXPECT_EQ((i - k).dtype(), DType::int64);
  EXPECT_TRUE(computes_to(i - k, broadcast(I, K, std::minus<>())));
  EXPECT_EQ((i * k).dtype(), DType::int64);
  EXPECT_TRUE(computes_to(i * k, broadcast(I, K, std::multiplies<>())));

  // `/` on integers is true division.
  EXPECT_EQ((i / k).dtype(), DType::float64);
  EXPECT_TRUE(computes_to(i / k, broadcast(I, K, std::divides<>()), 1e-15));
  auto ai = da::arange(0, 1003, 1, {100}), bi = da::arange(1, 1004, 1, {100});
  ASSERT_EQ(ai.dtype(), DType::int64);
  EXPECT_EQ((ai / bi).dtype(), DType::float64);
  Ref q{{1003}, {}};
  for (int n = 0; n < 1003; ++n) q.v.push_back(n / (n + 1.0));
  EXPECT_TRUE(computes_to(ai / bi, q, 1e-15));

  // A fractional scalar makes ints float.
  EXPECT_EQ((i * 0.5).dtype(), DType::float64);
  EXPECT_TRUE(computes_to(i * 0.5, map(I, [](double x) { return x * 0.5; })));
  EXPECT_TRUE(computes_to(0.5 + i, map(I, [](double x) { return 0.5 + x; })));

  // bool + int64 -> int64; int64 < float64 -> bool.
  auto lt = i < f;
  EXPECT_EQ(lt.dtype(), DType::boolean);
  EXPECT_EQ((lt + k).dtype(), DType::int64);
  EXPECT_TRUE(computes_to(lt + k, broadcast(broadcast(I, F, [](double x, double y) { return x < y ? 1.0 : 0.0; }),
                                            K, std::plus<>())));

  // float32 stays float32 with itself and becomes float64 with float64.
  auto f32 = f.astype(DType::float32);
  EXPECT_EQ(f32.dtype(), DType::float32);
  EXPECT_EQ((f32 + f32).dtype(), DType::float32);
  EXPECT_EQ((f32 + f).dtype(), DType::float64);
  Ref F32 = map(F, [](double x) { return static_cast<double>(static_cast<float>(x)); });
  EXPECT_TRUE(computes_to(f32 + f, broadcast(F32, F, std::plus<>()), 1e-15));
  EXPECT_TRUE(computes_to(f32 * f32, broadcast(F32, F32, [](double x, double y) {
                                       return static_cast<double>(static_cast<float>(x) * static_cast<float>(y));
                                     })));
}

TEST(ArrayElementwise, BoolArithmeticStaysBool) {
  // numpy: bool + bool is logical or, bool * bool logical and, both bool (and the
  // promotion order bool < int64 < ... says the same).
  Ref P = local_ints({31, 29}, 66, 0, 1), Q = local_ints({31, 29}, 67, 0, 1);
  auto p = da::from_ndarray(nd_f64(P), {8, 7}) > 0.5, q = da::from_ndarray(nd_f64(Q), {8, 7}) > 0.5;
  EXPECT_EQ((p + q).dtype(), DType::boolean);
  EXPECT_TRUE(computes_to(p + q, broadcast(P, Q, [](double x, double y) { return (x != 0 || y != 0) ? 1.0 : 0.0; })));
  EXPECT_EQ((p * q).dtype(), DType::boolean);
  EXPECT_TRUE(computes_to(p * q, broadcast(P, Q, [](double x, double y) { return (x != 0 && y != 0) ? 1.0 : 0.0; })));
}

TEST(ArrayElementwise, UnaryDtypes) {
  Ref I = local_ints({31, 29}, 29, -9, 9);
  auto i = da::from_ndarray(nd_i64(I), {8, 7});
  EXPECT_EQ((-i).dtype(), DType::int64);
  EXPECT_TRUE(computes_to(-i, map(I, [](double x) { return -x; })));
  EXPECT_EQ(da::abs(i).dtype(), DType::int64);
  EXPECT_TRUE(computes_to(da::abs(i), map(I, [](double x) { return std::abs(x); })));
  auto sq = da::sqrt(da::abs(i));
  EXPECT_EQ(sq.dtype(), DType::float64);
  EXPECT_TRUE(computes_to(sq, map(I, [](double x) { return std::sqrt(std::abs(x)); }), 1e-15));
  EXPECT_EQ(da::exp(i).dtype(), DType::float64);
  EXPECT_TRUE(computes_to(da::exp(i), map(I, [](double x) { return std::exp(x); }), 1e-14));
}

TEST(ArrayElementwise, LargeOddShape) {
  // 1003 x 997 in 100 x 130 blocks (last blocks 3 and 87).
  const Shape shape{1003, 997};
  const da::ChunkSpec chunks{100, 130};
  auto x = da::random::random(shape, chunks, 11);
  Ref X = ref_of(x.compute());
  Ref Y = local_uniform(shape, 30);
  auto y = da::from_ndarray(nd_f64(Y), chunks);
  auto e = (x * 2.0 - y) / (y + 1.0) + da::abs(x - 0.5);
  Ref E = broadcast(X, Y, [](double a, double b) { return (a * 2 - b) / (b + 1) + std::abs(a - 0.5); });
  EXPECT_TRUE(computes_to(e, E, 1e-15));
  EXPECT_TRUE(computes_to(e.sum(0), reduce(E, {0}, Op::sum), 1e-9));
  EXPECT_TRUE(computes_to(e.mean(1), reduce(E, {1}, Op::mean), 1e-9));
  EXPECT_TRUE(computes_to(e.std(), reduce(E, {}, Op::std), 1e-9));
  EXPECT_TRUE(computes_to(e.var({0, 1}, 1, {.split_every = 2}), reduce(E, {}, Op::var, false, 1), 1e-9));
  EXPECT_TRUE(computes_to(e.max(0), reduce(E, {0}, Op::max)));
  EXPECT_TRUE(computes_to(e.min(), reduce(E, {}, Op::min)));
  EXPECT_TRUE(computes_to(e.argmax(1), arg_reduce(E, 1, true)));
  EXPECT_TRUE(computes_to(e.argmin(), arg_reduce(E, std::nullopt, false)));
  EXPECT_TRUE(computes_to(e.T(), transpose(E)));
}

// ---------------------------------------------------------------------------------------
// Transposes, reshapes, slices, rechunking, astype.

TEST(ArrayTranspose, TwoAndThreeDims) {
  Ref A = local_uniform(kShape, 31);
  auto a = da::from_ndarray(nd_f64(A), kChunks);
  auto t = a.T();
  EXPECT_EQ(t.shape(), (Shape{197, 203}));
  EXPECT_EQ(t.chunks(), (da::Chunks{regular(197, 30), regular(203, 20)}));
  EXPECT_TRUE(computes_to(t, transpose(A)));
  EXPECT_TRUE(computes_to(t.T(), A));
  EXPECT_TRUE(computes_to(a.transpose({1, 0}), transpose(A)));
  EXPECT_TRUE(computes_to(a.transpose({0, 1}), A));

  Ref R = local_uniform({13, 17, 11}, 32);
  auto r = da::from_ndarray(nd_f64(R), {5, 4, 3});
  const da::Chunks rc = r.chunks();
  std::vector<int> perm{0, 1, 2};
  do {
    SCOPED_TRACE(::testing::Message() << "perm " << perm[0] << perm[1] << perm[2]);
    auto p = r.transpose(perm);
    EXPECT_EQ(p.shape(), (Shape{R.shape[perm[0]], R.shape[perm[1]], R.shape[perm[2]]}));
    EXPECT_EQ(p.chunks(), (da::Chunks{rc[perm[0]], rc[perm[1]], rc[perm[2]]}));
    EXPECT_TRUE(computes_to(p, transpose(R, perm)));
  } while (std::next_permutation(perm.begin(), perm.end()));
  EXPECT_TRUE(computes_to(r.T(), transpose(R)));
  EXPECT_TRUE(computes_to(r.transpose(), transpose(R)));
  EXPECT_EQ(r.T().shape(), (Shape{11, 17, 13}));

  // A transpose fused with arithmetic against an array of the transposed chunking.
  Ref S = local_uniform({11, 13, 17}, 33);
  auto s = da::from_ndarray(nd_f64(S), {3, 5, 4});
  EXPECT_TRUE(computes_to(r.transpose({2, 0, 1}) - s, broadcast(transpose(R, {2, 0, 1}), S, std::minus<>())));
  EXPECT_TRUE(computes_to((r.transpose({2, 0, 1}) * 2.0).transpose({1, 2, 0}),
                          map(R, [](double x) { return x * 2; })));
}

TEST(ArrayReshape, ChunkCompatibleCasesSucceed) {
  Ref A = local_uniform({12, 10}, 34);
  auto a = da::from_ndarray(nd_f64(A), {4, 10});  // whole rows per block
  auto with = [](Ref r, Shape s) { return Ref{std::move(s), std::move(r.v)}; };

  auto split = a.reshape({12, 5, 2});
  EXPECT_EQ(split.shape(), (Shape{12, 5, 2}));
  EXPECT_EQ(split.chunks(), (da::Chunks{{4, 4, 4}, {5}, {2}}));
  EXPECT_TRUE(computes_to(split, with(A, {12, 5, 2})));

  auto flat = a.reshape({120});
  EXPECT_EQ(flat.chunks(), (da::Chunks{{40, 40, 40}}));
  EXPECT_TRUE(computes_to(flat, with(A, {120})));
  EXPECT_TRUE(computes_to(a.reshape({-1}), with(A, {120})));
  EXPECT_TRUE(computes_to(a.reshape({24, 5}), with(A, {24, 5})));
  EXPECT_TRUE(computes_to(a.reshape({-1, 5}), with(A, {24, 5})));
  EXPECT_TRUE(computes_to(a.reshape({12, 10}), A));
  EXPECT_TRUE(computes_to(a.reshape({12, 1, 10}), with(A, {12, 1, 10})));
  EXPECT_TRUE(computes_to(a.reshape({12, 1, 10}).reshape({12, 10}), A));
  // Back and forth, and fused with arithmetic.
  EXPECT_TRUE(computes_to((a.reshape({12, 5, 2}) + 1.0).reshape({12, 10}), map(A, [](double x) { return x + 1; })));

  Ref B = local_uniform({6, 4, 5}, 35);
  auto b = da::from_ndarray(nd_f64(B), {2, 4, 5});
  EXPECT_TRUE(computes_to(b.reshape({6, 20}), with(B, {6, 20})));
  EXPECT_TRUE(computes_to(b.reshape({24, 5}), with(B, {24, 5})));
  EXPECT_TRUE(computes_to(b.reshape({120}), with(B, {120})));
  EXPECT_TRUE(computes_to(b.reshape({6, 2, 2, 5}), with(B, {6, 2, 2, 5})));
  // The first axis of a merged group may be cut: blocks of 2 x 5 rows stay contiguous.
  auto b2 = da::from_ndarray(nd_f64(B), {2, 2, 5});
  auto merged = b2.reshape({6, 20});
  EXPECT_EQ(merged.chunks(), (da::Chunks{{2, 2, 2}, {10, 10}}));
  EXPECT_TRUE(computes_to(merged, with(B, {6, 20})));

  // Splitting an axis whose blocks hold whole multiples of the new trailing extent.
  auto d = da::from_ndarray(nd_f64(A), {4, 4});
  EXPECT_TRUE(computes_to(d.reshape({12, 5, 2}), with(A, {12, 5, 2})));
  EXPECT_THROW(da::from_ndarray(nd_f64(A), {4, 3}).reshape({12, 5, 2}), std::invalid_argument);
  // Views whose elements are not in C order in memory: transposed, reversed, strided.
  EXPECT_TRUE(computes_to(a.T().rechunk({-1, -1}).reshape({120}), with(transpose(A), {120})));
  EXPECT_TRUE(computes_to(a.rechunk({4, 5}).T().reshape({-1, 12}), with(transpose(A), {10, 12})));
  const std::optional<std::int64_t> none;
  std::vector<Slice> rev{Slice{none, none, -1}, Slice{none, none, -1}};
  EXPECT_TRUE(computes_to(a.slice(rev).reshape({120}), with(slice(A, rev), {120})));
  std::vector<Slice> strided{Slice{none, none, 2}, Slice{none, none, 2}};
  EXPECT_TRUE(computes_to(a.slice(strided).reshape({30}), with(slice(A, strided), {30})));

  // Rechunking first makes an incompatible reshape possible.
  auto c = da::from_ndarray(nd_f64(A), {4, 5});
  EXPECT_THROW(c.reshape({120}), std::invalid_argument);
  EXPECT_TRUE(computes_to(c.rechunk({4, -1}).reshape({120}), with(A, {120})));

  // A random array reshaped.
  auto x = da::random::random({30, 20}, {10, 20}, 36);
  Ref X = ref_of(x.compute());
  EXPECT_TRUE(computes_to(x.reshape({600}), with(X, {600})));
  EXPECT_TRUE(computes_to(x.reshape({30, 4, 5}), with(X, {30, 4, 5})));
}

TEST(ArrayReshape, IncompatibleCasesThrowNamingTheShapes) {
  auto a = da::zeros({12, 10}, {4, 5});
  std::string m = invalid_argument_from([&] { a.reshape({120}); });
  EXPECT_TRUE(names_extents(m, {12, 10})) << m;
  EXPECT_TRUE(m.find("120") != std::string::npos) << m;

  auto b = da::zeros({6, 4, 5}, {2, 4, 3});  // the last axis of the merged group is cut
  m = invalid_argument_from([&] { b.reshape({6, 20}); });
  EXPECT_TRUE(names_extents(m, {6, 4, 5})) << m;
  m = invalid_argument_from([&] { b.reshape({120}); });
  EXPECT_TRUE(names_extents(m, {6, 4, 5})) << m;

  auto c = da::zeros({12, 10}, {5, 10});  // 50-element blocks cannot make rows of 12
  m = invalid_argument_from([&] { c.reshape({10, 12}); });
  EXPECT_TRUE(names_extents(m, {10, 12})) << m;

  // Wrong number of elements, and two unknown extents.
  m = invalid_argument_from([&] { a.reshape({7, 10}); });
  EXPECT_TRUE(names_extents(m, {7, 10})) << m;
  EXPECT_THROW(a.reshape({-1, -1}), std::invalid_argument);
  EXPECT_THROW(a.reshape({-1, 7}), std::invalid_argument);
}

TEST(ArraySlice, RangesNegativeIndicesAndSteps) {
  Ref A = local_uniform(kShape, 37);
  auto a = da::from_ndarray(nd_f64(A), kChunks);
  const std::optional<std::int64_t> none;
  const std::vector<std::vector<Slice>> cases{
      {Slice{5, 150}},
      {Slice{-50, none}, Slice{none, -3}},
      {Slice{1, 200, 7}, Slice{none, none, 3}},
      {Slice{none, none, -1}, Slice{150, 10, -4}},
      {Slice{-1, none, -1}, Slice{-2, -190, -7}},
      {Slice{19, 21}, Slice{29, 31}},
      {Slice{}, Slice{196, none}},
      {Slice{-1000, 1000}, Slice{none, none, 200}},
      {Slice{200, -1000, -13}, Slice{none, none, -30}},
      {Slice{none, none, 20}, Slice{29, none, 30}},
  };
  for (std::size_t n = 0; n < cases.size(); ++n) {
    SCOPED_TRACE(::testing::Message() << "case " << n);
    EXPECT_TRUE(computes_to(a.slice(cases[n]), slice(A, cases[n])));
  }
  // Slices of slices, slices in expressions, slices of a fused random array.
  auto s = a.slice({Slice{none, none, -2}, Slice{3, 190, 5}}).slice({Slice{10, -10, 3}, Slice{none, none, -1}});
  EXPECT_TRUE(computes_to(s, slice(slice(A, {Slice{none, none, -2}, Slice{3, 190, 5}}),
                                   {Slice{10, -10, 3}, Slice{none, none, -1}})));
  Ref B = local_uniform(kShape, 38);
  auto b = da::from_ndarray(nd_f64(B), kChunks);
  std::vector<Slice> cut{Slice{7, 180, 3}, Slice{-5, 2, -2}};
  EXPECT_TRUE(computes_to(a.slice(cut) * b.slice(cut) + 1.0,
                          map(broadcast(slice(A, cut), slice(B, cut), std::multiplies<>()), [](double x) { return x + 1; }),
                          1e-15));
  auto x = da::random::normal(kShape, kChunks, 0, 1, 39);
  Ref X = ref_of(x.compute());
  EXPECT_TRUE(computes_to((x * 3.0).slice(cut), map(slice(X, cut), [](double v) { return v * 3; })));
  EXPECT_TRUE(computes_to(x.T().slice({Slice{10, 20}}), slice(transpose(X), {Slice{10, 20}})));
  // 3-d, missing trailing axes.
  Ref R = local_uniform({13, 17, 11}, 40);
  auto r = da::from_ndarray(nd_f64(R), {5, 4, 3});
  EXPECT_TRUE(computes_to(r.slice({Slice{2, 11, 2}}), slice(R, {Slice{2, 11, 2}})));
  EXPECT_TRUE(computes_to(r.slice({Slice{}, Slice{-1, none, -3}}), slice(R, {Slice{}, Slice{-1, none, -3}})));
}

TEST(ArraySlice, OutputChunksFollowInputBlocks) {
  auto a = da::zeros(kShape, kChunks);
  auto s = a.slice({Slice{5, 150}});
  EXPECT_EQ(s.shape(), (Shape{145, 197}));
  EXPECT_EQ(s.chunks(), (da::Chunks{{15, 20, 20, 20, 20, 20, 20, 10}, regular(197, 30)}));
  auto r = a.slice({Slice{std::nullopt, std::nullopt, -1}});
  std::vector<std::int64_t> reversed = regular(203, 20);
  std::reverse(reversed.begin(), reversed.end());
  EXPECT_EQ(r.chunks()[0], reversed);
}

TEST(ArraySlice, EmptyResultHasZeroExtent) {
  Ref A = local_uniform(kShape, 41);
  auto a = da::from_ndarray(nd_f64(A), kChunks);
  auto e = a.slice({Slice{100, 50}});
  EXPECT_EQ(e.shape(), (Shape{0, 197}));
  EXPECT_EQ(e.size(), 0);
  NDArray got = e.compute();
  EXPECT_EQ(got.shape(), (Shape{0, 197}));
  std::vector<Slice> cut{Slice{-3, std::nullopt}, Slice{1, -1, -1}};
  auto f = a.slice(cut);
  EXPECT_EQ(f.shape(), (Shape{3, 0}));
  EXPECT_TRUE(computes_to(f, slice(A, cut)));
}

TEST(ArrayRechunk, SameValuesOtherBlocks) {
  Ref A = local_uniform(kShape, 42);
  auto a = da::from_ndarray(nd_f64(A), kChunks);
  auto r1 = a.rechunk({50, -1});
  EXPECT_EQ(r1.chunks(), (da::Chunks{{50, 50, 50, 50, 3}, {197}}));
  EXPECT_TRUE(computes_to(r1, A));
  auto r2 = a.rechunk({7, 13});
  EXPECT_EQ(r2.chunks(), (da::Chunks{regular(203, 7), regular(197, 13)}));
  EXPECT_TRUE(computes_to(r2, A));
  auto r3 = a.rechunk(da::ChunkSpec(da::Chunks{{100, 103}, {1, 196}}));
  EXPECT_EQ(r3.chunks(), (da::Chunks{{100, 103}, {1, 196}}));
  EXPECT_TRUE(computes_to(r3, A));
  // Rechunked arrays combine with others of the same chunking.
  Ref B = local_uniform(kShape, 43);
  auto b = da::from_ndarray(nd_f64(B), {64, 64});
  EXPECT_TRUE(computes_to(a.rechunk({64, 64}) + b, broadcast(A, B, std::plus<>()), 1e-15));
  EXPECT_TRUE(computes_to(a + b.rechunk(a.chunks()), broadcast(A, B, std::plus<>()), 1e-15));
  // Of a fused expression and of a transposed 3-d array.
  auto x = da::random::random(kShape, kChunks, 44);
  Ref X = ref_of(x.compute());
  EXPECT_TRUE(computes_to((x * 2.0).rechunk({33, 41}), map(X, [](double v) { return v * 2; })));
  Ref R = local_uniform({13, 17, 11}, 45);
  auto r = da::from_ndarray(nd_f64(R), {5, 4, 3});
  EXPECT_TRUE(computes_to(r.T().rechunk({-1, 6, 13}), transpose(R)));
  EXPECT_TRUE(computes_to(r.rechunk({1, 1, -1}).sum(2), reduce(R, {2}, Op::sum), 1e-12));
}

TEST(ArrayAstype, Conversions) {
  Ref V{{2, 4}, {-2.7, -0.5, 0, 0.5, 2.7, 1e3, -1e3, 3}};
  auto v = da::from_ndarray(nd_f64(V), {1, 3});
  auto i = v.astype(DType::int64);
  EXPECT_EQ(i.dtype(), DType::int64);
  EXPECT_TRUE(computes_to(i, Ref{{2, 4}, {-2, 0, 0, 0, 2, 1000, -1000, 3}}));  // truncation
  auto b = v.astype(DType::boolean);
  EXPECT_EQ(b.dtype(), DType::boolean);
  EXPECT_TRUE(computes_to(b, Ref{{2, 4}, {1, 1, 0, 1, 1, 1, 1, 1}}));
  auto f = v.astype(DType::float32);
  EXPECT_EQ(f.dtype(), DType::float32);
  EXPECT_EQ(f.nbytes(), 32);
  EXPECT_TRUE(computes_to(f, map(V, [](double x) { return static_cast<double>(static_cast<float>(x)); })));
  EXPECT_TRUE(computes_to(v.astype(DType::float64), V));
  EXPECT_TRUE(computes_to(i.astype(DType::float64), Ref{{2, 4}, {-2, 0, 0, 0, 2, 1000, -1000, 3}}));
  EXPECT_TRUE(computes_to(b.astype(DType::int64), Ref{{2, 4}, {1, 1, 0, 1, 1, 1, 1, 1}}));
  EXPECT_TRUE(computes_to(b.astype(DType::float64) * 2.0, Ref{{2, 4}, {2, 2, 0, 2, 2, 2, 2, 2}}));
  // Fused into an expression.
  auto ar = da::arange(std::int64_t{1003}, da::ChunkSpec{100});
  Ref want{{1003}, {}};
  for (int n = 0; n < 1003; ++n) want.v.push_back(static_cast<std::int64_t>(n * 0.3));
  EXPECT_TRUE(computes_to((ar * 0.3).astype(DType::int64), want));
}

// ---------------------------------------------------------------------------------------
// Reductions.

da::Array reduce_array(const da::Array& x, Op op, const da::Axes& axes, da::ReduceOptions options, int ddof) {
  switch (op) {
    case Op::sum: return x.sum(axes, options);
    case Op::mean: return x.mean(axes, options);
    case Op::var: return x.var(axes, ddof, options);
    case Op::std: return x.std(axes, ddof, options);
    case Op::min: return x.min(axes, options);
    case Op::max: return x.max(axes, options);
  }
  return {};
}

/// Every reduction over every combination of axes of `x` (whose values are `X`), with and
/// without keepdims, with the default tree and with split_every = 2.
void check_all_reductions(const da::Array& x, const Ref& X, const std::vector<std::vector<int>>& axes_cases) {
  for (const auto& axes : axes_cases) {
    for (bool keepdims : {false, true}) {
      for (int split_every : {0, 2}) {
        for (Op op : {Op::sum, Op::mean, Op::var, Op::std, Op::min, Op::max}) {
          for (int ddof : {0, 1}) {
            if (ddof == 1 && op != Op::var && op != Op::std) continue;
            std::ostringstream name;
            name << op_name(op) << " axes {";
            for (int a : axes) name << a << ",";
            name << "} keepdims " << keepdims << " split_every " << split_every << " ddof " << ddof;
            SCOPED_TRACE(name.str());
            const da::Axes ax = axes.empty() ? da::Axes() : da::Axes(axes);
            auto got = reduce_array(x, op, ax, {.keepdims = keepdims, .split_every = split_every}, ddof);
            const double rtol = (op == Op::min || op == Op::max) ? 0 : 1e-9;
            EXPECT_TRUE(computes_to(got, reduce(X, axes, op, keepdims, ddof), rtol));
          }
        }
      }
    }
  }
}

TEST(ArrayReduction, EveryAxisCombinationOf3d) {
  Ref R = local_uniform({23, 19, 17}, 46, -1, 3);
  auto r = da::from_ndarray(nd_f64(R), {5, 4, 6});
  check_all_reductions(r, R, {{0}, {1}, {2}, {0, 1}, {0, 2}, {1, 2}, {2, 0}, {0, 1, 2}, {}});
}

TEST(ArrayReduction, TwoDimsFusedWithElementwise) {
  auto x = da::random::random(kShape, kChunks, 47);
  Ref X = ref_of(x.compute());
  auto e = x * 2.0 - 1.0;
  Ref E = map(X, [](double v) { return v * 2 - 1; });
  check_all_reductions(e, E, {{0}, {1}, {}});
  // A deeper tree: split_every = 3 over 11 x 7 blocks.
  EXPECT_TRUE(computes_to(e.var(0, 1, {.split_every = 3}), reduce(E, {0}, Op::var, false, 1), 1e-9));
  EXPECT_TRUE(computes_to(e.sum({}, {.split_every = 3}), reduce(E, {}, Op::sum), 1e-9));
}

TEST(ArrayReduction, ShapesOfFullReductions) {
  auto x = da::ones(kShape, kChunks);
  EXPECT_EQ(x.sum().shape(), Shape{});
  EXPECT_EQ(x.sum().size(), 1);
  EXPECT_EQ(x.sum({}, {.keepdims = true}).shape(), (Shape{1, 1}));
  EXPECT_EQ(x.mean(1).shape(), (Shape{203}));
  EXPECT_EQ(x.mean(1, {.keepdims = true}).shape(), (Shape{203, 1}));
  EXPECT_EQ(x.mean(1).chunks(), (da::Chunks{regular(203, 20)}));
  EXPECT_EQ(x.sum().item(), 203.0 * 197);
  EXPECT_EQ(x.sum({}, {.keepdims = true}).item(), 203.0 * 197);
  EXPECT_EQ(x.mean().item(), 1.0);
}

TEST(ArrayReduction, Dtypes) {
  Ref I = local_ints({31, 29}, 48, -100, 100);
  auto i = da::from_ndarray(nd_i64(I), {8, 7});
  EXPECT_EQ(i.sum().dtype(), DType::int64);
  EXPECT_TRUE(computes_to(i.sum(), reduce(I, {}, Op::sum)));
  EXPECT_EQ(i.sum(0).dtype(), DType::int64);
  EXPECT_TRUE(computes_to(i.sum(0), reduce(I, {0}, Op::sum)));
  EXPECT_EQ(i.min(1).dtype(), DType::int64);
  EXPECT_TRUE(computes_to(i.min(1), reduce(I, {1}, Op::min)));
  EXPECT_EQ(i.max().dtype(), DType::int64);
  EXPECT_TRUE(computes_to(i.max(), reduce(I, {}, Op::max)));
  EXPECT_EQ(i.mean().dtype(), DType::float64);
  EXPECT_TRUE(computes_to(i.mean(), reduce(I, {}, Op::mean), 1e-12));
  EXPECT_EQ(i.var(0).dtype(), DType::float64);
  EXPECT_TRUE(computes_to(i.var(0), reduce(I, {0}, Op::var), 1e-9));
  EXPECT_EQ(i.std({}, 1).dtype(), DType::float64);
  EXPECT_TRUE(computes_to(i.std({}, 1), reduce(I, {}, Op::std, false, 1), 1e-9));
  EXPECT_EQ(i.argmin(0).dtype(), DType::int64);
  EXPECT_EQ(i.argmax().dtype(), DType::int64);

  auto ar = da::arange(std::int64_t{1003}, da::ChunkSpec{100});
  EXPECT_EQ(ar.sum().item(), 1003.0 * 1002 / 2);
  EXPECT_EQ(ar.mean().item(), 501.0);

  auto b = i > 0.0;
  EXPECT_EQ(b.sum().dtype(), DType::int64);
  Ref B = map(I, [](double x) { return x > 0 ? 1.0 : 0.0; });
  EXPECT_TRUE(computes_to(b.sum(), reduce(B, {}, Op::sum)));
  EXPECT_TRUE(computes_to(b.sum(1), reduce(B, {1}, Op::sum)));
  EXPECT_EQ(b.mean().dtype(), DType::float64);
  EXPECT_TRUE(computes_to(b.mean(), reduce(B, {}, Op::mean), 1e-12));

  Ref F = local_uniform({31, 29}, 49);
  auto f32 = da::from_ndarray(nd_f64(F), {8, 7}).astype(DType::float32);
  Ref F32 = map(F, [](double x) { return static_cast<double>(static_cast<float>(x)); });
  EXPECT_EQ(f32.mean().dtype(), DType::float32);
  EXPECT_TRUE(computes_to(f32.mean(0), reduce(F32, {0}, Op::mean), 1e-5));
  EXPECT_EQ(f32.std().dtype(), DType::float32);
  EXPECT_TRUE(computes_to(f32.std(), reduce(F32, {}, Op::std), 1e-5));
  EXPECT_EQ(f32.sum().dtype(), DType::float32);
  EXPECT_EQ(f32.max().dtype(), DType::float32);
  EXPECT_TRUE(computes_to(f32.max(1), reduce(F32, {1}, Op::max)));
}

TEST(ArrayReduction, ArgminArgmaxFirstOccurrence) {
  // Few distinct values: ties everywhere, numpy returns the first index.
  Ref T = local_ints({23, 19, 17}, 50, 0, 3);
  auto t = da::from_ndarray(nd_f64(T), {5, 4, 6});
  for (int axis : {0, 1, 2}) {
    for (int split_every : {0, 2}) {
      for (bool keepdims : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "axis " << axis << " split_every " << split_every << " keepdims "
                                          << keepdims);
        da::ReduceOptions options{.keepdims = keepdims, .split_every = split_every};
        auto mn = t.argmin(axis, options), mx = t.argmax(axis, options);
        EXPECT_EQ(mn.dtype(), DType::int64);
        EXPECT_TRUE(computes_to(mn, arg_reduce(T, axis, false, keepdims)));
        EXPECT_TRUE(computes_to(mx, arg_reduce(T, axis, true, keepdims)));
      }
    }
  }
  EXPECT_TRUE(computes_to(t.argmin(std::nullopt, {.keepdims = true}), arg_reduce(T, std::nullopt, false, true)));
  for (int split_every : {0, 2}) {
    SCOPED_TRACE(::testing::Message() << "flattened, split_every " << split_every);
    EXPECT_TRUE(computes_to(t.argmin(std::nullopt, {.split_every = split_every}), arg_reduce(T, std::nullopt, false)));
    EXPECT_TRUE(computes_to(t.argmax(std::nullopt, {.split_every = split_every}), arg_reduce(T, std::nullopt, true)));
  }
  // The extreme in a late block: the index is into the whole (flattened) array.
  Ref A = local_uniform(kShape, 51);
  A.v[150 * 197 + 100] = -1;
  A.v[202 * 197 + 196] = 2;
  auto a = da::from_ndarray(nd_f64(A), kChunks);
  EXPECT_EQ(a.argmin().item(), 150.0 * 197 + 100);
  EXPECT_EQ(a.argmax().item(), 202.0 * 197 + 196);
  EXPECT_TRUE(computes_to(a.argmin(0), arg_reduce(A, 0, false)));
  EXPECT_TRUE(computes_to(a.argmax(1, {.split_every = 2}), arg_reduce(A, 1, true)));
  // On int64 data, and fused with elementwise operations.
  Ref I = local_ints({31, 29}, 52, -5, 5);
  auto i = da::from_ndarray(nd_i64(I), {8, 7});
  EXPECT_TRUE(computes_to(i.argmin(1), arg_reduce(I, 1, false)));
  EXPECT_TRUE(computes_to((-i).argmax(0), arg_reduce(map(I, [](double x) { return -x; }), 0, true)));
}

TEST(ArrayReduction, VarianceIsStableWithALargeOffset) {
  // E[x^2] - E[x]^2 would lose about 7 digits here; merging with Chan's algorithm does not.
  auto x = da::random::random(kShape, kChunks, 65) + 1e6;
  Ref X = ref_of(x.compute());
  for (int split_every : {0, 2}) {
    SCOPED_TRACE(::testing::Message() << "split_every " << split_every);
    da::ReduceOptions options{.split_every = split_every};
    EXPECT_TRUE(computes_to(x.var({}, 0, options), reduce(X, {}, Op::var), 1e-9));
    EXPECT_TRUE(computes_to(x.var(0, 1, options), reduce(X, {0}, Op::var, false, 1), 1e-9));
    EXPECT_TRUE(computes_to(x.std(1, 0, options), reduce(X, {1}, Op::std), 1e-9));
  }
  EXPECT_NEAR(x.var().item(), 1.0 / 12, 0.01);
}

TEST(ArrayReduction, NaNPropagatesAsInNumpy) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Ref N{{2, 3}, {1, nan, -1, 2, 3, 4}};
  auto n = da::from_ndarray(nd_f64(N), {1, 2});
  EXPECT_TRUE(computes_to(n.sum(), Ref{{}, {nan}}));
  EXPECT_TRUE(computes_to(n.mean(0), Ref{{3}, {1.5, nan, 1.5}}));
  EXPECT_TRUE(computes_to(n.min(), Ref{{}, {nan}}));
  EXPECT_TRUE(computes_to(n.max(0), Ref{{3}, {2, nan, 4}}));
  EXPECT_TRUE(computes_to(n.min(1), Ref{{2}, {nan, 2}}));
  // numpy's argmin / argmax give the index of the first NaN.
  EXPECT_TRUE(computes_to(n.argmin(), Ref{{}, {1}}));
  EXPECT_TRUE(computes_to(n.argmax(), Ref{{}, {1}}));
  EXPECT_TRUE(computes_to(n.argmin(1), Ref{{2}, {1, 0}}));
  EXPECT_TRUE(computes_to(n.argmax(0), Ref{{3}, {1, 0, 1}}));
}

TEST(ArrayReduction, NegativeAxesCountFromTheEnd) {
  Ref R = local_uniform({13, 17, 11}, 53);
  auto r = da::from_ndarray(nd_f64(R), {5, 4, 3});
  EXPECT_TRUE(computes_to(r.sum(-1), reduce(R, {2}, Op::sum), 1e-12));
  EXPECT_TRUE(computes_to(r.mean({-1, 0}), reduce(R, {2, 0}, Op::mean), 1e-12));
  EXPECT_TRUE(computes_to(r.argmax(-2), arg_reduce(R, 1, true)));
}

TEST(ArrayReduction, FullReductionCallablesAndItem) {
  Ref A = local_uniform(kShape, 54, -3, 5);
  auto a = da::from_ndarray(nd_f64(A), kChunks);
  auto near = [](double got, const Ref& want) {
    EXPECT_NEAR(got, want.v[0], 1e-9 * (std::abs(want.v[0]) + 1));
  };
  near(da::sum(a).item(), reduce(A, {}, Op::sum));
  near(da::mean(a).item(), reduce(A, {}, Op::mean));
  near(da::var(a).item(), reduce(A, {}, Op::var));
  near(da::std(a).item(), reduce(A, {}, Op::std));
  EXPECT_EQ(da::min(a).item(), reduce(A, {}, Op::min).v[0]);
  EXPECT_EQ(da::max(a).item(), reduce(A, {}, Op::max).v[0]);
  EXPECT_EQ(da::mean(a).shape(), Shape{});
  near(a.std().item(), reduce(A, {}, Op::std));
  near(a.mean(0).sum().item(), reduce(reduce(A, {0}, Op::mean), {}, Op::sum));
}

// ---------------------------------------------------------------------------------------
// Compositions: reductions feeding elementwise operations, reductions of views.

TEST(ArrayComposite, ReductionResultsBroadcastBack) {
  auto x = da::random::normal(kShape, kChunks, 2, 3, 68);
  Ref X = ref_of(x.compute());
  // x - x.mean(): a 0-d array broadcast against the whole.
  auto centered = x - x.mean();
  Ref C = broadcast(X, reduce(X, {}, Op::mean), std::minus<>());
  EXPECT_TRUE(computes_to(centered, C, 1e-12));
  EXPECT_NEAR(centered.sum().item(), 0.0, 1e-9);
  // Standardised columns: (203, 197) against (197,).
  auto z = (x - x.mean(0)) / x.std(0);
  Ref Z = broadcast(broadcast(X, reduce(X, {0}, Op::mean), std::minus<>()), reduce(X, {0}, Op::std), std::divides<>());
  EXPECT_TRUE(computes_to(z, Z, 1e-9));
  EXPECT_TRUE(computes_to(z.std(0), Ref{{197}, std::vector<double>(197, 1.0)}, 1e-9));
  // Rows over their sums, with keepdims: (203, 197) / (203, 1).
  auto rows = x / x.sum(1, {.keepdims = true, .split_every = 2});
  EXPECT_TRUE(computes_to(rows, broadcast(X, reduce(X, {1}, Op::sum, true), std::divides<>()), 1e-9));
  // A reduction of a reduction.
  EXPECT_TRUE(computes_to(x.max(0).min(), reduce(reduce(X, {0}, Op::max), {}, Op::min)));
  // An outer product of two reductions.
  auto outer = x.mean(1, {.keepdims = true}) * x.mean(0, {.keepdims = true});
  EXPECT_EQ(outer.shape(), kShape);
  EXPECT_TRUE(computes_to(outer, broadcast(reduce(X, {1}, Op::mean, true), reduce(X, {0}, Op::mean, true),
                                           std::multiplies<>()),
                          1e-9));
}

TEST(ArrayComposite, ReductionsOfViews) {
  Ref A = local_uniform(kShape, 69);
  auto a = da::from_ndarray(nd_f64(A), kChunks);
  const std::optional<std::int64_t> none;
  // Transposed.
  EXPECT_TRUE(computes_to(a.T().argmin(), arg_reduce(transpose(A), std::nullopt, false)));
  EXPECT_TRUE(computes_to(a.T().argmax(0), arg_reduce(transpose(A), 0, true)));
  EXPECT_TRUE(computes_to(a.T().sum(1, {.split_every = 2}), reduce(transpose(A), {1}, Op::sum), 1e-9));
  // Reversed and strided.
  std::vector<Slice> cut{Slice{none, none, -3}, Slice{190, 3, -2}};
  Ref S = slice(A, cut);
  EXPECT_TRUE(computes_to(a.slice(cut).argmin(), arg_reduce(S, std::nullopt, false)));
  EXPECT_TRUE(computes_to(a.slice(cut).argmax(1, {.split_every = 2}), arg_reduce(S, 1, true)));
  EXPECT_TRUE(computes_to(a.slice(cut).var(0, 1), reduce(S, {0}, Op::var, false, 1), 1e-9));
  // Irregular blocks.
  auto r = a.rechunk(da::ChunkSpec(da::Chunks{{1, 100, 2, 100}, {96, 1, 100}}));
  EXPECT_TRUE(computes_to(r.argmin(), arg_reduce(A, std::nullopt, false)));
  EXPECT_TRUE(computes_to(r.argmax(0), arg_reduce(A, 0, true)));
  EXPECT_TRUE(computes_to(r.argmin(1, {.split_every = 2}), arg_reduce(A, 1, false)));
  EXPECT_TRUE(computes_to(r.mean(0, {.split_every = 2}), reduce(A, {0}, Op::mean), 1e-9));
  // Reshaped.
  Ref R = local_uniform({12, 10}, 70);
  auto rr = da::from_ndarray(nd_f64(R), {4, 10}).reshape({12, 5, 2});
  Ref RR{{12, 5, 2}, R.v};
  EXPECT_TRUE(computes_to(rr.sum({1, 2}), reduce(RR, {1, 2}, Op::sum), 1e-12));
  EXPECT_TRUE(computes_to(rr.argmax(1), arg_reduce(RR, 1, true)));
  // int64 arange broadcast as a row against float64.
  auto row = da::arange(std::int64_t{197}, da::ChunkSpec{30});
  Ref ROW{{197}, {}};
  for (int n = 0; n < 197; ++n) ROW.v.push_back(n);
  EXPECT_EQ((a * row).dtype(), DType::float64);
  EXPECT_TRUE(computes_to((a * row).sum(1), reduce(broadcast(A, ROW, std::multiplies<>()), {1}, Op::sum), 1e-9));
}

// ---------------------------------------------------------------------------------------
// Matrix products.

TEST(ArrayDot, MatchesNaive) {
  Ref A = local_uniform({53, 47}, 55, -1, 1), B = local_uniform({47, 31}, 56, -1, 1);
  auto a = da::from_ndarray(nd_f64(A), {10, 9}), b = da::from_ndarray(nd_f64(B), {9, 8});
  auto d = da::dot(a, b);
  EXPECT_EQ(d.shape(), (Shape{53, 31}));
  EXPECT_EQ(d.chunks(), (da::Chunks{regular(53, 10), regular(31, 8)}));
  EXPECT_TRUE(computes_to(d, matmul(A, B), 1e-12));
  EXPECT_TRUE(computes_to(da::matmul(a, b), matmul(A, B), 1e-12));
  // Operands that are expressions.
  EXPECT_TRUE(computes_to(da::dot(a * 2.0, b + 1.0),
                          matmul(map(A, [](double x) { return x * 2; }), map(B, [](double x) { return x + 1; })),
                          1e-12));
  // x . x^T on the common odd shape.
  auto x = da::random::random(kShape, kChunks, 57);
  Ref X = ref_of(x.compute());
  auto g = da::dot(x, x.T());
  EXPECT_EQ(g.shape(), (Shape{203, 203}));
  EXPECT_TRUE(computes_to(g, matmul(X, transpose(X)), 1e-12));
  EXPECT_TRUE(computes_to(da::matmul(x.T(), x), matmul(transpose(X), X), 1e-12));
  // int64 stays int64.
  Ref I = local_ints({13, 11}, 58, -9, 9), J = local_ints({11, 7}, 59, -9, 9);
  auto ij = da::dot(da::from_ndarray(nd_i64(I), {5, 4}), da::from_ndarray(nd_i64(J), {4, 3}));
  EXPECT_EQ(ij.dtype(), DType::int64);
  EXPECT_TRUE(computes_to(ij, matmul(I, J)));
}

// ---------------------------------------------------------------------------------------
// The seed expression, fusion and culling.

TEST(ArraySeed, MeanOfXPlusXTransposed) {
  auto x = da::random::random({257, 257}, {40, 40}, 60);
  Ref X = ref_of(x.compute());
  auto z = (x + x.T()).mean(0);
  EXPECT_EQ(z.shape(), (Shape{257}));
  EXPECT_TRUE(computes_to(z, reduce(broadcast(X, transpose(X), std::plus<>()), {0}, Op::mean), 1e-12));

  auto big = da::random::random({1000, 1000}, {100, 100}, 61);
  Ref BIG = ref_of(big.compute());
  auto zb = (big + big.T()).mean(0);
  Ref want = reduce(broadcast(BIG, transpose(BIG), std::plus<>()), {0}, Op::mean);
  EXPECT_TRUE(computes_to(zb, want, 1e-12));
  // Each column mean is about 1: the sum is about 1000.
  EXPECT_NEAR(zb.sum().item() / 1000, 1.0, 0.01);
}

TEST(ArrayGraph, FusionShrinksTheSeedGraph) {
  auto x = da::random::random({1000, 1000}, {100, 100});
  EXPECT_GE(x.graph_size(false), 100u);
  EXPECT_LE(x.graph_size(false), 101u);
  EXPECT_GE(x.graph_size(true), 100u);
  EXPECT_LE(x.graph_size(true), 101u);
  auto z = (x + x.T()).mean(0);
  const auto fused = z.graph_size(true), unfused = z.graph_size(false);
  // One fused task per input block, plus the reduction tree over 10 x 10 blocks.
  EXPECT_LE(fused, 120u);
  EXPECT_GE(fused, 10u);
  EXPECT_GE(unfused, 300u);
}

namespace {
// How many tasks of the fused graph of `a` have keys starting with `prefix`.
std::size_t tasks_named(const da::Array& a, const std::string& prefix) {
  auto lowered = da::detail::lower({a});
  std::size_t n = 0;
  for (const auto& node : lowered.graph.nodes()) n += node.key.rfind(prefix, 0) == 0;
  return n;
}
}  // namespace

TEST(ArrayGraph, ChunksNeedingTheSameBlocksShareATask) {
  // Chunk (i, j) of (x + x.T) reads x[i, j] and x[j, i], as chunk (j, i) does: one task
  // makes both (45 pairs and the 10 diagonal chunks alone, for 10 x 10 blocks).
  auto x = da::random::random({1000, 1000}, {100, 100}, 64);
  auto z = (x + x.T()).mean(0);
  EXPECT_EQ(tasks_named(z, "mean_group-"), 45u);
  EXPECT_EQ(tasks_named(z, "mean_chunk-"), 10u);
  Ref X = ref_of(x.compute());
  EXPECT_TRUE(computes_to(z, reduce(broadcast(X, transpose(X), std::plus<>()), {0}, Op::mean), 1e-12));
  // A full reduction: both chunks of a pair fold into the same output block.
  auto s = (x - x.T() * 2.0).sum();
  EXPECT_EQ(tasks_named(s, "sum_group-"), 45u);
  Ref want = reduce(broadcast(X, map(transpose(X), [](double v) { return v * 2.0; }), std::minus<>()), {0, 1}, Op::sum);
  EXPECT_TRUE(computes_to(s, want, 1e-9));
  // Not symmetric: (x - x.T)[j, i] is not (x - x.T)[i, j].T, so both blocks are computed.
  auto anti = (x - x.T()).mean(0);
  EXPECT_TRUE(computes_to(anti, reduce(broadcast(X, transpose(X), std::minus<>()), {0}, Op::mean), 1e-12));
  // Symmetric: the mirrored block is reduced along the other axis (max), or transposed for
  // indices (argmax).
  EXPECT_TRUE(computes_to((x + x.T()).max(0), reduce(broadcast(X, transpose(X), std::plus<>()), {0}, Op::max)));
  EXPECT_TRUE(computes_to((x + x.T()).argmax(1), arg_reduce(broadcast(X, transpose(X), std::plus<>()), 1, true)));
  // Uneven blocks: the two chunks of a pair have different shapes.
  auto u = da::random::random({230, 230}, {60, 60}, 65);
  Ref U = ref_of(u.compute());
  auto zu = (u * u.T()).var(1);
  EXPECT_GT(tasks_named(zu, "var_group-"), 0u);
  EXPECT_TRUE(computes_to(zu, reduce(broadcast(U, transpose(U), std::multiplies<>()), {1}, Op::var), 1e-12));
}

TEST(ArrayGraph, OnlyRequestedChunksAreGrouped) {
  // Only the first output block is asked for: its chunks' partners belong to other output
  // blocks, so grouping them would compute partials nobody needs.
  auto x = da::random::random({1000, 1000}, {100, 100}, 66);
  auto first = (x + x.T()).mean(0).slice({Slice{0, 100}});
  EXPECT_EQ(tasks_named(first, "mean_group-"), 0u);
  EXPECT_EQ(tasks_named(first, "mean_chunk-"), 10u);
  Ref X = ref_of(x.compute());
  Ref want = slice(reduce(broadcast(X, transpose(X), std::plus<>()), {0}, Op::mean), {Slice{0, 100}});
  EXPECT_TRUE(computes_to(first, want, 1e-12));
}

TEST(ArrayGraph, GroupKeysNameTheirMembers) {
  // Chunks (0,1,2), (1,2,0) and (2,0,1) of y.sum(2) read the same three blocks. Asking for
  // all of s groups the three; asking for its first two block rows groups only two. The
  // scheduler keeps a key's first definition, so the two groups must not share a key.
  auto x = da::random::random({30, 30, 30}, {10, 10, 10}, 67);
  auto y = x + x.transpose({1, 2, 0}) + x.transpose({2, 0, 1});
  auto s = y.sum(2);
  auto part = s.slice({Slice{0, 20}});
  auto groups = [](const da::Array& a) {
    std::map<std::string, std::size_t> members;  // group key -> its number of results
    auto lowered = da::detail::lower({a});
    for (const auto& node : lowered.graph.nodes())
      if (node.key.rfind("sum_group-", 0) == 0)
        members[node.key] = decode_value<da::detail::ProgramGroup>(node.args.at(0).value).results.size();
    return members;
  };
  const auto whole = groups(s), half = groups(part);
  ASSERT_FALSE(whole.empty());
  ASSERT_FALSE(half.empty());
  for (const auto& [key, n] : half)
    if (auto it = whole.find(key); it != whole.end()) {
      EXPECT_EQ(it->second, n) << key;
    }
  Ref X = ref_of(x.compute());
  Ref Y = broadcast(broadcast(X, transpose(X, {1, 2, 0}), std::plus<>()), transpose(X, {2, 0, 1}), std::plus<>());
  EXPECT_TRUE(computes_to(part, slice(reduce(Y, {2}, Op::sum), {Slice{0, 20}}), 1e-12));
  EXPECT_TRUE(computes_to(s, reduce(Y, {2}, Op::sum), 1e-12));
}

TEST(ArrayGraph, CullingKeepsOnlyTheNeededBlocks) {
  auto x = da::random::random({1000, 1000}, {100, 100}, 62);
  EXPECT_GE(x.sum().graph_size(true), 100u);
  auto first_rows = x.slice({Slice{0, 100}}).sum();
  EXPECT_LE(first_rows.graph_size(true), 20u);
  auto one_block = (x + 1.0).slice({Slice{200, 250}, Slice{300, 350}});
  EXPECT_LE(one_block.graph_size(true), 2u);
}

TEST(ArrayGraph, NamesAndBlockKeys) {
  auto x = da::random::random(kShape, kChunks, 63);
  EXPECT_FALSE(x.name().empty());
  EXPECT_NE(x.name().find('-'), std::string::npos) << x.name();
  EXPECT_EQ(x.block_key({1, 2}), x.name() + ",1,2");
  EXPECT_EQ(x.block_key({10, 6}), x.name() + ",10,6");
  auto copy = x;
  EXPECT_EQ(copy.name(), x.name());
  // Different expressions have different names (their keys must not collide on a cluster).
  EXPECT_NE((x + 1.0).name(), (x + 2.0).name());
  EXPECT_NE((x + 1.0).name(), x.name());
  EXPECT_NE(x.T().name(), x.name());
  EXPECT_NE(x.sum(0).name(), x.sum(1).name());
  EXPECT_NE(da::random::random(kShape, kChunks, 64).name(), x.name());
  EXPECT_NE(da::zeros(kShape, kChunks).name(), da::ones(kShape, kChunks).name());
}

// ---------------------------------------------------------------------------------------
// Bad input: std::invalid_argument naming the shapes, chunks or axes, before computing.

TEST(ArrayBadInput, MismatchedShapes) {
  auto a = da::zeros({203, 197}, kChunks), b = da::zeros({197, 203}, kChunks);
  for (auto fn : std::vector<std::function<da::Array()>>{[&] { return a + b; }, [&] { return a - b; },
                                                         [&] { return a * b; }, [&] { return a / b; },
                                                         [&] { return a < b; }, [&] { return a == b; }}) {
    std::string m = invalid_argument_from(fn);
    EXPECT_TRUE(names_extents(m, {203, 197})) << m;
    EXPECT_TRUE(names_extents(m, {197, 203})) << m;
  }
  // Not broadcastable: (3, 4) and (5,).
  std::string m = invalid_argument_from([] { return da::zeros({3, 4}) + da::zeros({5}); });
  EXPECT_TRUE(names_extents(m, {3, 4})) << m;
  EXPECT_TRUE(m.find('5') != std::string::npos) << m;
}

TEST(ArrayBadInput, IncompatibleChunks) {
  auto a = da::zeros({100, 100}, {10, 10}), b = da::zeros({100, 100}, {20, 20});
  std::string m = invalid_argument_from([&] { return a + b; });
  EXPECT_TRUE(contains_ci(m, "chunk")) << m;
  m = invalid_argument_from([&] { return a < b; });
  EXPECT_TRUE(contains_ci(m, "chunk")) << m;
  // The seed expression needs square blocks.
  auto x = da::zeros({100, 100}, {10, 20});
  m = invalid_argument_from([&] { return x + x.T(); });
  EXPECT_TRUE(contains_ci(m, "chunk")) << m;
  // Broadcast row with other column chunks.
  m = invalid_argument_from([&] { return a + da::zeros({100}, {30}); });
  EXPECT_TRUE(contains_ci(m, "chunk")) << m;
}

TEST(ArrayBadInput, AxisOutOfRange) {
  auto a = da::zeros({20, 30}, {7, 8});
  for (auto fn : std::vector<std::function<da::Array()>>{
           [&] { return a.sum(2); }, [&] { return a.mean({0, 2}); }, [&] { return a.var(5); },
           [&] { return a.std(-3); }, [&] { return a.min(2); }, [&] { return a.max({3}); },
           [&] { return a.argmin(2); }, [&] { return a.argmax(-3); }}) {
    std::string m = invalid_argument_from(fn);
    EXPECT_TRUE(contains_ci(m, "axis") || contains_ci(m, "axes")) << m;
  }
  std::string m = invalid_argument_from([&] { return a.sum(2); });
  EXPECT_TRUE(m.find('2') != std::string::npos) << m;
  // A repeated axis.
  EXPECT_THROW(a.sum({0, 0}), std::invalid_argument);
}

TEST(ArrayBadInput, TransposeWithABadPermutation) {
  auto r = da::zeros({4, 5, 6}, {2, 2, 2});
  for (auto perm : std::vector<std::vector<int>>{{0, 0, 1}, {0, 1}, {0, 1, 3}, {0, 1, 2, 3}, {-5, 0, 1}}) {
    std::string m = invalid_argument_from([&] { return r.transpose(perm); });
    EXPECT_FALSE(m.empty());
  }
  std::string m = invalid_argument_from([&] { return r.transpose({0, 0, 1}); });
  EXPECT_TRUE(contains_ci(m, "axis") || contains_ci(m, "axes")) << m;
  m = invalid_argument_from([&] { return r.transpose({0, 1}); });
  EXPECT_TRUE(names_extents(m, {4, 5, 6})) << m;
  // Negative axes count from the end, as numpy.
  EXPECT_EQ(r.transpose({-1, 0, 1}).shape(), (Shape{6, 4, 5}));
}

TEST(ArrayBadInput, DotWithIncompatibleShapesOrChunks) {
  auto a = da::zeros({53, 47}, {10, 9});
  std::string m = invalid_argument_from([&] { return da::dot(a, da::zeros({46, 31}, {9, 8})); });
  EXPECT_TRUE(names_extents(m, {53, 47})) << m;
  EXPECT_TRUE(names_extents(m, {46, 31})) << m;
  m = invalid_argument_from([&] { return da::dot(a, da::zeros({47, 31}, {10, 8})); });
  EXPECT_TRUE(contains_ci(m, "chunk")) << m;
  m = invalid_argument_from([&] { return da::matmul(a, da::zeros({47, 31}, {10, 8})); });
  EXPECT_TRUE(contains_ci(m, "chunk")) << m;
  EXPECT_THROW(da::dot(da::zeros({4, 5, 6}, {2, 5, 6}), da::zeros({6, 2}, {6, 2})), std::invalid_argument);
}

TEST(ArrayBadInput, BadCreationSlicesAndRechunks) {
  EXPECT_THROW(da::zeros({203}, da::ChunkSpec(da::Chunks{{100, 100}})), std::invalid_argument);
  EXPECT_THROW(da::zeros({203, 10}, da::ChunkSpec(da::Chunks{{203}})), std::invalid_argument);
  EXPECT_THROW(da::zeros({203, 10}, {0, 10}), std::invalid_argument);
  EXPECT_THROW(da::zeros({-1, 10}, {5, 5}), std::invalid_argument);
  EXPECT_THROW(da::ones({10}, {5}).rechunk(da::ChunkSpec(da::Chunks{{3, 3}})), std::invalid_argument);
  auto a = da::zeros(kShape, kChunks);
  EXPECT_THROW(a.slice({Slice{0, 10, 0}}), std::invalid_argument);
  EXPECT_THROW(a.slice({Slice{}, Slice{}, Slice{}}), std::invalid_argument);  // more ranges than axes
  EXPECT_THROW(da::linspace(0, 1, -1, {3}), std::invalid_argument);
  EXPECT_THROW(da::arange(0, 10, 0, {3}), std::invalid_argument);
  // item() needs exactly one element.
  EXPECT_ANY_THROW(a.item());
}

TEST(ArrayBadInput, EmptyArrayThrows) {
  da::Array e;
  EXPECT_FALSE(e.valid());
  EXPECT_ANY_THROW(e.shape());
  EXPECT_ANY_THROW(e.compute());
  EXPECT_ANY_THROW(e.sum());
  EXPECT_ANY_THROW(e + 1.0);
  EXPECT_ANY_THROW(e + da::zeros({3}));
  EXPECT_ANY_THROW(e.T());
}

}  // namespace
}  // namespace distrib
