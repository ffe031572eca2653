#pragma once
// The array kernels: loops over contiguous blocks, one per dtype (templates), no
// per-element dispatch. Every function returns a fresh contiguous NDArray.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "array/program.hpp"
#include "distrib/ndarray.hpp"

namespace distrib::array::detail {

// Checks of untrusted input (specs arrive from the network), once per block; each throws
// std::invalid_argument naming `what`. Defined in kernels_layout.cpp.
std::uint64_t max_block_bytes();
DType checked_dtype(std::uint8_t code, const char* what);
/// The element count of `shape`: at most 32 dimensions, no negative extent, no overflow.
std::int64_t checked_product(const std::vector<std::int64_t>& shape, const char* what);
/// As checked_product, and the block must fit in physical memory.
std::int64_t checked_count(const std::vector<std::int64_t>& shape, DType dtype, const char* what);
/// A block at `offset` of `shape` lies inside an array of `global_shape`.
void check_position(const std::vector<std::int64_t>& offset, const std::vector<std::int64_t>& shape,
                    const std::vector<std::int64_t>& global_shape, const char* what);
/// "(3, 4)", "(3,)": a shape as numpy prints it (defined in chunks.cpp).
std::string shape_text(const std::vector<std::int64_t>& shape);

DType promote(DType a, DType b);
/// The dtype of `a op b` (or of `op a`).
DType result_dtype(OpCode op, DType a, DType b);

NDArray generate(const Generator& g, const std::vector<std::int64_t>& offset, const std::vector<std::int64_t>& shape);
NDArray cast(const NDArray& a, DType to);
/// Elementwise unary operation; sqrt/exp/log of integers give float64.
NDArray unary(OpCode op, const NDArray& a);
/// Elementwise binary operation with broadcasting (both operands have the same ndim; an
/// extent 1 stretches). Operands are promoted to a common dtype first.
NDArray binary(OpCode op, const NDArray& a, const NDArray& b, const std::vector<std::int64_t>& out_shape);
/// The dtype a Python-style scalar takes next to an array of `array`: a whole number stays
/// integral beside integers and bools, a float32 array is not widened (numpy's rule). The
/// graph builder and the kernel both use it, so a node's dtype matches what runs.
DType scalar_dtype(DType array, double s);
NDArray binary_scalar(OpCode op, const NDArray& a, double s, bool scalar_left);
/// out[i0..] = a[i_axes[0]..]: output axis k is input axis axes[k].
NDArray transpose(const NDArray& a, const std::vector<std::int64_t>& axes);
NDArray strided_slice(const NDArray& a, const std::vector<std::int64_t>& starts, const std::vector<std::int64_t>& steps,
                      const std::vector<std::int64_t>& shape);
NDArray reshape(const NDArray& a, const std::vector<std::int64_t>& shape);

/// argmin / argmax: their partials carry indices, which follow the block's layout.
bool is_arg(ReduceKind k);
/// The first stage of a reduction: a partial result of shape [fields] + block shape with
/// the reduced axes set to 1.
NDArray reduce_chunk(const NDArray& block, const ReduceSpec& spec);
/// Merges partial results of the same shape (Chan's algorithm for var/std).
NDArray reduce_combine(ReduceKind kind, std::span<const NDArray> partials);
/// The final values from a merged partial, as `dtype` and `shape`.
NDArray reduce_finalize(ReduceKind kind, const NDArray& partial, int ddof, DType dtype,
                        const std::vector<std::int64_t>& shape);

/// Where one input block goes in an assembled block.
struct Piece {
  std::vector<std::int64_t> src_start, dst_start, extent;
  template <class Ar>
  void serialize(Ar& ar) {
    ar(src_start, dst_start, extent);
  }
  static std::string distrib_type_name() { return "array.piece"; }
};
/// Copies pieces of input blocks into one new block (rechunk, concatenate).
NDArray assemble(const std::vector<std::int64_t>& shape, DType dtype, std::span<const Piece> pieces,
                 std::span<const NDArray> inputs);

/// sum_k a[k] @ b[k] for 2-d blocks, as `dtype`.
NDArray matmul_sum(std::span<const NDArray> a, std::span<const NDArray> b, DType dtype);

}  // namespace distrib::array::detail
