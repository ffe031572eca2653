#pragma once
// Codec<T>: how a C++ value becomes bytes that travel between processes.
//
// Supported out of the box: arithmetic types, std::string, std::vector, std::map,
// std::unordered_map, std::pair, std::tuple, std::optional, and any user type with a
// `serialize` member:
//
//   struct Point {
//     double x = 0, y = 0;
//     template <class Archive> void serialize(Archive& ar) { ar(x, y); }
//   };
//
// `serialize` lists the members in order; it is used both to encode (the members are read)
// and to decode (into a default-constructed object). A user type is named by its C++ type
// (as the compiler spells it); give it a static `distrib_type_name()` to choose a name that
// stays the same across compilers.
//
// Every encoded Value carries its type's name; decoding it as another type throws
// DecodeError naming both types. All decoders check lengths against the bytes left before
// allocating, so corrupt input raises DecodeError and never over-allocates.
//
// Contiguous types, std::string and std::vector of an arithmetic type other than bool, are
// their elements alone as a whole Value (the byte count gives the element count; inside
// other types they carry a u64 count first): a Value can then be the memory of the string
// or vector itself. encode_value of an rvalue (a task's result, `std::move(v)`) takes the
// memory over instead of copying it; a const one is copied once, into an aligned buffer.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "distrib/bytes.hpp"
#include "distrib/errors.hpp"

namespace distrib {

/// An encoded value: the name of its C++ type (as Codec spells it) and its bytes.
struct Value {
  std::string type;
  Bytes bytes;
};

/// Appends bytes to a growing buffer that becomes a Bytes without a copy.
class Writer {
 public:
  void write(const void* src, std::size_t n) {
    if (n == 0) return;
    reserve(n);
    std::memcpy(buf_.get() + size_, src, n);
    size_ += n;
  }
  template <class T>
  void put(T v) {
    static_assert(std::is_arithmetic_v<T>);
    write(&v, sizeof v);
  }
  /// Makes room for `n` more bytes so a bulk write does not grow the buffer twice.
  void reserve(std::size_t n) {
    if (size_ + n <= cap_) return;
    // Doubling amortises many small writes; a write beyond that gets exactly what it needs,
    // so that a large value's buffer has the value's size and the pool can reuse it for
    // the next value, or frame, of that size (a doubled 1 GiB buffer would never match).
    std::size_t cap = std::max<std::size_t>(64, cap_ * 2);
    if (cap < size_ + n) cap = size_ + n;
    auto next = detail::allocate_buffer(cap);
    if (size_ > 0) std::memcpy(next.get(), buf_.get(), size_);
    buf_ = std::move(next);
    cap_ = cap;
  }
  std::size_t size() const { return size_; }
  Bytes finish() && { return Bytes::adopt(std::move(buf_), size_); }

 private:
  std::shared_ptr<std::byte[]> buf_;
  std::size_t size_ = 0;
  std::size_t cap_ = 0;
};

/// Reads bytes in order; every read checks that enough bytes remain.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> bytes) : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}
  void read(void* dst, std::size_t n) {
    if (n == 0) return;
    require(n);
    std::memcpy(dst, p_, n);
    p_ += n;
  }
  template <class T>
  T get() {
    static_assert(std::is_arithmetic_v<T>);
    T v;
    read(&v, sizeof v);
    return v;
  }
  /// Reads an element count and checks it can fit in what is left, assuming each element
  /// takes at least `min_element_size` bytes: a forged count never drives a huge allocation.
  std::size_t get_count(std::size_t min_element_size) {
    auto n = get<std::uint64_t>();
    if (min_element_size > 0 && n > remaining() / min_element_size)
      throw DecodeError("corrupt value: element count " + std::to_string(n) + " exceeds the " +
                        std::to_string(remaining()) + " bytes left");
    // Elements that take no bytes (an empty struct): cap the count so 8 bytes cannot ask
    // for billions of them.
    if (min_element_size == 0 && n > (std::uint64_t{1} << 24))
      throw DecodeError("corrupt value: element count " + std::to_string(n) + " is too large");
    return static_cast<std::size_t>(n);
  }
  std::size_t remaining() const { return static_cast<std::size_t>(end_ - p_); }
  const std::byte* position() const { return p_; }
  void skip(std::size_t n) {
    require(n);
    p_ += n;
  }

 private:
  void require(std::size_t n) const {
    if (n > remaining())
      throw DecodeError("truncated value: need " + std::to_string(n) + " bytes, " +
                        std::to_string(remaining()) + " left");
  }
  const std::byte* p_;
  const std::byte* end_;
};

template <class T, class Enable = void>
struct Codec;  // no Codec for this type: give it a `serialize` member (see above)

