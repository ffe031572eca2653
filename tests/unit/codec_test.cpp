// Unit tests for distrib/codec.hpp: round trips of every supported type, type names, and
// rejection of wrong-type, truncated, forged and over-long encodings.
#include "distrib/codec.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "distrib/errors.hpp"

namespace codec_test {

// A user type named by its C++ type.
struct Point {
  double x = 0;
  double y = 0;
  std::string label;
  template <class A>
  void serialize(A& ar) {
    ar(x, y, label);
  }
  bool operator==(const Point&) const = default;
};

// A user type with a stable wire name and nested containers.
struct Named {
  int a = 0;
  std::vector<int> b;
  std::map<std::string, double> c;
  template <class A>
  void serialize(A& ar) {
    ar(a, b, c);
  }
  static std::string distrib_type_name() { return "test.Named"; }
  bool operator==(const Named&) const = default;
};

// A user type containing another user type and an optional.
struct Outer {
  Point p;
  std::optional<Named> n;
  std::vector<Point> pts;
  template <class A>
  void serialize(A& ar) {
    ar(p, n, pts);
  }
  bool operator==(const Outer&) const = default;
};

}  // namespace codec_test

namespace {

using distrib::decode_value;
using distrib::DecodeError;
using distrib::encode_value;
using distrib::type_name;
using distrib::Value;

template <class T>
T round_trip(const T& v) {
  Value enc = encode_value(v);
  EXPECT_EQ(enc.type, type_name<T>());
  return decode_value<T>(enc);
}

// Raw little-endian byte builder for hand-made (forged) encodings.
struct RawBytes {
  std::vector<std::byte> b;
  template <class T>
  RawBytes& put(T v) {
    auto* p = reinterpret_cast<const std::byte*>(&v);
    b.insert(b.end(), p, p + sizeof v);
    return *this;
  }
  RawBytes& raw(std::string_view s) {
    auto* p = reinterpret_cast<const std::byte*>(s.data());
    b.insert(b.end(), p, p + s.size());
    return *this;
  }
  Value value(std::string type) const { return Value{std::move(type), distrib::Bytes::copy_of(b.data(), b.size())}; }
};

Value prefix_of(const Value& v, std::size_t n) {
  return Value{v.type, distrib::Bytes::copy_of(v.bytes.data(), n)};
}

Value with_extra_bytes(const Value& v, std::string_view extra) {
  std::string all(v.bytes.view());
  all += extra;
  return Value{v.type, distrib::Bytes::copy_of(all)};
}

// ---------------------------------------------------------------------------------------
// Arithmetic types
// ---------------------------------------------------------------------------------------

template <class T>
class CodecArithmetic : public ::testing::Test {};
using ArithmeticTypes =
    ::testing::Types<bool, char, signed char, unsigned char, std::int8_t, std::uint8_t, std::int16_t, std::uint16_t,
                     std::int32_t, std::uint32_t, std::int64_t, std::uint64_t, short, unsigned short, int, unsigned,
                     long, unsigned long, long long, unsigned long long, float, double>;
TYPED_TEST_SUITE(CodecArithmetic, ArithmeticTypes);

TYPED_TEST(CodecArithmetic, RoundTripsExtremesAndZero) {
  using T = TypeParam;
  for (T v : {std::numeric_limits<T>::lowest(), std::numeric_limits<T>::max(), std::numeric_limits<T>::min(), T{},
              static_cast<T>(1)}) {
    Value enc = encode_value(v);
    EXPECT_EQ(enc.bytes.size(), sizeof(T));
    T back = decode_value<T>(enc);
    EXPECT_EQ(std::memcmp(&back, &v, sizeof(T)), 0);
    EXPECT_EQ(back, v);
  }
}

TYPED_TEST(CodecArithmetic, TruncatedAndTrailingBytesThrow) {
  using T = TypeParam;
  Value enc = encode_value(static_cast<T>(1));
  for (std::size_t n = 0; n < enc.bytes.size(); ++n)
    EXPECT_THROW(decode_value<T>(prefix_of(enc, n)), DecodeError) << "prefix " << n;
  EXPECT_THROW(decode_value<T>(with_extra_bytes(enc, std::string(1, '\0'))), DecodeError);
}

TEST(CodecArithmeticNames, NamesAreByKindAndWidth) {
  EXPECT_EQ(type_name<bool>(), "bool");
  EXPECT_EQ(type_name<char>(), "char");
  EXPECT_EQ(type_name<std::int8_t>(), "i8");
  EXPECT_EQ(type_name<std::uint8_t>(), "u8");
  EXPECT_EQ(type_name<std::int16_t>(), "i16");
  EXPECT_EQ(type_name<std::uint16_t>(), "u16");
  EXPECT_EQ(type_name<int>(), "i32");
  EXPECT_EQ(type_name<std::uint32_t>(), "u32");
  EXPECT_EQ(type_name<std::int64_t>(), "i64");
  EXPECT_EQ(type_name<std::uint64_t>(), "u64");
  EXPECT_EQ(type_name<float>(), "f32");
  EXPECT_EQ(type_name<double>(), "f64");
  // cv/ref qualifiers do not change the name.
  EXPECT_EQ(type_name<const int&>(), "i32");
  // long and long long are both 64-bit here and share a name (and so decode into each other).
  static_assert(sizeof(long) == 8 && sizeof(long long) == 8);
  EXPECT_EQ(type_name<long>(), type_name<long long>());
  EXPECT_EQ(decode_value<long long>(encode_value(-5L)), -5LL);
}

TEST(CodecArithmeticValues, FloatSpecialValuesKeepTheirBits) {
  for (double d : {std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(), -0.0,
                   std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::quiet_NaN()}) {
    double back = round_trip(d);
    EXPECT_EQ(std::memcmp(&back, &d, sizeof d), 0);
  }
  float f = std::numeric_limits<float>::quiet_NaN();
  float fb = round_trip(f);
  EXPECT_TRUE(std::isnan(fb));
  EXPECT_TRUE(std::signbit(round_trip(-0.0f)));
}

TEST(CodecBool, EncodesAsOneByteZeroOrOne) {
  Value t = encode_value(true);
  Value f = encode_value(false);
  ASSERT_EQ(t.bytes.size(), 1u);
  ASSERT_EQ(f.bytes.size(), 1u);
  EXPECT_EQ(std::to_integer<int>(t.bytes.data()[0]), 1);
  EXPECT_EQ(std::to_integer<int>(f.bytes.data()[0]), 0);
  EXPECT_TRUE(decode_value<bool>(t));
  EXPECT_FALSE(decode_value<bool>(f));
}

TEST(CodecBool, ByteOtherThanZeroOrOneThrows) {
  for (int b : {2, 3, 0x7f, 0x80, 0xff}) {
    RawBytes raw;
    raw.put<std::uint8_t>(static_cast<std::uint8_t>(b));
    EXPECT_THROW(decode_value<bool>(raw.value("bool")), DecodeError) << b;
  }
  // Inside a container and as the presence byte of an optional.
  RawBytes vec;
  vec.put<std::uint64_t>(3).put<std::uint8_t>(1).put<std::uint8_t>(2).put<std::uint8_t>(0);
  EXPECT_THROW(decode_value<std::vector<bool>>(vec.value("vector<bool>")), DecodeError);
  RawBytes opt;
  opt.put<std::uint8_t>(2).put<std::int32_t>(7);
  EXPECT_THROW(decode_value<std::optional<int>>(opt.value("optional<i32>")), DecodeError);
}

// ---------------------------------------------------------------------------------------
// Strings
// ---------------------------------------------------------------------------------------

TEST(CodecString, RoundTrips) {
  EXPECT_EQ(round_trip(std::string()), "");
  EXPECT_EQ(encode_value(std::string()).bytes.size(), 0u);  // a whole Value: the characters alone

  std::string with_nuls("a\0b\0\0c", 6);
  ASSERT_EQ(with_nuls.size(), 6u);
  std::string back = round_trip(with_nuls);
  EXPECT_EQ(back.size(), 6u);
  EXPECT_EQ(back, with_nuls);

  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes.push_back(static_cast<char>(i));
  EXPECT_EQ(round_trip(all_bytes), all_bytes);

  std::string long_string(1 << 20, '\0');
  for (std::size_t i = 0; i < long_string.size(); ++i) long_string[i] = static_cast<char>((i * 131 + 7) & 0xff);
  Value enc = encode_value(long_string);
  EXPECT_EQ(enc.type, "string");
  EXPECT_EQ(enc.bytes.size(), long_string.size());
  EXPECT_EQ(decode_value<std::string>(enc), long_string);
}

TEST(CodecString, ForgedLengthThrows) {
  // Inside another type a string carries its length (a whole Value is the characters alone).
  RawBytes raw;
  raw.put<std::uint64_t>(std::uint64_t{1} << 60).raw("abc");
  try {
    decode_value<std::tuple<std::string>>(raw.value("tuple<string>"));
    FAIL() << "expected DecodeError";
  } catch (const DecodeError& e) {
    EXPECT_NE(std::string(e.what()).find("count"), std::string::npos) << e.what();
  }
  RawBytes one_more;
  one_more.put<std::uint64_t>(4).raw("abc");
  EXPECT_THROW(decode_value<std::tuple<std::string>>(one_more.value("tuple<string>")), DecodeError);
}

// ---------------------------------------------------------------------------------------
// Vectors
// ---------------------------------------------------------------------------------------

TEST(CodecVector, ArithmeticRoundTrips) {
  EXPECT_TRUE(round_trip(std::vector<double>{}).empty());
  EXPECT_EQ(type_name<std::vector<double>>(), "vector<f64>");
  EXPECT_EQ(encode_value(std::vector<double>{}).bytes.size(), 0u);  // the elements alone

  std::vector<int> ints{1, -2, 3, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()};
  EXPECT_EQ(round_trip(ints), ints);
  std::vector<std::uint8_t> small{0, 1, 254, 255};
  EXPECT_EQ(round_trip(small), small);
  std::vector<char> chars{'a', '\0', 'z'};
  EXPECT_EQ(round_trip(chars), chars);
  std::vector<float> floats{1.5f, -0.0f, 3e38f};
  EXPECT_EQ(round_trip(floats), floats);
  std::vector<bool> bools{true, false, true, true, false};
  EXPECT_EQ(round_trip(bools), bools);
  EXPECT_EQ(type_name<std::vector<bool>>(), "vector<bool>");
}

TEST(CodecVector, MillionDoublesRoundTripElementForElement) {
  constexpr std::size_t n = 1'000'000;
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<double>(i) * 0.5 - 1234.25 + 1.0 / static_cast<double>(i + 1);
  Value enc = encode_value(v);
  EXPECT_EQ(enc.type, "vector<f64>");
  EXPECT_EQ(enc.bytes.size(), n * sizeof(double));
  auto back = decode_value<std::vector<double>>(enc);
  ASSERT_EQ(back.size(), n);
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (std::memcmp(&back[i], &v[i], sizeof(double)) != 0) ++mismatches;
  EXPECT_EQ(mismatches, 0u);
}

TEST(CodecVector, DecodesFromAlignedAndUnalignedBytes) {
  // Aligned payloads are copied in one pass, others through a zeroed vector: same values.
  std::vector<std::int64_t> v{1, -2, 3, std::numeric_limits<std::int64_t>::min(), 5};
  Value enc = encode_value(v);
  EXPECT_EQ(decode_value<std::vector<std::int64_t>>(enc), v);
  for (std::size_t shift = 1; shift < 8; ++shift) {
    std::string shifted(shift, '\0');
    shifted.append(reinterpret_cast<const char*>(enc.bytes.data()), enc.bytes.size());
    distrib::Bytes all = distrib::Bytes::copy_of(shifted);
    Value moved{enc.type, all.slice(shift, enc.bytes.size())};
    EXPECT_EQ(decode_value<std::vector<std::int64_t>>(moved), v) << shift;
    // Cut at every length, aligned or not: a part element is an error, never a read past
    // the end; whole elements are the leading elements (the Value is the elements alone).
    for (std::size_t cut = 0; cut < enc.bytes.size(); ++cut) {
      Value part{enc.type, all.slice(shift, cut)};
      if (cut % sizeof(std::int64_t) != 0) {
        EXPECT_THROW(decode_value<std::vector<std::int64_t>>(part), DecodeError) << cut;
      } else {
        EXPECT_EQ(decode_value<std::vector<std::int64_t>>(part),
                  std::vector<std::int64_t>(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(cut / 8)));
      }
    }
  }
}

TEST(CodecVector, StringsAndNestedRoundTrip) {
  std::vector<std::string> strs{"", "a", std::string("x\0y", 3), std::string(5000, 'q')};
  EXPECT_EQ(round_trip(strs), strs);
  EXPECT_EQ(type_name<std::vector<std::string>>(), "vector<string>");
  EXPECT_TRUE(round_trip(std::vector<std::string>{}).empty());

  std::vector<std::vector<int>> nested{{}, {1}, {2, 3, 4}, {}, std::vector<int>(1000, 9)};
  EXPECT_EQ(round_trip(nested), nested);
  EXPECT_EQ(type_name<std::vector<std::vector<int>>>(), "vector<vector<i32>>");
  std::vector<std::vector<int>> empty_inner(3);
  EXPECT_EQ(round_trip(empty_inner), empty_inner);
}

// ---------------------------------------------------------------------------------------
// Maps
// ---------------------------------------------------------------------------------------

TEST(CodecMap, MapAndUnorderedMapRoundTrip) {
  std::map<std::string, double> m{{"", 0.0}, {"a", 1.5}, {std::string("b\0c", 3), -2.25}, {std::string(100, 'k'), 1e300}};
  EXPECT_EQ(round_trip(m), m);
  EXPECT_TRUE(round_trip(std::map<std::string, double>{}).empty());

  std::unordered_map<std::string, double> um{{"x", 1.0}, {"y", 2.0}, {"z", 3.0}};
  EXPECT_EQ(round_trip(um), um);

  std::map<int, std::vector<int>> miv{{-1, {}}, {0, {1, 2}}, {7, std::vector<int>(300, 4)}};
  EXPECT_EQ(round_trip(miv), miv);
  std::unordered_map<int, std::vector<int>> umiv{{1, {1}}, {2, {2, 2}}, {3, {}}};
  EXPECT_EQ(round_trip(umiv), umiv);
}

TEST(CodecMap, MapAndUnorderedMapShareNameAndDecodeIntoEachOther) {
  EXPECT_EQ((type_name<std::map<std::string, double>>()), "map<string,f64>");
  EXPECT_EQ((type_name<std::unordered_map<std::string, double>>()), "map<string,f64>");
  EXPECT_EQ((type_name<std::map<int, std::vector<int>>>()), (type_name<std::unordered_map<int, std::vector<int>>>()));

  std::map<std::string, double> m{{"one", 1}, {"two", 2}, {"three", 3}};
  auto um = decode_value<std::unordered_map<std::string, double>>(encode_value(m));
  EXPECT_EQ(um.size(), 3u);
  EXPECT_EQ(um.at("one"), 1);
  EXPECT_EQ(um.at("two"), 2);
  EXPECT_EQ(um.at("three"), 3);

  std::unordered_map<int, std::vector<int>> src{{5, {5, 5}}, {1, {1}}};
  auto dst = decode_value<std::map<int, std::vector<int>>>(encode_value(src));
  std::map<int, std::vector<int>> expected{{1, {1}}, {5, {5, 5}}};
  EXPECT_EQ(dst, expected);
}

// ---------------------------------------------------------------------------------------
// Pair, tuple, optional
// ---------------------------------------------------------------------------------------

TEST(CodecTuple, PairAndTupleRoundTripAndShareName) {
  std::pair<int, std::string> p{42, "answer"};
  EXPECT_EQ(round_trip(p), p);
  std::tuple<int, std::string> t{42, "answer"};
  EXPECT_EQ(round_trip(t), t);
  EXPECT_EQ((type_name<std::pair<int, std::string>>()), "tuple<i32,string>");
  EXPECT_EQ((type_name<std::pair<int, std::string>>()), (type_name<std::tuple<int, std::string>>()));
  EXPECT_EQ((decode_value<std::tuple<int, std::string>>(encode_value(p))), t);
  EXPECT_EQ((decode_value<std::pair<int, std::string>>(encode_value(t))), p);
}

TEST(CodecTuple, NestedAndEmptyTuples) {
  using Nested = std::tuple<int, std::string, std::tuple<double, std::vector<int>>, std::pair<bool, char>>;
  Nested n{-1, "s", {2.5, {1, 2, 3}}, {true, 'c'}};
  EXPECT_EQ(round_trip(n), n);
  EXPECT_EQ(type_name<Nested>(), "tuple<i32,string,tuple<f64,vector<i32>>,tuple<bool,char>>");

  Value empty = encode_value(std::tuple<>{});
  EXPECT_EQ(empty.type, "tuple<>");
  EXPECT_EQ(empty.bytes.size(), 0u);
  EXPECT_NO_THROW(decode_value<std::tuple<>>(empty));

  std::vector<std::pair<std::string, int>> vp{{"a", 1}, {"", 0}, {"ccc", -3}};
  EXPECT_EQ(round_trip(vp), vp);
}

TEST(CodecOptional, EmptyAndSet) {
  EXPECT_EQ(type_name<std::optional<int>>(), "optional<i32>");
  std::optional<int> none;
  Value enc_none = encode_value(none);
  EXPECT_EQ(enc_none.bytes.size(), 1u);
  EXPECT_FALSE(decode_value<std::optional<int>>(enc_none).has_value());

  std::optional<int> some = 17;
  auto back = round_trip(some);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, 17);

