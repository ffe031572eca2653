#pragma once
// CoordinationCalls: a client's coordination calls waiting for the scheduler's answer, its
// topic handlers and the thread they run on. ClientImpl sends the messages and feeds it the
// answers (client_coordination.cpp); after a dropped connection it sends every call still
// unanswered again, with the same id (the scheduler answers each id once, and again from
// memory if the answer was lost), and every subscription. Thread-safe: its own mutex, never
// held while calling out.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "comm/message.hpp"
#include "distrib/coordination_call.hpp"

namespace distrib::detail {

class CoordinationCalls {
 public:
  CoordinationCalls() = default;
  ~CoordinationCalls() { stop(); }
  CoordinationCalls(const CoordinationCalls&) = delete;
  CoordinationCalls& operator=(const CoordinationCalls&) = delete;

  struct Begun {
    std::uint64_t id = 0;
    std::future<CoordinationAnswer> answer;
  };
  /// Registers `call`; throws CommError once the client is closed or gave up.
  Begun begin(const CoordinationCall& call);
  /// The `coordination` message of call `id`.
  static OutMessage message(std::uint64_t id, const CoordinationCall& call);
  /// The caller stopped waiting (its own deadline passed): a late answer is dropped, and a
  /// lease it grants is given back (see settle).
  void abandon(std::uint64_t id);
  /// The answer to `id` (from the I/O thread). Returns a release to send for a lease
  /// granted to an abandoned acquire.
  std::optional<CoordinationCall> settle(std::uint64_t id, CoordinationAnswer answer);
  void settle_error(std::uint64_t id, std::exception_ptr error);
  /// What a new connection must carry: every unanswered call, then a subscribe for every
  /// topic with a handler (those with `fresh_id`).
  std::vector<OutMessage> resend(const std::function<std::uint64_t()>& fresh_id);
  /// The cluster is out of reach for good: every waiting call throws CommError(reason), and
  /// so does every later one.
  void fail_all(const std::string& reason);
  /// A fresh call id (for calls nobody waits for).
  std::uint64_t next_id();

  /// Topic handlers: `handler` null removes the topic's.
  void set_handler(const std::string& topic, TopicHandler handler);
  /// An event for a subscribed topic (from the I/O thread): queued for the topic thread.
  void deliver(RawTopicEvent event);
  /// Ends the topic thread (events still queued are dropped). Not from a handler.
  void stop();

 private:
  void run_handlers();
  struct Pending {
    CoordinationCall call;
    std::promise<CoordinationAnswer> promise;
    bool abandoned = false;
  };
  std::mutex mutex_;
  std::map<std::uint64_t, Pending> pending_;
  std::uint64_t next_id_ = 1;
  std::string closed_reason_;  // set by fail_all
  std::map<std::string, TopicHandler> handlers_;
  std::deque<RawTopicEvent> inbox_;
  std::condition_variable inbox_cv_;
  std::thread topic_thread_;
  bool stopping_ = false;
};

}  // namespace distrib::detail
