#pragma once
// Coordination primitives held by the scheduler, as Dask's Queue, Variable, Event, Lock and
// Semaphore, for clients and tasks alike. Inside a task, leave the client out: they use the
// worker's shared client (distrib::get_client()), e.g. distrib::Queue<int> q("results"):
//
//   distrib::Queue<int> q("results", client);       // q.put(1); int x = q.get(5s);
//   distrib::Variable<std::string> v("stage", client);
//   distrib::Event go("go", client);                 // go.set(); go.wait(10s);
//   distrib::Lock lock("counter", client);           // std::lock_guard guard(lock);
//   distrib::Semaphore db("db", client, 2);          // two leases at a time
//
// Objects of the same name on any client share one state on the scheduler. Values travel
// with their type's name: a Queue<int> read as a Queue<double> (or a Variable<int> as a
// Variable<std::string>) throws DecodeError naming both types, and the value stays.
//
// Blocking calls (get, wait, acquire, a put into a full queue) wait for the scheduler's
// answer, which comes when the state changes or the timeout passes (no polling); without a
// timeout they wait for ever. The scheduler holds everything in memory and keeps none of it
// across its own restart (not even with --journal). Leases of a client that is gone (it
// closed, or its connection dropped and it did not come back within the scheduler's
// --client-grace) are released; the worker's shared client of its tasks never comes back,
// so the leases it took go the moment its worker dies.
// Limits: 100 000 items per queue (maxsize 0), 1 GiB of values in all primitives together,
// 100 000 primitives with state, names of at most 1024 bytes; beyond them a call throws
// distrib::Error. An empty queue, an unset variable, a cleared event and a lock nobody holds
// take no memory.
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "distrib/client.hpp"
#include "distrib/coordination_call.hpp"
#include "distrib/errors.hpp"
#include "distrib/worker_client.hpp"

namespace distrib {

namespace detail {
inline void check_name(const char* what, const std::string& name) {
  if (name.empty()) throw std::invalid_argument(std::string("distrib::") + what + ": a name is required");
}
}  // namespace detail

struct QueueOptions {
  /// As Dask's maxsize: a put into a queue holding this many items waits for room (0: the
  /// scheduler's limit, 100 000). The first Queue of a name to use it sets it; a Queue asking
  /// for another maxsize while it holds items throws std::invalid_argument.
  std::size_t maxsize = 0;
};

/// A first-in first-out queue of T on the scheduler, as Dask's distributed.Queue.
template <class T>
class Queue {
 public:
  /// In a task: with the worker's shared client (get_client()).
  explicit Queue(std::string name, QueueOptions options = {}) : Queue(std::move(name), get_client(), options) {}
  Queue(std::string name, Client& client, QueueOptions options = {})
      : name_(std::move(name)), client_(&client), options_(options) {
    detail::check_name("Queue", name_);
  }
  const std::string& name() const { return name_; }

  /// Appends `value`. With a full queue it waits for room, up to `timeout` (TimeoutError).
  void put(const T& value, std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    detail::check_timeout("Queue::put", timeout);
    auto call = this->call(detail::CoordinationOp::queue_put, timeout);
    call.value = encode_value(value);
    detail::coordinate(*client_, std::move(call));
  }
  /// Takes the oldest item, waiting for one up to `timeout` (TimeoutError; for ever without).
  T get(std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    detail::check_timeout("Queue::get", timeout);
    return decode_value<T>(*detail::coordinate(*client_, call(detail::CoordinationOp::queue_get, timeout)).value);
  }
  /// Items in the queue now.
  std::size_t qsize() {
    return static_cast<std::size_t>(detail::coordinate(*client_, call(detail::CoordinationOp::queue_size, {})).count);
  }