  std::optional<std::vector<std::string>> ovs = std::vector<std::string>{"a", "b"};
  EXPECT_EQ(round_trip(ovs), ovs);
  std::optional<std::optional<int>> oo = std::optional<int>{};
  auto oob = round_trip(oo);
  ASSERT_TRUE(oob.has_value());
  EXPECT_FALSE(oob->has_value());

  std::vector<std::optional<double>> vo{1.0, std::nullopt, 3.0};
  EXPECT_EQ(round_trip(vo), vo);
}

// ---------------------------------------------------------------------------------------
// User types
// ---------------------------------------------------------------------------------------

TEST(CodecUserType, SerializeMemberRoundTrips) {
  codec_test::Point p{1.5, -2.5, "origin-ish"};
  EXPECT_EQ(round_trip(p), p);
  // The encoding is just the members in order.
  Value enc = encode_value(p);
  EXPECT_EQ(enc.bytes.size(), 8 + 8 + 8 + p.label.size());
  EXPECT_EQ(round_trip(codec_test::Point{}), codec_test::Point{});
}

TEST(CodecUserType, NameFromCompilerSpelling) {
  const std::string& n = type_name<codec_test::Point>();
  EXPECT_EQ(n, "codec_test::Point");
  EXPECT_EQ(n.find(';'), std::string::npos);
  EXPECT_EQ(n.find(']'), std::string::npos);
  EXPECT_EQ(type_name<std::vector<codec_test::Point>>(), "vector<codec_test::Point>");
}

