#include "comm/data_fetcher.hpp"

#include "comm/transport.hpp"

#include "comm/same_host.hpp"
#include "core/log.hpp"

namespace distrib::detail {

struct DataFetcher::Peer {
  std::string address;
  ConnectionPtr conn;
  bool handshaken = false;
  bool same_host = false;       // its handshake offered shared memory with us
  bool shared_failed = false;   // a hand-over through shared memory failed: sockets only now
  std::vector<OutMessage> queued;                // requests made before the connection is up
  std::vector<std::function<OutMessage(const Peer&)>> after_handshake;  // built once it arrived
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
    case proto::Message::PUT_DATA_UNMAPPED: return root.getPutDataUnmapped().getId();
    case proto::Message::RUN_RESULT: return root.getRunResult().getId();
    default: return std::nullopt;
  }
}
// Connecting to a data port that does not answer fails after this long.
constexpr std::chrono::seconds kConnectTimeout{30};
}  // namespace

DataFetcher::DataFetcher(asio::io_context& io, proto::Role role, std::string name, FrameLimits limits, Security security)
    : io_(io), role_(role), name_(std::move(name)), limits_(limits), security_(std::move(security)) {}

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

  auto fail = [this, p](const std::string& reason) { forget_peer(p, reason); };
  try {
    async_connect(io_, address, security_, kConnectTimeout, [this, p, fail](asio::error_code ec, ByteStreamPtr stream) {
      if (ec) return fail("cannot connect to " + p->address + ": " + ec.message());
      connected(p, std::move(stream));
    });
  } catch (const std::exception& e) {  // a malformed address, a security mismatch
    asio::post(io_, [fail, why = std::string(e.what())] { fail(why); });
  }
  return p;
}

void DataFetcher::forget_peer(const std::shared_ptr<Peer>& p, const std::string& reason) {
  auto it = peers_.find(p->address);
  if (it != peers_.end() && it->second == p) peers_.erase(it);
  p->fail_all(reason);
}

