#pragma once
// The expression nodes behind distrib::array::Array. A node knows its shape, chunks and
// dtype and how each of its blocks derives from its inputs' blocks; lower.cpp turns a
// set of nodes into tasks.
#include <cstdint>
#include <string>
#include <vector>

#include "array/kernels.hpp"
#include "array/program.hpp"
#include "distrib/array.hpp"
#include "distrib/future.hpp"

namespace distrib::array::detail {

enum class NodeKind {
  source,       // made from its block position alone (zeros, random, arange, ...)
  data,         // blocks of a local NDArray
  futures,      // blocks held on a cluster
  elementwise,  // unary / binary / scalar operation
  transpose,
  slice,
  reshape,
  astype,
  reduce,
  rechunk,
  dot,
};

/// Per axis of a slice: for each output block, the input block it comes from and where.
struct SliceAxis {
  std::vector<std::int64_t> in_block;  // input block index along this axis
  std::vector<std::int64_t> start;     // first element inside that input block
  std::int64_t step = 1;
};

struct Node {
  NodeKind kind;
  Shape shape;
  Chunks chunks;
  DType dtype = DType::float64;
  std::string name;  // "prefix-token"
  std::vector<NodePtr> inputs;

  // source
  Generator generator;
  // data
  NDArray data;
  // futures: one per block, C order
  std::vector<distrib::detail::FutureHandle> blocks;
  // elementwise
  OpCode op = OpCode::add;
  double scalar = 0;
  int scalar_side = 0;  // 0: binary of two inputs, 1: input op scalar, 2: scalar op input
  // transpose: output axis k is input axis axes[k]; reduce: the reduced axes (sorted)
  std::vector<int> axes;
  // slice
  std::vector<SliceAxis> slice;
  // reshape: per output axis, the input axis whose block index it takes (-1: always 0)
  std::vector<int> reshape_from;
  // reduce
  ReduceKind reduce_kind = ReduceKind::sum;
  int ddof = 0;
  bool keepdims = false;
  int split_every = 16;
  bool flat_arg = false;  // argmin/argmax over the flattened array

  /// True if each block is computed inside its consumers' tasks rather than on its own.
  bool fusible() const {
    return kind == NodeKind::source || kind == NodeKind::elementwise || kind == NodeKind::transpose ||
           kind == NodeKind::slice || kind == NodeKind::reshape || kind == NodeKind::astype;
  }
};

// Chunk arithmetic.
std::vector<std::int64_t> chunk_offsets(const std::vector<std::int64_t>& axis_chunks);  // n+1 entries
Shape block_shape(const Chunks& chunks, const Shape& index);
Shape block_offset(const Chunks& chunks, const Shape& index);
Shape numblocks_of(const Chunks& chunks);
std::int64_t product(const Shape& s);
/// Every block index of a grid, in C order.
std::vector<Shape> all_blocks(const Shape& numblocks);
std::string chunks_text(const Chunks& c);
/// A fresh or content-derived token for names.
std::string token_of(const std::string& description);
std::string random_token();

}  // namespace distrib::array::detail
