#include "core/task_spec.hpp"

#include <algorithm>
#include <string_view>

namespace distrib::detail {

std::vector<std::string> TaskSpec::dependencies() const {
  std::vector<std::string> deps;
  auto add = [&](const std::string& k) {
    if (std::find(deps.begin(), deps.end(), k) == deps.end()) deps.push_back(k);
  };
  for (const auto& a : args) {
    if (a.is_key()) add(a.key());
    else if (a.is_key_list())
      for (const auto& k : a.key_list().keys) add(k);
  }
  return deps;
}

namespace {
// The size of one element of an arithmetic type other than bool, by its Codec name ("char",
// i8..i64, u8..u64, f32, f64, f128), 0 for every other type: a std::vector of these is
// "bulk" (codec.hpp), whose whole Value is its elements alone, with no count.
std::size_t bulk_element_bytes(std::string_view element) {
  if (element == "char") return 1;
  if (element.size() < 2 || (element[0] != 'i' && element[0] != 'u' && element[0] != 'f')) return 0;
  std::size_t bits = 0;
  for (char c : element.substr(1)) {
    if (c < '0' || c > '9') return 0;
    bits = bits * 10 + static_cast<std::size_t>(c - '0');
  }
  return bits % 8 == 0 && bits >= 8 && bits <= 128 ? bits / 8 : 0;
}

// Inside a vector, an element whose whole Value is not its nested encoding (codec.hpp)
// carries a u64 first: the element count of a contiguous type, the byte count of an
// NDArray. Returns the bytes of one element of such a type, 0 for the others.
std::size_t counted_unit(std::string_view type) {
  if (type == "string" || type == "ndarray") return 1;
  constexpr std::string_view vector = "vector<";
  if (type.size() < vector.size() + 2 || !type.starts_with(vector) || type.back() != '>') return 0;
  return bulk_element_bytes(type.substr(vector.size(), type.size() - vector.size() - 1));
}
}  // namespace

Value assemble_vector(const KeyList& list, const std::vector<const Value*>& elements) {
  // std::vector<T> is encoded as a u64 count then each T's nested encoding, which for most
  // types is its whole Value: the encoded elements are concatenated, with a count before
  // those that need one.
  const std::string prefix = "vector<";
  if (list.type.size() <= prefix.size() + 1 || list.type.rfind(prefix, 0) != 0 || list.type.back() != '>')
    throw DecodeError("'" + list.type + "' is not a vector type");
  std::string element_type = list.type.substr(prefix.size(), list.type.size() - prefix.size() - 1);
  if (const std::size_t scalar = bulk_element_bytes(element_type)) {
    // A bulk vector (std::vector<long> from Future<long>s): its whole Value is the elements
    // alone, one after another.
    Writer w;
    w.reserve(elements.size() * scalar);
    for (const auto* e : elements) {
      if (e->type != element_type)
        throw DecodeError("cannot use a value of type '" + e->type + "' as an element of '" + list.type + "'");
      if (e->bytes.size() != scalar)
        throw DecodeError("corrupt value of type '" + e->type + "': " + std::to_string(e->bytes.size()) + " bytes");
      w.write(e->bytes.data(), scalar);
    }
    return Value{list.type, std::move(w).finish()};
  }
  const std::size_t unit = counted_unit(element_type);
  Writer w;
  std::size_t total = 8;
  for (const auto* e : elements) total += e->bytes.size() + (unit ? 8 : 0);
  w.reserve(total);
  w.put<std::uint64_t>(elements.size());
  for (const auto* e : elements) {
    if (e->type != element_type)
      throw DecodeError("cannot use a value of type '" + e->type + "' as an element of '" + list.type + "'");
    if (unit) {
      if (e->bytes.size() % unit != 0)
        throw DecodeError("corrupt value of type '" + e->type + "': " + std::to_string(e->bytes.size()) +
                          " bytes are not whole elements");
      w.put<std::uint64_t>(e->bytes.size() / unit);
    }
    w.write(e->bytes.data(), e->bytes.size());
  }
  return Value{list.type, std::move(w).finish()};
}

std::string key_prefix(const std::string& key) {
  auto dash = key.rfind('-');
  return dash == std::string::npos || dash == 0 ? key : key.substr(0, dash);
}

}  // namespace distrib::detail
