// Chunk arithmetic and names.
#include <xxhash.h>

#include <random>
#include <sstream>
#include <stdexcept>

#include "array/node.hpp"

namespace distrib::array {

namespace detail {

std::vector<std::int64_t> chunk_offsets(const std::vector<std::int64_t>& axis_chunks) {
  std::vector<std::int64_t> off{0};
  for (auto c : axis_chunks) off.push_back(off.back() + c);
  return off;
}

Shape block_shape(const Chunks& chunks, const Shape& index) {
  Shape s(chunks.size());
  for (std::size_t k = 0; k < chunks.size(); ++k) s[k] = chunks[k][static_cast<std::size_t>(index[k])];
  return s;
}

Shape block_offset(const Chunks& chunks, const Shape& index) {
  Shape s(chunks.size(), 0);
  for (std::size_t k = 0; k < chunks.size(); ++k)
    for (std::int64_t i = 0; i < index[k]; ++i) s[k] += chunks[k][static_cast<std::size_t>(i)];
  return s;
}

Shape numblocks_of(const Chunks& chunks) {
  Shape s;
  for (const auto& c : chunks) s.push_back(static_cast<std::int64_t>(c.size()));
  return s;
}

std::int64_t product(const Shape& s) {
  std::int64_t p = 1;
  for (auto e : s) p *= e;
  return p;
}

std::vector<Shape> all_blocks(const Shape& numblocks) {
  std::vector<Shape> out;
  if (product(numblocks) == 0) return out;
  Shape index(numblocks.size(), 0);
  for (std::int64_t i = 0, n = product(numblocks); i < n; ++i) {
    out.push_back(index);
    for (std::size_t k = numblocks.size(); k-- > 0;) {
      if (++index[k] < numblocks[k]) break;
      index[k] = 0;
    }
  }
  return out;
}

std::string shape_text(const Shape& s) {
  std::ostringstream o;
  o << "(";
  for (std::size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  if (s.size() == 1) o << ",";
  o << ")";
  return o.str();
}

std::string chunks_text(const Chunks& c) {
  std::string out = "(";
  for (std::size_t i = 0; i < c.size(); ++i) out += (i ? ", " : "") + shape_text(c[i]);
  return out + ")";
}

std::string token_of(const std::string& description) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(XXH3_64bits(description.data(), description.size())));
  return buf;
}

std::string random_token() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return token_of(std::to_string(rng()) + std::to_string(rng()));
}

}  // namespace detail

Chunks ChunkSpec::resolve(const Shape& shape, std::size_t item) const {
  using detail::shape_text;
  for (auto e : shape)
    if (e < 0) throw std::invalid_argument("distrib::array: negative extent in shape " + shape_text(shape));
  Chunks out(shape.size());
  if (is_explicit_) {
    if (explicit_.size() != shape.size())
      throw std::invalid_argument("distrib::array: chunks " + detail::chunks_text(explicit_) + " do not match shape " +
                                  shape_text(shape));
    for (std::size_t k = 0; k < shape.size(); ++k) {
      std::int64_t total = 0;
      for (auto c : explicit_[k]) {
        if (c < 0) throw std::invalid_argument("distrib::array: negative chunk size in " + detail::chunks_text(explicit_));
        total += c;
      }
      if (total != shape[k])
        throw std::invalid_argument("distrib::array: chunks " + detail::chunks_text(explicit_) + " do not add up to shape " +
                                    shape_text(shape) + " along axis " + std::to_string(k));
    }
    return explicit_;
  }
  Shape block = block_shape_;
  if (!given_) {
    // "auto": whole trailing axes, leading axes split so a block holds about 128 MiB.
    block = shape;
    const std::int64_t target = (std::int64_t{128} << 20) / static_cast<std::int64_t>(item ? item : 1);
    for (std::size_t k = 0; k < shape.size(); ++k) {
      std::int64_t rest = 1;
      for (std::size_t j = k + 1; j < shape.size(); ++j) rest *= block[j];
      if (rest * block[k] <= target) break;
      block[k] = std::max<std::int64_t>(1, target / std::max<std::int64_t>(rest, 1));
      if (block[k] > 1) break;
    }
  }
  if (block.size() != shape.size())
    throw std::invalid_argument("distrib::array: block shape " + shape_text(block) + " does not match shape " +
                                shape_text(shape));
  for (std::size_t k = 0; k < shape.size(); ++k) {
    std::int64_t b = block[k] == -1 || (!given_ && block[k] == 0) ? std::max<std::int64_t>(shape[k], 1) : block[k];
    if (b <= 0)
      throw std::invalid_argument("distrib::array: block size " + std::to_string(block[k]) + " along axis " +
                                  std::to_string(k) + " must be positive (or -1 for the whole axis)");
    if (shape[k] == 0) {
      out[k] = {0};
      continue;
    }
    for (std::int64_t at = 0; at < shape[k]; at += b) out[k].push_back(std::min(b, shape[k] - at));
  }
  return out;
}

}  // namespace distrib::array
