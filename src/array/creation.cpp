// Creation functions: sources whose blocks are made from their position alone, and
// from_ndarray, which splits a local array.
#include <xxhash.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>

#include "array/node.hpp"

namespace distrib::array {

using detail::GenKind;
using detail::Node;
using detail::NodeKind;

namespace {
Array source(const Shape& shape, const ChunkSpec& spec, DType dtype, GenKind kind, double a, double b, std::uint64_t seed,
             const char* prefix) {
  auto n = std::make_shared<Node>();
  n->kind = NodeKind::source;
  n->shape = shape;
  n->chunks = spec.resolve(shape, itemsize(dtype));
  n->dtype = dtype;
  n->generator.kind = static_cast<std::uint8_t>(kind);
  n->generator.dtype = static_cast<std::uint8_t>(dtype);
  n->generator.a = a;
  n->generator.b = b;
  n->generator.seed = seed;
  n->generator.global_shape = shape;
  char desc[160];
  std::snprintf(desc, sizeof desc, "%d|%d|%.17g|%.17g|%llu|", static_cast<int>(kind), static_cast<int>(dtype), a, b,
                static_cast<unsigned long long>(seed));
  n->name = std::string(prefix) + "-" +
            detail::token_of(desc + detail::shape_text(shape) + detail::chunks_text(n->chunks));
  return Array(n);
}

std::uint64_t fresh_seed() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}
}  // namespace

Array zeros(const Shape& shape, const ChunkSpec& chunks, DType dtype) {
  return source(shape, chunks, dtype, GenKind::full, 0, 0, 0, "zeros");
}
Array ones(const Shape& shape, const ChunkSpec& chunks, DType dtype) {
  return source(shape, chunks, dtype, GenKind::full, 1, 0, 0, "ones");
}
Array full(const Shape& shape, double value, const ChunkSpec& chunks, DType dtype) {
  return source(shape, chunks, dtype, GenKind::full, value, 0, 0, "full");
}

Array arange(double start, double stop, double step, const ChunkSpec& chunks) {
  if (step == 0 || !std::isfinite(step)) throw std::invalid_argument("distrib::array: arange step must be finite and non-zero");
  const auto count = static_cast<std::int64_t>(std::max(0.0, std::ceil((stop - start) / step)));
  const bool integral = std::floor(start) == start && std::floor(stop) == stop && std::floor(step) == step;
  return source({count}, chunks, integral ? DType::int64 : DType::float64, GenKind::arange, start, step, 0, "arange");
}
Array arange(std::int64_t stop, const ChunkSpec& chunks) {
  return arange(0.0, static_cast<double>(stop), 1.0, chunks);
}

Array linspace(double start, double stop, std::int64_t num, const ChunkSpec& chunks, bool endpoint) {
  if (num < 0) throw std::invalid_argument("distrib::array: linspace needs num >= 0, got " + std::to_string(num));
  const std::int64_t div = endpoint ? num - 1 : num;
  const double step = div > 0 ? (stop - start) / static_cast<double>(div) : 0.0;
  return source({num}, chunks, DType::float64, GenKind::arange, start, step, 0, "linspace");
}

Array from_ndarray(const NDArray& a, const ChunkSpec& spec) {
  auto n = std::make_shared<Node>();
  n->kind = NodeKind::data;
  n->shape = a.shape();
  n->chunks = spec.resolve(a.shape(), itemsize(a.dtype()));
  n->dtype = a.dtype();
  n->data = a;
  // Named by content, as Dask's tokenize of a numpy array.
  auto bytes = a.bytes();
  std::string desc = std::to_string(XXH3_64bits(bytes.data(), bytes.size()));
  n->name = "array-" + detail::token_of(desc + to_string(a.dtype()) + detail::shape_text(a.shape()) +
                                        detail::chunks_text(n->chunks));
  return Array(n);
}

namespace random {
Array random(const Shape& shape, const ChunkSpec& chunks, std::optional<std::uint64_t> seed) {
  return source(shape, chunks, DType::float64, GenKind::random, 0, 1, seed ? *seed : fresh_seed(), "random_sample");
}
Array uniform(const Shape& shape, const ChunkSpec& chunks, double low, double high, std::optional<std::uint64_t> seed) {
  return source(shape, chunks, DType::float64, GenKind::uniform, low, high, seed ? *seed : fresh_seed(), "uniform");
}
Array normal(const Shape& shape, const ChunkSpec& chunks, double mean, double stddev, std::optional<std::uint64_t> seed) {
  if (stddev < 0) throw std::invalid_argument("distrib::array: normal needs stddev >= 0");
  return source(shape, chunks, DType::float64, GenKind::normal, mean, stddev, seed ? *seed : fresh_seed(), "normal");
}
}  // namespace random

}  // namespace distrib::array