 private:
  detail::CoordinationCall call(detail::CoordinationOp op, std::optional<std::chrono::milliseconds> timeout) const {
    detail::CoordinationCall c{op, name_, type_name<T>()};
    c.timeout = timeout;
    c.limit = options_.maxsize;
    return c;
  }
  std::string name_;
  Client* client_;
  QueueOptions options_;
};

/// One value of type T on the scheduler that any client can set and read, as Dask's Variable.
template <class T>
class Variable {
 public:
  /// In a task: with the worker's shared client (get_client()).
  explicit Variable(std::string name) : Variable(std::move(name), get_client()) {}
  Variable(std::string name, Client& client) : name_(std::move(name)), client_(&client) {
    detail::check_name("Variable", name_);
  }
  const std::string& name() const { return name_; }

  void set(const T& value) {
    detail::CoordinationCall c{detail::CoordinationOp::variable_set, name_, type_name<T>()};
    c.value = encode_value(value);
    detail::coordinate(*client_, std::move(c));
  }
  /// The value; if it is not set, waits until it is, up to `timeout` (TimeoutError).
  T get(std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    detail::check_timeout("Variable::get", timeout);
    detail::CoordinationCall c{detail::CoordinationOp::variable_get, name_, type_name<T>()};
    c.timeout = timeout;
    return decode_value<T>(*detail::coordinate(*client_, std::move(c)).value);
  }
  /// Unsets it (Dask's delete()); harmless if it is not set.
  void erase() { detail::coordinate(*client_, {detail::CoordinationOp::variable_delete, name_, type_name<T>()}); }

 private:
  std::string name_;
  Client* client_;
};

/// A flag on the scheduler that clients wait for, as Dask's distributed.Event.
class Event {
 public:
  /// In a task: with the worker's shared client (get_client()).
  explicit Event(std::string name) : Event(std::move(name), get_client()) {}
  Event(std::string name, Client& client) : name_(std::move(name)), client_(&client) { detail::check_name("Event", name_); }
  const std::string& name() const { return name_; }

  /// Sets the flag: every waiter is released, and waits return at once until clear().
  void set() { simple(detail::CoordinationOp::event_set); }
  void clear() { simple(detail::CoordinationOp::event_clear); }
  bool is_set() { return simple(detail::CoordinationOp::event_is_set).flag; }
  /// Waits until the flag is set; false if `timeout` passed first.
  bool wait(std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    detail::check_timeout("Event::wait", timeout);
    detail::CoordinationCall c{detail::CoordinationOp::event_wait, name_};
    c.timeout = timeout;
    return detail::coordinate(*client_, std::move(c)).flag;
  }

 private:
  detail::CoordinationAnswer simple(detail::CoordinationOp op) { return detail::coordinate(*client_, {op, name_}); }
  std::string name_;
  Client* client_;
};

namespace detail {
/// What Lock and Semaphore share: the leases of one name this object took and gives back.
class LeaseSet {
 public:
  LeaseSet(const char* what, std::string name, Client& client, bool lock, std::size_t max_leases)
      : what_(what), name_(std::move(name)), client_(&client), lock_(lock), max_leases_(max_leases) {
    check_name(what, name_);
  }
  const std::string& name() const { return name_; }
  bool acquire(std::optional<std::chrono::milliseconds> timeout) {
    check_timeout(lock_ ? "Lock::acquire" : "Semaphore::acquire", timeout);
    const auto lease = new_lease_id();
    CoordinationCall c{lock_ ? CoordinationOp::lock_acquire : CoordinationOp::semaphore_acquire, name_};
    c.timeout = timeout;
    c.lease = lease;
    c.limit = max_leases_;
    if (!coordinate(*client_, std::move(c)).flag) return false;
    std::lock_guard guard(mutex_);
    leases_.push_back(lease);
    return true;
  }
  /// Gives back the lease taken last; NotHeldError(`when_none`) if there is none.
  void release(const char* when_none) {
    std::uint64_t lease = 0;
    {
      std::lock_guard guard(mutex_);
      if (leases_.empty()) throw NotHeldError(std::string("distrib::") + what_ + " '" + name_ + "': " + when_none);
      lease = leases_.back();
      leases_.pop_back();
    }
    CoordinationCall c{lock_ ? CoordinationOp::lock_release : CoordinationOp::semaphore_release, name_};
    c.lease = lease;
    coordinate(*client_, std::move(c));
  }
  /// Leases of this name held now, by every client.
  std::size_t held_by_all() {
    CoordinationCall c{CoordinationOp::lease_count, name_};
    c.lock = lock_;
    return static_cast<std::size_t>(coordinate(*client_, std::move(c)).count);
  }

