// The array kernels and task functions given malformed or hostile specs, as a client could
// send them to a worker: every one must throw (std::invalid_argument, or DecodeError for
// bytes that do not decode), never read or write outside a block and never try to
// allocate absurd memory. Also a few valid specs, and numpy semantics the kernels keep
// (wrapping int64 arithmetic, abs of -0.0, var with ddof >= n, exact int64 dot).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "array/kernels.hpp"
#include "array/program.hpp"
#include "array/tasks.hpp"
#include "distrib/errors.hpp"

namespace distrib::array::detail {
namespace {

using Shape = std::vector<std::int64_t>;
constexpr std::int64_t kHuge = 1'000'000'000'000'000;  // 1e15 elements: must raise, never allocate

// ---------------------------------------------------------------------------------------
// Helpers.

NDArray f64(std::vector<double> v, Shape shape = {}) { return NDArray::from_values<double>(v, std::move(shape)); }
NDArray i64(std::vector<std::int64_t> v, Shape shape = {}) {
  return NDArray::from_values<std::int64_t>(v, std::move(shape));
}
NDArray iota(Shape shape) {
  NDArray a(shape, DType::float64);
  auto v = a.values<double>();
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i);
  return a;
}
std::vector<double> doubles(const NDArray& a) {
  NDArray d = cast(a, DType::float64);
  auto v = d.values<double>();
  return {v.begin(), v.end()};
}

Instr input(std::int32_t pos, Shape shape) {
  Instr in;
  in.kind = static_cast<std::uint8_t>(InstrKind::input);
  in.a = pos;
  in.shape = std::move(shape);
  return in;
}
Instr op(InstrKind kind, std::int32_t a, std::int32_t b = -1, std::uint8_t code = 0, Shape shape = {}) {
  Instr in;
  in.kind = static_cast<std::uint8_t>(kind);
  in.a = a;
  in.b = b;
  in.code = code;
  in.shape = std::move(shape);
  return in;
}
std::uint8_t code(OpCode o) { return static_cast<std::uint8_t>(o); }
std::uint8_t code(DType d) { return static_cast<std::uint8_t>(d); }

BlockProgram program(std::vector<Instr> instrs, std::int32_t result = -1) {
  BlockProgram p;
  p.instrs = std::move(instrs);
  p.result = result >= 0 ? result : static_cast<std::int32_t>(p.instrs.size()) - 1;
  return p;
}
// One instruction applied to input 0 (a block of `in_shape`).
BlockProgram on_input(const Shape& in_shape, Instr last) {
  last.a = 0;
  return program({input(0, in_shape), std::move(last)});
}

NDArray run(const BlockProgram& p, std::vector<NDArray> inputs = {}) { return run_program(p, inputs); }

// A program that generates one block.
BlockProgram generating(Generator g, Shape offset, Shape shape) {
  Instr in;
  in.kind = static_cast<std::uint8_t>(InstrKind::generate);
  in.a = 0;
  in.v1 = std::move(offset);
  in.shape = std::move(shape);
  BlockProgram p = program({in});
  p.generators.push_back(std::move(g));
  return p;
}
Generator gen(GenKind kind, DType dtype, Shape global, double a = 0, double b = 1) {
  Generator g;
  g.kind = static_cast<std::uint8_t>(kind);
  g.dtype = static_cast<std::uint8_t>(dtype);
  g.a = a;
  g.b = b;
  g.seed = 42;
  g.global_shape = std::move(global);
  return g;
}

Value call(const distrib::detail::TaskFunction& f, std::vector<Value> args) { return f.invoke(args); }
template <class Spec>
std::vector<Value> args_of(const Spec& spec, const std::vector<NDArray>& blocks) {
  std::vector<Value> args{encode_value(spec)};
  for (const auto& b : blocks) args.push_back(encode_value(b));
  return args;
}
NDArray call_block(const distrib::detail::TaskFunction& f, std::vector<Value> args) {
  return decode_value<NDArray>(call(f, std::move(args)));
}

#define EXPECT_INVALID(stmt) EXPECT_THROW(stmt, std::invalid_argument)

// ---------------------------------------------------------------------------------------
// Programs.

TEST(ArrayKernelsProgram, MalformedStructureThrows) {
  EXPECT_INVALID(run(BlockProgram{}));                                        // no instructions
  EXPECT_INVALID(run(program({input(0, {2})}, 1), {f64({1, 2})}));            // result past the end
  BlockProgram negative = program({input(0, {2})});
  negative.result = -5;
  EXPECT_INVALID(run(negative, {f64({1, 2})}));                               // negative result
  EXPECT_INVALID(run(program({op(InstrKind::unary, 0, -1, code(OpCode::neg))}), {}));  // operand is itself
  EXPECT_INVALID(run(program({op(InstrKind::unary, 1, -1, code(OpCode::neg)), input(0, {2})}, 0), {f64({1, 2})}));
  EXPECT_INVALID(run(program({input(0, {2}), op(InstrKind::unary, -1, -1, code(OpCode::neg))}), {f64({1, 2})}));
  EXPECT_INVALID(run(program({input(0, {2}), op(InstrKind::binary, 0, 7, code(OpCode::add), {2})}), {f64({1, 2})}));
  EXPECT_INVALID(run(program({input(0, {2}), op(static_cast<InstrKind>(77), 0)}), {f64({1, 2})}));  // unknown kind
  EXPECT_INVALID(run(program({input(3, {2})}), {f64({1, 2})}));              // input not given
  EXPECT_INVALID(run(program({input(-1, {2})}), {f64({1, 2})}));
  EXPECT_INVALID(run(program({input(0, {3})}), {f64({1, 2})}));              // input of another shape
  Instr gen_missing;
  gen_missing.kind = static_cast<std::uint8_t>(InstrKind::generate);
  gen_missing.a = 0;
  gen_missing.shape = {2};
  EXPECT_INVALID(run(program({gen_missing})));                                // no generator 0
}

TEST(ArrayKernelsProgram, UnneededInstructionsAreNotRun) {
  // Instruction 1 is malformed (a binary code on unary) but the result does not use it.
  auto p = program({input(0, {2}), op(InstrKind::unary, 0, -1, code(OpCode::add)),
                    op(InstrKind::unary, 0, -1, code(OpCode::neg))});
  EXPECT_EQ(doubles(run(p, {f64({1, 2})})), (std::vector<double>{-1, -2}));
}

TEST(ArrayKernelsProgram, ValidFusedProgram) {
  // (x + y^T) * 2 with x 2x3 and y 3x2, then summed over axis 1.
  auto p = program({input(0, {2, 3}), input(1, {3, 2}), op(InstrKind::transpose, 1), op(InstrKind::binary, 0, 2, code(OpCode::add), {2, 3}),
                    op(InstrKind::scalar_right, 3, -1, code(OpCode::mul))});
  p.instrs[2].v1 = {1, 0};
  p.instrs[4].scalar = 2;
  NDArray x = iota({2, 3}), y = iota({3, 2});
  EXPECT_EQ(doubles(run(p, {x, y})), (std::vector<double>{0, 6, 12, 8, 14, 20}));
  p.reduce.active = true;
  p.reduce.kind = static_cast<std::uint8_t>(ReduceKind::sum);
  p.reduce.axes = {1};
  NDArray partial = run(p, {x, y});
  EXPECT_EQ(partial.shape(), (Shape{1, 2, 1}));
  EXPECT_EQ(doubles(partial), (std::vector<double>{18, 42}));
}

// ---------------------------------------------------------------------------------------
// Elementwise.

TEST(ArrayKernelsElementwise, BinaryOperandsThatDoNotBroadcastThrow) {
  auto binary_of = [](Shape a, Shape b, Shape out) {
    auto p = program({input(0, a), input(1, b), op(InstrKind::binary, 0, 1, code(OpCode::add), out)});
    return run(p, {iota(a), iota(b)});
  };
  EXPECT_INVALID(binary_of({3, 4}, {2, 4}, {3, 4}));  // 2 is neither 1 nor 3
  EXPECT_INVALID(binary_of({3, 4}, {3, 4}, {3, 5}));  // the output is larger than both
  EXPECT_INVALID(binary_of({1, 4}, {1, 4}, {5, 4}));  // both stretch: nothing to stretch from
  EXPECT_INVALID(binary_of({3, 4}, {3, 4}, {3, 2}));  // smaller than the operands
  EXPECT_INVALID(binary_of({3, 4}, {3, 4}, {12}));    // other dimensions
  EXPECT_INVALID(binary_of({3, 4}, {4}, {3, 4}));
  EXPECT_INVALID(binary_of({2}, {2}, {-2}));
  // Valid broadcasting: (3, 1) + (1, 4).
  NDArray r = binary_of({3, 1}, {1, 4}, {3, 4});
  EXPECT_EQ(doubles(r), (std::vector<double>{0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5}));
  EXPECT_EQ(doubles(binary_of({0, 1}, {1, 4}, {0, 4})).size(), 0u);
}

TEST(ArrayKernelsElementwise, HugeBroadcastThrowsWithoutAllocating) {
  // (2^20, 1) * (1, 2^20) would be 2^40 float64s (8 TiB).
  const std::int64_t n = std::int64_t{1} << 20;
  NDArray a = NDArray::zeros({n, 1}), b = NDArray::zeros({1, n});
  EXPECT_INVALID(binary(OpCode::mul, a, b, {n, n}));
}

TEST(ArrayKernelsElementwise, UnknownOrWrongOpCodesThrow) {
  const Shape s{2};
  for (std::uint8_t c : {std::uint8_t{15}, std::uint8_t{99}, std::uint8_t{255}}) {
    EXPECT_INVALID(run(on_input(s, op(InstrKind::unary, 0, -1, c)), {f64({1, 2})}));
    EXPECT_INVALID(run(on_input(s, op(InstrKind::scalar_right, 0, -1, c)), {f64({1, 2})}));
    EXPECT_INVALID(run(on_input(s, op(InstrKind::scalar_left, 0, -1, c)), {f64({1, 2})}));
    EXPECT_INVALID(run(program({input(0, s), op(InstrKind::binary, 0, 0, c, s)}), {f64({1, 2})}));
    EXPECT_STRNE(op_name(static_cast<OpCode>(c)), nullptr);
  }
  // A binary operation as unary, a unary one as binary, on every dtype.
  for (NDArray a : {f64({1, 2}), i64({1, 2}), cast(f64({1, 0}), DType::boolean), cast(f64({1, 2}), DType::float32)}) {
    EXPECT_INVALID(unary(OpCode::add, a));
    EXPECT_INVALID(unary(OpCode::lt, a));
    EXPECT_INVALID(binary(OpCode::neg, a, a, s));
    EXPECT_INVALID(binary(OpCode::sqrt, a, a, s));
    EXPECT_INVALID(binary_scalar(OpCode::log, a, 1, false));
  }
}

TEST(ArrayKernelsElementwise, CastToUnknownDtypeThrows) {
  for (std::uint8_t c : {std::uint8_t{0}, std::uint8_t{5}, std::uint8_t{255}}) {
    EXPECT_INVALID(run(on_input({2}, op(InstrKind::cast, 0, -1, c)), {f64({1, 2})}));
    EXPECT_INVALID(cast(f64({1, 2}), static_cast<DType>(c)));
  }
  NDArray r = run(on_input({2}, op(InstrKind::cast, 0, -1, code(DType::int64))), {f64({1.5, -2.5})});
  EXPECT_EQ(r.dtype(), DType::int64);
  EXPECT_EQ(r.values<std::int64_t>()[1], -2);
}

TEST(ArrayKernelsElementwise, CastOfFloatsIntegersCannotHoldGivesInt64MinAsNumpy) {
  constexpr auto min = std::numeric_limits<std::int64_t>::min();
  const double inf = std::numeric_limits<double>::infinity();
  NDArray r = cast(f64({std::nan(""), inf, -inf, 1e19, -1e300, 0x1p62, -0x1p63}), DType::int64);
  auto v = r.values<std::int64_t>();
  EXPECT_EQ(std::vector<std::int64_t>(v.begin(), v.end()),
            (std::vector<std::int64_t>{min, min, min, min, min, std::int64_t{1} << 62, min}));
  NDArray f = cast(cast(f64({std::nan(""), 3.75}), DType::float32), DType::int64);
  EXPECT_EQ(f.values<std::int64_t>()[0], min);
  EXPECT_EQ(f.values<std::int64_t>()[1], 3);
}

TEST(ArrayKernelsElementwise, ScalarsIntegersCannotHoldThrow) {
  NDArray ints = i64({1, 2});
  for (double s : {1e300, -1e300, 0x1p63, std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()})
    EXPECT_INVALID(binary_scalar(OpCode::add, ints, s, false)) << s;
  EXPECT_INVALID(binary_scalar(OpCode::lt, cast(f64({1, 0}), DType::boolean), 1e30, true));
  // Fractions and NaN make float64; floats take anything.
  EXPECT_EQ(binary_scalar(OpCode::add, ints, 0.5, false).dtype(), DType::float64);
  EXPECT_TRUE(std::isnan(doubles(binary_scalar(OpCode::add, ints, std::nan(""), false))[0]));
  EXPECT_EQ(doubles(binary_scalar(OpCode::add, f64({1}), 1e300, false))[0], 1e300);
  EXPECT_EQ(binary_scalar(OpCode::add, ints, -0x1p63, false).values<std::int64_t>()[0], std::numeric_limits<std::int64_t>::min() + 1);
}

TEST(ArrayKernelsElementwise, Int64ArithmeticWrapsAsNumpy) {
  constexpr auto max = std::numeric_limits<std::int64_t>::max(), min = std::numeric_limits<std::int64_t>::min();
  EXPECT_EQ(binary(OpCode::add, i64({max}), i64({1}), {1}).values<std::int64_t>()[0], min);
  EXPECT_EQ(binary(OpCode::sub, i64({min}), i64({1}), {1}).values<std::int64_t>()[0], max);
  EXPECT_EQ(binary(OpCode::mul, i64({max}), i64({2}), {1}).values<std::int64_t>()[0], -2);
  EXPECT_EQ(unary(OpCode::neg, i64({min})).values<std::int64_t>()[0], min);
  EXPECT_EQ(unary(OpCode::abs, i64({min, -3})).values<std::int64_t>()[1], 3);
}

TEST(ArrayKernelsElementwise, AbsClearsTheSignOfNegativeZero) {
  NDArray r = unary(OpCode::abs, f64({-0.0, -2}));
  EXPECT_FALSE(std::signbit(r.values<double>()[0]));
  EXPECT_EQ(r.values<double>()[1], 2);
  NDArray f = unary(OpCode::abs, cast(f64({-0.0}), DType::float32));
  EXPECT_FALSE(std::signbit(f.values<float>()[0]));
}

// ---------------------------------------------------------------------------------------
// Layout: slices, transposes, reshapes.

TEST(ArrayKernelsLayout, SlicesOutsideTheBlockThrow) {
  NDArray a = iota({4, 5});
  auto slice_of = [&](Shape starts, Shape steps, Shape shape) {
    Instr in = op(InstrKind::slice, 0, -1, 0, shape);
    in.v1 = std::move(starts);
    in.v2 = std::move(steps);
    return run(on_input({4, 5}, in), {a});
  };
  EXPECT_INVALID(slice_of({0, 5}, {1, 1}, {1, 1}));          // start past the end
  EXPECT_INVALID(slice_of({-1, 0}, {1, 1}, {1, 1}));         // negative start
  EXPECT_INVALID(slice_of({0, 0}, {1, 1}, {5, 5}));          // runs past the end
  EXPECT_INVALID(slice_of({3, 0}, {-1, 1}, {5, 1}));         // runs below 0
  EXPECT_INVALID(slice_of({0, 0}, {0, 1}, {4, 5}));          // step 0
  EXPECT_INVALID(slice_of({0, 0}, {0, 1}, {kHuge, 5}));      // step 0 repeating one element
  EXPECT_INVALID(slice_of({1, 0}, {std::numeric_limits<std::int64_t>::max(), 1}, {3, 1}));  // overflowing
  EXPECT_INVALID(slice_of({0}, {1}, {1}));                   // too few axes
  EXPECT_INVALID(slice_of({0, 0}, {1}, {1, 1}));
  EXPECT_INVALID(slice_of({0, 0}, {1, 1}, {1, 1, 1}));
  EXPECT_INVALID(slice_of({0, 0}, {1, 1}, {-1, 2}));
  EXPECT_INVALID(slice_of({0, 0}, {1, 1}, {0, kHuge, kHuge}));
  // Valid: rows 3 and 1, every second column from 4 down.
  NDArray r = slice_of({3, 4}, {-2, -2}, {2, 3});
  EXPECT_EQ(doubles(r), (std::vector<double>{19, 17, 15, 9, 7, 5}));
  EXPECT_EQ(slice_of({0, 0}, {1, 1}, {0, 5}).size(), 0);
}

TEST(ArrayKernelsLayout, TransposeAxesThatAreNotAPermutationThrow) {
  NDArray a = iota({2, 3, 4});
  for (Shape axes : {Shape{}, Shape{0, 1}, Shape{0, 1, 2, 3}, Shape{0, 0, 1}, Shape{0, 1, 3}, Shape{-1, 0, 1},
                     Shape{2, 1, std::int64_t{1} << 40}})
    EXPECT_INVALID(transpose(a, axes));
  Instr in = op(InstrKind::transpose, 0);
  in.v1 = {1, 1};
  EXPECT_INVALID(run(on_input({2, 2}, in), {iota({2, 2})}));
  NDArray t = transpose(a, {2, 0, 1});
  EXPECT_EQ(t.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(t.values<double>()[1], 4);  // t[0, 0, 1] = a[0, 1, 0]
  EXPECT_EQ(doubles(transpose(iota({2, 3}), {1, 0})), (std::vector<double>{0, 3, 1, 4, 2, 5}));
}

TEST(ArrayKernelsLayout, TwoDimTransposeOfEveryDtypeAndEdge) {
  // Tiles are 32 x 32 and the vector steps 4 x 4: shapes around those sizes, every dtype.
  for (Shape shape : {Shape{1, 1}, Shape{1, 7}, Shape{5, 3}, Shape{4, 4}, Shape{33, 31}, Shape{64, 96}, Shape{37, 70}}) {
    for (DType dtype : {DType::float64, DType::int64, DType::float32, DType::boolean}) {
      NDArray a = cast(iota(shape), dtype);
      NDArray t = transpose(a, {1, 0});
      ASSERT_EQ(t.shape(), (Shape{shape[1], shape[0]}));
      NDArray back = cast(t, DType::float64);
      const auto v = back.values<double>(), w = cast(a, DType::float64).values<double>();
      for (std::int64_t i = 0; i < shape[1]; ++i)
        for (std::int64_t j = 0; j < shape[0]; ++j)
          ASSERT_EQ(v[static_cast<std::size_t>(i * shape[0] + j)], w[static_cast<std::size_t>(j * shape[1] + i)])
              << shape_text(shape) << " " << to_string(dtype) << " at " << i << "," << j;
    }
  }
}

TEST(ArrayKernelsLayout, ReshapesToOtherCountsOrOverflowingShapesThrow) {
  EXPECT_INVALID(reshape(iota({2, 3}), {4, 2}));
  EXPECT_INVALID(reshape(iota({2, 3}), {-2, -3}));
  EXPECT_INVALID(reshape(iota({0}), {std::int64_t{1} << 62, 4}));  // the product wraps to 0
  EXPECT_INVALID(reshape(iota({0}), {0, std::int64_t{1} << 62, std::int64_t{1} << 62}));
  EXPECT_INVALID(reshape(iota({1}), Shape(40, 1)));  // more than 32 dimensions
  EXPECT_INVALID(run(on_input({2, 3}, op(InstrKind::reshape, 0, -1, 0, {7})), {iota({2, 3})}));
  EXPECT_EQ(reshape(iota({2, 3}), {3, 1, 2}).shape(), (Shape{3, 1, 2}));
}

// ---------------------------------------------------------------------------------------
// Generators.

TEST(ArrayKernelsGenerate, AbsurdShapesThrowWithoutAllocating) {
  EXPECT_INVALID(run(generating(gen(GenKind::full, DType::float64, {kHuge}), {0}, {kHuge})));
  EXPECT_INVALID(run(generating(gen(GenKind::random, DType::float64, {kHuge, 10}), {0, 0}, {kHuge, 10})));
  EXPECT_INVALID(run(generating(gen(GenKind::arange, DType::boolean, {kHuge, kHuge}), {0, 0}, {kHuge, kHuge})));
  EXPECT_INVALID(run(generating(gen(GenKind::full, DType::float64, {-4}), {0}, {-4})));
  const std::int64_t big = std::int64_t{1} << 40;  // the global shape's count overflows
  EXPECT_INVALID(run(generating(gen(GenKind::random, DType::float64, {big, big, big}), {0, 0, 0}, {1, 1, 1})));
}

TEST(ArrayKernelsGenerate, PositionsOutsideTheArrayThrow) {
  auto g = gen(GenKind::arange, DType::float64, {10, 10});
  EXPECT_INVALID(run(generating(g, {5, 0}, {6, 10})));   // past the end
  EXPECT_INVALID(run(generating(g, {-1, 0}, {2, 2})));  // negative offset
  EXPECT_INVALID(run(generating(g, {0}, {2, 2})));      // offset of other dimensions
  EXPECT_INVALID(run(generating(g, {0, 0, 0}, {2, 2})));
  EXPECT_INVALID(run(generating(gen(GenKind::normal, DType::float64, {10}), {0, 0}, {2, 2})));  // global shape
  EXPECT_INVALID(run(generating(gen(GenKind::full, DType::float64, {10}), {0}, {11})));
  EXPECT_INVALID(run(generating(g, {std::numeric_limits<std::int64_t>::max(), 0}, {1, 1})));
  NDArray r = run(generating(g, {8, 7}, {2, 3}));
  EXPECT_EQ(doubles(r), (std::vector<double>{87, 88, 89, 97, 98, 99}));
}

TEST(ArrayKernelsGenerate, UnknownKindsDtypesAndRandomIntegersThrow) {
  auto with = [](std::uint8_t kind, std::uint8_t dtype) {
    Generator g = gen(GenKind::full, DType::float64, {4});
    g.kind = kind;
    g.dtype = dtype;
    return run(generating(g, {0}, {4}));
  };
  EXPECT_INVALID(with(5, code(DType::float64)));
  EXPECT_INVALID(with(255, code(DType::float64)));
  for (std::uint8_t d : {std::uint8_t{0}, std::uint8_t{9}})
    for (std::uint8_t k = 0; k <= 4; ++k) EXPECT_INVALID(with(k, d));
  // Random kinds make float64 only (values<double>() of an int64 block must not be reached).
  for (auto k : {GenKind::random, GenKind::uniform, GenKind::normal})
    for (auto d : {DType::int64, DType::float32, DType::boolean}) EXPECT_INVALID(with(static_cast<std::uint8_t>(k), code(d)));
  EXPECT_EQ(with(static_cast<std::uint8_t>(GenKind::random), code(DType::float64)).dtype(), DType::float64);
}

TEST(ArrayKernelsGenerate, IntegerValuesThatDoNotFitThrow) {
  for (double v : {std::nan(""), std::numeric_limits<double>::infinity(), 1e19, -1e300})
    EXPECT_INVALID(run(generating(gen(GenKind::full, DType::int64, {3}, v), {0}, {3}))) << v;
  // arange(0, ...) with step 1e18: element 9 is 9e18 (fits), element 10 is 1e19 (does not).
  auto g = gen(GenKind::arange, DType::int64, {20}, 0, 1e18);
  EXPECT_EQ(run(generating(g, {0}, {10})).values<std::int64_t>()[9], 9'000'000'000'000'000'000);
  EXPECT_INVALID(run(generating(g, {5}, {10})));
  EXPECT_INVALID(run(generating(gen(GenKind::arange, DType::int64, {4}, std::nan(""), 1), {0}, {4})));
  // Other dtypes hold them.
  EXPECT_TRUE(std::isnan(doubles(run(generating(gen(GenKind::full, DType::float64, {2}, std::nan("")), {0}, {2})))[0]));
}

// ---------------------------------------------------------------------------------------
// Reductions: first stage.

ReduceSpec reduce_spec(ReduceKind kind, Shape axes) {
  ReduceSpec s;
  s.active = true;
  s.kind = static_cast<std::uint8_t>(kind);
  s.axes = std::move(axes);
  return s;
}

TEST(ArrayKernelsReduce, BadSpecsThrow) {
  NDArray a = iota({3, 4});
  EXPECT_INVALID(reduce_chunk(a, reduce_spec(static_cast<ReduceKind>(8), {0})));
  EXPECT_INVALID(reduce_chunk(a, reduce_spec(static_cast<ReduceKind>(200), {0})));
  EXPECT_INVALID(reduce_chunk(a, reduce_spec(ReduceKind::sum, {2})));
  EXPECT_INVALID(reduce_chunk(a, reduce_spec(ReduceKind::sum, {-1})));
  EXPECT_INVALID(reduce_chunk(a, reduce_spec(ReduceKind::mean, {0, 0})));
  EXPECT_INVALID(reduce_chunk(a, reduce_spec(ReduceKind::var, {std::int64_t{1} << 40})));
  // Arg reductions: one axis, or all of them flattened, at a position inside the array.
  auto arg = [&](Shape axes, bool flat, Shape offset, Shape global) {
    auto s = reduce_spec(ReduceKind::argmax, std::move(axes));
    s.flat_arg = flat;
    s.block_offset = std::move(offset);
    s.global_shape = std::move(global);
    return reduce_chunk(a, s);
  };
  EXPECT_INVALID(arg({0, 1}, false, {0, 0}, {3, 4}));
  EXPECT_INVALID(arg({}, false, {0, 0}, {3, 4}));
  EXPECT_INVALID(arg({0}, true, {0, 0}, {3, 4}));
  EXPECT_INVALID(arg({1}, false, {}, {}));             // no position
  EXPECT_INVALID(arg({1}, false, {0}, {3, 4}));
  EXPECT_INVALID(arg({0, 1}, true, {0, 0}, {3}));
  EXPECT_INVALID(arg({1}, false, {0, 1}, {3, 4}));     // the block leaves the array
  EXPECT_INVALID(arg({1}, false, {-3, 0}, {3, 4}));
  EXPECT_INVALID(arg({0, 1}, true, {0, 0}, {std::int64_t{1} << 40, std::int64_t{1} << 40}));
  // Valid: the block at (3, 4) of a 6 x 8 array; flat index of its last element.
  NDArray p = arg({0, 1}, true, {3, 4}, {6, 8});
  EXPECT_EQ(p.shape(), (Shape{2, 1, 1}));
  EXPECT_EQ(doubles(p), (std::vector<double>{11, 5 * 8 + 7}));
  // Through a program with an invalid reduction.
  auto prog = on_input({3, 4}, op(InstrKind::unary, 0, -1, code(OpCode::neg)));
  prog.reduce = reduce_spec(ReduceKind::sum, {5});
  EXPECT_INVALID(run(prog, {a}));
}

TEST(ArrayKernelsReduce, Int64SumsWrapAsNumpy) {
  constexpr auto max = std::numeric_limits<std::int64_t>::max();
  NDArray p = reduce_chunk(i64({max, 1}), reduce_spec(ReduceKind::sum, {0}));
  EXPECT_EQ(p.values<std::int64_t>()[0], std::numeric_limits<std::int64_t>::min());
  NDArray merged = reduce_combine(ReduceKind::sum, std::vector<NDArray>{i64({max}, {1}), i64({2}, {1})});
  EXPECT_EQ(merged.values<std::int64_t>()[0], std::numeric_limits<std::int64_t>::min() + 1);
}

// ---------------------------------------------------------------------------------------
// Reductions: combine and finalize, through the task.

CombineSpec combine_spec(ReduceKind kind, bool finalize = false, DType dtype = DType::float64, Shape shape = {}) {
  CombineSpec s;
  s.kind = static_cast<std::uint8_t>(kind);
  s.finalize = finalize;
  s.dtype = static_cast<std::uint8_t>(dtype);
  s.shape = std::move(shape);
  return s;
}

TEST(ArrayKernelsCombine, MalformedPartialsThrow) {
  const auto& f = combine_task();
  NDArray var_partial = f64({3, 1, 2}, {3, 1});  // count, mean, M2
  EXPECT_INVALID(call(f, args_of(combine_spec(static_cast<ReduceKind>(9)), {var_partial})));
  EXPECT_INVALID(call(f, args_of(combine_spec(ReduceKind::var), {})));  // nothing to combine
  EXPECT_INVALID(call(f, {}));                                           // no spec
  // The first dimension must be the kind's field count.
  EXPECT_INVALID(call(f, args_of(combine_spec(ReduceKind::var), {f64({1, 2}, {2, 1}), f64({1, 2}, {2, 1})})));
  EXPECT_INVALID(call(f, args_of(combine_spec(ReduceKind::mean), {f64({1, 2, 3}, {3}), f64({1, 2, 3}, {3})})));
  EXPECT_INVALID(call(f, args_of(combine_spec(ReduceKind::argmin), {f64({1}, {1})})));
  EXPECT_INVALID(call(f, args_of(combine_spec(ReduceKind::sum), {NDArray::full(Shape{}, 5.0)})));  // 0-d
  // Dtypes: int64 only for sum/min/max; never float32 or bool; all alike.
  EXPECT_INVALID(call(f, args_of(combine_spec(ReduceKind::sum), {f64({1}, {1}), i64({1}, {1})})));
  EXPECT_INVALID(call(f, args_of(combine_spec(ReduceKind::sum), {i64({1}, {1}), f64({1}, {1})})));
  EXPECT_INVALID(call(f, args_of(combine_spec(ReduceKind::mean), {i64({1, 2}, {2}), i64({1, 2}, {2})})));
  EXPECT_INVALID(call(f, args_of(combine_spec(ReduceKind::var), {i64({1, 2, 3}, {3, 1}), i64({1, 2, 3}, {3, 1})})));
  EXPECT_INVALID(call(f, args_of(combine_spec(ReduceKind::sum), {cast(f64({1}, {1}), DType::float32)})));
  EXPECT_INVALID(call(f, args_of(combine_spec(ReduceKind::max), {cast(f64({1}, {1}), DType::boolean)})));
  // Shapes alike.
  EXPECT_INVALID(call(f, args_of(combine_spec(ReduceKind::var), {var_partial, f64({3, 1, 2, 3, 1, 2}, {3, 2})})));
  // A block that is not an NDArray.
  EXPECT_THROW(call(f, {encode_value(combine_spec(ReduceKind::sum)), encode_value(3.0)}), DecodeError);
  EXPECT_THROW(call(f, {encode_value(3.0), encode_value(var_partial)}), DecodeError);
}

TEST(ArrayKernelsCombine, PicksFromGroupsAndMalformedGroupsThrow) {
  // A group: one program, two results (a block and its negation), each summed over axis 0.
  ProgramGroup group;
  group.shared = program({input(0, {2, 2}), op(InstrKind::unary, 0)});
  group.shared.instrs[1].code = static_cast<std::uint8_t>(OpCode::neg);
  group.results = {0, 1};
  group.transposed = {0, 0};
  group.reduces = {reduce_spec(ReduceKind::sum, {0}), reduce_spec(ReduceKind::sum, {0})};
  for (auto& r : group.reduces) {
    r.block_offset = {0, 0};
    r.global_shape = {2, 2};
  }
  Value partials = call(group_task(), args_of(group, {f64({1, 2, 3, 4}, {2, 2})}));
  const Value plain = encode_value(reduce_chunk(f64({4, 6, 6, 14}, {2, 2}), group.reduces[0]));  // column sums 10, 20
  // The combine takes element 1 of the group, then a plain partial.
  CombineSpec spec = combine_spec(ReduceKind::sum, true, DType::float64, {2});
  spec.picks = {1, -1};
  std::vector<Value> args{encode_value(spec), partials, plain};
  EXPECT_EQ(doubles(call_block(combine_task(), args)), (std::vector<double>{6, 14}));  // -4 + 10, -6 + 20
  // Picks that do not fit the arguments or the group.
  spec.picks = {5, -1};
  EXPECT_INVALID(call(combine_task(), {encode_value(spec), partials, plain}));
  spec.picks = {0};
  EXPECT_INVALID(call(combine_task(), {encode_value(spec), partials, plain}));
  spec.picks = {-1, -1};  // a group where a block is expected
  EXPECT_THROW(call(combine_task(), {encode_value(spec), partials, plain}), DecodeError);
  // A transposed result is reduced as the transpose: column sums of a.T are a's row sums.
  ProgramGroup mirrored = group;
  mirrored.results = {0, 0};
  mirrored.transposed = {0, 1};
  auto both = decode_value<std::vector<NDArray>>(call(group_task(), args_of(mirrored, {f64({1, 2, 3, 4}, {2, 2})})));
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(doubles(both[0]), (std::vector<double>{4, 6}));
  EXPECT_EQ(doubles(both[1]), (std::vector<double>{3, 7}));
  EXPECT_EQ(both[1].shape(), both[0].shape());
  // Malformed groups: results and reductions disagree, a result out of range, no results,
  // a transposed result that is not 2-d.
  ProgramGroup bad = group;
  bad.transposed.pop_back();
  EXPECT_INVALID(call(group_task(), args_of(bad, {f64({1, 2, 3, 4}, {2, 2})})));
  bad = group;
  bad.shared.instrs[0].shape = {4};
  bad.transposed = {0, 1};
  for (auto& r : bad.reduces) {
    r.block_offset = {0};
    r.global_shape = {4};
  }
  EXPECT_NO_THROW(call(group_task(), args_of(ProgramGroup{bad.shared, bad.results, bad.reduces, {0, 0}}, {f64({1, 2, 3, 4}, {4})})));
  EXPECT_INVALID(call(group_task(), args_of(bad, {f64({1, 2, 3, 4}, {4})})));
  bad = group;
  bad.reduces.pop_back();
  EXPECT_INVALID(call(group_task(), args_of(bad, {f64({1, 2, 3, 4}, {2, 2})})));
  bad = group;
  bad.results[1] = 7;
  EXPECT_INVALID(call(group_task(), args_of(bad, {f64({1, 2, 3, 4}, {2, 2})})));
  bad = group;
  bad.results.clear();
  bad.reduces.clear();
  bad.transposed.clear();
  EXPECT_INVALID(call(group_task(), args_of(bad, {f64({1, 2, 3, 4}, {2, 2})})));
}

TEST(ArrayKernelsCombine, BadFinalizeSpecsThrow) {
  const auto& f = combine_task();
  NDArray sum_partial = f64({1, 2, 3, 4}, {1, 4});
  EXPECT_INVALID(call(f, args_of(combine_spec(ReduceKind::sum, true, DType::float64, {kHuge}), {sum_partial})));
  EXPECT_INVALID(call(f, args_of(combine_spec(ReduceKind::sum, true, DType::float64, {kHuge, kHuge, kHuge}), {sum_partial})));
  EXPECT_INVALID(call(f, args_of(combine_spec(ReduceKind::sum, true, DType::float64, {5}), {sum_partial})));
  EXPECT_INVALID(call(f, args_of(combine_spec(ReduceKind::sum, true, DType::float64, {-4}), {sum_partial})));
  EXPECT_INVALID(call(f, args_of(combine_spec(ReduceKind::sum, true, static_cast<DType>(0), {4}), {sum_partial})));
  EXPECT_INVALID(call(f, args_of(combine_spec(ReduceKind::sum, true, static_cast<DType>(77), {4}), {sum_partial})));
  // Floats that int64 cannot hold.
  EXPECT_INVALID(call(f, args_of(combine_spec(ReduceKind::sum, true, DType::int64, {1}), {f64({std::nan("")}, {1, 1})})));
  EXPECT_INVALID(call(f, args_of(combine_spec(ReduceKind::argmax, true, DType::int64, {1}), {f64({1, 1e300}, {2, 1})})));
  EXPECT_EQ(doubles(call_block(f, args_of(combine_spec(ReduceKind::sum, true, DType::float64, {2, 2}), {sum_partial}))),
            (std::vector<double>{1, 2, 3, 4}));
}

TEST(ArrayKernelsCombine, ArgOfAnEmptySequenceThrowsAsNumpy) {
  // An arg-reduction partial of an empty block holds index -1.
  NDArray p = reduce_chunk(NDArray::zeros({0, 2}), [] {
    auto s = reduce_spec(ReduceKind::argmin, {0});
    s.block_offset = {0, 0};
    s.global_shape = {0, 2};
    return s;
  }());
  EXPECT_INVALID(call(combine_task(), args_of(combine_spec(ReduceKind::argmin, true, DType::int64, {2}), {p})));
}

TEST(ArrayKernelsCombine, VarianceWithDdofAtLeastTheCountIsInfOrNanAsNumpy) {
  // Two partials of [1, 3] and [5]: n = 3, mean 3, M2 = 8.
  NDArray a = reduce_chunk(f64({1, 3}), reduce_spec(ReduceKind::var, {0}));
  NDArray b = reduce_chunk(f64({5}), reduce_spec(ReduceKind::var, {0}));
  auto var = [&](int ddof) {
    auto s = combine_spec(ReduceKind::var, true, DType::float64, {});
    s.ddof = ddof;
    return doubles(call_block(combine_task(), args_of(s, {a, b})))[0];
  };
  EXPECT_DOUBLE_EQ(var(0), 8.0 / 3);
  EXPECT_DOUBLE_EQ(var(1), 4.0);
  EXPECT_TRUE(std::isinf(var(3)));
  EXPECT_TRUE(std::isinf(var(5)));  // numpy divides by max(n - ddof, 0), not by -2
  NDArray c = reduce_chunk(f64({2, 2}), reduce_spec(ReduceKind::var, {0}));
  auto s = combine_spec(ReduceKind::var, true, DType::float64, {});
  s.ddof = 4;
  EXPECT_TRUE(std::isnan(doubles(call_block(combine_task(), args_of(s, {c})))[0]));  // 0 / 0
}

// ---------------------------------------------------------------------------------------
// Assemble.

AssembleSpec assemble_spec(Shape shape, DType dtype, std::vector<Piece> pieces) {
  return AssembleSpec{std::move(shape), static_cast<std::uint8_t>(dtype), std::move(pieces)};
}

TEST(ArrayKernelsAssemble, PiecesOutsideTheirBlocksThrow) {
  const auto& f = assemble_task();
  NDArray in = iota({2, 3});
  auto one = [&](Piece p, Shape shape = {4, 4}) { return call(f, args_of(assemble_spec(shape, DType::float64, {p}), {in})); };
  EXPECT_INVALID(one(Piece{{0}, {0, 0}, {2, 3}}));             // src_start of other dimensions
  EXPECT_INVALID(one(Piece{{0, 0}, {0}, {2, 3}}));             // dst_start
  EXPECT_INVALID(one(Piece{{0, 0}, {0, 0}, {2}}));             // extent
  EXPECT_INVALID(one(Piece{{0, 1}, {0, 0}, {2, 3}}));          // past the input block
  EXPECT_INVALID(one(Piece{{-1, 0}, {0, 0}, {2, 3}}));
  EXPECT_INVALID(one(Piece{{0, 0}, {3, 0}, {2, 3}}));          // past the result
  EXPECT_INVALID(one(Piece{{0, 0}, {-2, 0}, {2, 3}}));
  EXPECT_INVALID(one(Piece{{2, 0}, {0, 0}, {-2, 3}}));         // negative extent
  EXPECT_INVALID(one(Piece{{0, 0}, {std::numeric_limits<std::int64_t>::max(), 0}, {2, 3}}));
  EXPECT_INVALID(one(Piece{{0, 0}, {0, 0}, {2, 3}}, {kHuge}));  // absurd result
  EXPECT_INVALID(one(Piece{{0, 0}, {0, 0}, {2, 3}}, {kHuge, kHuge}));
  EXPECT_INVALID(one(Piece{{0, 0}, {0, 0}, {2, 3}}, {-4, 4}));
  // Dtypes and counts.
  EXPECT_INVALID(call(f, args_of(assemble_spec({2, 3}, DType::int64, {Piece{{0, 0}, {0, 0}, {2, 3}}}), {in})));
  EXPECT_INVALID(call(f, args_of(assemble_spec({2, 3}, static_cast<DType>(0), {Piece{{0, 0}, {0, 0}, {2, 3}}}), {in})));
  EXPECT_INVALID(call(f, args_of(assemble_spec({2, 3}, DType::float64, {Piece{{0, 0}, {0, 0}, {2, 3}}}), {in, in})));
  EXPECT_INVALID(call(f, args_of(assemble_spec({2, 3}, DType::float64, {}), {in})));
}

TEST(ArrayKernelsAssemble, ValidTilings) {
  const auto& f = assemble_task();
  // Two 2x3 blocks side by side make 2x6.
  NDArray a = iota({2, 3}), b = cast(binary_scalar(OpCode::add, iota({2, 3}), 10, false), DType::float64);
  auto spec = assemble_spec({2, 6}, DType::float64, {Piece{{0, 0}, {0, 0}, {2, 3}}, Piece{{0, 0}, {0, 3}, {2, 3}}});
  EXPECT_EQ(doubles(call_block(f, args_of(spec, {a, b}))), (std::vector<double>{0, 1, 2, 10, 11, 12, 3, 4, 5, 13, 14, 15}));
  // Rechunk-like: the middle 2x2 of a 3x4 block from two inputs, plus an empty piece.
  NDArray c = iota({3, 4});
  auto middle = assemble_spec({2, 2}, DType::float64,
                              {Piece{{0, 1}, {0, 0}, {2, 1}}, Piece{{0, 2}, {0, 1}, {2, 1}}, Piece{{0, 0}, {0, 0}, {0, 0}}});
  EXPECT_EQ(doubles(call_block(f, args_of(middle, {c, c, c}))), (std::vector<double>{1, 2, 5, 6}));
  // 0-d.
  auto scalar = assemble_spec({}, DType::float64, {Piece{{}, {}, {}}});
  EXPECT_EQ(doubles(call_block(f, args_of(scalar, {NDArray::full(Shape{}, 4.0)}))), (std::vector<double>{4}));
}

TEST(ArrayKernelsAssemble, UncoveredElementsAreZero) {
  const auto& f = assemble_task();
  NDArray a = iota({2, 3});
  NDArray b = binary_scalar(OpCode::add, iota({2, 3}), 10, false);
  // Overlapping pieces whose volumes add up to the result's: (0,0)-(2,3) twice in a 2x6 result.
  auto overlap = assemble_spec({2, 6}, DType::float64, {Piece{{0, 0}, {0, 0}, {2, 3}}, Piece{{0, 0}, {0, 0}, {2, 3}}});
  EXPECT_EQ(doubles(call_block(f, args_of(overlap, {a, b}))), (std::vector<double>{10, 11, 12, 0, 0, 0, 13, 14, 15, 0, 0, 0}));
  // A bool result with a gap stays a valid bool array (bytes 0 or 1).
  NDArray t = cast(f64({1, 1}, {1, 2}), DType::boolean);
  auto gap = assemble_spec({3, 2}, DType::boolean, {Piece{{0, 0}, {1, 0}, {1, 2}}});
  NDArray r = call_block(f, args_of(gap, {t}));
  EXPECT_EQ(doubles(r), (std::vector<double>{0, 0, 1, 1, 0, 0}));
}

// ---------------------------------------------------------------------------------------
// Dot.

TEST(ArrayKernelsDot, MalformedBlocksAndCountsThrow) {
  const auto& f = dot_task();
  NDArray a = iota({2, 3}), b = iota({3, 4});
  auto dot = [&](std::int64_t k, DType d, std::vector<NDArray> blocks) {
    return call(f, args_of(DotSpec{static_cast<std::uint8_t>(d), k}, blocks));
  };
  EXPECT_INVALID(dot(0, DType::float64, {}));
  EXPECT_INVALID(dot(-1, DType::float64, {a, b}));
  EXPECT_INVALID(dot(2, DType::float64, {a, b}));
  EXPECT_INVALID(dot(std::int64_t{1} << 62, DType::float64, {a, b}));  // 2 k overflows
  EXPECT_INVALID(dot(std::numeric_limits<std::int64_t>::max(), DType::float64, {a, b}));
  EXPECT_INVALID(dot(1, DType::float64, {a, b, a}));
  EXPECT_INVALID(dot(1, DType::float64, {iota({6}), b}));        // 1-d
  EXPECT_INVALID(dot(1, DType::float64, {a, iota({3})}));
  EXPECT_INVALID(dot(1, DType::float64, {NDArray::full(Shape{}, 1.0), b}));     // 0-d
  EXPECT_INVALID(dot(1, DType::float64, {a, NDArray::full(Shape{}, 1.0)}));
  EXPECT_INVALID(dot(1, DType::float64, {a, iota({2, 4})}));     // 3 vs 2
  EXPECT_INVALID(dot(2, DType::float64, {a, iota({3, 3}), b, iota({3, 4})}));  // rows differ
  EXPECT_INVALID(dot(1, static_cast<DType>(0), {a, b}));
  EXPECT_INVALID(dot(1, static_cast<DType>(200), {a, b}));
  // Empty blocks along k can still ask for a huge (2^20 x 2^20) result.
  const std::int64_t n = std::int64_t{1} << 20;
  // (Called directly: NDArray::from_value refuses to decode such empty blocks, see the report.)
  EXPECT_INVALID(matmul_sum(std::vector<NDArray>{NDArray::zeros({n, 0})}, std::vector<NDArray>{NDArray::zeros({0, n})},
                            DType::float64));
  EXPECT_THROW(call(f, {encode_value(DotSpec{1, 1}), encode_value(a), encode_value(std::string("b"))}), DecodeError);
}

TEST(ArrayKernelsDot, ValidProductsAndExactInt64) {
  const auto& f = dot_task();
  NDArray a = iota({2, 3}), b = iota({3, 2});
  // Split k = 3 as 1 + 2.
  NDArray a0 = f64({0, 3}, {2, 1}), a1 = f64({1, 2, 4, 5}, {2, 2});
  NDArray b0 = f64({0, 1}, {1, 2}), b1 = f64({2, 3, 4, 5}, {2, 2});
  auto r = call_block(f, args_of(DotSpec{static_cast<std::uint8_t>(DType::float64), 2}, {a0, a1, b0, b1}));
  EXPECT_EQ(doubles(r), (std::vector<double>{10, 13, 28, 40}));
  EXPECT_EQ(doubles(r), doubles(matmul_sum(std::vector<NDArray>{a}, std::vector<NDArray>{b}, DType::float64)));
  // Products above 2^53 stay exact in int64, as numpy.
  const std::int64_t big = (std::int64_t{1} << 53) + 1;
  NDArray x = i64({big, 1}, {1, 2}), y = i64({3, 1}, {2, 1});
  NDArray z = call_block(f, args_of(DotSpec{static_cast<std::uint8_t>(DType::int64), 1}, {x, y}));
  ASSERT_EQ(z.dtype(), DType::int64);
  EXPECT_EQ(z.values<std::int64_t>()[0], 3 * big + 1);
}

// ---------------------------------------------------------------------------------------
// Block, item and value tasks.

TEST(ArrayKernelsTasks, BlockTaskRejectsMalformedArguments) {
  const auto& f = block_task();
  EXPECT_INVALID(call(f, {}));
  EXPECT_THROW(call(f, {encode_value(3.0)}), DecodeError);  // not a program
  Value truncated = encode_value(program({input(0, {2})}));
  truncated.bytes = truncated.bytes.slice(0, truncated.bytes.size() / 2);
  EXPECT_THROW(call(f, {truncated}), DecodeError);
  EXPECT_THROW(call(f, {encode_value(program({input(0, {2})})), encode_value(std::string("x"))}), DecodeError);
  // A corrupt block header.
  Value bad = encode_value(f64({1, 2}));
  bad.bytes = Bytes::copy_of(bad.bytes.data(), bad.bytes.size() - 8);
  EXPECT_THROW(call(f, {encode_value(program({input(0, {2})})), bad}), DecodeError);
  // Valid: input 0 plus 1, the block arriving as an argument.
  auto p = on_input({2}, op(InstrKind::scalar_right, 0, -1, code(OpCode::add)));
  p.instrs[1].scalar = 1;
  EXPECT_EQ(doubles(call_block(f, args_of(p, {f64({1, 2})}))), (std::vector<double>{2, 3}));
  // A generator spec with random int64 values, through the task.
  EXPECT_INVALID(call(f, args_of(generating(gen(GenKind::random, DType::int64, {4}), {0}, {4}), {})));
}

TEST(ArrayKernelsTasks, ItemNeedsOneElement) {
  const auto& f = item_task();
  EXPECT_INVALID(call(f, {}));
  EXPECT_INVALID(call(f, {encode_value(f64({1, 2}))}));
  EXPECT_INVALID(call(f, {encode_value(f64({}, {0}))}));
  EXPECT_INVALID(call(f, {encode_value(f64({1})), encode_value(f64({1}))}));
  EXPECT_THROW(call(f, {encode_value(1.0)}), DecodeError);
  EXPECT_EQ(decode_value<double>(call(f, {encode_value(i64({7}, {1, 1}))})), 7.0);
  EXPECT_EQ(decode_value<double>(call(f, {encode_value(NDArray::full(Shape{}, 2.5))})), 2.5);
  EXPECT_INVALID(call(value_task(), {}));
}

}  // namespace
}  // namespace distrib::array::detail
