#pragma once
// NDArray: a dense, contiguous (C order), owning N-dimensional array, the block type of
// distrib::array and a value that tasks take and return.
//
//   distrib::NDArray a = distrib::NDArray::zeros({3, 4});      // float64
//   a.at<double>({1, 2}) = 5;
//   std::span<double> all = a.values<double>();
//
// Copies share the data (as numpy references do); clone() makes an independent copy.
// An NDArray travels between processes without being copied into or out of messages: its
// buffer holds the encoded header right before the elements.
#include <cstdint>
#include <initializer_list>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "distrib/bytes.hpp"
#include "distrib/codec.hpp"

namespace distrib {

enum class DType : std::uint8_t { float64 = 1, float32 = 2, int64 = 3, boolean = 4 };

std::size_t itemsize(DType d);
const char* to_string(DType d);

template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, double>) return DType::float64;
  else if constexpr (std::is_same_v<T, float>) return DType::float32;
  else if constexpr (std::is_same_v<T, std::int64_t>) return DType::int64;
  else if constexpr (std::is_same_v<T, bool>) return DType::boolean;
  else static_assert(sizeof(T) == 0, "NDArray holds double, float, std::int64_t or bool");
}

class NDArray {
 public:
  using Shape = std::vector<std::int64_t>;

  /// An empty float64 array of shape {0}.
  NDArray() : NDArray(Shape{0}) {}
  /// An array of `shape` whose elements are not initialised (fill them before reading).
  explicit NDArray(Shape shape, DType dtype = DType::float64);
  static NDArray zeros(Shape shape, DType dtype = DType::float64);
  static NDArray full(Shape shape, double value, DType dtype = DType::float64);
  /// A 1-d array holding a copy of `values`, optionally reshaped to `shape`.
  template <class T>
  static NDArray from_values(std::span<const T> values, Shape shape = {}) {
    if (shape.empty()) shape = {static_cast<std::int64_t>(values.size())};
    NDArray a(std::move(shape), dtype_of<T>());
    if (static_cast<std::size_t>(a.size()) != values.size())
      throw std::invalid_argument("NDArray::from_values: " + std::to_string(values.size()) +
                                  " values do not fill shape " + a.shape_string());
    std::copy(values.begin(), values.end(), a.values<T>().begin());
    return a;
  }

  const Shape& shape() const { return shape_; }
  std::size_t ndim() const { return shape_.size(); }
  std::int64_t size() const { return size_; }
  DType dtype() const { return dtype_; }
  std::size_t nbytes() const { return static_cast<std::size_t>(size_) * itemsize(dtype_); }
  /// Strides in elements (C order: the last axis is contiguous).
  Shape strides() const;
  std::string shape_string() const;

  /// The elements; throws std::invalid_argument if T is not the array's dtype.
  template <class T>
  std::span<T> values() {
    check<T>();
    return {reinterpret_cast<T*>(buffer_.mutable_data() + offset_), static_cast<std::size_t>(size_)};
  }
  template <class T>
  std::span<const T> values() const {
    check<T>();
    return {reinterpret_cast<const T*>(buffer_.data() + offset_), static_cast<std::size_t>(size_)};
  }
  /// The elements' bytes, whatever the dtype.
  std::span<std::byte> bytes() { return {buffer_.mutable_data() + offset_, nbytes()}; }
  std::span<const std::byte> bytes() const { return {buffer_.data() + offset_, nbytes()}; }
  template <class T>
  T& at(std::initializer_list<std::int64_t> index) {
    return values<T>()[flat_index(index)];
  }
  template <class T>
  const T& at(std::initializer_list<std::int64_t> index) const {
    return values<T>()[flat_index(index)];
  }

  /// An independent copy of the data.
  NDArray clone() const;
  /// Same shape, dtype and elements.
  bool equals(const NDArray& other) const;

  /// The encoded form, sharing this array's memory (used by Codec<NDArray>).
  Value to_value() const;
  /// An array over an encoded Value's memory; throws DecodeError on a bad header.
  static NDArray from_value(const Value& v);

 private:
  template <class T>
  void check() const {
    if (dtype_of<std::remove_const_t<T>>() != dtype_)
      throw std::invalid_argument(std::string("NDArray holds ") + to_string(dtype_) + ", not " +
                                  to_string(dtype_of<std::remove_const_t<T>>()));
  }
  std::size_t flat_index(std::initializer_list<std::int64_t> index) const;

  Shape shape_;
  DType dtype_ = DType::float64;
  std::int64_t size_ = 0;
  Bytes buffer_;             // [header][elements]
  std::size_t offset_ = 0;   // where the elements start in buffer_
};

template <>
struct Codec<NDArray> {
  static std::string name() { return "ndarray"; }
  static constexpr std::size_t min_size = 16;
  static Value to_value(const NDArray& a) { return a.to_value(); }
  static NDArray from_value(const Value& v) { return NDArray::from_value(v); }
  // Inside containers (e.g. std::vector<NDArray>) arrays are copied as length + bytes.
  static void encode(Writer& w, const NDArray& a) {
    auto v = a.to_value();
    w.put<std::uint64_t>(v.bytes.size());
    w.write(v.bytes.data(), v.bytes.size());
  }
  static void decode(Reader& r, NDArray& a) {
    auto n = r.get_count(1);
    Value v{name(), Bytes::copy_of(r.position(), n)};
    r.skip(n);
    a = NDArray::from_value(v);
  }
};

}  // namespace distrib