TEST(CodecUserType, StaticTypeNameIsUsed) {
  EXPECT_EQ(type_name<codec_test::Named>(), "test.Named");
  codec_test::Named n{7, {1, 2, 3}, {{"k", 0.5}}};
  Value enc = encode_value(n);
  EXPECT_EQ(enc.type, "test.Named");
  EXPECT_EQ(decode_value<codec_test::Named>(enc), n);
  EXPECT_EQ((type_name<std::map<std::string, codec_test::Named>>()), "map<string,test.Named>");
}

TEST(CodecUserType, VectorOfUserTypesAndNesting) {
  std::vector<codec_test::Point> pts;
  for (int i = 0; i < 100; ++i) pts.push_back({i * 1.0, -i * 2.0, std::string(static_cast<std::size_t>(i), 'p')});
  EXPECT_EQ(round_trip(pts), pts);
  EXPECT_TRUE(round_trip(std::vector<codec_test::Point>{}).empty());

  codec_test::Outer o{{1, 2, "p"}, codec_test::Named{3, {4}, {{"five", 5.0}}}, pts};
  EXPECT_EQ(round_trip(o), o);
  codec_test::Outer o2{{1, 2, "p"}, std::nullopt, {}};
  EXPECT_EQ(round_trip(o2), o2);

  std::vector<codec_test::Named> named(3);
  named[1].a = 9;
  named[2].c["x"] = 1;
  EXPECT_EQ(round_trip(named), named);
  EXPECT_EQ(type_name<std::vector<codec_test::Named>>(), "vector<test.Named>");
}

