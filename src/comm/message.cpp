#include "comm/message.hpp"

#include "comm/same_host.hpp"
#include "core/task_spec.hpp"

namespace distrib::detail {

void MessageBuilder::set_value(proto::Value::Builder out, const Value& v) {
  out.setType(v.type);
  if (v.bytes.size() <= kInlineValueBytes && inline_bytes_ + v.bytes.size() <= kMaxInlineTotalBytes) {
    inline_bytes_ += v.bytes.size();
    out.setInline(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(v.bytes.data()), v.bytes.size()));
  } else {
    out.setFrame(static_cast<std::uint32_t>(frames_.size()));
    frames_.push_back(v.bytes);
  }
}

OutMessage MessageBuilder::finish() { return OutMessage{capnp::messageToFlatArray(builder_), std::move(frames_)}; }

capnp::ReaderOptions MessageReader::options(const InMessage& m) {
  capnp::ReaderOptions o;
  // A well-formed message never needs to traverse more words than it has (plus slack for
  // zero-sized structs); nesting in our schema is shallow.
  o.traversalLimitInWords = m.header.size() * 2 + 1024;
  o.nestingLimit = 16;
  return o;
}

MessageReader::MessageReader(const InMessage& m) : message_(m), reader_(m.header.asPtr(), options(m)) {}

Value MessageReader::value(proto::Value::Reader v) const {
  Value out;
  out.type = v.getType();
  if (v.isFrame()) {
    auto i = v.getFrame();
    if (i >= message_.frames.size())
      throw ProtocolError("value refers to frame " + std::to_string(i) + " of " + std::to_string(message_.frames.size()));
    out.bytes = message_.frames[i];
  } else if (v.isShared()) {  // only dataReply and putData may carry them, and read them themselves
    throw ProtocolError("a shared-memory value where none is expected");
  } else {
    auto d = v.getInline();
    out.bytes = Bytes::copy_of(d.begin(), d.size());
  }
  return out;
}

OutMessage make_handshake(proto::Role role, const std::string& name, bool same_host) {
  MessageBuilder mb;
  auto h = mb.root().initHandshake();
  h.setVersion(proto::PROTOCOL_VERSION);
  h.setRole(role);
  h.setName(name);
  if (same_host) offer_same_host(h);
  return mb.finish();
}

OutMessage make_error(const std::string& reason) {
  MessageBuilder mb;
  mb.root().initError().setReason(reason);
  return mb.finish();
}

OutMessage make_close() {
  MessageBuilder mb;
  mb.root().setClose();
  return mb.finish();
}

OutMessage make_shutdown() {
  MessageBuilder mb;
  mb.root().setShutdown();
  return mb.finish();
}

std::string check_handshake(proto::Message::Reader m, proto::Role a, proto::Role b) {
  if (!m.isHandshake()) return "expected a handshake as the first message";
  auto h = m.getHandshake();
  if (h.getVersion() != proto::PROTOCOL_VERSION)
    return "protocol version " + std::to_string(h.getVersion()) + " is not supported (this side speaks " +
           std::to_string(proto::PROTOCOL_VERSION) + ")";
  if (h.getRole() != a && h.getRole() != b) return "unexpected peer role " + std::to_string(static_cast<int>(h.getRole()));
  return {};
}

void write_task_spec(MessageBuilder& mb, proto::TaskSpec::Builder out, const TaskSpec& spec) {
  out.setKey(spec.key);
  out.setFunction(spec.function);
  out.setPriority(spec.priority);
  out.setRetries(spec.retries);
  out.setAllowOtherWorkers(spec.allow_other_workers);
  if (!spec.workers.empty()) {
    auto ws = out.initWorkers(static_cast<unsigned>(spec.workers.size()));
    for (unsigned i = 0; i < spec.workers.size(); ++i) ws.set(i, spec.workers[i]);
  }
  if (!spec.resources.empty()) {
    auto rs = out.initResources(static_cast<unsigned>(spec.resources.size()));
    for (unsigned i = 0; i < spec.resources.size(); ++i) {
      rs[i].setName(spec.resources[i].first);
      rs[i].setAmount(spec.resources[i].second);
    }
  }
  auto args = out.initArgs(static_cast<unsigned>(spec.args.size()));
  for (unsigned i = 0; i < spec.args.size(); ++i) {
    const auto& a = spec.args[i];
    if (a.is_key()) {
      args[i].setKey(a.key());
    } else if (a.is_key_list()) {
      auto kl = args[i].initKeys();
      kl.setType(a.key_list().type);
      auto keys = kl.initKeys(static_cast<unsigned>(a.key_list().keys.size()));
      for (unsigned j = 0; j < a.key_list().keys.size(); ++j) keys.set(j, a.key_list().keys[j]);
    } else {
      mb.set_value(args[i].initValue(), a.value());
    }
  }
}

TaskSpec read_task_spec(const MessageReader& mr, proto::TaskSpec::Reader in) {
  TaskSpec spec;
  spec.key = in.getKey();
  spec.function = in.getFunction();
  spec.priority = in.getPriority();
  auto args = in.getArgs();
  spec.args.reserve(args.size());
  for (auto a : args) {
    if (a.isKey()) {
      spec.args.push_back(TaskArg{std::string(a.getKey())});
    } else if (a.isKeys()) {
      KeyList kl;
      kl.type = a.getKeys().getType();
      for (auto k : a.getKeys().getKeys()) kl.keys.emplace_back(k);
      spec.args.push_back(TaskArg{std::move(kl)});
    } else {
      spec.args.push_back(TaskArg{mr.value(a.getValue())});
    }
  }
  spec.retries = in.getRetries();
  spec.allow_other_workers = in.getAllowOtherWorkers();
  for (auto w : in.getWorkers()) spec.workers.emplace_back(w);
  for (auto r : in.getResources()) spec.resources.emplace_back(r.getName(), r.getAmount());
  return spec;
}

}  // namespace distrib::detail
