// Registration and argument handling of the array task functions.
#include "array/tasks.hpp"

#include <stdexcept>
#include <string>

namespace distrib::array::detail {

namespace {
using distrib::detail::TaskFunction;

std::vector<NDArray> blocks_from(std::span<const Value> args, std::size_t first) {
  std::vector<NDArray> blocks;
  blocks.reserve(args.size() - first);
  for (std::size_t i = first; i < args.size(); ++i) blocks.push_back(decode_value<NDArray>(args[i]));
  return blocks;
}

void need_spec(std::span<const Value> args, const char* what) {
  if (args.empty()) throw std::invalid_argument(std::string(what) + ": missing its spec argument");
}

Value run_block(std::span<const Value> args) {
  need_spec(args, "array block");
  auto program = decode_value<BlockProgram>(args[0]);
  auto blocks = blocks_from(args, 1);
  return encode_value(run_program(program, blocks));
}

Value run_group(std::span<const Value> args) {
  need_spec(args, "array block group");
  auto group = decode_value<ProgramGroup>(args[0]);
  auto blocks = blocks_from(args, 1);
  return encode_value(run_program_group(group, blocks));
}

// The partials a combine reads: blocks, or one element of a group's partials each.
std::vector<NDArray> partials_from(std::span<const Value> args, const std::vector<std::int32_t>& picks) {
  if (picks.empty()) return blocks_from(args, 1);
  if (picks.size() != args.size() - 1)
    throw std::invalid_argument("array combine: " + std::to_string(picks.size()) + " picks for " +
                                std::to_string(args.size() - 1) + " partials");
  std::vector<NDArray> partials;
  partials.reserve(picks.size());
  for (std::size_t i = 0; i < picks.size(); ++i) {
    if (picks[i] < 0) {
      partials.push_back(decode_value<NDArray>(args[i + 1]));
      continue;
    }
    auto group = decode_value<std::vector<NDArray>>(args[i + 1]);
    if (static_cast<std::size_t>(picks[i]) >= group.size())
      throw std::invalid_argument("array combine: partial " + std::to_string(picks[i]) + " of a group of " +
                                  std::to_string(group.size()));
    partials.push_back(std::move(group[static_cast<std::size_t>(picks[i])]));
  }
  return partials;
}

Value run_combine(std::span<const Value> args) {
  need_spec(args, "array combine");
  auto spec = decode_value<CombineSpec>(args[0]);
  auto partials = partials_from(args, spec.picks);
  if (spec.kind > static_cast<std::uint8_t>(ReduceKind::argmax))
    throw std::invalid_argument("array combine: unknown reduction " + std::to_string(spec.kind));
  const auto kind = static_cast<ReduceKind>(spec.kind);
  NDArray merged = reduce_combine(kind, partials);
  if (!spec.finalize) return encode_value(merged);
  return encode_value(reduce_finalize(kind, merged, spec.ddof, checked_dtype(spec.dtype, "array combine"), spec.shape));
}

Value run_assemble(std::span<const Value> args) {
  need_spec(args, "array assemble");
  auto spec = decode_value<AssembleSpec>(args[0]);
  auto blocks = blocks_from(args, 1);
  return encode_value(assemble(spec.shape, checked_dtype(spec.dtype, "array assemble"), spec.pieces, blocks));
}

Value run_dot(std::span<const Value> args) {
  need_spec(args, "array dot");
  auto spec = decode_value<DotSpec>(args[0]);
  auto blocks = blocks_from(args, 1);
  const DType dtype = checked_dtype(spec.dtype, "array dot");
  // k blocks of each operand (compared without computing 2 k, which could overflow).
  if (spec.k <= 0 || blocks.size() % 2 != 0 || blocks.size() / 2 != static_cast<std::uint64_t>(spec.k))
    throw std::invalid_argument("array dot: expected 2 x " + std::to_string(spec.k) + " blocks, got " +
                                std::to_string(blocks.size()));
  std::span<const NDArray> all(blocks);
  const std::size_t k = blocks.size() / 2;
  return encode_value(matmul_sum(all.first(k), all.subspan(k), dtype));
}

Value run_value(std::span<const Value> args) {
  if (args.size() != 1) throw std::invalid_argument("array value: expected one block");
  return encode_value(decode_value<NDArray>(args[0]));
}

Value run_item(std::span<const Value> args) {
  if (args.size() != 1) throw std::invalid_argument("array item: expected one block");
  NDArray a = decode_value<NDArray>(args[0]);
  if (a.size() != 1) throw std::invalid_argument("array item: the array has " + std::to_string(a.size()) + " elements, not one");
  return encode_value(cast(a, DType::float64).values<double>()[0]);
}

const TaskFunction& registered(const char* name, distrib::detail::TaskInvoker invoke, const std::string& result) {
  auto& registry = distrib::detail::TaskRegistry::instance();
  TaskFunction f;
  f.name = name;
  f.invoke = invoke;
  f.result_type = result;
  registry.add(reinterpret_cast<distrib::detail::AnyFunctionPointer>(invoke), f);
  return *registry.find(name);
}

// Registered when libdistrib loads, so workers know them before any task arrives.
[[maybe_unused]] const bool registered_at_load = [] {
  block_task();
  group_task();
  combine_task();
  assemble_task();
  dot_task();
  value_task();
  item_task();
  return true;
}();
}  // namespace

const TaskFunction& block_task() {
  static const TaskFunction& f = registered("array_block", &run_block, type_name<NDArray>());
  return f;
}
const TaskFunction& group_task() {
  static const TaskFunction& f = registered("array_block_group", &run_group, type_name<std::vector<NDArray>>());
  return f;
}
const TaskFunction& combine_task() {
  static const TaskFunction& f = registered("array_combine", &run_combine, type_name<NDArray>());
  return f;
}
const TaskFunction& assemble_task() {
  static const TaskFunction& f = registered("array_assemble", &run_assemble, type_name<NDArray>());
  return f;
}
const TaskFunction& dot_task() {
  static const TaskFunction& f = registered("array_dot", &run_dot, type_name<NDArray>());
  return f;
}
const TaskFunction& value_task() {
  static const TaskFunction& f = registered("array_value", &run_value, type_name<NDArray>());
  return f;
}
const TaskFunction& item_task() {
  static const TaskFunction& f = registered("array_item", &run_item, type_name<double>());
  return f;
}

}  // namespace distrib::array::detail
