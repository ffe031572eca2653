#pragma once
// DataStore: where a worker keeps the values it holds, key -> encoded Value, apart from the
// decisions about them (WorkerState decides what is stored and when it goes; the store only
// keeps it). As Dask injects `data: MutableMapping` into its worker, WorkerState takes a
// DataStore, so that a store that spills to disk can wrap the in-memory one without the
// state machine changing.
//
// Each value is accounted as the `nbytes` it was put with. Of the sum over stored keys,
// managed_bytes(), a spilling store holds part in memory and part only on disk:
//   managed_bytes() = memory_bytes() + spilled_bytes()
// As Dask's worker, which reports the managed sum (`managed_bytes`, its state's nbytes) with
// the spilled part beside it, and whose scheduler shows the part in memory as "managed"
// memory: memory_bytes() is what the memory target is checked against and what unmanaged
// memory (process RSS minus memory_bytes()) is computed from. A MemoryStore spills nothing.
//
// Threads: a store does no locking of its own. WorkerState calls it, and WorkerServer calls
// WorkerState only with its state mutex held, from the io thread (events from the
// scheduler and peers, serving GetData) and from task threads (a finished task's result,
// resolving the next task's arguments). A spilling store must therefore not read or write
// disk inside these calls: that would block the io thread, or every task thread behind the
// lock (see the notes at WorkerState::Impl::ensure_computing and WorkerServer's GetData).
// SpillingStore (spilling_store.hpp) writes on a thread of its own and reads by mmap.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/keyed_table.hpp"
#include "distrib/codec.hpp"

namespace distrib::detail::wrk {

class DataStore {
 public:
  virtual ~DataStore() = default;
  DataStore() = default;
  DataStore(const DataStore&) = delete;
  DataStore& operator=(const DataStore&) = delete;

  /// Stores `value` under `key`, accounted as `nbytes`; replaces (and stops accounting)
  /// a value already stored there.
  virtual void put(const std::string& key, Value value, std::uint64_t nbytes) = 0;
  /// The stored value (sharing its bytes, no copy), or nullopt.
  virtual std::optional<Value> get(const std::string& key) const = 0;
  virtual bool contains(const std::string& key) const = 0;
  /// Drops the value of `key`; false if none was stored.
  virtual bool erase(const std::string& key) = 0;
  /// Every stored key, in no particular order.
  virtual std::vector<std::string> keys() const = 0;
  /// The sum of the `nbytes` of every stored value, in memory or spilled.
  virtual std::uint64_t managed_bytes() const = 0;
  /// The part of managed_bytes() held in memory.
  virtual std::uint64_t memory_bytes() const = 0;
  /// The part of managed_bytes() held only on disk.
  virtual std::uint64_t spilled_bytes() const = 0;
  /// How many values are stored.
  virtual std::size_t size() const = 0;
  /// Values are waiting to be written out faster than the store writes them: the state
  /// starts no task meanwhile (a spilling store; it says when the backlog is written).
  virtual bool backlogged() const { return false; }
};

/// The default store: every value in memory.
class MemoryStore final : public DataStore {
 public:
  void put(const std::string& key, Value value, std::uint64_t nbytes) override;
  std::optional<Value> get(const std::string& key) const override;
  bool contains(const std::string& key) const override;
  bool erase(const std::string& key) override;
  std::vector<std::string> keys() const override;
  std::uint64_t managed_bytes() const override { return managed_bytes_; }
  std::uint64_t memory_bytes() const override { return managed_bytes_; }
  std::uint64_t spilled_bytes() const override { return 0; }
  std::size_t size() const override;

 private:
  struct StoredValue {
    std::string key;  // KeyedTable finds items by their own `key`
    Value value;
    std::uint64_t nbytes = 0;
  };
  KeyedTable<StoredValue> entries_;
  std::uint64_t managed_bytes_ = 0;
};

}  // namespace distrib::detail::wrk
