#pragma once
// KeyedTable: owns objects that carry their own `key` string and finds them by it, in one
// flat array of (hash, pointer) slots (open addressing, linear probing, backward-shift
// deletion). The scheduler looks tasks up by key several times per task; a node-based map
// cost a node allocation per task and a chain of cache misses per lookup.
#include <xxhash.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "core/probe_run.hpp"

namespace distrib::detail {

template <class T>
class KeyedTable {
 public:
  KeyedTable() = default;
  KeyedTable(const KeyedTable&) = delete;
  KeyedTable& operator=(const KeyedTable&) = delete;
  ~KeyedTable() { clear(); }

  T* find(std::string_view key) const {
    if (size_ == 0) return nullptr;
    const std::uint64_t h = hash(key);
    for (std::size_t i = home(h); slots_[i].item != nullptr; i = next(i))
      if (slots_[i].hash == h && slots_[i].item->key == key) return slots_[i].item;
    return nullptr;
  }

  /// Takes ownership; the key (item->key) must not be in the table yet.
  T* insert(std::unique_ptr<T> item) {
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();
    T* raw = item.release();
    place(Slot{hash(raw->key), raw});
    ++size_;
    return raw;
  }

  /// Destroys the item with this key, if any.
  void erase(std::string_view key) {
    if (size_ == 0) return;
    const std::uint64_t h = hash(key);
    std::size_t i = home(h);
    while (slots_[i].item != nullptr && !(slots_[i].hash == h && slots_[i].item->key == key)) i = next(i);
    if (slots_[i].item == nullptr) return;
    delete slots_[i].item;
    --size_;
    erase_from_probe_run(slots_, i, [this](const Slot& s) { return home(s.hash); });
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void clear() {
    for (auto& s : slots_) delete s.item;
    slots_.clear();
    size_ = 0;
  }

  /// Calls f(T&) for every item (in no particular order); f must not change the table.
  template <class F>
  void for_each(F&& f) const {
    for (const auto& s : slots_)
      if (s.item != nullptr) f(*s.item);
  }

 private:
  struct Slot {
    std::uint64_t hash = 0;
    T* item = nullptr;
    bool operator==(const Slot&) const = default;  // the empty slot is Slot{}
  };
  static std::uint64_t hash(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }
  std::size_t mask() const { return slots_.size() - 1; }
  std::size_t home(std::uint64_t h) const { return static_cast<std::size_t>(h) & mask(); }
  std::size_t next(std::size_t i) const { return (i + 1) & mask(); }
  static void place(std::vector<Slot>& slots, Slot s) {
    const std::size_t m = slots.size() - 1;
    std::size_t i = static_cast<std::size_t>(s.hash) & m;
    while (slots[i].item != nullptr) i = (i + 1) & m;
    slots[i] = s;
  }
  void place(Slot s) { place(slots_, s); }
  // The new array is filled before it replaces the old one: a failed allocation leaves
  // the table as it was.
  void grow() {
    std::vector<Slot> bigger(slots_.empty() ? 16 : slots_.size() * 2);
    for (const auto& s : slots_)
      if (s.item != nullptr) place(bigger, s);
    slots_.swap(bigger);
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
};

}  // namespace distrib::detail
