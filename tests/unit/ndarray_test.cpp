// NDArray: shapes, dtypes, element access, and the zero-copy encoding.
#include <gtest/gtest.h>

#include <cstring>
#include <distrib/ndarray.hpp>

namespace distrib {
namespace {

TEST(NDArray, ShapeStridesAndAccess) {
  auto a = NDArray::zeros({3, 4, 5});
  EXPECT_EQ(a.ndim(), 3u);
  EXPECT_EQ(a.size(), 60);
  EXPECT_EQ(a.nbytes(), 480u);
  EXPECT_EQ(a.strides(), (NDArray::Shape{20, 5, 1}));
  EXPECT_EQ(a.shape_string(), "(3, 4, 5)");
  a.at<double>({2, 3, 4}) = 7.5;
  EXPECT_EQ(a.values<double>()[59], 7.5);
  EXPECT_THROW(a.at<double>({3, 0, 0}), std::out_of_range);
  EXPECT_THROW(a.at<double>({0, 0}), std::out_of_range);
  EXPECT_THROW(a.values<float>(), std::invalid_argument);
  EXPECT_THROW(NDArray({2, -1}), std::invalid_argument);
  EXPECT_EQ(NDArray::zeros({0, 3}).size(), 0);
  EXPECT_EQ(NDArray::zeros({}).size(), 1);  // a 0-d array holds one element
}

TEST(NDArray, FullAndFromValuesForEveryDtype) {
  EXPECT_EQ(NDArray::full({2}, 1.5, DType::float64).values<double>()[1], 1.5);
  EXPECT_EQ(NDArray::full({2}, 1.5, DType::float32).values<float>()[0], 1.5f);
  EXPECT_EQ(NDArray::full({2}, 3, DType::int64).values<std::int64_t>()[1], 3);
  EXPECT_TRUE(NDArray::full({2}, 1, DType::boolean).values<bool>()[0]);
  std::vector<double> v{1, 2, 3, 4, 5, 6};
  auto m = NDArray::from_values<double>(v, {2, 3});
  EXPECT_EQ(m.at<double>({1, 0}), 4.0);
  EXPECT_THROW(NDArray::from_values<double>(v, {4, 2}), std::invalid_argument);
}

TEST(NDArray, CopiesShareDataCloneDoesNot) {
  auto a = NDArray::zeros({4});
  auto shared = a;
  auto copy = a.clone();
  a.values<double>()[0] = 9;
  EXPECT_EQ(shared.values<double>()[0], 9);
  EXPECT_EQ(copy.values<double>()[0], 0);
  EXPECT_FALSE(a.equals(copy));
  EXPECT_TRUE(a.equals(shared));
}

TEST(NDArray, EncodingRoundTripsWithoutCopying) {
  for (auto dtype : {DType::float64, DType::float32, DType::int64, DType::boolean}) {
    auto a = NDArray::full({7, 3}, 1, dtype);
    Value v = encode_value(a);
    EXPECT_EQ(v.type, "ndarray");
    // The value's bytes end with the array's own elements: same memory.
    auto elements = v.bytes.data() + v.bytes.size() - a.nbytes();
    NDArray b = decode_value<NDArray>(v);
    EXPECT_TRUE(b.equals(a)) << to_string(dtype);
    EXPECT_EQ(b.dtype(), dtype);
    EXPECT_EQ(b.shape(), a.shape());
    if (dtype == DType::float64) {
      EXPECT_EQ(reinterpret_cast<const std::byte*>(a.values<double>().data()), elements);
      EXPECT_EQ(reinterpret_cast<const std::byte*>(b.values<double>().data()), elements);
    }
  }
}

TEST(NDArray, InsideContainersItIsCopied) {
  std::vector<NDArray> arrays{NDArray::full({2, 2}, 3), NDArray::full({5}, 4, DType::int64)};
  auto back = decode_value<std::vector<NDArray>>(encode_value(arrays));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_TRUE(back[0].equals(arrays[0]));
  EXPECT_TRUE(back[1].equals(arrays[1]));
}

TEST(NDArray, CorruptEncodingsAreRejected) {
  auto good = encode_value(NDArray::full({4}, 2));
  auto corrupt = [&](std::size_t at, std::uint8_t byte) {
    auto copy = Bytes::copy_of(good.bytes.data(), good.bytes.size());
    copy.mutable_data()[at] = std::byte{byte};
    return Value{"ndarray", copy};
  };
  EXPECT_THROW(decode_value<NDArray>(corrupt(0, 0)), DecodeError);      // magic
  EXPECT_THROW(decode_value<NDArray>(corrupt(4, 99)), DecodeError);     // dtype
  EXPECT_THROW(decode_value<NDArray>(corrupt(5, 200)), DecodeError);    // ndim
  EXPECT_THROW(decode_value<NDArray>(corrupt(8, 5)), DecodeError);      // shape vs bytes
  EXPECT_THROW(decode_value<NDArray>(Value{"ndarray", good.bytes.slice(0, 12)}), DecodeError);
  EXPECT_THROW(decode_value<NDArray>(Value{"vector<f64>", good.bytes}), DecodeError);
  auto flags = encode_value(NDArray::full({3}, 1, DType::boolean));
  auto bad_bool = Bytes::copy_of(flags.bytes.data(), flags.bytes.size());
  bad_bool.mutable_data()[bad_bool.size() - 1] = std::byte{7};
  EXPECT_THROW(decode_value<NDArray>(Value{"ndarray", bad_bool}), DecodeError);
}

}  // namespace
}  // namespace distrib
