#pragma once
// Fetches values from workers (GetData -> DataReply) over pooled connections, one per
// peer address. Used by workers to get task inputs from their peers and by clients to
// gather results straight from the workers that hold them.
//
// With a peer on the same host (its handshake's sameHost), large values travel through
// shared memory both ways (comm/same_host.hpp): replies may carry SharedBuffer values, which
// are mapped here and acknowledged with sharedDone; puts send our own buffers that way.
// Whatever fails to map goes again through the socket, and that peer gets no more shared
// values from this fetcher.
#include <asio/io_context.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "comm/connection.hpp"
#include "comm/message.hpp"
#include "distrib/security.hpp"
#include "core/task_spec.hpp"
#include "distrib/codec.hpp"
#include "proto/distrib.capnp.h"

namespace distrib::detail {

struct FetchResult {
  std::vector<std::pair<std::string, Value>> values;
  std::vector<std::string> missing;
  std::string error;  // non-empty if the peer could not be reached or the connection broke
};

class DataFetcher {
 public:
  using Callback = std::function<void(FetchResult)>;

  /// `security`: the TLS files and token its connections to data ports use.
  DataFetcher(asio::io_context& io, proto::Role role, std::string name, FrameLimits limits = {}, Security security = {});
  ~DataFetcher();

  /// Asks `address` for `keys`; `cb` runs on the io thread. Call on the io thread.
  void fetch(const std::string& address, std::vector<std::string> keys, Callback cb);
  /// Stores values on the worker at `address` (scatter); `cb` gets an error or "".
  void put(const std::string& address, std::vector<std::pair<std::string, Value>> values,
           std::function<void(std::string error)> cb);
  /// Pushes results to the worker at `address` for its tasks assigned ahead, and names
  /// those too large to push (`available`, to be fetched from `from`, the sender's data
  /// address); `cb` gets an error or "".
  void push(const std::string& address, const std::string& from, std::vector<std::pair<std::string, Value>> values,
            std::vector<std::string> available, std::function<void(std::string error)> cb);
  /// Runs a function on the worker at `address` (Client::run).
  struct RunOutcome {
    std::optional<Value> value;
    std::string exception_type;
    std::string message;
    std::string error;  // the worker could not be reached
  };
  void run(const std::string& address, const TaskSpec& spec, std::function<void(RunOutcome)> cb);
  /// Closes every pooled connection; pending requests complete with an error.
  void close_all();

 private:
  struct Peer;
  /// A reply handler: the reply's reader, or null and the reason the request failed.
  using ReplyHandler = std::function<void(MessageReader*, const std::string& error)>;
  std::shared_ptr<Peer> peer(const std::string& address);
  /// The connection to `p` is made: handshake, then what waited.
  void connected(const std::shared_ptr<Peer>& p, ByteStreamPtr stream);
  /// Drops `p` (a later request connects again) and fails what waits on it.
  void forget_peer(const std::shared_ptr<Peer>& p, const std::string& reason);
  void request(const std::string& address, std::uint64_t id, OutMessage m, ReplyHandler on_reply);
  /// As request, but the message is built once the peer's handshake has arrived (a put
  /// needs to know whether it may send shared memory).
  void request_after_handshake(const std::string& address, std::uint64_t id,
                               std::function<OutMessage(const Peer&)> build, ReplyHandler on_reply);
  void fetch_keys(const std::string& address, std::vector<std::string> keys, bool shared, Callback cb);
  /// A put of `values`, through shared memory where allowed (`shared`).
  void put_values(const std::string& address, std::vector<std::pair<std::string, Value>> values, bool shared,
                  std::function<void(std::string error)> cb);
  void put_data(const std::string& address, std::vector<std::pair<std::string, Value>> values, const std::string* from,
                std::vector<std::string> available, std::function<void(std::string error)> cb);

  asio::io_context& io_;
  proto::Role role_;
  std::string name_;
  FrameLimits limits_;
  Security security_;
  std::map<std::string, std::shared_ptr<Peer>> peers_;
  std::uint64_t next_id_ = 1;
};

}  // namespace distrib::detail
