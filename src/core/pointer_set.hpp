#pragma once
// PointerSet: a set of pointers in one flat array (open addressing, linear probing,
// backward-shift deletion). The scheduler keeps several per worker and per client and
// changes them for every task; std::unordered_set allocated and freed a node each time.
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <utility>
#include <vector>

#include "core/probe_run.hpp"

namespace distrib::detail {

template <class T>
class PointerSet {
 public:
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = T*;
    using difference_type = std::ptrdiff_t;
    using pointer = T* const*;
    using reference = T* const&;
    iterator(T* const* at, T* const* end) : at_(at), end_(end) { skip(); }
    reference operator*() const { return *at_; }
    iterator& operator++() {
      ++at_;
      skip();
      return *this;
    }
    bool operator==(const iterator& o) const { return at_ == o.at_; }
    bool operator!=(const iterator& o) const { return at_ != o.at_; }

   private:
    void skip() {
      while (at_ != end_ && *at_ == nullptr) ++at_;
    }
    T* const* at_;
    T* const* end_;
  };

  /// False if `p` was already there. `p` must not be null.
  bool insert(T* p) {
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();
    std::size_t i = home(p);
    while (slots_[i] != nullptr) {
      if (slots_[i] == p) return false;
      i = (i + 1) & mask();
    }
    slots_[i] = p;
    ++size_;
    return true;
  }

  /// False if `p` was not there.
  bool erase(T* p) {
    std::size_t i = find(p);
    if (i == npos) return false;
    --size_;
    erase_from_probe_run(slots_, i, [this](const T* p) { return home(p); });
    return true;
  }

  std::size_t count(const T* p) const { return find(p) == npos ? 0 : 1; }
  bool contains(const T* p) const { return find(p) != npos; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void clear() {
    slots_.clear();
    size_ = 0;
  }
  iterator begin() const { return iterator(slots_.data(), slots_.data() + slots_.size()); }
  iterator end() const { return iterator(slots_.data() + slots_.size(), slots_.data() + slots_.size()); }

 private:
  static constexpr std::size_t npos = ~std::size_t{0};
  std::size_t mask() const { return slots_.size() - 1; }
  // Fibonacci hashing: the top bits of the product spread aligned pointers evenly.
  static std::size_t home(const T* p, unsigned shift) {
    return static_cast<std::size_t>((reinterpret_cast<std::uintptr_t>(p) * 0x9E3779B97F4A7C15ull) >> shift);
  }
  std::size_t home(const T* p) const { return home(p, shift_); }
  std::size_t find(const T* p) const {
    if (size_ == 0) return npos;
    for (std::size_t i = home(p); slots_[i] != nullptr; i = (i + 1) & mask())
      if (slots_[i] == p) return i;
    return npos;
  }
  // The new array is filled before it replaces the old one: a failed allocation leaves
  // the set as it was.
  void grow() {
    const std::size_t capacity = slots_.empty() ? 8 : slots_.size() * 2;
    std::vector<T*> bigger(capacity, nullptr);
    unsigned shift = 64;
    for (std::size_t c = capacity; c > 1; c >>= 1) --shift;
    for (T* p : slots_) {
      if (p == nullptr) continue;
      std::size_t i = home(p, shift);
      while (bigger[i] != nullptr) i = (i + 1) & (capacity - 1);
      bigger[i] = p;
    }
    slots_.swap(bigger);
    shift_ = shift;
  }

  std::vector<T*> slots_;
  std::size_t size_ = 0;
  unsigned shift_ = 64;
};

}  // namespace distrib::detail