// ---------------------------------------------------------------------------------------
// Wrong types and corrupt bytes
// ---------------------------------------------------------------------------------------

TEST(CodecErrors, WrongTypeThrowsNamingBothTypes) {
  Value v = encode_value(42);
  try {
    decode_value<double>(v);
    FAIL() << "expected DecodeError";
  } catch (const DecodeError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("i32"), std::string::npos) << what;
    EXPECT_NE(what.find("f64"), std::string::npos) << what;
  }
  // Same size, different type: still rejected.
  EXPECT_THROW(decode_value<std::uint32_t>(v), DecodeError);
  EXPECT_THROW(decode_value<float>(v), DecodeError);
  EXPECT_THROW(decode_value<std::vector<int>>(encode_value(std::vector<double>{1.0})), DecodeError);
  EXPECT_THROW(decode_value<codec_test::Point>(encode_value(codec_test::Named{})), DecodeError);
  try {
    decode_value<std::map<std::string, double>>(encode_value(std::vector<std::string>{"a"}));
    FAIL() << "expected DecodeError";
  } catch (const DecodeError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("vector<string>"), std::string::npos) << what;
    EXPECT_NE(what.find("map<string,f64>"), std::string::npos) << what;
  }
  // DecodeError is a distrib::Error and a std::runtime_error.
  EXPECT_THROW(decode_value<double>(v), distrib::Error);
  EXPECT_THROW(decode_value<double>(v), std::runtime_error);
  EXPECT_THROW(decode_value<int>(Value{"", {}}), DecodeError);
}

