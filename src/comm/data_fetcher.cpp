#include "comm/data_fetcher.hpp"

#include <asio/connect.hpp>

#include "core/log.hpp"

namespace distrib::detail {

struct DataFetcher::Peer {
  std::string address;
  ConnectionPtr conn;
  bool handshaken = false;
  std::vector<OutMessage> queued;                // requests made before the connection is up
  std::map<std::uint64_t, ReplyHandler> waiting;  // by request id
  void fail_all(const std::string& reason) {
    auto w = std::move(waiting);
    waiting.clear();
    for (auto& [id, handler] : w) handler(nullptr, reason);
  }
};

namespace {
// The request id a reply answers, or nullopt for a message that is no reply.
std::optional<std::uint64_t> reply_id(proto::Message::Reader root) {
  switch (root.which()) {
    case proto::Message::DATA_REPLY: return root.getDataReply().getId();
    case proto::Message::PUT_DATA_DONE: return root.getPutDataDone();
    case proto::Message::RUN_RESULT: return root.getRunResult().getId();
    default: return std::nullopt;
  }
}
}  // namespace

DataFetcher::DataFetcher(asio::io_context& io, proto::Role role, std::string name, FrameLimits limits)
    : io_(io), role_(role), name_(std::move(name)), limits_(limits) {}

DataFetcher::~DataFetcher() { close_all(); }

void DataFetcher::close_all() {
  auto peers = std::move(peers_);
  peers_.clear();
  for (auto& [address, p] : peers) {
    if (p->conn) p->conn->close("fetcher closed");
    p->fail_all("connection closed");
  }
}

std::shared_ptr<DataFetcher::Peer> DataFetcher::peer(const std::string& address) {
  auto it = peers_.find(address);
  if (it != peers_.end()) return it->second;
  auto p = std::make_shared<Peer>();
  p->address = address;
  peers_[address] = p;

  auto fail = [this, p](const std::string& reason) {
    auto it = peers_.find(p->address);
    if (it != peers_.end() && it->second == p) peers_.erase(it);
    p->fail_all(reason);
  };
  std::string host;
  std::uint16_t port = 0;
  try {
    std::tie(host, port) = parse_address(address);
  } catch (const std::exception& e) {
    asio::post(io_, [fail, why = std::string(e.what())] { fail(why); });
    return p;
  }
  auto socket = std::make_shared<asio::ip::tcp::socket>(io_);
  asio::ip::tcp::resolver resolver(io_);
  asio::error_code ec;
  auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (ec) {
    asio::post(io_, [fail, why = ec.message()] { fail("cannot resolve: " + why); });
    return p;
  }
  asio::async_connect(*socket, endpoints, [this, p, socket, fail](asio::error_code ec, const auto&) {
    if (ec) return fail("cannot connect to " + p->address + ": " + ec.message());
    p->conn = std::make_shared<Connection>(StreamSocket(std::move(*socket)), limits_);
    p->conn->start(
        [p](InMessage&& m) {
          MessageReader mr(m);
          auto root = mr.root();
          if (!p->handshaken) {
            auto why = check_handshake(root, proto::Role::WORKER, proto::Role::WORKER);
            if (!why.empty()) throw std::runtime_error(why);
            p->handshaken = true;
            return;
          }
          if (root.isError()) throw std::runtime_error("peer reported: " + std::string(root.getError().getReason()));
          auto id = reply_id(root);
          if (!id) throw std::runtime_error("unexpected message from a worker's data port");
          auto it = p->waiting.find(*id);
          if (it == p->waiting.end()) return;
          auto handler = std::move(it->second);
          p->waiting.erase(it);
          try {
            handler(&mr, {});
          } catch (...) {  // a malformed reply: its request fails now, then the connection closes
            handler(nullptr, "malformed reply");
            throw;
          }
        },
        [fail](const std::string& reason) { fail(reason); });
    p->conn->send(make_handshake(role_, name_));
    for (auto& q : p->queued) p->conn->send(std::move(q));
    p->queued.clear();
  });
  return p;
}

void DataFetcher::request(const std::string& address, std::uint64_t id, OutMessage m, ReplyHandler on_reply) {
  auto p = peer(address);
  p->waiting.emplace(id, std::move(on_reply));
  if (p->conn) p->conn->send(std::move(m));
  else p->queued.push_back(std::move(m));
}

void DataFetcher::fetch(const std::string& address, std::vector<std::string> keys, Callback cb) {
  auto id = next_id_++;
  MessageBuilder mb;
  auto req = mb.root().initGetData();
  req.setId(id);
  auto list = req.initKeys(static_cast<unsigned>(keys.size()));
  for (unsigned i = 0; i < keys.size(); ++i) list.set(i, keys[i]);
  request(address, id, mb.finish(), [cb = std::move(cb)](MessageReader* mr, const std::string& error) {
    FetchResult r;
    if (!mr) {
      r.error = error;
      return cb(std::move(r));
    }
    auto reply = mr->root().getDataReply();
    for (auto kv : reply.getValues()) r.values.emplace_back(kv.getKey(), mr->value(kv.getValue()));
    for (auto k : reply.getMissing()) r.missing.emplace_back(k);
    cb(std::move(r));
  });
}

void DataFetcher::put(const std::string& address, std::vector<std::pair<std::string, Value>> values,
                      std::function<void(std::string error)> cb) {
  put_data(address, std::move(values), nullptr, {}, std::move(cb));
}

void DataFetcher::push(const std::string& address, const std::string& from,
                       std::vector<std::pair<std::string, Value>> values, std::vector<std::string> available,
                       std::function<void(std::string error)> cb) {
  put_data(address, std::move(values), &from, std::move(available), std::move(cb));
}

// A put, or with `from` a push from the worker at that address.
void DataFetcher::put_data(const std::string& address, std::vector<std::pair<std::string, Value>> values,
                           const std::string* from, std::vector<std::string> available,
                           std::function<void(std::string error)> cb) {
  auto id = next_id_++;
  MessageBuilder mb;
  auto req = mb.root().initPutData();
  req.setId(id);
  if (from) {
    req.setPush(true);
    req.setFrom(*from);
  }
  auto list = req.initValues(static_cast<unsigned>(values.size()));
  for (unsigned i = 0; i < values.size(); ++i) {
    list[i].setKey(values[i].first);
    mb.set_value(list[i].initValue(), values[i].second);
  }
  if (!available.empty()) {
    auto names = req.initAvailable(static_cast<unsigned>(available.size()));
    for (unsigned i = 0; i < available.size(); ++i) names.set(i, available[i]);
  }
  request(address, id, mb.finish(), [cb = std::move(cb)](MessageReader* mr, const std::string& error) {
    cb(mr ? std::string() : error);
  });
}

void DataFetcher::run(const std::string& address, const TaskSpec& spec, std::function<void(RunOutcome)> cb) {
  auto id = next_id_++;
  MessageBuilder mb;
  auto req = mb.root().initRunFunction();
  req.setId(id);
  write_task_spec(mb, req.initSpec(), spec);
  request(address, id, mb.finish(), [cb = std::move(cb)](MessageReader* mr, const std::string& error) {
    RunOutcome r;
    if (!mr) {
      r.error = error;
      return cb(std::move(r));
    }
    auto result = mr->root().getRunResult();
    if (result.isValue()) {
      r.value = mr->value(result.getValue());
    } else {
      r.exception_type = result.getError().getExceptionType();
      r.message = result.getError().getMessage();
    }
    cb(std::move(r));
  });
}

}  // namespace distrib::detail
