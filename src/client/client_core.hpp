#pragma once
// ClientCore: the client's bookkeeping without any I/O or threads — the futures table by
// key, cancel epochs, the graphs of futures not known to be finished, and the outbox of
// messages for the scheduler, in order. The client feeds it decoded scheduler messages and
// gets back which futures to settle (to settle outside its lock) and what to send. What it
// keeps is what a client needs to re-attach to a scheduler after its connection dropped.
//
// Not thread-safe: ClientImpl calls it under its mutex. Settlements must be applied after
// that mutex is released (a settled future's callbacks may call into the client).
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "client/future_state.hpp"
#include "comm/message.hpp"
#include "core/task_spec.hpp"

namespace distrib::detail {

/// One change to one future, decided under the client's lock and applied outside it.
struct Settlement {
  enum class Kind { finished, erred, cancelled, lost, retried };
  FutureHandle future;
  Kind kind = Kind::finished;
  std::string worker;          // finished: where the result lives
  std::optional<Value> value;  // finished: a small result that came with the notice
  std::string type;            // erred: the exception type
  std::string message;         // erred: its message; lost: the reason
};
void apply(Settlement& s);
void apply(std::vector<Settlement>& settlements);

/// Something to send to the scheduler, in the order the core hands it out.
struct Outgoing {
  enum class Kind {
    message,   // `message` as it is (scattered, infoRequest, a new graph ...)
    release,   // releaseKeys of `keys`: nothing waits on it, it may go with the next write
    cancel,    // cancelKeys of `keys`: the scheduler answers each one with keysCancelled
    resubmit,  // updateGraph of `tasks` wanting `keys`: what a re-attached scheduler may lack
  };
  Kind kind = Kind::message;
  OutMessage message;
  std::vector<std::string> keys;
  std::vector<std::shared_ptr<const TaskSpec>> tasks;
};

/// Decoded scheduler reports.
struct KeyInMemoryReport {
  std::string key;
  std::string worker;
  std::optional<Value> value;
};
struct KeyErredReport {
  std::string key;
  std::string type;
  std::string message;
};

class ClientCore {
 public:
  // ---- the futures table
  /// The live future of `key`, or null.
  FutureHandle find(const std::string& key) const;
  /// The live, not cancelled future of `key` (`fresh` false), or a new one from `make`
  /// stamped with the current cancel epoch (`fresh` true).
  FutureHandle future_for(const std::string& key, bool& fresh, const std::function<FutureHandle()>& make);
  /// The future of `key` went away: forgets the entry unless a new future took its place.
  void forget(const std::string& key);
  /// Every live future.
  std::vector<FutureHandle> live() const;
  std::size_t size() const { return futures_.size(); }

  // ---- scheduler reports -> what to settle
  std::vector<Settlement> on_keys_in_memory(std::vector<KeyInMemoryReport> reports);
  std::vector<Settlement> on_task_erred(std::vector<KeyErredReport> reports);
  /// The scheduler's answer to the oldest unanswered cancel request.
  std::vector<Settlement> on_keys_cancelled(const std::vector<std::string>& keys);
  /// A restart (client.restart(), by this client or another) made the scheduler forget
  /// every task: the live futures of `keys` (every key it held for this client) are
  /// cancelled, finished ones too, since their results are gone with the workers. A key
  /// submitted again later gets a fresh future.
  std::vector<Settlement> on_restarted(const std::vector<std::string>& keys);
  /// These keys compute again (client.retry): their erred futures are pending again.
  std::vector<Settlement> on_retried(const std::vector<std::string>& keys);
  /// The cluster is out of reach for good: every pending future fails with `reason`.
  std::vector<Settlement> fail_pending(const std::string& reason);

  // ---- the outbox, in the order things happened
  void queue_message(OutMessage m);
  /// A new graph: `message` sends it; `tasks` and `wanted` are kept while any wanted
  /// future is pending, to be sent again to a scheduler that may have lost them.
  void queue_graph(OutMessage message, std::vector<TaskSpec> tasks, std::vector<std::string> wanted);
  void queue_release(std::string key);
  /// Counts a cancel request: futures made after this do not take its answer.
  void queue_cancel(std::vector<std::string> keys);
  bool has_outbox() const { return !outbox_.empty(); }
  /// What to send now, in order; consecutive releases go as one, and the release of a key
  /// that has a live future again is dropped (the key is wanted again).
  std::vector<Outgoing> take_outbox();
  /// What to send first on a new connection to the scheduler, then the outbox: cancel
  /// requests sent and not answered, then one resubmit of every live future's key with the
  /// graphs of those still pending.
  std::vector<Outgoing> reattach();

  std::uint64_t cancel_epoch() const { return cancels_queued_; }
  std::size_t graphs_kept() const { return graphs_.size(); }

 private:
  struct Graph {
    std::vector<std::shared_ptr<const TaskSpec>> tasks;
    std::vector<std::string> wanted;
    bool sent = false;  // left the outbox; before that, the outbox sends it anyway
  };
  struct Item {
    Outgoing::Kind kind;
    OutMessage message;
    std::vector<std::string> keys;
    std::shared_ptr<Graph> graph;  // a graph's message: marks it sent
  };
  std::shared_ptr<FutureState> live_future(const std::string& key) const;
  bool pending(const Graph& g) const;
  void drop_finished_graphs();

  std::unordered_map<std::string, std::weak_ptr<FutureState>> futures_;
  std::deque<Item> outbox_;
  std::vector<std::shared_ptr<Graph>> graphs_;
  std::size_t graphs_after_last_prune_ = 0;
  // Cancel epochs: requests counted when queued, answers in the same order.
  std::uint64_t cancels_queued_ = 0;
  std::uint64_t cancels_sent_ = 0;
  std::uint64_t cancel_replies_ = 0;
  std::deque<std::vector<std::string>> unanswered_cancels_;  // oldest first, sent ones before the rest
};

}  // namespace distrib::detail
