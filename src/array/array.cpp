// Array: accessors and the operations that build new nodes (checked here, at graph-building
// time, so bad shapes or axes raise before anything is sent).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <stdexcept>

#include "array/kernels.hpp"
#include "array/node.hpp"

namespace distrib::array {

using detail::Node;
using detail::NodeKind;
using detail::OpCode;
using detail::shape_text;

namespace {
const Node& checked(const detail::NodePtr& n) {
  if (!n) throw std::invalid_argument("distrib::array: operation on an empty Array");
  return *n;
}

std::shared_ptr<Node> make(NodeKind kind, Shape shape, Chunks chunks, DType dtype, const std::string& prefix,
                           const std::string& description, std::vector<detail::NodePtr> inputs) {
  auto n = std::make_shared<Node>();
  n->kind = kind;
  n->shape = std::move(shape);
  n->chunks = std::move(chunks);
  n->dtype = dtype;
  std::string full = prefix + "|" + description;
  for (const auto& i : inputs) full += "|" + i->name;
  n->name = prefix + "-" + detail::token_of(full);
  n->inputs = std::move(inputs);
  return n;
}

int normalize_axis(int axis, std::size_t ndim, const Shape& shape) {
  const int n = static_cast<int>(ndim);
  if (axis < -n || axis >= n)
    throw std::invalid_argument("distrib::array: axis " + std::to_string(axis) + " is out of range for an array of shape " +
                                shape_text(shape));
  return axis < 0 ? axis + n : axis;
}

Array elementwise(OpCode op, const Array& a, const Array& b) {
  const Node& x = checked(a.node());
  const Node& y = checked(b.node());
  const std::size_t n = std::max(x.shape.size(), y.shape.size());
  Shape shape(n);
  Chunks chunks(n);
  for (std::size_t k = 0; k < n; ++k) {
    // Axes align from the right, as numpy's broadcasting.
    const std::ptrdiff_t kx = static_cast<std::ptrdiff_t>(k) - static_cast<std::ptrdiff_t>(n - x.shape.size());
    const std::ptrdiff_t ky = static_cast<std::ptrdiff_t>(k) - static_cast<std::ptrdiff_t>(n - y.shape.size());
    const std::int64_t ex = kx >= 0 ? x.shape[static_cast<std::size_t>(kx)] : 1;
    const std::int64_t ey = ky >= 0 ? y.shape[static_cast<std::size_t>(ky)] : 1;
    if (ex != ey && ex != 1 && ey != 1)
      throw std::invalid_argument(std::string("distrib::array: operands could not be broadcast together with shapes ") +
                                  shape_text(x.shape) + " " + shape_text(y.shape) + " (" + detail::op_name(op) + ")");
    if (ex == ey && ex != 1 && kx >= 0 && ky >= 0 &&
        x.chunks[static_cast<std::size_t>(kx)] != y.chunks[static_cast<std::size_t>(ky)])
      throw std::invalid_argument("distrib::array: incompatible chunks along axis " + std::to_string(k) + ": " +
                                  shape_text(x.chunks[static_cast<std::size_t>(kx)]) + " and " +
                                  shape_text(y.chunks[static_cast<std::size_t>(ky)]) + " (shapes " + shape_text(x.shape) +
                                  " and " + shape_text(y.shape) + "); rechunk one of them");
    shape[k] = ex == 1 ? ey : ex;
    if (ex != 1 || (ey == 1 && kx >= 0)) chunks[k] = x.chunks[static_cast<std::size_t>(kx)];
    else chunks[k] = y.chunks[static_cast<std::size_t>(ky)];
  }
  auto node = make(NodeKind::elementwise, shape, chunks, detail::result_dtype(op, x.dtype, y.dtype), detail::op_name(op),
                   std::to_string(static_cast<int>(op)), {a.node(), b.node()});
  node->op = op;
  return Array(node);
}

Array with_scalar(OpCode op, const Array& a, double s, bool scalar_left) {
  const Node& x = checked(a.node());
  // The result dtype follows the kernel's rule for scalars.
  const DType sd = detail::scalar_dtype(x.dtype, s);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%d|%d|%.17g", static_cast<int>(op), scalar_left ? 1 : 0, s);
  auto node = make(NodeKind::elementwise, x.shape, x.chunks, detail::result_dtype(op, x.dtype, sd), detail::op_name(op), buf,
                   {a.node()});
  node->op = op;
  node->scalar = s;
  node->scalar_side = scalar_left ? 2 : 1;
  return Array(node);
}

Array unary_op(OpCode op, const Array& a) {
  const Node& x = checked(a.node());
  auto node = make(NodeKind::elementwise, x.shape, x.chunks, detail::result_dtype(op, x.dtype, x.dtype), detail::op_name(op),
                   std::to_string(static_cast<int>(op)), {a.node()});
  node->op = op;
  return Array(node);
}
}  // namespace

const Shape& Array::shape() const { return checked(node_).shape; }
std::int64_t Array::size() const { return detail::product(shape()); }
DType Array::dtype() const { return checked(node_).dtype; }
const Chunks& Array::chunks() const { return checked(node_).chunks; }
Shape Array::numblocks() const { return detail::numblocks_of(chunks()); }
std::int64_t Array::npartitions() const { return detail::product(numblocks()); }
const std::string& Array::name() const { return checked(node_).name; }

std::string Array::block_key(const Shape& index) const {
  std::string key = name();
  for (auto i : index) key += "," + std::to_string(i);
  return key;
}

Array Array::transpose(std::vector<int> axes) const {
  const Node& x = checked(node_);
  const std::size_t n = x.shape.size();
  if (axes.empty()) {
    axes.resize(n);
    std::iota(axes.rbegin(), axes.rend(), 0);
  }
  if (axes.size() != n)
    throw std::invalid_argument("distrib::array: transpose needs " + std::to_string(n) + " axes for shape " + shape_text(x.shape) +
                                ", got " + std::to_string(axes.size()));
  std::vector<bool> seen(n, false);
  for (auto& a : axes) {
    a = normalize_axis(a, n, x.shape);
    if (seen[static_cast<std::size_t>(a)])
      throw std::invalid_argument("distrib::array: transpose repeats axis " + std::to_string(a));
    seen[static_cast<std::size_t>(a)] = true;
  }
  Shape shape(n);
  Chunks chunks(n);
  std::string desc;
  for (std::size_t k = 0; k < n; ++k) {
    shape[k] = x.shape[static_cast<std::size_t>(axes[k])];
    chunks[k] = x.chunks[static_cast<std::size_t>(axes[k])];
    desc += std::to_string(axes[k]) + ",";
  }
  auto node = make(NodeKind::transpose, shape, chunks, x.dtype, "transpose", desc, {node_});
  node->axes = axes;
  return Array(node);
}

Array Array::astype(DType to) const {
  const Node& x = checked(node_);
  if (to == x.dtype) return *this;
  auto node = make(NodeKind::astype, x.shape, x.chunks, to, "astype", to_string(to), {node_});
  return Array(node);
}

Array Array::slice(std::vector<Slice> ranges) const {
  const Node& x = checked(node_);
  const std::size_t n = x.shape.size();
  if (ranges.size() > n)
    throw std::invalid_argument("distrib::array: " + std::to_string(ranges.size()) + " ranges for an array of shape " +
                                shape_text(x.shape));
  ranges.resize(n);
  Shape shape(n);
  Chunks chunks(n);
  std::vector<detail::SliceAxis> axes(n);
  std::string desc;
  for (std::size_t k = 0; k < n; ++k) {
    const std::int64_t len = x.shape[k], step = ranges[k].step;
    if (step == 0) throw std::invalid_argument("distrib::array: slice step cannot be zero (axis " + std::to_string(k) + ")");
    // Python's slice.indices(len).
    auto clamp = [&](std::optional<std::int64_t> v, std::int64_t dflt) {
      if (!v) return dflt;
      std::int64_t i = *v < 0 ? *v + len : *v;
      if (step > 0) return std::clamp<std::int64_t>(i, 0, len);
      return std::clamp<std::int64_t>(i, -1, len - 1);
    };
    const std::int64_t start = clamp(ranges[k].start, step > 0 ? 0 : len - 1);
    const std::int64_t stop = clamp(ranges[k].stop, step > 0 ? len : -1);
    const std::int64_t count = step > 0 ? std::max<std::int64_t>(0, (stop - start + step - 1) / step)
                                        : std::max<std::int64_t>(0, (start - stop - step - 1) / (-step));
    shape[k] = count;
    desc += std::to_string(start) + ":" + std::to_string(stop) + ":" + std::to_string(step) + ",";
    // One output block per input block the selection touches, in selection order.
    auto off = detail::chunk_offsets(x.chunks[k]);
    auto& ax = axes[k];
    ax.step = step;
    std::int64_t i = 0;
    while (i < count) {
      const std::int64_t pos = start + i * step;
      const auto b = static_cast<std::int64_t>(std::upper_bound(off.begin(), off.end(), pos) - off.begin()) - 1;
      // How many selected elements fall in block b from here on.
      std::int64_t last_in_block = step > 0 ? off[static_cast<std::size_t>(b) + 1] - 1 : off[static_cast<std::size_t>(b)];
      std::int64_t take = step > 0 ? (last_in_block - pos) / step + 1 : (pos - last_in_block) / (-step) + 1;
      take = std::min(take, count - i);
      ax.in_block.push_back(b);
      ax.start.push_back(pos - off[static_cast<std::size_t>(b)]);
      chunks[k].push_back(take);
      i += take;
    }
    if (count == 0) {
      chunks[k] = {0};
      ax.in_block = {0};
      ax.start = {0};
    }
  }
  auto node = make(NodeKind::slice, shape, chunks, x.dtype, "getitem", desc, {node_});
  node->slice = std::move(axes);
  return Array(node);
}

Array Array::reshape(Shape new_shape) const {
  const Node& x = checked(node_);
  const std::int64_t total = detail::product(x.shape);
  int unknown = -1;
  std::int64_t known = 1;
  for (std::size_t k = 0; k < new_shape.size(); ++k) {
    if (new_shape[k] == -1) {
      if (unknown >= 0) throw std::invalid_argument("distrib::array: reshape can infer only one extent");
      unknown = static_cast<int>(k);
    } else if (new_shape[k] < 0) {
      throw std::invalid_argument("distrib::array: negative extent in reshape to " + shape_text(new_shape));
    } else {
      known *= new_shape[k];
    }
  }
  if (unknown >= 0 && known > 0 && total % known == 0) new_shape[static_cast<std::size_t>(unknown)] = total / known;
  if (detail::product(new_shape) != total)
    throw std::invalid_argument("distrib::array: cannot reshape an array of shape " + shape_text(x.shape) + " into shape " +
                                shape_text(new_shape));
  if (new_shape == x.shape) return *this;
  // Group axes into runs with equal products; within a group, blocks must only split
  // along the first axis (on both sides), so each output block is one input block.
  const std::size_t ni = x.shape.size(), no = new_shape.size();
  Chunks chunks(no);
  std::vector<int> from(no, -1);
  auto incompatible = [&]() {
    return std::invalid_argument("distrib::array: reshape from " + shape_text(x.shape) + " to " + shape_text(new_shape) +
                                 " would move data between blocks (chunks " + detail::chunks_text(x.chunks) +
                                 "); rechunk so that the reshaped axes other than the first of each group are whole");
  };
  std::size_t i = 0, o = 0;
  while (i < ni || o < no) {
    // Skip extent-1 axes on either side: they are single blocks.
    if (o < no && new_shape[o] == 1 && (i >= ni || x.shape[i] != 1)) {
      chunks[o] = {1};
      ++o;
      continue;
    }
    if (i < ni && x.shape[i] == 1 && (o >= no || new_shape[o] != 1)) {
      ++i;
      continue;
    }
    if (i >= ni || o >= no) break;
    std::size_t i1 = i + 1, o1 = o + 1;
    std::int64_t pi = x.shape[i], po = new_shape[o];
    while (pi != po) {
      if (pi < po) pi *= x.shape[i1++];
      else po *= new_shape[o1++];
    }
    for (std::size_t k = i + 1; k < i1; ++k)
      if (x.chunks[k].size() != 1) throw incompatible();
    const std::int64_t in_rest = pi / x.shape[i];
    const std::int64_t out_rest = po / new_shape[o];
    for (std::size_t k = o + 1; k < o1; ++k) chunks[k] = {new_shape[k]};
    for (auto c : x.chunks[i]) {
      if ((c * in_rest) % out_rest != 0) throw incompatible();
      chunks[o].push_back(c * in_rest / out_rest);
    }
    from[o] = static_cast<int>(i);
    i = i1;
    o = o1;
  }
  std::string desc;
  for (auto e : new_shape) desc += std::to_string(e) + ",";
  auto node = make(NodeKind::reshape, new_shape, chunks, x.dtype, "reshape", desc, {node_});
  node->reshape_from = from;
  return Array(node);
}

Array Array::rechunk(const ChunkSpec& spec) const {
  const Node& x = checked(node_);
  Chunks chunks = spec.resolve(x.shape, itemsize(x.dtype));
  if (chunks == x.chunks) return *this;
  auto node = make(NodeKind::rechunk, x.shape, chunks, x.dtype, "rechunk-merge", detail::chunks_text(chunks), {node_});
  return Array(node);
}

Array operator+(const Array& a, const Array& b) { return elementwise(OpCode::add, a, b); }
Array operator-(const Array& a, const Array& b) { return elementwise(OpCode::sub, a, b); }
Array operator*(const Array& a, const Array& b) { return elementwise(OpCode::mul, a, b); }
Array operator/(const Array& a, const Array& b) { return elementwise(OpCode::div, a, b); }
Array operator+(const Array& a, double b) { return with_scalar(OpCode::add, a, b, false); }
Array operator-(const Array& a, double b) { return with_scalar(OpCode::sub, a, b, false); }
Array operator*(const Array& a, double b) { return with_scalar(OpCode::mul, a, b, false); }
Array operator/(const Array& a, double b) { return with_scalar(OpCode::div, a, b, false); }
Array operator+(double a, const Array& b) { return with_scalar(OpCode::add, b, a, true); }
Array operator-(double a, const Array& b) { return with_scalar(OpCode::sub, b, a, true); }
Array operator*(double a, const Array& b) { return with_scalar(OpCode::mul, b, a, true); }
Array operator/(double a, const Array& b) { return with_scalar(OpCode::div, b, a, true); }
Array operator-(const Array& a) { return unary_op(OpCode::neg, a); }
Array operator<(const Array& a, const Array& b) { return elementwise(OpCode::lt, a, b); }
Array operator<=(const Array& a, const Array& b) { return elementwise(OpCode::le, a, b); }
Array operator>(const Array& a, const Array& b) { return elementwise(OpCode::gt, a, b); }
Array operator>=(const Array& a, const Array& b) { return elementwise(OpCode::ge, a, b); }
Array operator==(const Array& a, const Array& b) { return elementwise(OpCode::eq, a, b); }
Array operator!=(const Array& a, const Array& b) { return elementwise(OpCode::ne, a, b); }
Array operator<(const Array& a, double b) { return with_scalar(OpCode::lt, a, b, false); }
Array operator<=(const Array& a, double b) { return with_scalar(OpCode::le, a, b, false); }
Array operator>(const Array& a, double b) { return with_scalar(OpCode::gt, a, b, false); }
Array operator>=(const Array& a, double b) { return with_scalar(OpCode::ge, a, b, false); }
Array operator==(const Array& a, double b) { return with_scalar(OpCode::eq, a, b, false); }
Array operator!=(const Array& a, double b) { return with_scalar(OpCode::ne, a, b, false); }
Array abs(const Array& a) { return unary_op(OpCode::abs, a); }
Array sqrt(const Array& a) { return unary_op(OpCode::sqrt, a); }
Array exp(const Array& a) { return unary_op(OpCode::exp, a); }
Array log(const Array& a) { return unary_op(OpCode::log, a); }

Array dot(const Array& a, const Array& b) {
  const Node& x = checked(a.node());
  const Node& y = checked(b.node());
  if (x.shape.size() != 2 || y.shape.size() != 2)
    throw std::invalid_argument("distrib::array: dot needs two 2-d arrays, got shapes " + shape_text(x.shape) + " and " +
                                shape_text(y.shape));
  if (x.shape[1] != y.shape[0])
    throw std::invalid_argument("distrib::array: shapes " + shape_text(x.shape) + " and " + shape_text(y.shape) +
                                " are not aligned for dot");
  if (x.chunks[1] != y.chunks[0])
    throw std::invalid_argument("distrib::array: dot needs the column chunks of " + shape_text(x.shape) + " " +
                                shape_text(x.chunks[1]) + " to equal the row chunks of " + shape_text(y.shape) + " " +
                                shape_text(y.chunks[0]) + "; rechunk one of them");
  DType d = detail::promote(x.dtype, y.dtype);
  if (d == DType::boolean) d = DType::int64;
  auto node = make(NodeKind::dot, {x.shape[0], y.shape[1]}, {x.chunks[0], y.chunks[1]}, d, "dot", "", {a.node(), b.node()});
  return Array(node);
}

Array matmul(const Array& a, const Array& b) { return dot(a, b); }

}  // namespace distrib::array
