// Runs a fused block program. Intermediate blocks are dropped right after their last use,
// so their (pooled) memory serves the next instruction.
//
// Programs arrive from clients: every operand must come before its user, instructions the
// result does not need are not run, and the blocks alive at once must fit this machine's
// memory. The kernels check the rest (shapes, axes, codes).
#include "array/program.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "array/kernels.hpp"

namespace distrib::array::detail {

namespace {
bool has_operand_a(InstrKind k) { return k != InstrKind::input && k != InstrKind::generate; }
// Instructions whose result has the instruction's own shape (the others keep their operand's size).
bool makes_own_shape(InstrKind k) {
  return k == InstrKind::generate || k == InstrKind::binary || k == InstrKind::slice || k == InstrKind::reshape;
}
}  // namespace

namespace {
// The values of `results` (instructions of `program`), each computed once.
std::vector<NDArray> run_instructions(const BlockProgram& program, std::span<const NDArray> inputs,
                                      std::span<const std::int32_t> results) {
  if (program.instrs.size() > static_cast<std::size_t>(INT32_MAX)) throw std::invalid_argument("array program: too long");
  const auto count = static_cast<std::int32_t>(program.instrs.size());
  if (results.empty()) throw std::invalid_argument("array program: no result");
  for (std::int32_t r : results)
    if (r < 0 || r >= count) throw std::invalid_argument("array program: no result");
  auto operand = [&](std::int32_t at, std::int32_t i) {
    if (i < 0 || i >= at) throw std::invalid_argument("array program: instruction " + std::to_string(at) + " has a bad operand");
    return static_cast<std::size_t>(i);
  };
  for (std::int32_t i = 0; i < count; ++i) {
    const auto& in = program.instrs[static_cast<std::size_t>(i)];
    const auto kind = static_cast<InstrKind>(in.kind);
    if (in.kind > static_cast<std::uint8_t>(InstrKind::cast))
      throw std::invalid_argument("array program: unknown instruction " + std::to_string(in.kind));
    if (has_operand_a(kind)) operand(i, in.a);
    if (kind == InstrKind::binary) operand(i, in.b);
  }
  // Which instructions the result needs, and the last instruction that uses each one.
  std::vector<bool> live(program.instrs.size(), false), is_result(program.instrs.size(), false);
  std::vector<std::int32_t> last_use(program.instrs.size(), -1);
  for (std::int32_t r : results) live[static_cast<std::size_t>(r)] = is_result[static_cast<std::size_t>(r)] = true;
  for (std::int32_t i = count; i-- > 0;) {
    if (!live[static_cast<std::size_t>(i)]) continue;
    const auto& in = program.instrs[static_cast<std::size_t>(i)];
    const auto kind = static_cast<InstrKind>(in.kind);
    for (std::int32_t k : {has_operand_a(kind) ? in.a : -1, kind == InstrKind::binary ? in.b : -1}) {
      if (k < 0) continue;
      live[static_cast<std::size_t>(k)] = true;
      if (last_use[static_cast<std::size_t>(k)] < 0) last_use[static_cast<std::size_t>(k)] = i;
    }
  }
  std::vector<NDArray> values(program.instrs.size());
  std::vector<std::uint64_t> held(program.instrs.size(), 0);  // bytes each value holds (inputs: none)
  const std::uint64_t budget = max_block_bytes();
  std::uint64_t holding = 0;
  for (std::int32_t i = 0; i < count; ++i) {
    if (!live[static_cast<std::size_t>(i)]) continue;
    const auto& in = program.instrs[static_cast<std::size_t>(i)];
    const auto kind = static_cast<InstrKind>(in.kind);
    auto& out = values[static_cast<std::size_t>(i)];
    auto arg = [&](std::int32_t k) -> const NDArray& { return values[static_cast<std::size_t>(k)]; };
    if (kind != InstrKind::input) {
      // At most 8 bytes an element: refuse before allocating what cannot fit.
      const std::uint64_t elements = makes_own_shape(kind) ? static_cast<std::uint64_t>(checked_product(in.shape, "array program"))
                                                           : static_cast<std::uint64_t>(arg(in.a).size());
      if (elements > (budget - holding) / 8)
        throw std::invalid_argument("array program: instruction " + std::to_string(i) + " would need more than " +
                                    std::to_string(budget - holding) + " more bytes (this machine's memory)");
    }
    switch (kind) {
      case InstrKind::input:
        if (in.a < 0 || static_cast<std::size_t>(in.a) >= inputs.size())
          throw std::invalid_argument("array program: input " + std::to_string(in.a) + " was not given");
        out = inputs[static_cast<std::size_t>(in.a)];
        if (out.shape() != in.shape)
          throw std::invalid_argument("array program: input block has shape " + out.shape_string() + ", expected another");
        break;
      case InstrKind::generate:
        if (in.a < 0 || static_cast<std::size_t>(in.a) >= program.generators.size())
          throw std::invalid_argument("array program: unknown generator");
        out = generate(program.generators[static_cast<std::size_t>(in.a)], in.v1, in.shape);
        break;
      case InstrKind::unary: out = unary(static_cast<OpCode>(in.code), arg(in.a)); break;
      case InstrKind::binary: out = binary(static_cast<OpCode>(in.code), arg(in.a), arg(in.b), in.shape); break;
      case InstrKind::scalar_right: out = binary_scalar(static_cast<OpCode>(in.code), arg(in.a), in.scalar, false); break;
      case InstrKind::scalar_left: out = binary_scalar(static_cast<OpCode>(in.code), arg(in.a), in.scalar, true); break;
      case InstrKind::transpose: out = transpose(arg(in.a), in.v1); break;
      case InstrKind::slice: out = strided_slice(arg(in.a), in.v1, in.v2, in.shape); break;
      case InstrKind::reshape: out = reshape(arg(in.a), in.shape); break;
      case InstrKind::cast: out = cast(arg(in.a), checked_dtype(in.code, "array program: cast")); break;
    }
    if (kind != InstrKind::input) {
      held[static_cast<std::size_t>(i)] = out.nbytes();
      holding += out.nbytes();
    }
    // Free operands whose last use this was (not the results).
    if (has_operand_a(kind))
      for (std::int32_t k : {in.a, kind == InstrKind::binary ? in.b : -1})
        if (k >= 0 && !is_result[static_cast<std::size_t>(k)] && last_use[static_cast<std::size_t>(k)] == i) {
          values[static_cast<std::size_t>(k)] = NDArray();
          holding -= held[static_cast<std::size_t>(k)];
          held[static_cast<std::size_t>(k)] = 0;
        }
  }
  std::vector<NDArray> out;
  out.reserve(results.size());
  for (std::int32_t r : results) out.push_back(values[static_cast<std::size_t>(r)]);  // shared: a result may repeat
  return out;
}
}  // namespace

NDArray run_program(const BlockProgram& program, std::span<const NDArray> inputs) {
  NDArray result = std::move(run_instructions(program, inputs, std::span(&program.result, 1)).front());
  if (program.reduce.active) return reduce_chunk(result, program.reduce);
  return result;
}

namespace {
// The first reduction stage of block.T, without transposing the block: reduce along the
// mirrored axes, then swap the (small) partial's two block axes.
NDArray reduce_transposed(const NDArray& block, const ReduceSpec& spec) {
  if (block.ndim() != 2) throw std::invalid_argument("array program group: only 2-d results can be transposed");
  if (!spec.active) return transpose(block, {1, 0});
  if (is_arg(static_cast<ReduceKind>(spec.kind))) return reduce_chunk(transpose(block, {1, 0}), spec);  // indices follow the layout
  ReduceSpec mirrored = spec;
  for (auto& a : mirrored.axes) {
    if (a != 0 && a != 1) return reduce_chunk(transpose(block, {1, 0}), spec);  // reduce_chunk reports it
    a = 1 - a;
  }
  std::sort(mirrored.axes.begin(), mirrored.axes.end());
  std::reverse(mirrored.block_offset.begin(), mirrored.block_offset.end());
  std::reverse(mirrored.global_shape.begin(), mirrored.global_shape.end());
  NDArray partial = reduce_chunk(block, mirrored);  // [fields] + mirrored block shape
  return transpose(partial, {0, 2, 1});
}
}  // namespace

std::vector<NDArray> run_program_group(const ProgramGroup& group, std::span<const NDArray> inputs) {
  if (group.reduces.size() != group.results.size() || group.transposed.size() != group.results.size())
    throw std::invalid_argument("array program group: " + std::to_string(group.results.size()) + " results but " +
                                std::to_string(group.reduces.size()) + " reductions and " +
                                std::to_string(group.transposed.size()) + " layouts");
  auto blocks = run_instructions(group.shared, inputs, group.results);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (group.transposed[i]) blocks[i] = reduce_transposed(blocks[i], group.reduces[i]);
    else if (group.reduces[i].active) blocks[i] = reduce_chunk(blocks[i], group.reduces[i]);
  }
  return blocks;
}

}  // namespace distrib::array::detail
