#pragma once
// CoordinationState: the scheduler's side of the coordination primitives (Queue, Variable,
// Event, Lock, Semaphore, datasets, topics; include/distrib/coordination.hpp), as Dask's
// scheduler extensions. Sans-IO: calls come in, replies come out, and time is given by the
// caller, so that every rule is unit-tested without sockets. The server (scheduler_coordination.cpp)
// decodes `coordination` messages into Calls, sends the Replies, arms a timer for
// next_deadline(), and applies the KeyEffects of datasets to SchedulerState.
//
// A call that cannot be answered yet (a get from an empty queue, an acquire of a held lock)
// waits, without polling, until the state changes or its deadline passes. Waiters of a client
// whose connection dropped are dropped (it asks again when it re-attaches); what it holds
// (leases) is kept until the client is removed (its grace ran out, or it said goodbye).
// Nothing here is journaled: a restarted scheduler starts with none of it.
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "distrib/codec.hpp"
#include "distrib/coordination_call.hpp"

namespace distrib::detail::coord {

using ClientId = std::uint64_t;
using Clock = std::chrono::steady_clock;

/// The calls, as the client names them (CoordinationOp in distrib.capnp, same order).
using Op = distrib::detail::CoordinationOp;
inline constexpr unsigned kOps = static_cast<unsigned>(Op::get_events) + 1;

/// As CoordinationFailure in distrib.capnp (same order).
enum class Failure : std::uint8_t { invalid_argument, not_found, not_held, wrong_type, exists, full };

struct Call {
  ClientId client = 0;
  std::uint64_t id = 0;
  Op op = Op::queue_size;
  std::string name;
  std::string type;
  std::optional<Value> value;
  std::optional<Clock::time_point> deadline;  // nullopt: may wait for ever; <= now: may not wait
  std::uint64_t lease = 0;
  std::uint64_t limit = 0;  // a queue's maxsize (0: unspecified), a semaphore's max_leases
  std::string key;          // publish_dataset
  bool override = false;    // publish_dataset
  bool lock = false;        // lease_count of a lock
  bool key_known = false;   // set by the server: the dataset's key is in the scheduler's state
  double wall_time = 0;     // log_event: seconds since the epoch
};

struct TopicRecord {
  double time = 0;
  Value value;
};

struct Reply {
  enum class Kind : std::uint8_t { done, timed_out, value, count, flag, dataset, names, events, failed, topic_event };
  ClientId client = 0;
  std::uint64_t id = 0;  // 0: a topic_event
  Kind kind = Kind::done;
  Value value;           // value, topic_event
  std::uint64_t count = 0;
  bool flag = false;
  std::string key, type;  // dataset
  std::vector<std::string> names;
  std::vector<TopicRecord> events;
  std::string topic;      // topic_event
  Failure failure = Failure::invalid_argument;
  std::string message;    // failed
};

/// What the server does to SchedulerState for datasets: keep a key wanted (by the
/// scheduler's own datasets client), stop, or make `client` want it (get_dataset, after the
/// reply is sent, so that the client has its future when the key's report arrives).
struct KeyEffect {
  enum class Kind : std::uint8_t { keep, drop, give };
  Kind kind = Kind::keep;
  std::string key;
  ClientId client = 0;
};

/// Bounds on what the scheduler holds for coordination.
struct Limits {
  std::size_t max_queue_items = 100'000;      // a queue without a maxsize; the largest maxsize
  std::size_t max_topic_events = 1000;        // kept per topic, the oldest dropped first
  std::uint64_t max_bytes = std::uint64_t{1} << 30;  // values held in all primitives together
  std::size_t max_names = 100'000;            // primitives of all kinds with state
  std::size_t max_name_length = 1024;
  std::size_t answers_kept = 64;              // per client, for calls re-sent after a drop
};

class CoordinationState {
 public:
  explicit CoordinationState(Limits limits = {}) : limits_(limits) {}

  /// Applies one call; its reply (now, or later when it waits) goes to `out`, with the
  /// replies to other waiters the call releases and the topic events it publishes.
  void handle(Call call, Clock::time_point now, std::vector<Reply>& out);
  /// The client's connection dropped: its waiting calls are forgotten (it asks again).
  void connection_lost(ClientId client);
  /// The client is gone for good: also its leases are released (waiters may get them) and
  /// its subscriptions and remembered answers forgotten.
  void client_removed(ClientId client, std::vector<Reply>& out);
  /// Answers the waiters whose deadline passed by `now`.
  void expire(Clock::time_point now, std::vector<Reply>& out);
  /// The earliest deadline of a waiting call.
  std::optional<Clock::time_point> next_deadline() const;
  /// What datasets did to keys since the last call, in order.
  std::vector<KeyEffect> take_key_effects() { return std::exchange(key_effects_, {}); }

