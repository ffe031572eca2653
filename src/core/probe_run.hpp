#pragma once
// The deletion step shared by the flat hash tables (KeyedTable, PointerSet): linear probing
// over a power-of-two array, where a default-constructed slot is empty.
#include <cstddef>
#include <vector>

namespace distrib::detail {

/// Empties slot `i` and moves later entries of its probe run back into the hole, so that
/// lookups never stop early (no tombstones). `home(slot)` is where a slot's entry hashes to.
template <class Slot, class Home>
void erase_from_probe_run(std::vector<Slot>& slots, std::size_t i, Home home) {
  const std::size_t mask = slots.size() - 1;
  slots[i] = Slot{};
  for (std::size_t j = (i + 1) & mask; !(slots[j] == Slot{}); j = (j + 1) & mask) {
    const std::size_t k = home(slots[j]);
    if (((j - k) & mask) >= ((j - i) & mask)) {
      slots[i] = slots[j];
      slots[j] = Slot{};
      i = j;
    }
  }
}

}  // namespace distrib::detail
