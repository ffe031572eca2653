// decode_value for every codec type (a user type with serialize() too) over arbitrary
// bytes: the first byte picks the type.
// A value that decodes must encode and decode again to an equal value.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "distrib/codec.hpp"
#include "distrib/ndarray.hpp"
#include "distrib/task.hpp"

using namespace distrib;

namespace {
// A user type with serialize(), the codec of task arguments defined by applications.
struct Point {
  double x = 0;
  std::string label;
  std::vector<std::int64_t> ids;
  std::optional<NDArray> block;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(x, label, ids, block);
  }
  static std::string distrib_type_name() { return "fuzz.Point"; }
};

template <class T>
bool same(const T& a, const T& b) {
  if constexpr (std::is_same_v<T, NDArray>) {
    return a.equals(b);
  } else if constexpr (std::is_same_v<T, std::vector<NDArray>>) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!a[i].equals(b[i])) return false;
    return true;
  } else if constexpr (std::is_floating_point_v<T>) {
    return std::memcmp(&a, &b, sizeof a) == 0;
  } else if constexpr (std::is_same_v<T, std::vector<double>>) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
  } else {
    return a == b;
  }
}

template <class T>
void check(const std::uint8_t* data, std::size_t size) {
  Value v{type_name<T>(), Bytes::copy_of(data, size)};
  T out;
  try {
    out = decode_value<T>(v);
  } catch (const DecodeError&) {
    return;
  } catch (const std::invalid_argument&) {
    return;
  }
  Value encoded = encode_value(out);
  T again = decode_value<T>(encode_value(out));
  // Compared as encodings: a NaN inside a tuple or map is not == to itself.
  if constexpr (std::is_same_v<T, NDArray> || std::is_same_v<T, std::vector<NDArray>>) {
    if (!same(out, again)) std::abort();
  } else {
    Value twice = encode_value(again);
    if (encoded.bytes.size() != twice.bytes.size() ||
        (encoded.bytes.size() > 0 && std::memcmp(encoded.bytes.data(), twice.bytes.data(), encoded.bytes.size()) != 0))
      std::abort();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t* p = data + 1;
  std::size_t n = size - 1;
  switch (data[0] % 22) {
    case 0: check<std::int32_t>(p, n); break;
    case 1: check<std::int64_t>(p, n); break;
    case 2: check<std::uint8_t>(p, n); break;
    case 3: check<bool>(p, n); break;
    case 4: check<double>(p, n); break;
    case 5: check<float>(p, n); break;
    case 6: check<std::string>(p, n); break;
    case 7: check<std::vector<std::int64_t>>(p, n); break;
    case 8: check<std::vector<double>>(p, n); break;
    case 9: check<std::vector<std::string>>(p, n); break;
    case 10: check<std::vector<std::vector<std::int32_t>>>(p, n); break;
    case 11: check<std::map<std::string, std::int64_t>>(p, n); break;
    case 12: check<std::unordered_map<std::int32_t, std::string>>(p, n); break;
    case 13: check<std::tuple<std::int32_t, std::string, double>>(p, n); break;
    case 14: check<std::pair<std::string, std::vector<std::uint8_t>>>(p, n); break;
    case 15: check<std::optional<std::string>>(p, n); break;
    case 16: check<NDArray>(p, n); break;
    case 17: check<std::vector<NDArray>>(p, n); break;
    case 18: check<std::vector<bool>>(p, n); break;
    case 19: check<std::map<std::int64_t, std::vector<double>>>(p, n); break;
    case 20: check<Point>(p, n); break;
    // Elements of zero bytes: the count alone must not decide the allocation.
    case 21: check<std::vector<Nothing>>(p, n); break;
  }
  return 0;
}
