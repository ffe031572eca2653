// Runs a fused block program. Intermediate blocks are dropped right after their last use,
// so their (pooled) memory serves the next instruction.
#include "array/program.hpp"

#include <stdexcept>
#include <string>

#include "array/kernels.hpp"

namespace distrib::array::detail {

NDArray run_program(const BlockProgram& program, std::span<const NDArray> inputs) {
  const auto count = static_cast<std::int32_t>(program.instrs.size());
  if (program.result < 0 || program.result >= count) throw std::invalid_argument("array program: no result");
  auto operand = [&](std::int32_t at, std::int32_t i) {
    if (i < 0 || i >= at) throw std::invalid_argument("array program: instruction " + std::to_string(at) + " has a bad operand");
    return static_cast<std::size_t>(i);
  };
  std::vector<std::int32_t> last_use(program.instrs.size(), -1);
  for (std::int32_t i = 0; i < count; ++i) {
    const auto& in = program.instrs[static_cast<std::size_t>(i)];
    const auto kind = static_cast<InstrKind>(in.kind);
    if (kind != InstrKind::input && kind != InstrKind::generate) last_use[operand(i, in.a)] = i;
    if (kind == InstrKind::binary) last_use[operand(i, in.b)] = i;
  }
  std::vector<NDArray> values(program.instrs.size());
  for (std::int32_t i = 0; i < count; ++i) {
    const auto& in = program.instrs[static_cast<std::size_t>(i)];
    auto& out = values[static_cast<std::size_t>(i)];
    auto arg = [&](std::int32_t k) -> const NDArray& { return values[static_cast<std::size_t>(k)]; };
    switch (static_cast<InstrKind>(in.kind)) {
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
      case InstrKind::cast: out = cast(arg(in.a), static_cast<DType>(in.code)); break;
      default: throw std::invalid_argument("array program: unknown instruction " + std::to_string(in.kind));
    }
    // Free operands whose last use this was (not the result).
    for (std::int32_t k : {in.a, in.b})
      if (k >= 0 && k < i && k != program.result && last_use[static_cast<std::size_t>(k)] == i && static_cast<InstrKind>(in.kind) != InstrKind::input &&
          static_cast<InstrKind>(in.kind) != InstrKind::generate)
        values[static_cast<std::size_t>(k)] = NDArray();
  }
  NDArray result = std::move(values[static_cast<std::size_t>(program.result)]);
  values.clear();
  if (program.reduce.active) return reduce_chunk(result, program.reduce);
  return result;
}

}  // namespace distrib::array::detail