void DataFetcher::connected(const std::shared_ptr<Peer>& p, ByteStreamPtr stream) {
  p->conn = std::make_shared<Connection>(std::move(stream), limits_);
  p->conn->start(
      [p](InMessage&& m) {
        MessageReader mr(m);
        auto root = mr.root();
        if (!p->handshaken) {
          auto why = check_handshake(root, proto::Role::WORKER, proto::Role::WORKER);
          if (!why.empty()) throw std::runtime_error(why);
          p->handshaken = true;
          p->same_host = same_host_peer(root.getHandshake());
          auto later = std::move(p->after_handshake);
          p->after_handshake.clear();
          for (auto& build : later) p->conn->send(build(*p));
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
      [this, p](const std::string& reason) { forget_peer(p, reason); });
  p->conn->send(make_handshake(role_, name_, true));
  for (auto& q : p->queued) p->conn->send(std::move(q));
  p->queued.clear();
}

void DataFetcher::request(const std::string& address, std::uint64_t id, OutMessage m, ReplyHandler on_reply) {
  auto p = peer(address);
  p->waiting.emplace(id, std::move(on_reply));
  if (p->conn) p->conn->send(std::move(m));
  else p->queued.push_back(std::move(m));
}

void DataFetcher::request_after_handshake(const std::string& address, std::uint64_t id,
                                          std::function<OutMessage(const Peer&)> build, ReplyHandler on_reply) {
  auto p = peer(address);
  p->waiting.emplace(id, std::move(on_reply));
  if (p->handshaken) p->conn->send(build(*p));
  else p->after_handshake.push_back(std::move(build));
}

void DataFetcher::fetch(const std::string& address, std::vector<std::string> keys, Callback cb) {
  fetch_keys(address, std::move(keys), true, std::move(cb));
}

// `shared`: the reply may carry shared memory (if on here and nothing failed with this peer).
void DataFetcher::fetch_keys(const std::string& address, std::vector<std::string> keys, bool shared, Callback cb) {
  auto id = next_id_++;
  auto p = peer(address);
  shared = shared && shm::enabled() && !p->shared_failed;
  MessageBuilder mb;
  auto req = mb.root().initGetData();
  req.setId(id);
  req.setShared(shared);
  auto list = req.initKeys(static_cast<unsigned>(keys.size()));
  for (unsigned i = 0; i < keys.size(); ++i) list.set(i, keys[i]);
  std::weak_ptr<Peer> weak = p;
  request(address, id, mb.finish(), [this, weak, id, cb = std::move(cb)](MessageReader* mr, const std::string& error) {
    FetchResult r;
    if (!mr) {
      r.error = error;
      return cb(std::move(r));
    }
    auto reply = mr->root().getDataReply();
    bool any_shared = false;
    std::vector<std::string> unmapped;
    std::string why;
    for (auto kv : reply.getValues()) {
      auto v = kv.getValue();
      if (!v.isShared()) {
        r.values.emplace_back(kv.getKey(), mr->value(v));
        continue;
      }
      any_shared = true;
      auto m = shm::map(read_descriptor(v.getShared()));
      if (m.error.empty()) r.values.emplace_back(kv.getKey(), Value{v.getType(), std::move(m.bytes)});
      else unmapped.emplace_back(kv.getKey()), why = std::move(m.error);
    }
    for (auto k : reply.getMissing()) r.missing.emplace_back(k);
    auto p = weak.lock();
    // Mapped (or not): the holder may drop what it kept for us. Nothing waits for it.
    if (any_shared && p && p->conn) p->conn->send_later(make_shared_done(id));
    if (unmapped.empty()) return cb(std::move(r));
    if (!p) {
      for (auto& k : unmapped) r.missing.push_back(std::move(k));
      return cb(std::move(r));
    }
    p->shared_failed = true;
    note_shared_fallback(p->address, why);
    fetch_keys(p->address, std::move(unmapped), false, [r = std::move(r), cb](FetchResult again) mutable {
      for (auto& kv : again.values) r.values.push_back(std::move(kv));
      for (auto& k : again.missing) r.missing.push_back(std::move(k));
      r.error = std::move(again.error);
      cb(std::move(r));
    });
  });
}

void DataFetcher::put(const std::string& address, std::vector<std::pair<std::string, Value>> values,
                      std::function<void(std::string error)> cb) {
  put_values(address, std::move(values), true, std::move(cb));
}

// Built once the peer's handshake is in: only then do we know whether it shares our host.
// The values sent as shared memory are kept until the answer (the peer has mapped them by
// then); those it could not map (putDataUnmapped) are sent again through the socket.
void DataFetcher::put_values(const std::string& address, std::vector<std::pair<std::string, Value>> values,
                             bool shared, std::function<void(std::string error)> cb) {
  auto id = next_id_++;
  auto kept = std::make_shared<std::vector<std::pair<std::string, Value>>>();
  auto build = [id, values = std::move(values), shared, kept](const Peer& p) {
    bool share = shared && p.same_host && !p.shared_failed;
    MessageBuilder mb;
    auto req = mb.root().initPutData();
    req.setId(id);
    auto list = req.initValues(static_cast<unsigned>(values.size()));
    for (unsigned i = 0; i < values.size(); ++i) {
      list[i].setKey(values[i].first);
      auto out = list[i].initValue();
      // Frozen: a client's scatter, whose caller may refill its array afterwards.
      if (share && set_shared_value(out, values[i].second, true)) kept->push_back(values[i]);
      else mb.set_value(out, values[i].second);
    }
    return mb.finish();
  };
  request_after_handshake(address, id, std::move(build),
                          [this, address, kept, cb = std::move(cb)](MessageReader* mr, const std::string& error) {
                            if (!mr) return cb(error);
                            auto root = mr->root();
                            if (!root.isPutDataUnmapped()) return cb({});
                            auto un = root.getPutDataUnmapped();
                            if (auto it = peers_.find(address); it != peers_.end()) it->second->shared_failed = true;
                            note_shared_fallback(address, un.getReason());
                            std::vector<std::pair<std::string, Value>> again;
                            for (auto k : un.getKeys())
                              for (auto& kv : *kept)
                                if (kv.first == std::string_view(k.cStr(), k.size())) again.push_back(kv);
                            put_values(address, std::move(again), false, cb);
                          });
}

void DataFetcher::push(const std::string& address, const std::string& from,
                       std::vector<std::pair<std::string, Value>> values, std::vector<std::string> available,
                       std::function<void(std::string error)> cb) {
  put_data(address, std::move(values), &from, std::move(available), std::move(cb));
}

// A push from the worker at data address `from` (small values: never shared memory).
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
