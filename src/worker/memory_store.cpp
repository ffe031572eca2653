// MemoryStore: DataStore's default, every value in memory, looked up through the same
// KeyedTable the task tables use (one flat array of slots, no node chains).
#include <memory>

#include "worker/data_store.hpp"

namespace distrib::detail::wrk {

void MemoryStore::put(const std::string& key, Value value, std::uint64_t nbytes) {
  if (auto* existing = entries_.find(key)) {  // replacing a value: count only the new one
    managed_bytes_ -= existing->nbytes;
    existing->value = std::move(value);
    existing->nbytes = nbytes;
  } else {
    entries_.insert(std::make_unique<StoredValue>(StoredValue{key, std::move(value), nbytes}));
  }
  managed_bytes_ += nbytes;
}

std::optional<Value> MemoryStore::get(const std::string& key) const {
  auto* e = entries_.find(key);
  if (!e) return std::nullopt;
  return e->value;
}

bool MemoryStore::contains(const std::string& key) const { return entries_.find(key) != nullptr; }

bool MemoryStore::erase(const std::string& key) {
  auto* e = entries_.find(key);
  if (!e) return false;
  managed_bytes_ -= e->nbytes;
  entries_.erase(key);
  return true;
}

std::vector<std::string> MemoryStore::keys() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  entries_.for_each([&](const StoredValue& e) { out.push_back(e.key); });
  return out;
}

std::size_t MemoryStore::size() const { return entries_.size(); }

}  // namespace distrib::detail::wrk
