#pragma once
// The task functions of distrib::array, registered in libdistrib so that every worker
// (a plain dworker too) can run them. Each takes an encoded spec first, then the input
// blocks as separate arguments, so blocks reach the kernel without being copied.
#include <cstdint>
#include <string>
#include <vector>

#include "array/kernels.hpp"
#include "distrib/task.hpp"

namespace distrib::array::detail {

struct CombineSpec {
  std::uint8_t kind = 0;  // ReduceKind
  bool finalize = false;
  std::int32_t ddof = 0;
  std::uint8_t dtype = 0;
  std::vector<std::int64_t> shape;  // of the final block
  /// Per partial argument: -1 for a block, k for element k of a group's partials (empty: all blocks).
  std::vector<std::int32_t> picks;
  template <class Ar>
  void serialize(Ar& ar) {
    ar(kind, finalize, ddof, dtype, shape, picks);
  }
  static std::string distrib_type_name() { return "array.combine"; }
};

struct AssembleSpec {
  std::vector<std::int64_t> shape;
  std::uint8_t dtype = 0;
  std::vector<Piece> pieces;
  template <class Ar>
  void serialize(Ar& ar) {
    ar(shape, dtype, pieces);
  }
  static std::string distrib_type_name() { return "array.assemble"; }
};

struct DotSpec {
  std::uint8_t dtype = 0;
  std::int64_t k = 0;
  template <class Ar>
  void serialize(Ar& ar) {
    ar(dtype, k);
  }
  static std::string distrib_type_name() { return "array.dot"; }
};

// (spec: BlockProgram, blocks...) -> NDArray
const distrib::detail::TaskFunction& block_task();
// (spec: ProgramGroup, blocks...) -> std::vector<NDArray>, the group's partials
const distrib::detail::TaskFunction& group_task();
// (spec: CombineSpec, partials or groups' partials...) -> NDArray
const distrib::detail::TaskFunction& combine_task();
// (spec: AssembleSpec, blocks...) -> NDArray
const distrib::detail::TaskFunction& assemble_task();
// (spec: DotSpec, a blocks..., b blocks...) -> NDArray
const distrib::detail::TaskFunction& dot_task();
// (block: NDArray) -> the same NDArray (a local block placed on a worker)
const distrib::detail::TaskFunction& value_task();
// (block: NDArray of one element) -> double
const distrib::detail::TaskFunction& item_task();

}  // namespace distrib::array::detail