namespace detail {
// The compiler's spelling of T, used to name user types.
template <class T>
std::string compiler_type_name() {
  std::string_view f = __PRETTY_FUNCTION__;
  auto start = f.find("T = ") + 4;
  auto end = f.find_first_of(";]", start);
  return std::string(f.substr(start, end - start));
}

struct EncodeArchive;
struct DecodeArchive;

template <class T>
concept HasSerialize = requires(T& t, EncodeArchive& ea, DecodeArchive& da) {
  t.serialize(ea);
  t.serialize(da);
};
template <class T>
concept HasTypeName = requires {
  { T::distrib_type_name() } -> std::convertible_to<std::string>;
};
template <class T>
inline constexpr bool is_bulk_v = std::is_arithmetic_v<T> && !std::is_same_v<T, bool>;

/// std::string and std::vector of a bulk type: a whole Value is their elements alone.
template <class T>
inline constexpr bool is_contiguous_v = false;
template <class T>
inline constexpr bool is_contiguous_v<std::vector<T>> = is_bulk_v<T>;
template <>
inline constexpr bool is_contiguous_v<std::string> = true;

/// Values of contiguous types at least this large take over the memory of an rvalue
/// instead of copying it (smaller ones are copied into messages anyway).
inline constexpr std::size_t kAdoptBytes = 64 * 1024;

/// A Value holding the elements of a contiguous container `c` (std::string or std::vector
/// of a bulk type): copied, or for an rvalue of kAdoptBytes or more that wastes at most a
/// quarter of its capacity, moved into the Value's owner (no copy; nobody else can reach it).
template <class C>
Bytes contiguous_bytes(const C& c) {
  return Bytes::copy_of(c.data(), c.size() * sizeof(typename C::value_type));
}
template <class C>
Bytes contiguous_bytes(C&& c) requires(!std::is_lvalue_reference_v<C>) {
  const std::size_t n = c.size() * sizeof(typename C::value_type);
  const std::size_t capacity = c.capacity() * sizeof(typename C::value_type);
  if (n < kAdoptBytes || capacity - n > n / 4) return contiguous_bytes(static_cast<const C&>(c));
  auto holder = std::make_shared<C>(std::move(c));
  auto* data = reinterpret_cast<std::byte*>(holder->data());
  return Bytes::adopt(std::shared_ptr<std::byte[]>(std::move(holder), data), n);
}
/// The elements of a contiguous Value, checked to be whole elements of type E.
template <class E>
std::span<const std::byte> contiguous_elements(const Value& v);
}  // namespace detail

/// The name a value of type T carries on the wire (cached: computed once per type).
template <class T>
const std::string& type_name() {
  static const std::string name = Codec<std::remove_cvref_t<T>>::name();
  return name;
}

template <class T>
struct Codec<T, std::enable_if_t<std::is_arithmetic_v<T>>> {
  static std::string name() {
    if constexpr (std::is_same_v<T, bool>) return "bool";
    else if constexpr (std::is_same_v<T, char>) return "char";
    else if constexpr (std::is_floating_point_v<T>) return "f" + std::to_string(sizeof(T) * 8);
    else if constexpr (std::is_signed_v<T>) return "i" + std::to_string(sizeof(T) * 8);
    else return "u" + std::to_string(sizeof(T) * 8);
  }
  static constexpr std::size_t min_size = sizeof(T);
  static void encode(Writer& w, const T& v) { w.put(v); }
  static void decode(Reader& r, T& v) {
    if constexpr (std::is_same_v<T, bool>) {
      auto b = r.get<std::uint8_t>();
      if (b > 1) throw DecodeError("corrupt value: bool byte is " + std::to_string(b));
      v = b != 0;
    } else {
      v = r.get<T>();
    }
  }
};

template <>
struct Codec<std::string> {
  static std::string name() { return "string"; }
  static constexpr std::size_t min_size = 8;
  static void encode(Writer& w, const std::string& s) {
    w.put<std::uint64_t>(s.size());
    w.write(s.data(), s.size());
  }
  static void decode(Reader& r, std::string& s) {
    auto n = r.get_count(1);
    s.resize(n);
    r.read(s.data(), n);
  }
  // A whole Value: the characters alone (see the top of this file).
  static Value to_value(const std::string& s) { return {"string", detail::contiguous_bytes(s)}; }
  static Value adopt_value(std::string&& s) { return {"string", detail::contiguous_bytes(std::move(s))}; }
  static std::string from_value(const Value& v) {
    return std::string(reinterpret_cast<const char*>(v.bytes.data()), v.bytes.size());
  }
};

