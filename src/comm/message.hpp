#pragma once
// Building and reading protocol messages: Cap'n Proto headers plus out-of-band frames.
#include <capnp/message.h>
#include <capnp/serialize.h>

#include <string>
#include <vector>

#include "comm/framing.hpp"
#include "distrib/codec.hpp"
#include "proto/distrib.capnp.h"

namespace distrib::detail {

/// Values up to this size travel inside the Cap'n Proto header, as long as the header holds
/// less than kMaxInlineTotalBytes of them; all others travel as out-of-band frames.
inline constexpr std::size_t kInlineValueBytes = 4096;
inline constexpr std::size_t kMaxInlineTotalBytes = std::size_t{16} << 20;

/// Builds one outgoing message.
class MessageBuilder {
 public:
  MessageBuilder() = default;
  /// With a first segment of this many words (small records need not zero 8 KiB).
  explicit MessageBuilder(unsigned first_segment_words) : builder_(first_segment_words) {}
  proto::Message::Builder root() { return builder_.getRoot<proto::Message>(); }
  /// A root of another type (the journal's records).
  template <class T>
  typename T::Builder root_as() {
    return builder_.getRoot<T>();
  }
  /// Stores `v` in `out`: inline if small, else as an out-of-band frame (never copied).
  void set_value(proto::Value::Builder out, const Value& v);
  OutMessage finish();

 private:
  capnp::MallocMessageBuilder builder_;
  std::vector<Bytes> frames_;
  std::size_t inline_bytes_ = 0;
};

/// Reads one incoming message. Reader limits are explicit: traversal is bounded by the
/// header's own size, so a hostile message cannot make the reader loop.
class MessageReader {
 public:
  explicit MessageReader(const InMessage& m);
  proto::Message::Reader root() { return reader_.getRoot<proto::Message>(); }
  template <class T>
  typename T::Reader root_as() {
    return reader_.getRoot<T>();
  }
  /// The value stored by MessageBuilder::set_value; throws ProtocolError on a bad frame index.
  Value value(proto::Value::Reader v) const;

 private:
  static capnp::ReaderOptions options(const InMessage& m);
  const InMessage& message_;
  capnp::FlatArrayMessageReader reader_;
};

/// A message with only a handshake; `same_host`: offer shared-memory hand-over (data ports
/// and their peers) if it is on here.
OutMessage make_handshake(proto::Role role, const std::string& name, bool same_host = false);
/// A message carrying only an error reason (sent before closing a connection).
OutMessage make_error(const std::string& reason);
/// A message that is only `close` or `shutdown`.
OutMessage make_close();
OutMessage make_shutdown();

/// Checks a peer's handshake; returns an error reason, or an empty string if acceptable.
std::string check_handshake(proto::Message::Reader m, proto::Role expected_role_a, proto::Role expected_role_b);

/// Converts between the wire and in-memory forms of a task.
struct TaskSpec;
void write_task_spec(MessageBuilder& mb, proto::TaskSpec::Builder out, const TaskSpec& spec);
TaskSpec read_task_spec(const MessageReader& mr, proto::TaskSpec::Reader in);

}  // namespace distrib::detail
