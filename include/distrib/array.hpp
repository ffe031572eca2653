#pragma once
// distrib::array — lazy chunked N-d arrays, as dask.array.
//
//   namespace da = distrib::array;
//   auto x = da::random::random({10000, 10000}, {1000, 1000});   // 10 x 10 blocks
//   auto y = x + x.T();
//   auto z = y.mean(0);
//   distrib::NDArray r = z.compute();                  // local thread pool, no cluster
//   distrib::NDArray s = client.compute(z).result();   // on a cluster
//
// An Array is an expression: nothing runs until compute(), client.compute() or
// client.persist(). Building it checks shapes, chunks, axes and dtypes and throws
// std::invalid_argument naming them, before anything is sent. Blocks are NDArrays; block
// keys are "name-token,i,j" so that tasks group by name. When the graph is lowered,
// creation functions and elementwise operations (with transposes, slices and broadcasts)
// fuse into one task per output block, also into the first stage of a reduction, so
// `(x + x.T()).mean(0)` never materialises `x + x.T()`.
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "distrib/graph.hpp"
#include "distrib/ndarray.hpp"

namespace distrib {
class Client;
}

namespace distrib::array {

using Shape = std::vector<std::int64_t>;
/// Block sizes along each axis, e.g. {{1000, 1000, 3}, {500, 500}}.
using Chunks = std::vector<std::vector<std::int64_t>>;

/// How to cut an array into blocks. `{1000, 1000}`: blocks of (at most) 1000 x 1000, the
/// last ones smaller; -1 along an axis means one block for the whole axis. `Chunks`
/// gives every block size explicitly. A default ChunkSpec ("auto") makes blocks of about
/// 128 MiB, splitting the leading axes first.
class ChunkSpec {
 public:
  ChunkSpec() = default;
  ChunkSpec(std::initializer_list<std::int64_t> block_shape) : block_shape_(block_shape), given_(true) {}
  ChunkSpec(Shape block_shape) : block_shape_(std::move(block_shape)), given_(true) {}
  ChunkSpec(Chunks explicit_chunks) : explicit_(std::move(explicit_chunks)), given_(true), is_explicit_(true) {}
  /// The chunks for an array of `shape` and element size; throws std::invalid_argument.
  Chunks resolve(const Shape& shape, std::size_t itemsize) const;

 private:
  Shape block_shape_;
  Chunks explicit_;
  bool given_ = false;
  bool is_explicit_ = false;
};

/// A range along one axis, as Python's start:stop:step (negative values count from the
/// end; a negative step walks backwards). Slice{} is the whole axis.
struct Slice {
  std::optional<std::int64_t> start, stop;
  std::int64_t step = 1;
};

/// The axes of a reduction: one (`0`), several (`{0, 1}`) or all (default).
class Axes {
 public:
  Axes() = default;
  Axes(int axis) : list_{axis}, all_(false) {}
  Axes(std::initializer_list<int> axes) : list_(axes), all_(false) {}
  Axes(std::vector<int> axes) : list_(std::move(axes)), all_(false) {}
  bool all() const { return all_; }
  const std::vector<int>& list() const { return list_; }

 private:
  std::vector<int> list_;
  bool all_ = true;
};

/// Options of reductions.
struct ReduceOptions {
  /// Keep reduced axes with extent 1.
  bool keepdims = false;
  /// How many blocks one task of the reduction tree combines (Dask's split_every); 0 = 16.
  int split_every = 0;
};

namespace detail {
struct Node;
using NodePtr = std::shared_ptr<const Node>;
}  // namespace detail

/// A lazy chunked array. Copies share the expression; operations return new Arrays.
class Array {
 public:
  /// An empty array: valid() is false and every operation throws.
  Array() = default;
  explicit Array(detail::NodePtr node) : node_(std::move(node)) {}

