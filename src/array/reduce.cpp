// Reductions: one node per reduction; lower.cpp makes the tree of tasks.
#include <algorithm>
#include <stdexcept>

#include "array/node.hpp"

namespace distrib::array {

using detail::Node;
using detail::NodeKind;
using detail::ReduceKind;

namespace {
DType reduced_dtype(ReduceKind kind, DType in) {
  switch (kind) {
    case ReduceKind::sum: return in == DType::boolean || in == DType::int64 ? DType::int64 : in;
    case ReduceKind::mean:
    case ReduceKind::var:
    case ReduceKind::std: return in == DType::float32 ? DType::float32 : DType::float64;
    case ReduceKind::min:
    case ReduceKind::max: return in;
    case ReduceKind::argmin:
    case ReduceKind::argmax: return DType::int64;
  }
  return in;
}

Array reduce(const Array& a, ReduceKind kind, const Axes& axes, ReduceOptions options, int ddof, bool flat_arg) {
  if (!a.valid()) throw std::invalid_argument("distrib::array: reduction of an empty Array");
  const Shape& shape = a.shape();
  const std::size_t n = shape.size();
  std::vector<int> list;
  if (axes.all()) {
    for (std::size_t k = 0; k < n; ++k) list.push_back(static_cast<int>(k));
  } else {
    for (int ax : axes.list()) {
      if (ax < -static_cast<int>(n) || ax >= static_cast<int>(n))
        throw std::invalid_argument(std::string("distrib::array: ") + detail::reduce_name(kind) + ": axis " + std::to_string(ax) +
                                    " is out of range for an array of shape " + detail::shape_text(shape));
      list.push_back(ax < 0 ? ax + static_cast<int>(n) : ax);
    }
    std::sort(list.begin(), list.end());
    if (std::adjacent_find(list.begin(), list.end()) != list.end())
      throw std::invalid_argument(std::string("distrib::array: ") + detail::reduce_name(kind) + ": repeated axis");
  }
  if (options.split_every < 0 || options.split_every == 1)
    throw std::invalid_argument("distrib::array: split_every must be 0 (default) or at least 2");
  if (ddof < 0) throw std::invalid_argument("distrib::array: ddof must be >= 0");
  Shape out_shape;
  Chunks out_chunks;
  for (std::size_t k = 0; k < n; ++k) {
    bool reduced = std::find(list.begin(), list.end(), static_cast<int>(k)) != list.end();
    if (!reduced) {
      out_shape.push_back(shape[k]);
      out_chunks.push_back(a.chunks()[k]);
    } else if (options.keepdims) {
      out_shape.push_back(1);
      out_chunks.push_back({1});
    }
  }
  auto node = std::make_shared<Node>();
  node->kind = NodeKind::reduce;
  node->shape = out_shape;
  node->chunks = out_chunks;
  node->dtype = reduced_dtype(kind, a.dtype());
  node->inputs = {a.node()};
  node->axes = list;
  node->reduce_kind = kind;
  node->ddof = ddof;
  node->keepdims = options.keepdims;
  node->split_every = options.split_every ? options.split_every : 16;
  node->flat_arg = flat_arg;
  std::string desc = std::to_string(static_cast<int>(kind)) + "|" + std::to_string(ddof) + "|" +
                     std::to_string(options.keepdims) + "|" + std::to_string(node->split_every) + "|" +
                     std::to_string(flat_arg) + "|" + a.name();
  for (int ax : list) desc += "," + std::to_string(ax);
  node->name = std::string(detail::reduce_name(kind)) + "-" + detail::token_of(desc);
  return Array(node);
}
}  // namespace

Array Array::sum(Axes axes, ReduceOptions o) const { return reduce(*this, ReduceKind::sum, axes, o, 0, false); }
Array Array::mean(Axes axes, ReduceOptions o) const { return reduce(*this, ReduceKind::mean, axes, o, 0, false); }
Array Array::var(Axes axes, int ddof, ReduceOptions o) const { return reduce(*this, ReduceKind::var, axes, o, ddof, false); }
Array Array::std(Axes axes, int ddof, ReduceOptions o) const { return reduce(*this, ReduceKind::std, axes, o, ddof, false); }
Array Array::min(Axes axes, ReduceOptions o) const { return reduce(*this, ReduceKind::min, axes, o, 0, false); }
Array Array::max(Axes axes, ReduceOptions o) const { return reduce(*this, ReduceKind::max, axes, o, 0, false); }
Array Array::argmin(::std::optional<int> axis, ReduceOptions o) const {
  return axis ? reduce(*this, ReduceKind::argmin, Axes(*axis), o, 0, false) : reduce(*this, ReduceKind::argmin, Axes{}, o, 0, true);
}
Array Array::argmax(::std::optional<int> axis, ReduceOptions o) const {
  return axis ? reduce(*this, ReduceKind::argmax, Axes(*axis), o, 0, false) : reduce(*this, ReduceKind::argmax, Axes{}, o, 0, true);
}

Array FullReduction::operator()(const Array& a) const {
  switch (kind) {
    case sum: return a.sum();
    case mean: return a.mean();
    case var: return a.var();
    case std: return a.std();
    case min: return a.min();
    case max: return a.max();
  }
  throw ::std::invalid_argument("distrib::array: unknown reduction");
}

}  // namespace distrib::array