template <class T>
void expect_every_prefix_throws(const T& v) {
  Value enc = encode_value(v);
  ASSERT_GT(enc.bytes.size(), 0u);
  for (std::size_t n = 0; n < enc.bytes.size(); ++n) {
    EXPECT_THROW(decode_value<T>(prefix_of(enc, n)), DecodeError) << type_name<T>() << " prefix " << n;
  }
  EXPECT_EQ(decode_value<T>(enc), v);
}

TEST(CodecErrors, EveryTruncationThrows) {
  expect_every_prefix_throws(std::vector<std::string>{"alpha", "", std::string("b\0c", 3), "delta-delta"});
  expect_every_prefix_throws(std::map<std::string, double>{{"a", 1.0}, {"", 2.0}, {"ccc", 3.0}});
  expect_every_prefix_throws(std::map<int, std::vector<int>>{{1, {1, 2}}, {2, {}}, {3, {3}}});
  expect_every_prefix_throws(std::vector<std::vector<int>>{{1}, {}, {2, 3}});
  expect_every_prefix_throws(std::vector<codec_test::Point>{{1, 2, "x"}, {3, 4, ""}});
  expect_every_prefix_throws(std::tuple<int, std::string, std::optional<double>>{1, "two", 3.0});
  expect_every_prefix_throws(codec_test::Named{1, {2, 3}, {{"four", 4.0}}});
  expect_every_prefix_throws(std::tuple<std::vector<double>>{{1, 2, 3}});  // nested: counted
}