  bool valid() const { return node_ != nullptr; }
  const Shape& shape() const;
  std::size_t ndim() const { return shape().size(); }
  std::int64_t size() const;
  DType dtype() const;
  std::int64_t nbytes() const { return size() * static_cast<std::int64_t>(itemsize(dtype())); }
  const Chunks& chunks() const;
  /// Blocks along each axis.
  Shape numblocks() const;
  std::int64_t npartitions() const;
  /// "name-token", the prefix of every block key.
  const std::string& name() const;
  /// The key of one block, "name-token,i,j".
  std::string block_key(const Shape& block_index) const;

  /// Reversed axes (a.T in numpy).
  Array T() const { return transpose(); }
  /// Permuted axes; empty = reversed.
  Array transpose(std::vector<int> axes = {}) const;
  /// A new shape with the same elements in C order. One extent may be -1. Only where
  /// block boundaries allow it without moving data between blocks (the axes that change
  /// must be whole blocks except the first of each group); otherwise throws, naming the
  /// shapes and chunks, and rechunk() first helps.
  Array reshape(Shape shape) const;
  /// Ranges with steps along each axis (missing trailing axes are whole). Output blocks
  /// follow the input's block boundaries.
  Array slice(std::vector<Slice> ranges) const;
  /// The same array cut into other blocks.
  Array rechunk(const ChunkSpec& chunks) const;
  /// Elements converted to another dtype.
  Array astype(DType dtype) const;

  // Reductions, as numpy's (over all axes by default). sum, min and max keep integer
  // dtypes (bool sums to int64); mean, var and std give float64 (float32 for float32);
  // var and std merge partial results with Chan's parallel algorithm.
  Array sum(Axes axes = {}, ReduceOptions options = {}) const;
  Array mean(Axes axes = {}, ReduceOptions options = {}) const;
  Array var(Axes axes = {}, int ddof = 0, ReduceOptions options = {}) const;
  Array std(Axes axes = {}, int ddof = 0, ReduceOptions options = {}) const;
  Array min(Axes axes = {}, ReduceOptions options = {}) const;
  Array max(Axes axes = {}, ReduceOptions options = {}) const;
  /// Index of the smallest element along `axis` (int64), or into the flattened array when
  /// `axis` is omitted.
  Array argmin(std::optional<int> axis = std::nullopt, ReduceOptions options = {}) const;
  Array argmax(std::optional<int> axis = std::nullopt, ReduceOptions options = {}) const;

  /// Computes the whole array on a thread pool in this process (one thread per core) and
  /// returns it as one NDArray. Throws if the array has blocks on a cluster (from
  /// client.persist / client.scatter): use client.compute for those.
  NDArray compute() const;
  /// The single value of a one-element array (e.g. a full reduction), computed locally.
  double item() const;

  /// Tasks the array lowers to: all of them (`optimize = false`), or after culling and
  /// fusion (what compute sends).
  std::size_t graph_size(bool optimize = true) const;

  const detail::NodePtr& node() const { return node_; }