template <class T>
struct Codec<std::vector<T>> {
  static std::string name() { return "vector<" + type_name<T>() + ">"; }
  static constexpr std::size_t min_size = 8;
  static void encode(Writer& w, const std::vector<T>& v) {
    w.put<std::uint64_t>(v.size());
    if constexpr (detail::is_bulk_v<T>) {
      w.write(v.data(), v.size() * sizeof(T));
    } else {
      for (const auto& x : v) Codec<T>::encode(w, x);
    }
  }
  static void decode(Reader& r, std::vector<T>& v) {
    auto n = r.get_count(Codec<T>::min_size);
    v.clear();
    if constexpr (detail::is_bulk_v<T>) {
      v.reserve(n);  // fresh, untouched memory: huge pages make its first touch far cheaper
      detail::advise_huge_pages(v.data(), n * sizeof(T));
      const std::byte* at = r.position();
      if (reinterpret_cast<std::uintptr_t>(at) % alignof(T) == 0) {
        // One pass: the copy is the first touch (resize would zero the memory first).
        r.skip(n * sizeof(T));  // checks the length before anything is read
        const auto* first = reinterpret_cast<const T*>(at);
        v.insert(v.end(), first, first + n);
      } else {
        v.resize(n);
        r.read(v.data(), n * sizeof(T));
      }
    } else {
      v.reserve(std::min(n, r.remaining()));  // the count is not trusted for the allocation
      for (std::size_t i = 0; i < n; ++i) {
        T x{};
        Codec<T>::decode(r, x);
        v.push_back(std::move(x));
      }
    }
  }
  // A whole Value of a bulk T: the elements alone (see the top of this file).
  static Value to_value(const std::vector<T>& v) requires detail::is_bulk_v<T> {
    return {type_name<std::vector<T>>(), detail::contiguous_bytes(v)};
  }
  static Value adopt_value(std::vector<T>&& v) requires detail::is_bulk_v<T> {
    return {type_name<std::vector<T>>(), detail::contiguous_bytes(std::move(v))};
  }
  static std::vector<T> from_value(const Value& value) requires detail::is_bulk_v<T> {
    auto bytes = detail::contiguous_elements<T>(value);
    const std::size_t n = bytes.size() / sizeof(T);
    std::vector<T> v;
    if (reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(T) == 0) {
      // One pass: the copy is the first touch (a sized constructor would zero it first).
      const auto* first = reinterpret_cast<const T*>(bytes.data());
      v.assign(first, first + n);
    } else {
      v.resize(n);
      if (n > 0) std::memcpy(v.data(), bytes.data(), bytes.size());
    }
    return v;
  }
};

template <class E>
std::span<const std::byte> detail::contiguous_elements(const Value& v) {
  if (v.bytes.size() % sizeof(E) != 0)
    throw DecodeError("corrupt value of type '" + v.type + "': " + std::to_string(v.bytes.size()) +
                      " bytes are not whole elements of " + std::to_string(sizeof(E)) + " bytes");
  return v.bytes.span();
}

namespace detail {
template <class M>
struct MapCodec {
  using K = typename M::key_type;
  using V = typename M::mapped_type;
  static std::string name() { return "map<" + type_name<K>() + "," + type_name<V>() + ">"; }
  static constexpr std::size_t min_size = 8;
  static void encode(Writer& w, const M& m) {
    w.put<std::uint64_t>(m.size());
    for (const auto& [k, v] : m) {
      Codec<K>::encode(w, k);
      Codec<V>::encode(w, v);
    }
  }
  static void decode(Reader& r, M& m) {
    auto n = r.get_count(Codec<K>::min_size + Codec<V>::min_size);
    m.clear();
    for (std::size_t i = 0; i < n; ++i) {
      K k{};
      V v{};
      Codec<K>::decode(r, k);
      Codec<V>::decode(r, v);
      m.insert_or_assign(std::move(k), std::move(v));
    }
  }
};
}  // namespace detail

// std::map and std::unordered_map share one encoding and name, so either decodes the other.
template <class K, class V, class C, class A>
struct Codec<std::map<K, V, C, A>> : detail::MapCodec<std::map<K, V, C, A>> {};
template <class K, class V, class H, class E, class A>
struct Codec<std::unordered_map<K, V, H, E, A>> : detail::MapCodec<std::unordered_map<K, V, H, E, A>> {};

