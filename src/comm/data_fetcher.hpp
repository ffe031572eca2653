#pragma once
// Fetches values from workers (GetData -> DataReply) over pooled connections, one per
// peer address. Used by workers to get task inputs from their peers and by clients to
// gather results straight from the workers that hold them.
#include <asio/io_context.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "comm/connection.hpp"
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

  DataFetcher(asio::io_context& io, proto::Role role, std::string name, FrameLimits limits = {});
  ~DataFetcher();

  /// Asks `address` for `keys`; `cb` runs on the io thread. Call on the io thread.
  void fetch(const std::string& address, std::vector<std::string> keys, Callback cb);
  /// Closes every pooled connection; pending requests complete with an error.
  void close_all();

 private:
  struct Peer;
  std::shared_ptr<Peer> peer(const std::string& address);

  asio::io_context& io_;
  proto::Role role_;
  std::string name_;
  FrameLimits limits_;
  std::map<std::string, std::shared_ptr<Peer>> peers_;
  std::uint64_t next_id_ = 1;
};

}  // namespace distrib::detail