 private:
  detail::NodePtr node_;
};

// Elementwise arithmetic, with numpy's broadcasting (axes of extent 1, missing leading
// axes, scalars) and type promotion (bool < int64 < float32 < float64; `/` is always
// float). Operands with the same extents must have the same chunks along that axis.
Array operator+(const Array& a, const Array& b);
Array operator-(const Array& a, const Array& b);
Array operator*(const Array& a, const Array& b);
Array operator/(const Array& a, const Array& b);
Array operator+(const Array& a, double b);
Array operator-(const Array& a, double b);
Array operator*(const Array& a, double b);
Array operator/(const Array& a, double b);
Array operator+(double a, const Array& b);
Array operator-(double a, const Array& b);
Array operator*(double a, const Array& b);
Array operator/(double a, const Array& b);
Array operator-(const Array& a);
// Comparisons give bool arrays.
Array operator<(const Array& a, const Array& b);
Array operator<=(const Array& a, const Array& b);
Array operator>(const Array& a, const Array& b);
Array operator>=(const Array& a, const Array& b);
Array operator==(const Array& a, const Array& b);
Array operator!=(const Array& a, const Array& b);
Array operator<(const Array& a, double b);
Array operator<=(const Array& a, double b);
Array operator>(const Array& a, double b);
Array operator>=(const Array& a, double b);
Array operator==(const Array& a, double b);
Array operator!=(const Array& a, double b);
Array abs(const Array& a);
Array sqrt(const Array& a);
Array exp(const Array& a);
Array log(const Array& a);
/// Matrix product of two 2-d arrays; a's column chunks must equal b's row chunks.
Array dot(const Array& a, const Array& b);
Array matmul(const Array& a, const Array& b);

// Creation. Each block is made by its own task from its position alone.
Array zeros(const Shape& shape, const ChunkSpec& chunks = {}, DType dtype = DType::float64);
Array ones(const Shape& shape, const ChunkSpec& chunks = {}, DType dtype = DType::float64);
Array full(const Shape& shape, double value, const ChunkSpec& chunks = {}, DType dtype = DType::float64);
/// start, start + step, ... below stop (1-d); int64 if all three are integers, else float64.
/// (The step has no default so that `arange(12, {4})` means stop 12 in blocks of 4.)
Array arange(double start, double stop, double step, const ChunkSpec& chunks = {});
/// 0, 1, ..., stop - 1 (int64).
Array arange(std::int64_t stop, const ChunkSpec& chunks = {});
/// `num` evenly spaced values from start to stop (inclusive when `endpoint`).
Array linspace(double start, double stop, std::int64_t num, const ChunkSpec& chunks = {}, bool endpoint = true);
/// Splits a local array into blocks (the blocks travel with the graph).
Array from_ndarray(const NDArray& a, const ChunkSpec& chunks = {});

namespace random {
/// Counter-based (Philox 4x32-10) random numbers: a block depends only on the seed and
/// its position, so a given seed and chunking always give the same array, and blocks
/// need no shared state. Without a seed, a fresh random one is drawn (kept in the Array,
/// so computing it twice gives the same values).
Array random(const Shape& shape, const ChunkSpec& chunks = {}, std::optional<std::uint64_t> seed = std::nullopt);
Array uniform(const Shape& shape, const ChunkSpec& chunks = {}, double low = 0, double high = 1,
              std::optional<std::uint64_t> seed = std::nullopt);
Array normal(const Shape& shape, const ChunkSpec& chunks = {}, double mean = 0, double stddev = 1,
             std::optional<std::uint64_t> seed = std::nullopt);
}  // namespace random

/// A full reduction as a callable, so it can be passed where a function is expected:
/// `da::mean(x)` is `x.mean()`, and `client.submit(da::mean, xs)` computes it on the
/// cluster over xs's blocks, giving a Future<double>.
struct FullReduction {
  enum Kind { sum, mean, var, std, min, max } kind;
  Array operator()(const Array& a) const;
};
inline constexpr FullReduction sum{FullReduction::sum};
inline constexpr FullReduction mean{FullReduction::mean};
inline constexpr FullReduction var{FullReduction::var};
inline constexpr FullReduction std{FullReduction::std};
inline constexpr FullReduction min{FullReduction::min};
inline constexpr FullReduction max{FullReduction::max};

namespace detail {
/// The tasks that compute `targets`' blocks (after culling and fusion), and the keys of
/// the targets' blocks in C order, used by Client and the local executor.
struct Lowered {
  Graph graph;
  std::vector<std::vector<std::string>> block_keys;  // per target
};
Lowered lower(const std::vector<Array>& targets);
/// Adds one task that assembles `a`'s blocks into one NDArray (or returns its only
/// block's key); returns that key.
std::string add_concatenate(Lowered& lowered, const Array& a, std::size_t target);
/// Adds one task turning the one-element block `key` into a double; returns its key.
std::string add_to_scalar(Lowered& lowered, const std::string& key);
/// An Array whose blocks are the given keys' values on a cluster (client.persist).
Array from_futures(const Array& like, std::vector<distrib::detail::FutureHandle> blocks);
}  // namespace detail

}  // namespace distrib::array
