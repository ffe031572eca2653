#include "distrib/ndarray.hpp"

#include <cstring>

namespace distrib {

namespace {
// Encoded form: u32 magic "NDA1", u8 dtype, u8 ndim, u16 zero, i64 shape[ndim], elements.
constexpr std::uint32_t kMagic = 0x3141444e;  // "NDA1" little-endian
constexpr std::size_t kMaxDims = 32;

std::size_t header_bytes(std::size_t ndim) { return 8 + 8 * ndim; }

void write_header(std::byte* at, DType dtype, const NDArray::Shape& shape) {
  std::uint32_t magic = kMagic;
  std::memcpy(at, &magic, 4);
  at[4] = static_cast<std::byte>(dtype);
  at[5] = static_cast<std::byte>(shape.size());
  at[6] = at[7] = std::byte{0};
  if (!shape.empty()) std::memcpy(at + 8, shape.data(), 8 * shape.size());
}
}  // namespace

std::size_t itemsize(DType d) {
  switch (d) {
    case DType::float64: return 8;
    case DType::float32: return 4;
    case DType::int64: return 8;
    case DType::boolean: return 1;
  }
  throw std::invalid_argument("unknown dtype");
}

const char* to_string(DType d) {
  switch (d) {
    case DType::float64: return "float64";
    case DType::float32: return "float32";
    case DType::int64: return "int64";
    case DType::boolean: return "bool";
  }
  return "?";
}

NDArray::NDArray(Shape shape, DType dtype) : shape_(std::move(shape)), dtype_(dtype) {
  if (shape_.size() > kMaxDims) throw std::invalid_argument("NDArray: more than 32 dimensions");
  size_ = 1;
  for (auto n : shape_)
    if (n < 0) throw std::invalid_argument("NDArray: negative extent in shape " + shape_string());
  for (auto n : shape_)
    if (__builtin_mul_overflow(size_, n, &size_) || size_ > (std::int64_t{1} << 56))
      throw std::invalid_argument("NDArray: shape " + shape_string() + " is too large");
  (void)itemsize(dtype_);  // rejects an unknown dtype
  // Elements start 64-byte aligned; the header sits right before them.
  std::size_t header = header_bytes(shape_.size());
  offset_ = (header + 63) / 64 * 64;
  buffer_ = Bytes::allocate(offset_ + nbytes());
  write_header(buffer_.mutable_data() + offset_ - header, dtype_, shape_);
}

NDArray NDArray::zeros(Shape shape, DType dtype) {
  NDArray a(std::move(shape), dtype);
  std::memset(a.buffer_.mutable_data() + a.offset_, 0, a.nbytes());
  return a;
}

NDArray NDArray::full(Shape shape, double value, DType dtype) {
  NDArray a(std::move(shape), dtype);
  switch (dtype) {
    case DType::float64: std::fill_n(a.values<double>().data(), a.size(), value); break;
    case DType::float32: std::fill_n(a.values<float>().data(), a.size(), static_cast<float>(value)); break;
    case DType::int64: std::fill_n(a.values<std::int64_t>().data(), a.size(), static_cast<std::int64_t>(value)); break;
    case DType::boolean: std::fill_n(a.values<bool>().data(), a.size(), value != 0); break;
  }
  return a;
}

NDArray::Shape NDArray::strides() const {
  Shape s(shape_.size(), 1);
  for (std::size_t i = shape_.size(); i-- > 1;) s[i - 1] = s[i] * shape_[i];
  return s;
}

std::string NDArray::shape_string() const {
  std::string s = "(";
  for (std::size_t i = 0; i < shape_.size(); ++i) s += (i ? ", " : "") + std::to_string(shape_[i]);
  return s + (shape_.size() == 1 ? ",)" : ")");
}

std::size_t NDArray::flat_index(std::initializer_list<std::int64_t> index) const {
  if (index.size() != shape_.size())
    throw std::out_of_range("NDArray: " + std::to_string(index.size()) + " indices for a " +
                            std::to_string(shape_.size()) + "-d array");
  std::int64_t flat = 0;
  std::size_t axis = 0;
  for (auto i : index) {
    if (i < 0 || i >= shape_[axis])
      throw std::out_of_range("NDArray: index " + std::to_string(i) + " out of range for axis " +
                              std::to_string(axis) + " of shape " + shape_string());
    flat = flat * shape_[axis] + i;
    ++axis;
  }
  return static_cast<std::size_t>(flat);
}

NDArray NDArray::clone() const {
  NDArray a(shape_, dtype_);
  std::memcpy(a.buffer_.mutable_data() + a.offset_, buffer_.data() + offset_, nbytes());
  return a;
}

bool NDArray::equals(const NDArray& o) const {
  return shape_ == o.shape_ && dtype_ == o.dtype_ &&
         std::memcmp(buffer_.data() + offset_, o.buffer_.data() + o.offset_, nbytes()) == 0;
}

Value NDArray::to_value() const {
  std::size_t header = header_bytes(shape_.size());
  return Value{type_name<NDArray>(), buffer_.slice(offset_ - header, header + nbytes())};
}

NDArray NDArray::from_value(const Value& v) {
  const auto& b = v.bytes;
  if (b.size() < 8) throw DecodeError("corrupt ndarray: " + std::to_string(b.size()) + " bytes");
  std::uint32_t magic = 0;
  std::memcpy(&magic, b.data(), 4);
  auto dtype = static_cast<DType>(b.data()[4]);
  std::size_t ndim = static_cast<std::size_t>(b.data()[5]);
  if (magic != kMagic) throw DecodeError("corrupt ndarray: bad magic");
  if (dtype != DType::float64 && dtype != DType::float32 && dtype != DType::int64 && dtype != DType::boolean)
    throw DecodeError("corrupt ndarray: unknown dtype " + std::to_string(static_cast<int>(dtype)));
  if (ndim > kMaxDims || b.size() < header_bytes(ndim)) throw DecodeError("corrupt ndarray: bad header");
  NDArray a;
  a.dtype_ = dtype;
  a.shape_.resize(ndim);
  if (ndim) std::memcpy(a.shape_.data(), b.data() + 8, 8 * ndim);
  a.size_ = 1;
  bool empty = false;
  for (auto n : a.shape_) {
    if (n < 0) throw DecodeError("corrupt ndarray: negative extent in shape " + a.shape_string());
    empty = empty || n == 0;
  }
  if (empty) a.size_ = 0;
  else
    for (auto n : a.shape_) {
      if (a.size_ > static_cast<std::int64_t>(b.size()) / n)
        throw DecodeError("corrupt ndarray: shape " + a.shape_string() + " does not fit " + std::to_string(b.size()) + " bytes");
      a.size_ *= n;
    }
  if (header_bytes(ndim) + a.nbytes() != b.size())
    throw DecodeError("corrupt ndarray: shape " + a.shape_string() + " needs " + std::to_string(a.nbytes()) +
                      " bytes of data, got " + std::to_string(b.size() - header_bytes(ndim)));
  a.buffer_ = b;  // no copy: the elements stay where they arrived
  a.offset_ = header_bytes(ndim);
  if (dtype == DType::boolean)
    for (std::size_t i = 0; i < a.nbytes(); ++i)
      if (static_cast<unsigned>(b.data()[a.offset_ + i]) > 1) throw DecodeError("corrupt ndarray: bool byte above 1");
  return a;
}

}  // namespace distrib