// std::pair and std::tuple share one encoding and name.
template <class... Ts>
struct Codec<std::tuple<Ts...>> {
  static std::string name() {
    std::string n = "tuple<";
    bool first = true;
    ((n += (first ? "" : ","), n += type_name<Ts>(), first = false), ...);
    return n + ">";
  }
  static constexpr std::size_t min_size = (std::size_t{0} + ... + Codec<Ts>::min_size);
  static void encode(Writer& w, const std::tuple<Ts...>& t) {
    std::apply([&](const auto&... xs) { (Codec<std::remove_cvref_t<decltype(xs)>>::encode(w, xs), ...); }, t);
  }
  static void decode(Reader& r, std::tuple<Ts...>& t) {
    std::apply([&](auto&... xs) { (Codec<std::remove_cvref_t<decltype(xs)>>::decode(r, xs), ...); }, t);
  }
};
template <class A, class B>
struct Codec<std::pair<A, B>> {
  static std::string name() { return Codec<std::tuple<A, B>>::name(); }
  static constexpr std::size_t min_size = Codec<A>::min_size + Codec<B>::min_size;
  static void encode(Writer& w, const std::pair<A, B>& p) {
    Codec<A>::encode(w, p.first);
    Codec<B>::encode(w, p.second);
  }
  static void decode(Reader& r, std::pair<A, B>& p) {
    Codec<A>::decode(r, p.first);
    Codec<B>::decode(r, p.second);
  }
};

template <class T>
struct Codec<std::optional<T>> {
  static std::string name() { return "optional<" + type_name<T>() + ">"; }
  static constexpr std::size_t min_size = 1;
  static void encode(Writer& w, const std::optional<T>& o) {
    w.put<std::uint8_t>(o.has_value() ? 1 : 0);
    if (o) Codec<T>::encode(w, *o);
  }
  static void decode(Reader& r, std::optional<T>& o) {
    bool present = false;
    Codec<bool>::decode(r, present);
    if (!present) {
      o.reset();
      return;
    }
    T x{};
    Codec<T>::decode(r, x);
    o = std::move(x);
  }
};

namespace detail {
struct EncodeArchive {
  Writer& w;
  template <class... Ts>
  void operator()(const Ts&... xs) {
    (Codec<std::remove_cvref_t<Ts>>::encode(w, xs), ...);
  }
};
struct DecodeArchive {
  Reader& r;
  template <class... Ts>
  void operator()(Ts&... xs) {
    (Codec<std::remove_cvref_t<Ts>>::decode(r, xs), ...);
  }
};
}  // namespace detail

/// User types with a `serialize(Archive&)` member.
template <class T>
struct Codec<T, std::enable_if_t<detail::HasSerialize<T>>> {
  static std::string name() {
    if constexpr (detail::HasTypeName<T>) return std::string(T::distrib_type_name());
    else return detail::compiler_type_name<T>();
  }
  static constexpr std::size_t min_size = 0;
  static void encode(Writer& w, const T& v) {
    detail::EncodeArchive ar{w};
    const_cast<T&>(v).serialize(ar);  // serialize only reads the members when encoding
  }
  static void decode(Reader& r, T& v) {
    detail::DecodeArchive ar{r};
    v.serialize(ar);
  }
};

namespace detail {
// Types whose whole Value is not their encoding inside other types: NDArray, whose buffer
// already holds its encoded form, and the contiguous types.
template <class T>
concept ValueCodec = requires(const T& t, const Value& v) {
  { Codec<T>::to_value(t) } -> std::same_as<Value>;
  { Codec<T>::from_value(v) } -> std::same_as<T>;
};
// Of those, the ones that can take over an rvalue's memory.
template <class T>
concept AdoptingCodec = ValueCodec<T> && requires(T&& t) {
  { Codec<T>::adopt_value(std::move(t)) } -> std::same_as<Value>;
};
}  // namespace detail

/// Encodes a value with its type name.
template <class T>
Value encode_value(const T& v) {
  using U = std::remove_cvref_t<T>;
  if constexpr (detail::ValueCodec<U>) {
    return Codec<U>::to_value(v);
  } else {
    Writer w;
    Codec<U>::encode(w, v);
    return Value{type_name<U>(), std::move(w).finish()};
  }
}
/// As above; a large string or vector given as an rvalue becomes the Value's memory.
template <class T>
Value encode_value(T&& v) requires(!std::is_lvalue_reference_v<T>) {
  using U = std::remove_cvref_t<T>;
  if constexpr (detail::AdoptingCodec<U> && !std::is_const_v<std::remove_reference_t<T>>)
    return Codec<U>::adopt_value(std::move(v));
  else
    return encode_value(static_cast<const U&>(v));
}

/// Decodes a value as T; throws DecodeError if it holds another type or bad bytes.
template <class T>
T decode_value(const Value& v) {
  if (v.type != type_name<T>())
    throw DecodeError("cannot decode a value of type '" + v.type + "' as '" + type_name<T>() + "'");
  if constexpr (detail::ValueCodec<T>) {
    return Codec<T>::from_value(v);
  } else {
    Reader r(v.bytes.span());
    T out{};
    Codec<T>::decode(r, out);
    if (r.remaining() != 0)
      throw DecodeError("corrupt value of type '" + v.type + "': " + std::to_string(r.remaining()) +
                        " bytes left over");
    return out;
  }
}

}  // namespace distrib