TEST(CodecErrors, TrailingBytesThrow) {
  EXPECT_THROW(decode_value<int>(with_extra_bytes(encode_value(1), "x")), DecodeError);
  EXPECT_THROW(decode_value<std::tuple<std::string>>(with_extra_bytes(encode_value(std::tuple<std::string>("abc")), "d")),
               DecodeError);
  EXPECT_THROW(decode_value<std::vector<int>>(with_extra_bytes(encode_value(std::vector<int>{1, 2}), "\1\2\3")),
               DecodeError);  // not a whole element
  EXPECT_THROW((decode_value<std::map<std::string, double>>(
                   with_extra_bytes(encode_value(std::map<std::string, double>{{"a", 1}}), std::string(8, '\0')))),
               DecodeError);
  EXPECT_THROW(decode_value<codec_test::Point>(with_extra_bytes(encode_value(codec_test::Point{}), "!")), DecodeError);
  EXPECT_THROW(decode_value<std::optional<int>>(with_extra_bytes(encode_value(std::optional<int>{}), std::string(1, '\0'))),
               DecodeError);
  EXPECT_THROW(decode_value<std::tuple<>>(with_extra_bytes(encode_value(std::tuple<>{}), "z")), DecodeError);
}

// A huge forged element count followed by a few bytes must be rejected by the count check
// (the error says "count"), before any allocation: an attempted allocation of 1<<60
// elements would instead surface as std::bad_alloc or std::length_error.
template <class T>
void expect_forged_count_rejected(std::uint64_t count) {
  RawBytes raw;
  raw.put<std::uint64_t>(count).put<std::uint64_t>(0).put<std::uint32_t>(1);
  try {
    decode_value<T>(raw.value(type_name<T>()));
    ADD_FAILURE() << type_name<T>() << ": expected DecodeError";
  } catch (const DecodeError& e) {
    EXPECT_NE(std::string(e.what()).find("count"), std::string::npos) << type_name<T>() << ": " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << type_name<T>() << ": wrong exception " << e.what();
  }
}

