#pragma once
// A block program: the fused work of one array task. It is a short list of instructions
// over whole blocks (load an input block, generate a block, apply an elementwise
// operation, transpose, slice, cast), optionally ending with the first stage of a
// reduction. Workers run it with the kernels in kernels.hpp; it travels as a Value.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "distrib/ndarray.hpp"

namespace distrib::array::detail {

enum class OpCode : std::uint8_t { add, sub, mul, div, lt, le, gt, ge, eq, ne, neg, abs, sqrt, exp, log };
enum class GenKind : std::uint8_t { full, arange, random, uniform, normal };
enum class ReduceKind : std::uint8_t { sum, mean, var, std, min, max, argmin, argmax };

bool is_comparison(OpCode op);
const char* op_name(OpCode op);
const char* reduce_name(ReduceKind k);

/// How a source array makes its elements from their global position.
struct Generator {
  std::uint8_t kind = 0;  // GenKind
  std::uint8_t dtype = static_cast<std::uint8_t>(DType::float64);
  double a = 0, b = 0;  // full: value; arange: start, step; uniform: low, high; normal: mean, stddev
  std::uint64_t seed = 0;
  std::vector<std::int64_t> global_shape;
  template <class Ar>
  void serialize(Ar& ar) {
    ar(kind, dtype, a, b, seed, global_shape);
  }
  static std::string distrib_type_name() { return "array.generator"; }
};

enum class InstrKind : std::uint8_t { input, generate, unary, binary, scalar_right, scalar_left, transpose, slice, reshape, cast };

struct Instr {
  std::uint8_t kind = 0;  // InstrKind
  std::uint8_t code = 0;  // OpCode, or the DType of a cast
  std::int32_t a = -1;    // operand instruction; input: the input's position; generate: the generator
  std::int32_t b = -1;    // second operand of a binary operation
  double scalar = 0;
  std::vector<std::int64_t> shape;  // the block this instruction makes
  std::vector<std::int64_t> v1;     // transpose: axes; slice: starts; generate: block offset
  std::vector<std::int64_t> v2;     // slice: steps
  template <class Ar>
  void serialize(Ar& ar) {
    ar(kind, code, a, b, scalar, shape, v1, v2);
  }
  static std::string distrib_type_name() { return "array.instr"; }
};

/// The first stage of a reduction, applied to a program's result.
struct ReduceSpec {
  bool active = false;
  std::uint8_t kind = 0;  // ReduceKind
  std::vector<std::int64_t> axes;          // reduced axes, sorted
  bool flat_arg = false;                   // argmin/argmax over the flattened array
  std::vector<std::int64_t> block_offset;  // where the block starts (for arg indices)
  std::vector<std::int64_t> global_shape;
  template <class Ar>
  void serialize(Ar& ar) {
    ar(active, kind, axes, flat_arg, block_offset, global_shape);
  }
  static std::string distrib_type_name() { return "array.reduce"; }
};

struct BlockProgram {
  std::vector<Instr> instrs;
  std::vector<Generator> generators;
  std::int32_t result = -1;
  ReduceSpec reduce;
  template <class Ar>
  void serialize(Ar& ar) {
    ar(instrs, generators, result, reduce);
  }
  static std::string distrib_type_name() { return "array.program"; }
};

/// Runs a program over its input blocks. Throws std::invalid_argument on a malformed one.
NDArray run_program(const BlockProgram& program, std::span<const NDArray> inputs);

/// Several chunks of reductions run as one task because they need the same source blocks
/// (both x[i, j] + x[j, i].T and x[j, i] + x[i, j].T need x[i, j] and x[j, i]): the shared
/// instructions make each block once, and each result gets its own first reduction stage.
struct ProgramGroup {
  BlockProgram shared;  // instructions and generators (its own result and reduce are unused)
  std::vector<std::int32_t> results;
  std::vector<ReduceSpec> reduces;  // one per result
  /// Per result, 1 if it is the 2-d transpose of its instruction's block: (x + x.T)[j, i]
  /// is (x + x.T)[i, j].T, so the pair's second block is never computed, only reduced
  /// along the other axis.
  std::vector<std::uint8_t> transposed;
  template <class Ar>
  void serialize(Ar& ar) {
    ar(shared, results, reduces, transposed);
  }
  static std::string distrib_type_name() { return "array.program_group"; }
};

/// The partial results of a group, in the order of its results.
std::vector<NDArray> run_program_group(const ProgramGroup& group, std::span<const NDArray> inputs);

}  // namespace distrib::array::detail