  /// The key a dataset names, if there is one of that name (the server checks that the
  /// scheduler still has it before get_dataset).
  std::optional<std::string> dataset_key(const std::string& name) const {
    auto it = datasets_.find(name);
    if (it == datasets_.end()) return std::nullopt;
    return it->second.key;
  }

  /// Bytes of values held (queues, their blocked puts, variables, topics).
  std::uint64_t held_bytes() const { return held_bytes_; }
  /// Calls waiting for an answer.
  std::size_t waiting() const { return waiting_.size(); }
  /// Primitives of every kind that have state.
  std::size_t names() const;

 private:
  using CallKey = std::pair<ClientId, std::uint64_t>;
  struct Waiter {
    ClientId client = 0;
    std::uint64_t id = 0;
    std::string type;
    std::uint64_t lease = 0;
    std::optional<Value> value;  // a blocked put's
  };
  struct Queue {
    std::string type;  // of its items and waiters, while it has any
    std::uint64_t maxsize = 0;
    std::deque<Value> items;
    std::deque<Waiter> getters, putters;
  };
  struct Variable {
    std::optional<Value> value;
    std::deque<Waiter> getters;
  };
  struct EventState {
    bool set = false;
    std::deque<Waiter> waiters;
  };
  struct Leases {
    std::uint64_t max = 1;
    std::unordered_map<std::uint64_t, ClientId> held;  // lease -> its client
    std::deque<Waiter> waiters;
  };
  struct Dataset {
    std::string key, type;
  };
  struct Topic {
    std::deque<TopicRecord> events;
    std::set<ClientId> subscribers;
  };
  struct Where {
    Op op;
    std::string name;
    std::optional<std::multimap<Clock::time_point, CallKey>::iterator> deadline;
  };

  // ---- shared (coordination_state.cpp)
  void answer(Reply r, std::vector<Reply>& out);
  Reply reply_to(const Call& c, Reply::Kind kind) const;
  static Reply reply_to(const Waiter& w, Reply::Kind kind);
  void fail(const Call& c, Failure f, std::string message, std::vector<Reply>& out);
  void fail_waiter(const Waiter& w, Failure f, std::string message, std::vector<Reply>& out);
  /// Adds a waiter for `c` to `q` and indexes it (by id and deadline).
  void enqueue(std::deque<Waiter>& q, const Call& c, Waiter w);
  void unindex(const CallKey& k);
  /// Takes the waiter `k` out of its primitive (it is answered elsewhere or dropped).
  void remove_waiter(const CallKey& k, const Where& where);
  bool room_for(std::uint64_t bytes) const { return held_bytes_ + bytes <= limits_.max_bytes; }
  bool room_for_name() const { return names() < limits_.max_names; }

  // ---- queues, variables, events (coordination_state.cpp)
  void queue_put(const Call& c, bool may_wait, std::vector<Reply>& out);
  void queue_get(const Call& c, bool may_wait, std::vector<Reply>& out);
  /// Moves blocked puts into the queue while it has room.
  void admit_putters(Queue& q, std::vector<Reply>& out);
  void variable_set(const Call& c, std::vector<Reply>& out);
  void variable_get(const Call& c, bool may_wait, std::vector<Reply>& out);
  void event_call(const Call& c, bool may_wait, std::vector<Reply>& out);
  void forget_if_idle(Op op, const std::string& name);

  // ---- leases, datasets, topics (coordination_leases.cpp)
  void acquire(const Call& c, bool may_wait, std::vector<Reply>& out);
  void release(const Call& c, std::vector<Reply>& out);
  void grant(Leases& s, std::vector<Reply>& out);
  void dataset_call(const Call& c, std::vector<Reply>& out);
  void topic_call(const Call& c, std::vector<Reply>& out);
  void drop_dataset_key(const std::string& key);

  Limits limits_;
  std::unordered_map<std::string, Queue> queues_;
  std::unordered_map<std::string, Variable> variables_;
  std::unordered_map<std::string, EventState> events_;
  std::unordered_map<std::string, Leases> locks_, semaphores_;
  std::map<std::string, Dataset> datasets_;
  std::unordered_map<std::string, std::size_t> dataset_keys_;  // key -> datasets naming it
  std::unordered_map<std::string, Topic> topics_;
  std::map<CallKey, Where> waiting_;
  std::multimap<Clock::time_point, CallKey> deadlines_;
  std::unordered_map<ClientId, std::deque<Reply>> answered_;  // the last answers, newest last
  std::vector<KeyEffect> key_effects_;
  std::uint64_t held_bytes_ = 0;
};

}  // namespace distrib::detail::coord