 private:
  const char* what_;
  std::string name_;
  Client* client_;
  bool lock_;
  std::size_t max_leases_;
  std::mutex mutex_;
  std::vector<std::uint64_t> leases_;
};
}  // namespace detail

/// A lock on the scheduler, as Dask's distributed.Lock: one holder at a time among all
/// clients and tasks, first come first served. It is Lockable and TimedLockable, so
/// std::lock_guard and std::unique_lock work; threads of one process may share one Lock.
/// Not recursive: a second acquire by the holder waits for itself (until its timeout).
class Lock {
 public:
  /// In a task: with the worker's shared client (get_client()).
  explicit Lock(std::string name) : Lock(std::move(name), get_client()) {}
  Lock(std::string name, Client& client) : leases_("Lock", std::move(name), client, true, 1) {}
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
  const std::string& name() const { return leases_.name(); }

  /// Waits for the lock up to `timeout` (for ever without; 0: only tries); true if acquired.
  bool acquire(std::optional<std::chrono::milliseconds> timeout = std::nullopt) { return leases_.acquire(timeout); }
  /// Throws NotHeldError if this Lock does not hold it.
  void release() { leases_.release("release() without holding it"); }
  /// Whether anyone holds it now.
  bool locked() { return leases_.held_by_all() > 0; }

  // Lockable and TimedLockable, for std::lock_guard and std::unique_lock.
  void lock() { acquire(); }
  bool try_lock() { return acquire(std::chrono::milliseconds(0)); }
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> d) {
    return acquire(std::chrono::ceil<std::chrono::milliseconds>(d));
  }
  /// As release(), but never throws (for lock_guard's destructor): a lease lost meanwhile
  /// (its client removed, the scheduler restarted) is only not released.
  void unlock() noexcept {
    try {
      release();
    } catch (const std::exception&) {
    }
  }

 private:
  detail::LeaseSet leases_;
};

/// At most `max_leases` holders at a time among all clients and tasks, as Dask's
/// distributed.Semaphore (each acquire takes one lease, each release gives one back). Every
/// Semaphore of one name must have the same max_leases (std::invalid_argument otherwise).
/// Lockable too: std::lock_guard holds one lease.
class Semaphore {
 public:
  /// In a task: with the worker's shared client (get_client()).
  explicit Semaphore(std::string name, std::size_t max_leases = 1) : Semaphore(std::move(name), get_client(), max_leases) {}
  Semaphore(std::string name, Client& client, std::size_t max_leases = 1)
      : leases_("Semaphore", std::move(name), client, false, max_leases), max_leases_(max_leases) {
    if (max_leases == 0) throw std::invalid_argument("distrib::Semaphore '" + leases_.name() + "': max_leases must be at least 1");
  }
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;
  const std::string& name() const { return leases_.name(); }
  std::size_t max_leases() const { return max_leases_; }

  /// Waits for a lease up to `timeout` (for ever without; 0: only tries); true if acquired.
  bool acquire(std::optional<std::chrono::milliseconds> timeout = std::nullopt) { return leases_.acquire(timeout); }
  /// Gives back one lease of this object; NotHeldError if it holds none ("released too often").
  void release() { leases_.release("released more often than acquired"); }
  /// Leases held now, by all clients (Dask's get_value()).
  std::size_t get_value() { return leases_.held_by_all(); }

  void lock() { acquire(); }
  bool try_lock() { return acquire(std::chrono::milliseconds(0)); }
  void unlock() noexcept {
    try {
      release();
    } catch (const std::exception&) {
    }
  }

 private:
  detail::LeaseSet leases_;
  std::size_t max_leases_;
};

}  // namespace distrib
