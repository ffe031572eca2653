#pragma once
// Bytes: an immutable, reference-counted byte buffer. Values, task arguments and network
// frames share one allocation instead of copying it: a 1 GB array read from a socket is
// handed to the data store and back out to another socket without a copy.
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>

namespace distrib {

namespace detail {
/// Buffers at least this large come from a pool of reused memory: on virtual machines the
/// first touch of fresh pages costs more than copying the data (about 3 ms per MB here).
inline constexpr std::size_t kPooledBufferBytes = std::size_t{1} << 20;
/// An uninitialised buffer of at least `size` bytes from the pool (defined in libdistrib).
std::shared_ptr<std::byte[]> allocate_pooled(std::size_t size);
/// Returns cached buffers that nobody reused for 10 s to the system; the bytes freed.
/// Called on every pooled allocation, by workers once a second and by clients every 5 s
/// (defined in libdistrib).
std::size_t trim_pooled_buffers();
/// Returns every cached buffer to the system, however recently used: a worker under memory
/// pressure trims (the cache may hold up to min(2 GiB, RAM/8)); the bytes freed.
std::size_t release_pooled_buffers();
/// Caps the pool's cache of free buffers at `bytes` (it only ever shrinks): a worker under a
/// memory limit keeps a small cache, as cached buffers count as its process memory.
void limit_pooled_buffer_cache(std::size_t bytes);
/// Asks for transparent huge pages over [p, p + size) before it is first touched (a no-op
/// for small ranges): one fault per 2 MiB instead of per 4 KiB page (defined in libdistrib).
void advise_huge_pages(void* p, std::size_t size);
inline std::shared_ptr<std::byte[]> allocate_buffer(std::size_t size) {
  if (size >= kPooledBufferBytes) return allocate_pooled(size);
  return std::shared_ptr<std::byte[]>(new std::byte[size > 0 ? size : 1]);
}
}  // namespace detail

class Bytes {
 public:
  Bytes() = default;

  /// Allocates `size` bytes that the caller fills through `mutable_data()` before sharing.
  /// The memory is not zeroed: large receive buffers cost no extra pass.
  static Bytes allocate(std::size_t size) {
    Bytes b;
    b.owner_ = detail::allocate_buffer(size);
    b.data_ = b.owner_.get();
    b.size_ = size;
    return b;
  }
  static Bytes copy_of(const void* data, std::size_t size) {
    Bytes b = allocate(size);
    if (size > 0) std::memcpy(b.mutable_data(), data, size);
    return b;
  }
  static Bytes copy_of(std::string_view s) { return copy_of(s.data(), s.size()); }
  /// Adopts an existing allocation (used by the encoder to hand over its buffer).
  static Bytes adopt(std::shared_ptr<std::byte[]> owner, std::size_t size) {
    Bytes b;
    b.data_ = owner.get();
    b.owner_ = std::move(owner);
    b.size_ = size;
    return b;
  }

  const std::byte* data() const { return data_; }
  /// Only valid while the buffer is being filled, before it is shared.
  std::byte* mutable_data() { return const_cast<std::byte*>(data_); }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<const std::byte> span() const { return {data_, size_}; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }
  /// A part of this buffer, sharing its memory.
  Bytes slice(std::size_t offset, std::size_t size) const {
    Bytes b = *this;
    b.data_ = data_ + offset;
    b.size_ = size;
    return b;
  }

 private:
  std::shared_ptr<std::byte[]> owner_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace distrib
