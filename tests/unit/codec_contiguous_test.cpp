// Unit tests of the contiguous types' whole-Value encoding (codec.hpp): std::string and
// std::vector of arithmetic types other than bool are their elements alone, an rvalue's
// memory becomes the Value's without a copy, a const one is copied, assembling a vector of
// them from separate results (a std::vector<Future<T>> argument) adds the counts their
// nested encoding needs, and a BytesLoan (scatter's) waits until its memory is let go.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <string>
#include <vector>

#include "core/bytes_loan.hpp"
#include "core/task_spec.hpp"
#include "distrib/codec.hpp"
#include "distrib/ndarray.hpp"
#include "distrib/task.hpp"

namespace distrib {
namespace {

template <class C>
bool holds_exactly(const Value& v, const C& c) {
  const std::size_t n = c.size() * sizeof(typename C::value_type);
  return v.bytes.size() == n && (n == 0 || std::memcmp(v.bytes.data(), c.data(), n) == 0);
}

template <class T>
std::vector<T> ramp(std::size_t n) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<T>(i * 7 + 3);
  return v;
}

template <class T>
void expect_elements_alone(std::size_t n) {
  const auto v = ramp<T>(n);
  Value enc = encode_value(v);
  EXPECT_EQ(enc.type, type_name<std::vector<T>>());
  EXPECT_TRUE(holds_exactly(enc, v)) << enc.type << " x " << n;
  EXPECT_EQ(decode_value<std::vector<T>>(enc), v) << enc.type;
}

TEST(CodecContiguous, AWholeValueIsTheElementsAlone) {
  for (std::size_t n : {0, 1, 3, 1000, 100'000}) {
    expect_elements_alone<double>(n);
    expect_elements_alone<float>(n);
    expect_elements_alone<std::int16_t>(n);
    expect_elements_alone<std::uint8_t>(n);
    expect_elements_alone<std::int64_t>(n);
    expect_elements_alone<char>(n);
    expect_elements_alone<long double>(n);
  }
  const std::string s("text\0with nul", 13);
  EXPECT_TRUE(holds_exactly(encode_value(s), s));
  EXPECT_EQ(decode_value<std::string>(encode_value(s)), s);
  // vector<bool> is not contiguous in memory: it keeps its count.
  EXPECT_EQ(encode_value(std::vector<bool>{true, false}).bytes.size(), 10u);
}

TEST(CodecContiguous, PartElementsThrowAndNamingTheType) {
  Value odd{"vector<f32>", Bytes::copy_of("abcdefg", 7)};
  try {
    decode_value<std::vector<float>>(odd);
    FAIL() << "expected DecodeError";
  } catch (const DecodeError& e) {
    EXPECT_NE(std::string(e.what()).find("vector<f32>"), std::string::npos) << e.what();
  }
  EXPECT_THROW(decode_value<std::vector<std::int16_t>>(Value{"vector<i16>", Bytes::copy_of("x", 1)}), DecodeError);
  EXPECT_TRUE(decode_value<std::vector<double>>(Value{"vector<f64>", {}}).empty());
  EXPECT_TRUE(decode_value<std::string>(Value{"string", {}}).empty());
  EXPECT_THROW(decode_value<std::vector<double>>(Value{"vector<f32>", {}}), DecodeError);  // still typed
}

TEST(CodecContiguous, AnRvalueBecomesTheValuesMemoryWithoutACopy) {
  auto v = ramp<double>(1 << 20);
  const auto expected = v;
  const double* data = v.data();
  Value enc = encode_value(std::move(v));
  EXPECT_EQ(reinterpret_cast<const double*>(enc.bytes.data()), data);  // the same memory
  v = ramp<double>(10);  // the moved-from vector is the caller's again
  EXPECT_TRUE(holds_exactly(enc, expected));
  EXPECT_EQ(decode_value<std::vector<double>>(enc), expected);

  std::string s(std::size_t{1} << 18, 'q');
  const char* chars = s.data();
  Value str = encode_value(std::move(s));
  EXPECT_EQ(reinterpret_cast<const char*>(str.bytes.data()), chars);
  EXPECT_EQ(str.bytes.size(), std::size_t{1} << 18);
}

TEST(CodecContiguous, ConstSmallAndWastefulValuesAreCopied) {
  auto v = ramp<std::int32_t>(1 << 18);
  Value copied = encode_value(v);
  EXPECT_NE(reinterpret_cast<const std::int32_t*>(copied.bytes.data()), v.data());
  v[0] = -1;  // the Value does not change with its source
  EXPECT_EQ(decode_value<std::vector<std::int32_t>>(copied)[0], 3);

  const auto c = ramp<float>(1 << 18);
  Value from_const = encode_value(std::move(c));  // a const rvalue cannot give its memory away
  EXPECT_NE(reinterpret_cast<const float*>(from_const.bytes.data()), c.data());

  auto small = ramp<double>(16);  // below kAdoptBytes: a copy costs less than sharing
  const double* small_data = small.data();
  EXPECT_NE(reinterpret_cast<const double*>(encode_value(std::move(small)).bytes.data()), small_data);

  std::vector<double> roomy;  // capacity far beyond its size: copied, the spare room freed
  roomy.reserve(1 << 20);
  roomy.resize(1 << 16, 2.5);
  const double* roomy_data = roomy.data();
  Value tight = encode_value(std::move(roomy));
  EXPECT_NE(reinterpret_cast<const double*>(tight.bytes.data()), roomy_data);
  EXPECT_EQ(tight.bytes.size(), (std::size_t{1} << 16) * sizeof(double));
}

const double* g_made = nullptr;
std::vector<double> make_values(std::int64_t n) {
  std::vector<double> v(static_cast<std::size_t>(n), 0.25);
  g_made = v.data();
  return v;
}

TEST(CodecContiguous, ATasksReturnedVectorBecomesItsResultWithoutACopy) {
  std::vector<Value> args{encode_value(std::int64_t{1} << 17)};
  Value result = detail::invoke_task<&make_values>(args);
  EXPECT_EQ(reinterpret_cast<const double*>(result.bytes.data()), g_made);
  EXPECT_EQ(decode_value<std::vector<double>>(result), std::vector<double>(std::size_t{1} << 17, 0.25));
}

TEST(CodecContiguous, AssembledVectorsOfContiguousResultsDecode) {
  const std::vector<std::vector<double>> parts{{1.0, 2.0}, {}, ramp<double>(5000)};
  std::vector<Value> values;
  for (const auto& p : parts) values.push_back(encode_value(p));
  std::vector<const Value*> elements;
  for (const auto& v : values) elements.push_back(&v);
  auto assembled = detail::assemble_vector({{"a", "b", "c"}, "vector<vector<f64>>"}, elements);
  EXPECT_EQ(decode_value<std::vector<std::vector<double>>>(assembled), parts);

  const std::vector<std::string> words{"alpha", "", std::string(70'000, 'z')};
  std::vector<Value> word_values;
  for (const auto& w : words) word_values.push_back(encode_value(w));
  std::vector<const Value*> word_elements{&word_values[0], &word_values[1], &word_values[2]};
  EXPECT_EQ(decode_value<std::vector<std::string>>(
                detail::assemble_vector({{"a", "b", "c"}, "vector<string>"}, word_elements)),
            words);

  // NDArrays carry their byte count inside a vector, as their Codec writes it.
  const auto a = NDArray::from_values<double>(std::vector<double>{1, 2, 3, 4}, {2, 2});
  Value array_value = encode_value(a);
  std::vector<const Value*> arrays{&array_value, &array_value};
  auto two = decode_value<std::vector<NDArray>>(detail::assemble_vector({{"x", "y"}, "vector<ndarray>"}, arrays));
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[1].values<double>()[3], 4.0);

  // Types whose whole Value is their nested encoding are concatenated as before.
  Value b1 = encode_value(std::vector<bool>{true}), b2 = encode_value(std::vector<bool>{false, true});
  EXPECT_EQ(decode_value<std::vector<std::vector<bool>>>(
                detail::assemble_vector({{"p", "q"}, "vector<vector<bool>>"}, {&b1, &b2})),
            (std::vector<std::vector<bool>>{{true}, {false, true}}));

  // A part element in one result is refused.
  Value odd{"vector<f32>", Bytes::copy_of("abcde", 5)};
  EXPECT_THROW(detail::assemble_vector({{"o"}, "vector<vector<f32>>"}, {&odd}), DecodeError);
}

// std::vector<Future<long>> as an argument: the task gets exactly the values, in order (a
// count before them would be read as a first element: the bug this guards against).
TEST(CodecContiguous, AssembledVectorsOfScalarsAreTheElementsAlone) {
  std::vector<Value> values;
  for (long i = 0; i < 5; ++i) values.push_back(encode_value(i * i));
  std::vector<const Value*> elements;
  for (const auto& v : values) elements.push_back(&v);
  auto assembled = detail::assemble_vector({{"a", "b", "c", "d", "e"}, "vector<i64>"}, elements);
  EXPECT_EQ(decode_value<std::vector<long>>(assembled), (std::vector<long>{0, 1, 4, 9, 16}));
  Value f1 = encode_value(1.5f), f2 = encode_value(-2.0f);
  EXPECT_EQ(decode_value<std::vector<float>>(detail::assemble_vector({{"x", "y"}, "vector<f32>"}, {&f1, &f2})),
            (std::vector<float>{1.5f, -2.0f}));
  Value c = encode_value('q');
  EXPECT_EQ(decode_value<std::vector<char>>(detail::assemble_vector({{"c"}, "vector<char>"}, {&c})),
            std::vector<char>{'q'});
  EXPECT_TRUE(decode_value<std::vector<long>>(detail::assemble_vector({{}, "vector<i64>"}, {})).empty());
  // Booleans are not bulk: counted, as before.
  Value t = encode_value(true);
  EXPECT_EQ(decode_value<std::vector<bool>>(detail::assemble_vector({{"t"}, "vector<bool>"}, {&t, &t})),
            (std::vector<bool>{true, true}));
  Value wrong = encode_value(std::int32_t{3});
  EXPECT_THROW(detail::assemble_vector({{"w"}, "vector<i64>"}, {&wrong}), DecodeError);
}

TEST(BytesLoan, LendsTheCallersMemoryAndWaitsUntilEveryCopyIsGone) {
  std::vector<char> memory(100'000, 'm');
  std::atomic<bool> dropped{false};
  std::thread holder;
  const auto start = std::chrono::steady_clock::now();
  {
    detail::BytesLoan loan(memory.data(), memory.size());
    EXPECT_EQ(reinterpret_cast<const char*>(loan.bytes().data()), memory.data());  // no copy
    EXPECT_EQ(loan.bytes().size(), memory.size());
    holder = std::thread([copy = loan.bytes().slice(10, 20), &dropped]() mutable {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      dropped = true;
      copy = Bytes();
    });
  }  // waits for the other thread's copy
  EXPECT_TRUE(dropped);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50));
  holder.join();
  { detail::BytesLoan unused(memory.data(), memory.size()); }  // nobody took a copy: no wait
}

TEST(BytesLoan, StopsWaitingWhenToldNothingCanReadTheMemory) {
  std::vector<char> memory(1000, 'm');
  Bytes left_behind;
  {
    detail::BytesLoan loan(memory.data(), memory.size());
    left_behind = loan.bytes();
    int asked = 0;
    loan.wait_returned([&] { return ++asked == 2; });  // gives up on the second check
    EXPECT_EQ(asked, 2);
  }  // no second wait in the destructor
  left_behind = Bytes();  // dropped after the loan: its state is still there to be told
}

}  // namespace
}  // namespace distrib