TEST(CodecErrors, ForgedHugeCountThrowsWithoutAllocating) {
  for (std::uint64_t count : {std::uint64_t{1} << 60, std::uint64_t{1} << 27, ~std::uint64_t{0}}) {
    SCOPED_TRACE(count);
    // Contiguous types carry a count inside other types (a whole Value is its elements).
    expect_forged_count_rejected<std::tuple<std::vector<double>>>(count);
    expect_forged_count_rejected<std::tuple<std::vector<char>>>(count);
    expect_forged_count_rejected<std::vector<bool>>(count);
    expect_forged_count_rejected<std::vector<std::string>>(count);
    expect_forged_count_rejected<std::vector<std::vector<int>>>(count);
    expect_forged_count_rejected<std::tuple<std::string>>(count);
    expect_forged_count_rejected<std::map<std::string, double>>(count);
    expect_forged_count_rejected<std::unordered_map<int, std::vector<int>>>(count);
    expect_forged_count_rejected<std::vector<std::pair<int, int>>>(count);
    expect_forged_count_rejected<std::vector<std::optional<int>>>(count);
  }
  // User types have no minimum size, so only absurd counts are rejected up front; a
  // plausible count fails on the first missing element instead.
  expect_forged_count_rejected<std::vector<codec_test::Point>>(std::uint64_t{1} << 60);
  RawBytes raw;
  raw.put<std::uint64_t>(std::uint64_t{1} << 20).put<double>(1.0);
  EXPECT_THROW(decode_value<std::vector<codec_test::Point>>(raw.value(type_name<std::vector<codec_test::Point>>())),
               DecodeError);

  // A forged inner count in an otherwise valid outer container.
  RawBytes inner;
  inner.put<std::uint64_t>(1).put<std::uint64_t>(std::uint64_t{1} << 60).put<std::int32_t>(5);
  EXPECT_THROW(decode_value<std::vector<std::vector<int>>>(inner.value("vector<vector<i32>>")), DecodeError);
  RawBytes map_value;
  map_value.put<std::uint64_t>(1).put<std::int32_t>(1).put<std::uint64_t>(std::uint64_t{1} << 60);
  EXPECT_THROW((decode_value<std::map<int, std::vector<int>>>(map_value.value("map<i32,vector<i32>>"))), DecodeError);
}

TEST(CodecErrors, CountExactlyMatchingBytesDecodes) {
  // A hand-made encoding equal to what the encoder would produce decodes (guards the
  // forged-count tests above against rejecting everything).
  RawBytes raw;
  raw.put<std::uint64_t>(2).put<std::uint64_t>(1).raw("a").put<std::uint64_t>(0);
  auto v = decode_value<std::vector<std::string>>(raw.value("vector<string>"));
  EXPECT_EQ(v, (std::vector<std::string>{"a", ""}));
  RawBytes one_short;
  one_short.put<std::uint64_t>(3).put<std::uint64_t>(1).raw("a").put<std::uint64_t>(0);
  EXPECT_THROW(decode_value<std::vector<std::string>>(one_short.value("vector<string>")), DecodeError);
}

}  // namespace
