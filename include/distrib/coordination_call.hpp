#pragma once
// What Client's datasets and topics, and the primitives of coordination.hpp, send to the
// scheduler and get back. Users need only TopicEvent; the rest is the machinery.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "distrib/codec.hpp"
#include "distrib/future.hpp"

namespace distrib {

class Client;

/// One event of a topic, as Client::log_event logged it (Dask's (timestamp, msg) pairs).
template <class T>
struct TopicEvent {
  std::string topic;
  double time = 0;  // seconds since the epoch, on the scheduler's clock, when it was logged
  T message;
};

namespace detail {

/// As CoordinationOp in distrib.capnp (same order).
enum class CoordinationOp : std::uint8_t {
  queue_put, queue_get, queue_size,
  variable_set, variable_get, variable_delete,
  event_set, event_clear, event_wait, event_is_set,
  lock_acquire, lock_release, semaphore_acquire, semaphore_release, lease_count,
  publish_dataset, get_dataset, list_datasets, unpublish_dataset,
  log_event, subscribe_topic, unsubscribe_topic, get_events,
};

struct CoordinationCall {
  CoordinationOp op = CoordinationOp::queue_size;
  std::string name;
  std::string type;                                  // of the value sent or expected back
  std::optional<Value> value;
  std::optional<std::chrono::milliseconds> timeout;  // nullopt: wait for ever; 0: do not wait
  std::uint64_t lease = 0;
  std::uint64_t limit = 0;                           // a queue's maxsize, a semaphore's max_leases
  std::string key;                                   // publish_dataset
  bool override = false;                             // publish_dataset
  bool lock = false;                                 // lease_count of a lock
};

struct RawTopicEvent {
  std::string topic;
  double time = 0;
  Value message;
};

struct CoordinationAnswer {
  std::optional<Value> value;
  std::uint64_t count = 0;
  bool flag = false;
  FutureHandle future;  // get_dataset
  std::vector<std::string> names;
  std::vector<RawTopicEvent> events;
};

/// Sends `call` to the scheduler of `client` and waits for the answer. Throws TimeoutError
/// if the call's timeout passed (a put, or a get of a queue or variable), DecodeError for a
/// value of another type, KeyError for an unknown (or taken) dataset name, NotHeldError for
/// a release without a lease, std::invalid_argument for bad arguments, distrib::Error when
/// the scheduler holds as much as it may, CommError if the scheduler is out of reach.
CoordinationAnswer coordinate(Client& client, CoordinationCall call);
/// Runs `handler` for each event of `topic` from now on, on the client's topic thread
/// (nullptr: stops). One handler per topic and client: a new one replaces the old.
using TopicHandler = std::function<void(const RawTopicEvent&)>;
void subscribe_topic(Client& client, const std::string& topic, TopicHandler handler);
/// A fresh lease id, unique in this process.
std::uint64_t new_lease_id();
/// Throws std::invalid_argument naming `what` for a negative timeout.
void check_timeout(const char* what, const std::optional<std::chrono::milliseconds>& timeout);

}  // namespace detail
}  // namespace distrib
