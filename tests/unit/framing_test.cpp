// Unit tests for the sans-IO framing (comm/framing.hpp) and the message builder/reader
// (comm/message.hpp): round trips through plan_write and FrameDecoder in any chunking,
// the direct-read path for large frames, limit checks, and robustness against corrupt and
// random input.
#include "comm/framing.hpp"

#include <gtest/gtest.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "comm/message.hpp"
#include "core/task_spec.hpp"
#include "distrib/codec.hpp"
#include "distrib/errors.hpp"
#include "proto/distrib.capnp.h"

namespace {

using distrib::Bytes;
using distrib::Value;
using distrib::detail::FrameDecoder;
using distrib::detail::FrameLimits;
using distrib::detail::InMessage;
using distrib::detail::kDirectWriteBytes;
using distrib::detail::kInlineValueBytes;
using distrib::detail::MessageBuilder;
using distrib::detail::MessageReader;
using distrib::detail::OutMessage;
using distrib::detail::plan_write;
using distrib::detail::ProtocolError;
namespace proto = distrib::proto;

using ByteVec = std::vector<std::byte>;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

ByteVec concat(const std::vector<std::span<const std::byte>>& parts) {
  ByteVec out;
  for (auto p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

ByteVec to_wire(const std::vector<OutMessage>& messages) {
  std::vector<std::byte> staging;
  std::vector<std::span<const std::byte>> parts;
  plan_write(messages, staging, parts);
  return concat(parts);
}

ByteVec to_wire(OutMessage m) {
  std::vector<OutMessage> v;
  v.push_back(std::move(m));
  return to_wire(v);
}

std::span<const std::byte> header_span(const kj::Array<capnp::word>& h) {
  return {reinterpret_cast<const std::byte*>(h.begin()), h.size() * sizeof(capnp::word)};
}

bool same_bytes(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

// The message read back is identical to the one written: header and every frame, byte for byte.
void expect_same(const OutMessage& sent, const InMessage& got) {
  EXPECT_TRUE(same_bytes(header_span(sent.header), header_span(got.header))) << "header differs";
  ASSERT_EQ(sent.frames.size(), got.frames.size());
  for (std::size_t i = 0; i < sent.frames.size(); ++i)
    EXPECT_TRUE(same_bytes(sent.frames[i].span(), got.frames[i].span())) << "frame " << i << " differs";
}

void expect_same(const InMessage& a, const InMessage& b) {
  EXPECT_TRUE(same_bytes(header_span(a.header), header_span(b.header))) << "header differs";
  ASSERT_EQ(a.frames.size(), b.frames.size());
  for (std::size_t i = 0; i < a.frames.size(); ++i)
    EXPECT_TRUE(same_bytes(a.frames[i].span(), b.frames[i].span())) << "frame " << i << " differs";
}

std::vector<InMessage> decode_all(std::span<const std::byte> wire, FrameLimits limits = {}) {
  FrameDecoder dec(limits);
  std::vector<InMessage> out;
  dec.feed(wire, out);
  EXPECT_TRUE(dec.idle());
  return out;
}

Value blob(std::size_t n, std::uint32_t seed, std::string type = "blob") {
  Bytes b = Bytes::allocate(n);
  std::mt19937 rng(seed);
  for (std::size_t i = 0; i < n; ++i) b.mutable_data()[i] = static_cast<std::byte>(rng() & 0xff);
  return Value{std::move(type), std::move(b)};
}

// Little-endian raw stream builder for hand-made wire bytes.
struct Raw {
  ByteVec b;
  template <class T>
  Raw& put(T v) {
    auto* p = reinterpret_cast<const std::byte*>(&v);
    b.insert(b.end(), p, p + sizeof v);
    return *this;
  }
  Raw& prefix(std::uint32_t header_bytes, std::uint32_t frame_count) {
    return put(header_bytes).put(frame_count);
  }
  Raw& zeros(std::size_t n) {
    b.insert(b.end(), n, std::byte{0});
    return *this;
  }
};

// A DataReply with a small inline value, a medium value that travels as a staged frame and
// a large value (>= kDirectWriteBytes) that travels as a directly written frame.
struct DataReplyFixture {
  Value small = distrib::encode_value(std::string("a small inline value"));
  Value medium = distrib::encode_value(std::vector<double>(1000, 2.5));  // 8008 bytes
  Value large = blob(kDirectWriteBytes * 3 + 17, 7, "vector<u8>");
  Value at_limit = blob(kInlineValueBytes, 8);           // largest inline value
  Value over_limit = blob(kInlineValueBytes + 1, 9);     // smallest frame value

  OutMessage build() const {
    MessageBuilder mb;
    auto r = mb.root().initDataReply();
    r.setId(0x1234567890abULL);
    auto values = r.initValues(5);
    const Value* vs[] = {&small, &medium, &large, &at_limit, &over_limit};
    const char* keys[] = {"small", "medium", "large", "at-limit", "over-limit"};
    for (unsigned i = 0; i < 5; ++i) {
      values[i].setKey(keys[i]);
      mb.set_value(values[i].initValue(), *vs[i]);
    }
    auto missing = r.initMissing(2);
    missing.set(0, "gone-1");
    missing.set(1, "gone-2");
    return mb.finish();
  }

  // Checks the decoded message field by field, values byte for byte.
  void check(const InMessage& m) const {
    MessageReader mr(m);
    auto root = mr.root();
    ASSERT_EQ(root.which(), proto::Message::DATA_REPLY);
    auto r = root.getDataReply();
    EXPECT_EQ(r.getId(), 0x1234567890abULL);
    auto values = r.getValues();
    ASSERT_EQ(values.size(), 5u);
    const Value* vs[] = {&small, &medium, &large, &at_limit, &over_limit};
    const char* keys[] = {"small", "medium", "large", "at-limit", "over-limit"};
    const bool inline_expected[] = {true, false, false, true, false};
    for (unsigned i = 0; i < 5; ++i) {
      EXPECT_EQ(std::string(values[i].getKey().cStr()), keys[i]);
      auto v = values[i].getValue();
      EXPECT_EQ(v.isInline(), inline_expected[i]) << keys[i];
      Value got = mr.value(v);
      EXPECT_EQ(got.type, vs[i]->type);
      EXPECT_TRUE(same_bytes(got.bytes.span(), vs[i]->bytes.span())) << keys[i];
    }
    ASSERT_EQ(r.getMissing().size(), 2u);
    EXPECT_EQ(std::string(r.getMissing()[0].cStr()), "gone-1");
    EXPECT_EQ(std::string(r.getMissing()[1].cStr()), "gone-2");
    // Decoding through the codec works too.
    Value medium_back = mr.value(values[1].getValue());
    EXPECT_EQ(distrib::decode_value<std::vector<double>>(medium_back), std::vector<double>(1000, 2.5));
    EXPECT_EQ(distrib::decode_value<std::string>(mr.value(values[0].getValue())), "a small inline value");
  }
};

// Reads every field of a message the way the daemons do; corrupt input may throw
// kj::Exception, ProtocolError or DecodeError, but must not crash.
std::size_t walk(MessageReader& mr) {
  auto root = mr.root();
  std::size_t n = 0;
  auto text = [&](capnp::Text::Reader t) { n += std::string(t.cStr(), t.size()).size(); };
  auto value = [&](proto::Value::Reader v) {
    text(v.getType());
    n += mr.value(v).bytes.size();
  };
  auto spec = [&](proto::TaskSpec::Reader s) {
    auto ts = distrib::detail::read_task_spec(mr, s);
    n += ts.key.size() + ts.function.size() + ts.args.size();
  };
  switch (root.which()) {
    case proto::Message::HANDSHAKE: {
      auto h = root.getHandshake();
      n += h.getVersion() + static_cast<unsigned>(h.getRole());
      text(h.getName());
      n += distrib::detail::check_handshake(root, proto::Role::WORKER, proto::Role::CLIENT).size();
      break;
    }
    case proto::Message::ERROR:
      text(root.getError().getReason());
      break;
    case proto::Message::REGISTER_WORKER: {
      auto w = root.getRegisterWorker();
      text(w.getName());
      text(w.getAddress());
      n += w.getNthreads() + w.getMemoryLimit();
      for (auto f : w.getFunctions()) text(f);
      break;
    }
    case proto::Message::WORKER_REGISTERED:
      n += root.getWorkerRegistered().getOk();
      text(root.getWorkerRegistered().getReason());
      break;
    case proto::Message::HEARTBEAT:
      n += root.getHeartbeat().getMemoryBytes() + root.getHeartbeat().getStored();
      break;
    case proto::Message::UPDATE_GRAPH: {
      auto g = root.getUpdateGraph();
      for (auto t : g.getTasks()) spec(t);
      for (auto w : g.getWanted()) text(w);
      break;
    }
    case proto::Message::COMPUTE_TASKS:
      for (auto ct : root.getComputeTasks()) {
        spec(ct.getSpec());
        for (auto kl : ct.getWhoHas()) {
          text(kl.getKey());
          for (auto w : kl.getWorkers()) text(w);
        }
      }
      break;
    case proto::Message::TASKS_FINISHED:
      for (auto t : root.getTasksFinished()) {
        text(t.getKey());
        text(t.getType());
        n += t.getNbytes();
      }
      break;
    case proto::Message::TASK_ERRED:
      for (auto t : root.getTaskErred()) {
        text(t.getKey());
        text(t.getExceptionType());
        text(t.getMessage());
      }
      break;
    case proto::Message::KEYS_IN_MEMORY:
      for (auto k : root.getKeysInMemory()) {
        text(k.getKey());
        text(k.getWorker());
        text(k.getType());
      }
      break;
    case proto::Message::RELEASE_KEYS:
      for (auto k : root.getReleaseKeys()) text(k);
      break;
    case proto::Message::FREE_KEYS:
      for (auto k : root.getFreeKeys()) text(k);
      break;
    case proto::Message::GET_DATA:
      n += root.getGetData().getId();
      for (auto k : root.getGetData().getKeys()) text(k);
      break;
    case proto::Message::DATA_REPLY: {
      auto r = root.getDataReply();
      for (auto kv : r.getValues()) {
        text(kv.getKey());
        value(kv.getValue());
      }
      for (auto k : r.getMissing()) text(k);
      break;
    }
    case proto::Message::CLUSTER_INFO:
      n += root.getClusterInfo().getWorkers();
      break;
    case proto::Message::SHUTDOWN:
    case proto::Message::CLOSE:
      break;
    default:
      break;
  }
  return n;
}

std::size_t walk(const InMessage& m) {
  MessageReader mr(m);
  return walk(mr);
}

enum class WalkResult { ok, kj_error, protocol_error, decode_error, other_error };

WalkResult try_walk(const InMessage& m, std::string* other = nullptr) {
  try {
    walk(m);
    return WalkResult::ok;
  } catch (const kj::Exception&) {
    return WalkResult::kj_error;
  } catch (const ProtocolError&) {
    return WalkResult::protocol_error;
  } catch (const distrib::DecodeError&) {
    return WalkResult::decode_error;
  } catch (const std::exception& e) {
    if (other) *other = e.what();
    return WalkResult::other_error;
  }
}

// ---------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------

TEST(FramingRoundTrip, Handshake) {
  OutMessage sent = distrib::detail::make_handshake(proto::Role::WORKER, "worker-1");
  ByteVec wire = to_wire(distrib::detail::make_handshake(proto::Role::WORKER, "worker-1"));
  // u32 header bytes | u32 frame count | header
  ASSERT_EQ(wire.size(), 8 + sent.header.size() * 8);
  std::uint32_t hb = 0, fc = 0;
  std::memcpy(&hb, wire.data(), 4);
  std::memcpy(&fc, wire.data() + 4, 4);
  EXPECT_EQ(hb, sent.header.size() * 8);
  EXPECT_EQ(fc, 0u);

  auto out = decode_all(wire);
  ASSERT_EQ(out.size(), 1u);
  expect_same(sent, out[0]);
  MessageReader mr(out[0]);
  auto root = mr.root();
  ASSERT_TRUE(root.isHandshake());
  EXPECT_EQ(root.getHandshake().getVersion(), proto::PROTOCOL_VERSION);
  EXPECT_EQ(root.getHandshake().getRole(), proto::Role::WORKER);
  EXPECT_EQ(std::string(root.getHandshake().getName().cStr()), "worker-1");
  EXPECT_EQ(distrib::detail::check_handshake(root, proto::Role::WORKER, proto::Role::CLIENT), "");
  EXPECT_NE(distrib::detail::check_handshake(root, proto::Role::SCHEDULER, proto::Role::PEER), "");
}

TEST(FramingRoundTrip, DataReplyWithInlineAndFrameValues) {
  DataReplyFixture fx;
  OutMessage sent = fx.build();
  // Only the three values above kInlineValueBytes travel as frames, in order, sharing memory.
  ASSERT_EQ(sent.frames.size(), 3u);
  EXPECT_EQ(sent.frames[0].data(), fx.medium.bytes.data());
  EXPECT_EQ(sent.frames[1].data(), fx.large.bytes.data());
  EXPECT_EQ(sent.frames[2].data(), fx.over_limit.bytes.data());

  std::vector<OutMessage> batch;
  batch.push_back(fx.build());
  std::vector<std::byte> staging;
  std::vector<std::span<const std::byte>> parts;
  plan_write(batch, staging, parts);
  // The large frame is written from its own memory, not copied into the staging buffer.
  bool direct = std::any_of(parts.begin(), parts.end(), [&](auto p) {
    return p.data() == fx.large.bytes.data() && p.size() == fx.large.bytes.size();
  });
  EXPECT_TRUE(direct);
  // ... and is the only part outside the staging buffer.
  std::size_t outside = 0;
  for (auto p : parts)
    if (p.data() < staging.data() || p.data() >= staging.data() + staging.size()) ++outside;
  EXPECT_EQ(outside, 1u);
  ByteVec wire = concat(parts);
  std::size_t expected = 8 + 8 * 3 + sent.header.size() * 8 + fx.medium.bytes.size() + fx.large.bytes.size() +
                         fx.over_limit.bytes.size();
  EXPECT_EQ(wire.size(), expected);

  auto out = decode_all(wire);
  ASSERT_EQ(out.size(), 1u);
  expect_same(sent, out[0]);
  fx.check(out[0]);
}

TEST(FramingRoundTrip, InlineValuesSpillToFramesOnceTheHeaderHoldsEnough) {
  using distrib::detail::kMaxInlineTotalBytes;
  const std::size_t fit = kMaxInlineTotalBytes / kInlineValueBytes;
  const std::size_t n = fit + 3;
  std::vector<Value> sent;
  for (std::size_t i = 0; i < n; ++i) {
    Bytes b = Bytes::allocate(kInlineValueBytes);  // distinct contents, cheaper than blob()
    for (std::size_t j = 0; j < kInlineValueBytes; ++j) b.mutable_data()[j] = static_cast<std::byte>((i * 131 + j) & 0xff);
    sent.push_back(Value{"blob", std::move(b)});
  }
  MessageBuilder mb;
  auto values = mb.root().initDataReply().initValues(static_cast<unsigned>(n));
  for (unsigned i = 0; i < n; ++i) mb.set_value(values[i].initValue(), sent[i]);
  OutMessage m = mb.finish();
  EXPECT_EQ(m.frames.size(), n - fit);
  EXPECT_LE(m.header.size() * 8, FrameLimits{}.max_header_bytes);
  auto out = decode_all(to_wire(std::move(m)));
  ASSERT_EQ(out.size(), 1u);
  MessageReader mr(out[0]);
  auto got = mr.root().getDataReply().getValues();
  ASSERT_EQ(got.size(), n);
  std::size_t inline_count = 0, mismatches = 0;
  for (unsigned i = 0; i < n; ++i) {
    auto v = got[i].getValue();
    if (v.isInline()) ++inline_count;
    if (!same_bytes(mr.value(v).bytes.span(), sent[i].bytes.span())) ++mismatches;
  }
  EXPECT_EQ(inline_count, fit);
  EXPECT_EQ(mismatches, 0u);
  EXPECT_FALSE(got[static_cast<unsigned>(fit - 1)].getValue().isFrame());
  EXPECT_TRUE(got[static_cast<unsigned>(fit)].getValue().isFrame());
}

TEST(FramingRoundTrip, PlanWriteReusesStagingBuffer) {
  DataReplyFixture fx;
  std::vector<OutMessage> batch;
  batch.push_back(fx.build());
  std::vector<std::byte> staging(12345, std::byte{0x5a});  // stale contents are discarded
  std::vector<std::span<const std::byte>> parts(3);
  plan_write(batch, staging, parts);
  ByteVec first = concat(parts);
  plan_write(batch, staging, parts);
  ByteVec second = concat(parts);
  EXPECT_EQ(first, second);
  EXPECT_EQ(first, to_wire(fx.build()));
}

TEST(FramingRoundTrip, OneByteAtATimeAndRandomChunksGiveSameMessages) {
  DataReplyFixture fx;
  OutMessage sent = fx.build();
  std::vector<OutMessage> batch;
  batch.push_back(distrib::detail::make_handshake(proto::Role::CLIENT, "c"));
  batch.push_back(fx.build());
  batch.push_back(distrib::detail::make_close());
  ByteVec wire = to_wire(batch);
  auto reference = decode_all(wire);
  ASSERT_EQ(reference.size(), 3u);
  expect_same(sent, reference[1]);

  {
    FrameDecoder dec;
    std::vector<InMessage> out;
    std::size_t not_idle = 0;
    for (std::size_t i = 0; i < wire.size(); ++i) {
      dec.feed(std::span<const std::byte>(wire.data() + i, 1), out);
      if (!dec.idle()) ++not_idle;
    }
    EXPECT_TRUE(dec.idle());
    EXPECT_EQ(not_idle, wire.size() - 3);  // idle exactly after the last byte of each message
    ASSERT_EQ(out.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) expect_same(reference[i], out[i]);
    fx.check(out[1]);
  }

  std::mt19937 rng(12345);
  for (int run = 0; run < 30; ++run) {
    std::uniform_int_distribution<std::size_t> chunk(1, run % 2 == 0 ? 17 : 70000);
    FrameDecoder dec;
    std::vector<InMessage> out;
    std::size_t pos = 0;
    while (pos < wire.size()) {
      std::size_t n = std::min(chunk(rng), wire.size() - pos);
      dec.feed(std::span<const std::byte>(wire.data() + pos, n), out);
      pos += n;
    }
    EXPECT_TRUE(dec.idle());
    ASSERT_EQ(out.size(), 3u) << "run " << run;
    for (std::size_t i = 0; i < 3; ++i) expect_same(reference[i], out[i]);
    fx.check(out[1]);
  }
}

TEST(FramingRoundTrip, SeveralMessagesInOneWriteDecodeInOrder) {
  DataReplyFixture fx;
  std::vector<OutMessage> batch;
  batch.push_back(distrib::detail::make_handshake(proto::Role::SCHEDULER, "sched"));
  batch.push_back(fx.build());
  batch.push_back(distrib::detail::make_error("bye now"));
  batch.push_back(fx.build());
  batch.push_back(distrib::detail::make_close());
  batch.push_back(distrib::detail::make_shutdown());
  ByteVec wire = to_wire(batch);
  auto out = decode_all(wire);
  ASSERT_EQ(out.size(), batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) expect_same(batch[i], out[i]);

  const proto::Message::Which expected[] = {proto::Message::HANDSHAKE, proto::Message::DATA_REPLY,
                                            proto::Message::ERROR,     proto::Message::DATA_REPLY,
                                            proto::Message::CLOSE,     proto::Message::SHUTDOWN};
  for (std::size_t i = 0; i < out.size(); ++i) {
    MessageReader mr(out[i]);
    EXPECT_EQ(mr.root().which(), expected[i]) << i;
  }
  fx.check(out[1]);
  fx.check(out[3]);
  MessageReader err(out[2]);
  EXPECT_EQ(std::string(err.root().getError().getReason().cStr()), "bye now");
  // Each message has its own frames: frame indexes restart at 0.
  EXPECT_EQ(out[0].frames.size(), 0u);
  EXPECT_EQ(out[1].frames.size(), 3u);
  EXPECT_EQ(out[3].frames.size(), 3u);
}

TEST(FramingRoundTrip, EmptyFramesAreKept) {
  MessageBuilder mb;
  mb.root().setClose();
  OutMessage only_empty = mb.finish();
  only_empty.frames = {Bytes(), Bytes::allocate(0)};
  OutMessage mixed = distrib::detail::make_error("x");
  mixed.frames = {Bytes(), Bytes::copy_of("abc"), Bytes(), Bytes::copy_of("de")};
  std::vector<OutMessage> batch;
  batch.push_back(std::move(only_empty));
  batch.push_back(std::move(mixed));
  ByteVec wire = to_wire(batch);
  // Every chunking gives the same result, including the messages that end on an empty frame.
  for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, wire.size()}) {
    FrameDecoder dec;
    std::vector<InMessage> out;
    for (std::size_t pos = 0; pos < wire.size(); pos += chunk)
      dec.feed(std::span<const std::byte>(wire.data() + pos, std::min(chunk, wire.size() - pos)), out);
    EXPECT_TRUE(dec.idle());
    ASSERT_EQ(out.size(), 2u);
    ASSERT_EQ(out[0].frames.size(), 2u);
    EXPECT_EQ(out[0].frames[0].size(), 0u);
    EXPECT_EQ(out[0].frames[1].size(), 0u);
    ASSERT_EQ(out[1].frames.size(), 4u);
    EXPECT_EQ(out[1].frames[0].size(), 0u);
    EXPECT_EQ(out[1].frames[1].view(), "abc");
    EXPECT_EQ(out[1].frames[2].size(), 0u);
    EXPECT_EQ(out[1].frames[3].view(), "de");
  }
}

// ---------------------------------------------------------------------------------------
// Reading large frames straight into their buffer
// ---------------------------------------------------------------------------------------

TEST(FramingDirect, DirectTargetOnlyForLargeRemainders) {
  DataReplyFixture fx;
  OutMessage sent = fx.build();
  ByteVec wire = to_wire(fx.build());
  const std::size_t header_end = 8 + 8 * 3 + sent.header.size() * 8;
  const std::size_t medium = fx.medium.bytes.size();
  const std::size_t large = fx.large.bytes.size();

  FrameDecoder dec;
  std::vector<InMessage> out;
  EXPECT_TRUE(dec.direct_target().empty());  // between messages
  dec.feed(std::span<const std::byte>(wire.data(), header_end - 1), out);
  EXPECT_TRUE(dec.direct_target().empty());  // still in the header
  dec.feed(std::span<const std::byte>(wire.data() + header_end - 1, 2), out);
  EXPECT_TRUE(dec.direct_target().empty());  // in the medium frame, < kDirectWriteBytes left
  dec.feed(std::span<const std::byte>(wire.data() + header_end + 1, medium - 1 + 10), out);
  // 10 bytes into the large frame: the rest of it can be read directly.
  auto t = dec.direct_target();
  ASSERT_EQ(t.size(), large - 10);

  // Fill it in pieces, checking that the target shrinks by what was committed.
  std::size_t pos = header_end + medium + 10;
  const std::byte* first_target = t.data();
  std::size_t direct = 0;
  while (true) {
    t = dec.direct_target();
    if (t.empty()) break;
    std::size_t n = std::min<std::size_t>(t.size(), 50000);
    std::memcpy(t.data(), wire.data() + pos, n);
    dec.commit_direct(n, out);
    pos += n;
    direct += n;
    if (!dec.direct_target().empty()) {
      EXPECT_EQ(dec.direct_target().size(), t.size() - n);
    }
  }
  EXPECT_GT(direct, large - kDirectWriteBytes - 10);  // stops once less than kDirectWriteBytes is left
  EXPECT_LE(direct, large - 10);
  EXPECT_FALSE(dec.idle());
  EXPECT_TRUE(out.empty());
  dec.feed(std::span<const std::byte>(wire.data() + pos, wire.size() - pos), out);
  EXPECT_TRUE(dec.idle());
  ASSERT_EQ(out.size(), 1u);
  expect_same(sent, out[0]);
  fx.check(out[0]);
  // The bytes were read in place: the first direct target lies inside the received frame.
  const std::byte* frame = out[0].frames[1].data();
  EXPECT_GE(first_target, frame);
  EXPECT_LT(first_target, frame + out[0].frames[1].size());
}

TEST(FramingDirect, SocketLikeLoopWithDirectReadsAcrossMessages) {
  DataReplyFixture fx;
  std::vector<OutMessage> batch;
  batch.push_back(fx.build());
  batch.push_back(distrib::detail::make_close());
  batch.push_back(fx.build());
  ByteVec wire = to_wire(batch);

  FrameDecoder dec;
  std::vector<InMessage> out;
  std::size_t pos = 0, direct = 0;
  while (pos < wire.size()) {
    auto t = dec.direct_target();
    if (!t.empty()) {
      std::size_t n = std::min(t.size(), wire.size() - pos);
      std::memcpy(t.data(), wire.data() + pos, n);
      dec.commit_direct(n, out);
      pos += n;
      direct += n;
    } else {
      std::size_t n = std::min<std::size_t>(4096, wire.size() - pos);
      dec.feed(std::span<const std::byte>(wire.data() + pos, n), out);
      pos += n;
    }
  }
  EXPECT_TRUE(dec.idle());
  EXPECT_GE(direct, 2 * (fx.large.bytes.size() - 4096));  // most of both large frames went direct
  ASSERT_EQ(out.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) expect_same(batch[i], out[i]);
  fx.check(out[0]);
  fx.check(out[2]);
}

// ---------------------------------------------------------------------------------------
// Truncation
// ---------------------------------------------------------------------------------------

TEST(FramingTruncated, PartialStreamYieldsNoMessage) {
  {
    ByteVec wire = to_wire(distrib::detail::make_handshake(proto::Role::PEER, "peer"));
    for (std::size_t cut = 1; cut < wire.size(); ++cut) {
      FrameDecoder dec;
      std::vector<InMessage> out;
      dec.feed(std::span<const std::byte>(wire.data(), cut), out);
      EXPECT_TRUE(out.empty()) << cut;
      EXPECT_FALSE(dec.idle()) << cut;
      dec.feed(std::span<const std::byte>(wire.data() + cut, wire.size() - cut), out);
      EXPECT_EQ(out.size(), 1u) << cut;
      EXPECT_TRUE(dec.idle()) << cut;
    }
  }
  DataReplyFixture fx;
  ByteVec wire = to_wire(fx.build());
  for (std::size_t cut = 1; cut < wire.size(); cut += 997) {
    FrameDecoder dec;
    std::vector<InMessage> out;
    dec.feed(std::span<const std::byte>(wire.data(), cut), out);
    EXPECT_TRUE(out.empty()) << cut;
    EXPECT_FALSE(dec.idle()) << cut;
  }
  FrameDecoder dec;
  std::vector<InMessage> out;
  dec.feed(std::span<const std::byte>(wire.data(), wire.size() - 1), out);
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(dec.idle());
  dec.feed(std::span<const std::byte>(wire.data() + wire.size() - 1, 1), out);
  ASSERT_EQ(out.size(), 1u);
  fx.check(out[0]);
  // An empty feed is harmless.
  dec.feed({}, out);
  EXPECT_EQ(out.size(), 1u);
  EXPECT_TRUE(dec.idle());
}

// ---------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------

void expect_protocol_error(const ByteVec& bytes, FrameLimits limits = {}) {
  FrameDecoder dec(limits);
  std::vector<InMessage> out;
  EXPECT_THROW(dec.feed(bytes, out), ProtocolError);
  EXPECT_TRUE(out.empty());
}

void expect_accepted_so_far(const ByteVec& bytes, FrameLimits limits = {}) {
  FrameDecoder dec(limits);
  std::vector<InMessage> out;
  EXPECT_NO_THROW(dec.feed(bytes, out));
  EXPECT_FALSE(dec.idle());
}

TEST(FramingLimits, BadHeaderLengthThrows) {
  expect_protocol_error(Raw().prefix(0, 0).b);
  expect_protocol_error(Raw().prefix(0, 1).b);
  for (std::uint32_t hb : {1u, 4u, 7u, 12u, 15u, 1001u, 0xFFFFFFFFu}) {
    SCOPED_TRACE(hb);
    expect_protocol_error(Raw().prefix(hb, 0).b);
  }
  expect_accepted_so_far(Raw().prefix(8, 0).b);
  expect_accepted_so_far(Raw().prefix(16, 0).b);
}

TEST(FramingLimits, HeaderAboveLimitThrows) {
  FrameLimits limits;
  limits.max_header_bytes = 1024;
  expect_protocol_error(Raw().prefix(1032, 0).b, limits);
  expect_protocol_error(Raw().prefix(0xFFFFFFF8u, 0).b, limits);
  expect_accepted_so_far(Raw().prefix(1024, 0).b, limits);
  // The default limit rejects a 4 GiB header.
  const auto max_header = static_cast<std::uint32_t>(FrameLimits{}.max_header_bytes);
  expect_protocol_error(Raw().prefix(0xFFFFFFF8u, 0).b);
  expect_protocol_error(Raw().prefix(max_header + 8, 0).b);
  expect_accepted_so_far(Raw().prefix(max_header, 0).b);
}

TEST(FramingLimits, TooManyFramesThrows) {
  FrameLimits limits;
  limits.max_frames = 4;
  expect_protocol_error(Raw().prefix(8, 5).b, limits);
  expect_accepted_so_far(Raw().prefix(8, 4).b, limits);
  // Default limit.
  const auto max_frames = static_cast<std::uint32_t>(FrameLimits{}.max_frames);
  expect_protocol_error(Raw().prefix(8, 0xFFFFFFFFu).b);
  expect_protocol_error(Raw().prefix(8, max_frames + 1).b);
  expect_accepted_so_far(Raw().prefix(8, max_frames).b);
}

TEST(FramingLimits, FrameAboveLimitThrowsBeforeAllocating) {
  FrameLimits limits;
  limits.max_frame_bytes = 1 << 20;
  const std::uint64_t tib = std::uint64_t{1} << 40;
  // Only the prefix and the sizes are fed: the claim is rejected before the header is read
  // and before any frame buffer exists (a 1 TiB allocation would throw std::bad_alloc).
  expect_protocol_error(Raw().prefix(8, 1).put(tib).b, limits);
  expect_protocol_error(Raw().prefix(8, 3).put<std::uint64_t>(16).put<std::uint64_t>(16).put(tib).b, limits);
  expect_protocol_error(Raw().prefix(8, 1).put<std::uint64_t>((1 << 20) + 1).b, limits);
  expect_accepted_so_far(Raw().prefix(8, 1).put<std::uint64_t>(1 << 20).b, limits);
  // Default limits.
  expect_protocol_error(Raw().prefix(8, 1).put(~std::uint64_t{0}).b);
  expect_protocol_error(Raw().prefix(8, 1).put(FrameLimits{}.max_frame_bytes + 1).b);
}

TEST(FramingLimits, MessageTotalAboveLimitThrows) {
  FrameLimits limits;
  limits.max_frame_bytes = 1000;
  limits.max_message_bytes = 2000;
  // The header counts towards the total: 8 + 1000 + 993 > 2000.
  expect_protocol_error(Raw().prefix(8, 2).put<std::uint64_t>(1000).put<std::uint64_t>(993).b, limits);
  expect_accepted_so_far(Raw().prefix(8, 2).put<std::uint64_t>(1000).put<std::uint64_t>(992).b, limits);
  expect_protocol_error(Raw().prefix(8, 3).put<std::uint64_t>(1000).put<std::uint64_t>(1000).put<std::uint64_t>(0).b,
                        limits);
  // Default limits: enough maximal frames to exceed the message limit.
  const FrameLimits defaults;
  const auto n = static_cast<std::uint32_t>(defaults.max_message_bytes / defaults.max_frame_bytes + 1);
  ASSERT_LE(n, defaults.max_frames);
  Raw many;
  many.prefix(8, n);
  for (std::uint32_t i = 0; i < n; ++i) many.put(defaults.max_frame_bytes);
  expect_protocol_error(many.b);
}

TEST(FramingLimits, MessageTotalCannotBeBypassedByOverflow) {
  // With no per-frame limit, the message limit alone must still bound the allocation: a frame
  // size that makes the running total wrap around 2^64 must not pass the total check.
  FrameLimits limits;
  limits.max_frame_bytes = std::numeric_limits<std::uint64_t>::max();
  limits.max_message_bytes = 1 << 20;
  {
    SCOPED_TRACE("one frame of 2^64 - 8 bytes after an 8-byte header: the total wraps to 0");
    expect_protocol_error(Raw().prefix(8, 1).put(~std::uint64_t{0} - 7).b, limits);
  }
  {
    SCOPED_TRACE("frames of 16 and 2^64 - 16 bytes after an 8-byte header: the total wraps to 8");
    expect_protocol_error(Raw().prefix(8, 2).put<std::uint64_t>(16).put(~std::uint64_t{0} - 15).b, limits);
  }
}

// Issue 17 part 5: memory grows with the bytes received, not with the sizes declared.
TEST(FramingMemory, DeclaredMillionFrameTableWithEightBytesFedAllocatesLittle) {
  const auto max_frames = static_cast<std::uint32_t>(FrameLimits{}.max_frames);
  FrameDecoder d;
  std::vector<InMessage> out;
  auto wire = Raw().prefix(8, max_frames).b;
  ASSERT_EQ(wire.size(), 8u);
  d.feed(wire, out);
  EXPECT_TRUE(out.empty());
  EXPECT_LE(d.reserved_bytes(), 8u * 1024);
  // Half the table fed: the storage is at most twice what arrived.
  ByteVec sizes(std::size_t{max_frames} / 2 * 8, std::byte{0});
  d.feed(sizes, out);
  EXPECT_LE(d.reserved_bytes(), 2 * sizes.size() + 8 * 1024);
  EXPECT_GE(d.reserved_bytes(), sizes.size());
}

TEST(FramingMemory, DeclaredHugeHeaderWithEightBytesFedAllocatesLittle) {
  const auto max_header = static_cast<std::uint32_t>(FrameLimits{}.max_header_bytes);
  FrameDecoder d;
  std::vector<InMessage> out;
  d.feed(Raw().prefix(max_header, 0).b, out);
  EXPECT_LE(d.reserved_bytes(), 8u * 1024);
  ByteVec part(100 * 1024, std::byte{0});
  d.feed(part, out);
  EXPECT_LE(d.reserved_bytes(), 2 * part.size() + 8 * 1024);
  EXPECT_TRUE(out.empty());
}

TEST(FramingMemory, GrownHeaderAndTableKeepTheirBytes) {
  // A message with a 1 MiB header and 3000 frames, fed in odd chunks, decodes intact.
  MessageBuilder mb;
  auto list = mb.root().initError();
  list.setReason(std::string(1 << 20, 'x'));
  OutMessage m = mb.finish();
  for (int i = 0; i < 3000; ++i) m.frames.push_back(Bytes::copy_of(std::to_string(i)));
  ByteVec wire = to_wire(std::move(m));
  FrameDecoder d;
  std::vector<InMessage> out;
  for (std::size_t at = 0; at < wire.size(); at += 777)
    d.feed(std::span<const std::byte>(wire).subspan(at, std::min<std::size_t>(777, wire.size() - at)), out);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].frames.size(), 3000u);
  EXPECT_EQ(out[0].frames[2999].view(), "2999");
  MessageReader r(out[0]);
  EXPECT_EQ(r.root().getError().getReason().size(), std::size_t{1} << 20);
  EXPECT_LE(d.reserved_bytes(), 8u * 1024);  // nothing held between messages
}

TEST(FramingMemory, FirstMessageLimitAppliesToOneMessageOnly) {
  FrameLimits limits;
  FrameDecoder d(limits);
  d.limit_first_message(limits.for_handshake());
  std::vector<InMessage> out;
  ByteVec wire = to_wire(distrib::detail::make_handshake(proto::Role::CLIENT, "client-1", true));
  EXPECT_LT(wire.size(), 4096u);  // the handshake is far under the 64 KiB limit
  MessageBuilder mb;
  mb.root().initError().setReason(std::string(200 * 1024, 'y'));
  ByteVec big = to_wire(mb.finish());
  ByteVec both = wire;
  both.insert(both.end(), big.begin(), big.end());
  d.feed(both, out);  // the big one follows in the same read: normal limits for it
  EXPECT_EQ(out.size(), 2u);
  FrameDecoder strict(limits);
  strict.limit_first_message(limits.for_handshake());
  EXPECT_THROW(strict.feed(big, out), ProtocolError);
  FrameDecoder frames(limits);
  frames.limit_first_message(limits.for_handshake());
  EXPECT_THROW(frames.feed(Raw().prefix(8, 1).put<std::uint64_t>(65 * 1024).b, out), ProtocolError);
}

TEST(FramingLimits, MessagesBeforeACorruptOneAreDelivered) {
  ByteVec wire = to_wire(distrib::detail::make_close());
  ByteVec bad = Raw().prefix(3, 0).b;
  ByteVec both = wire;
  both.insert(both.end(), bad.begin(), bad.end());
  FrameDecoder dec;
  std::vector<InMessage> out;
  EXPECT_THROW(dec.feed(both, out), ProtocolError);
  ASSERT_EQ(out.size(), 1u);
  MessageReader mr(out[0]);
  EXPECT_TRUE(mr.root().isClose());
}

// ---------------------------------------------------------------------------------------
// MessageReader
// ---------------------------------------------------------------------------------------

TEST(FramingReader, FrameIndexOutOfRangeThrows) {
  MessageBuilder mb;
  auto values = mb.root().initDataReply().initValues(3);
  values[0].setKey("ok");
  mb.set_value(values[0].initValue(), blob(kInlineValueBytes + 100, 1));  // frame 0
  values[1].setKey("one-past");
  values[1].initValue().setType("blob");
  values[1].getValue().setFrame(1);
  values[2].setKey("far");
  values[2].initValue().setType("blob");
  values[2].getValue().setFrame(0xFFFFFFFFu);
  auto out = decode_all(to_wire(mb.finish()));
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].frames.size(), 1u);
  MessageReader mr(out[0]);
  auto vs = mr.root().getDataReply().getValues();
  EXPECT_EQ(mr.value(vs[0].getValue()).bytes.size(), kInlineValueBytes + 100);
  EXPECT_THROW(mr.value(vs[1].getValue()), ProtocolError);
  EXPECT_THROW(mr.value(vs[2].getValue()), ProtocolError);
  EXPECT_EQ(try_walk(out[0]), WalkResult::protocol_error);
}

TEST(FramingReader, TaskSpecRoundTrip) {
  distrib::detail::TaskSpec spec;
  spec.key = "inc-abc";
  spec.function = "inc";
  spec.priority = -7;
  spec.args.push_back(distrib::detail::TaskArg{distrib::encode_value(41)});
  spec.args.push_back(distrib::detail::TaskArg{std::string("dep-key")});
  spec.args.push_back(distrib::detail::TaskArg{blob(kInlineValueBytes * 2, 3)});
  MessageBuilder mb;
  auto tasks = mb.root().initUpdateGraph().initTasks(1);
  distrib::detail::write_task_spec(mb, tasks[0], spec);
  auto out = decode_all(to_wire(mb.finish()));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].frames.size(), 1u);
  MessageReader mr(out[0]);
  auto back = distrib::detail::read_task_spec(mr, mr.root().getUpdateGraph().getTasks()[0]);
  EXPECT_EQ(back.key, spec.key);
  EXPECT_EQ(back.function, spec.function);
  EXPECT_EQ(back.priority, spec.priority);
  ASSERT_EQ(back.args.size(), 3u);
  EXPECT_EQ(distrib::decode_value<int>(back.args[0].value()), 41);
  ASSERT_TRUE(back.args[1].is_key());
  EXPECT_EQ(back.args[1].key(), "dep-key");
  EXPECT_TRUE(same_bytes(back.args[2].value().bytes.span(), spec.args[2].value().bytes.span()));
}

// The reader's traversal limit (proportional to the header size) must not reject honest
// large messages, even when they are read through twice.
TEST(FramingReader, LargeHonestMessagesFitTheTraversalLimit) {
  std::vector<OutMessage> batch;
  {
    MessageBuilder mb;
    auto g = mb.root().initUpdateGraph();
    auto tasks = g.initTasks(5000);
    for (unsigned i = 0; i < tasks.size(); ++i) {
      distrib::detail::TaskSpec spec;
      spec.key = "task-" + std::to_string(i);
      spec.function = "f";
      spec.args.push_back(distrib::detail::TaskArg{distrib::encode_value(static_cast<int>(i))});
      spec.args.push_back(distrib::detail::TaskArg{std::string("dep-") + std::to_string(i)});
      distrib::detail::write_task_spec(mb, tasks[i], spec);
    }
    auto wanted = g.initWanted(5000);
    for (unsigned i = 0; i < wanted.size(); ++i) wanted.set(i, "task-" + std::to_string(i));
    batch.push_back(mb.finish());
  }
  {
    MessageBuilder mb;
    auto values = mb.root().initDataReply().initValues(300);
    for (unsigned i = 0; i < values.size(); ++i) {
      values[i].setKey("k" + std::to_string(i));
      mb.set_value(values[i].initValue(), blob(i % 2 == 0 ? kInlineValueBytes : 1, i));
    }
    batch.push_back(mb.finish());
  }
  {
    MessageBuilder mb;
    auto keys = mb.root().initReleaseKeys(20000);
    for (unsigned i = 0; i < keys.size(); ++i) keys.set(i, "k");
    batch.push_back(mb.finish());
  }
  auto out = decode_all(to_wire(batch));
  ASSERT_EQ(out.size(), 3u);
  for (const auto& m : out) {
    MessageReader mr(m);
    std::size_t first = 0, second = 0;
    EXPECT_NO_THROW(first = walk(mr));   // the same reader, so its traversal budget is shared
    EXPECT_NO_THROW(second = walk(mr));
    EXPECT_EQ(first, second);
    EXPECT_GT(first, 0u);
  }
  MessageReader mr(out[0]);
  auto tasks = mr.root().getUpdateGraph().getTasks();
  ASSERT_EQ(tasks.size(), 5000u);
  auto last = distrib::detail::read_task_spec(mr, tasks[4999]);
  EXPECT_EQ(last.key, "task-4999");
  EXPECT_EQ(distrib::decode_value<int>(last.args[0].value()), 4999);
}

// A header of 0xFF words: the segment table claims 2^32 segments.
TEST(FramingReader, GarbageHeaderWordsThrowKjException) {
  Raw raw;
  raw.prefix(64, 0);
  for (int i = 0; i < 8; ++i) raw.put(~std::uint64_t{0});
  auto out = decode_all(raw.b);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_THROW(
      {
        MessageReader mr(out[0]);
        walk(out[0]);
      },
      kj::Exception);
  EXPECT_EQ(try_walk(out[0]), WalkResult::kj_error);
}

// A valid segment table whose root pointer points far outside the segment.
TEST(FramingReader, OutOfBoundsRootPointerThrowsKjException) {
  Raw raw;
  raw.prefix(32, 0);
  raw.put<std::uint32_t>(0).put<std::uint32_t>(3);  // one segment of 3 words
  // struct pointer, offset 1000 words, 1 data word, 1 pointer
  raw.put<std::uint64_t>((std::uint64_t{1000} << 2) | (std::uint64_t{1} << 32) | (std::uint64_t{1} << 48));
  raw.put<std::uint64_t>(0).put<std::uint64_t>(0);
  auto out = decode_all(raw.b);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_THROW(
      {
        MessageReader mr(out[0]);
        mr.root().which();
      },
      kj::Exception);
  // A segment table claiming more words than the header holds.
  Raw big;
  big.prefix(16, 0);
  big.put<std::uint32_t>(0).put<std::uint32_t>(1000).put<std::uint64_t>(0);
  auto out2 = decode_all(big.b);
  ASSERT_EQ(out2.size(), 1u);
  EXPECT_EQ(try_walk(out2[0]), WalkResult::kj_error);
}

// A list of 2^29 zero-sized structs takes no bytes; the reader's traversal limit must stop it
// instead of letting a few bytes drive half a billion iterations.
TEST(FramingReader, ZeroSizedListAmplificationIsRejected) {
  MessageBuilder mb;
  mb.root().initComputeTasks(1);
  OutMessage msg = mb.finish();
  auto word = [&](std::size_t i) -> std::uint64_t {
    std::uint64_t w;
    std::memcpy(&w, &msg.header[i], 8);
    return w;
  };
  auto set_word = [&](std::size_t i, std::uint64_t w) { std::memcpy(static_cast<void*>(&msg.header[i]), &w, 8); };
  // Find the list pointer (inline composite) and its tag, wherever the schema put them.
  std::size_t list_at = 0;
  for (std::size_t i = 1; i + 1 < msg.header.size(); ++i)
    if ((word(i) & 3) == 1 && ((word(i) >> 32) & 7) == 7) list_at = i;
  ASSERT_NE(list_at, 0u);
  ASSERT_EQ(word(list_at + 1) & 0xFFFFFFFFULL, 4u);  // tag: 1 element
  {
    auto ok = decode_all(to_wire(std::move(msg)));
    ASSERT_EQ(ok.size(), 1u);
    MessageReader mr(ok[0]);
    EXPECT_EQ(mr.root().getComputeTasks().size(), 1u);
  }
  msg = [] {
    MessageBuilder b;
    b.root().initComputeTasks(1);
    return b.finish();
  }();
  set_word(list_at, (word(list_at) & 0xFFFFFFFFULL) | (std::uint64_t{7} << 32));  // 0 words of content
  set_word(list_at + 1, (std::uint64_t{(1u << 29) - 1} << 2));                    // 2^29-1 empty structs
  auto out = decode_all(to_wire(std::move(msg)));
  ASSERT_EQ(out.size(), 1u);
  std::size_t iterations = 0;
  try {
    MessageReader mr(out[0]);
    auto list = mr.root().getComputeTasks();
    for (auto ct : list) {
      (void)ct;
      if (++iterations > 1000) break;
    }
    ADD_FAILURE() << "list of " << list.size() << " zero-sized structs was accepted";
  } catch (const kj::Exception&) {
  }
  EXPECT_EQ(iterations, 0u);
}

// ---------------------------------------------------------------------------------------
// Random and corrupted input
// ---------------------------------------------------------------------------------------

FrameLimits small_limits() {
  FrameLimits l;
  l.max_header_bytes = 4096;
  l.max_frames = 8;
  l.max_frame_bytes = 1 << 16;
  l.max_message_bytes = 1 << 17;
  return l;
}

void check_within_limits(const InMessage& m, const FrameLimits& l) {
  EXPECT_GT(m.header.size(), 0u);
  EXPECT_LE(m.header.size() * 8, l.max_header_bytes);
  EXPECT_LE(m.frames.size(), l.max_frames);
  std::uint64_t total = m.header.size() * 8;
  for (const auto& f : m.frames) {
    EXPECT_LE(f.size(), l.max_frame_bytes);
    total += f.size();
  }
  EXPECT_LE(total, l.max_message_bytes);
}

TEST(FramingFuzz, RandomBytesNeverCrash) {
  std::mt19937 rng(20240601);
  const FrameLimits limits = small_limits();
  std::size_t rejected = 0, messages = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::size_t len = std::uniform_int_distribution<std::size_t>(0, iter % 10 == 0 ? 5000 : 200)(rng);
    ByteVec bytes(len);
    for (auto& b : bytes) b = static_cast<std::byte>(rng() & 0xff);
    FrameDecoder dec(limits);
    std::vector<InMessage> out;
    try {
      std::size_t pos = 0;
      while (pos < bytes.size()) {
        std::size_t n = std::min<std::size_t>(1 + rng() % 64, bytes.size() - pos);
        dec.feed(std::span<const std::byte>(bytes.data() + pos, n), out);
        pos += n;
      }
    } catch (const ProtocolError&) {
      ++rejected;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "unexpected exception from feed: " << e.what();
    }
    for (const auto& m : out) {
      ++messages;
      check_within_limits(m, limits);
      std::string what;
      EXPECT_NE(try_walk(m, &what), WalkResult::other_error) << what;
    }
  }
  // Random prefixes almost never pass the header-length check.
  EXPECT_GT(rejected, 2500u);
  EXPECT_LT(messages, 10u);
}

// Valid prefixes and sizes followed by random header words and frames: exercises the Cap'n
// Proto reader on garbage.
TEST(FramingFuzz, RandomHeadersAreRejectedByTheReader) {
  std::mt19937 rng(777);
  const FrameLimits limits = small_limits();
  std::size_t kj_errors = 0, decoded = 0, others = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::uint32_t words = 1 + rng() % 24;
    std::uint32_t frames = rng() % 4;
    Raw raw;
    raw.prefix(words * 8, frames);
    std::vector<std::uint64_t> sizes;
    for (std::uint32_t f = 0; f < frames; ++f) sizes.push_back(rng() % 64);
    for (auto s : sizes) raw.put(s);
    // Header: a valid segment table and a plausible root struct pointer most of the time,
    // then words that look like small Cap'n Proto pointers or text, so that the reader
    // follows pointers into garbage rather than stopping at the segment table.
    std::uint32_t w = 0;
    if (rng() % 8 != 0) {
      raw.put<std::uint32_t>(0).put<std::uint32_t>(words - 1);
      ++w;
      if (w < words && rng() % 8 != 0) {
        raw.put<std::uint64_t>((std::uint64_t{rng() % 3} << 32) | (std::uint64_t{rng() % 3} << 48));
        ++w;
        if (w < words) {
          raw.put<std::uint64_t>(rng() % 20);  // union discriminant
          ++w;
        }
      }
    }
    for (; w < words; ++w) {
      std::uint64_t v = 0;
      auto offset = static_cast<std::uint32_t>(static_cast<std::int32_t>(rng() % 12) - 4);
      switch (rng() % 4) {
        case 0:  // struct pointer
          v = (std::uint64_t{offset} << 2) | (std::uint64_t{rng() % 3} << 32) | (std::uint64_t{rng() % 3} << 48);
          break;
        case 1:  // list pointer
          v = (std::uint64_t{offset} << 2) | 1 | (std::uint64_t{rng() % 8} << 32) | (std::uint64_t{rng() % 40} << 35);
          break;
        case 2:  // small numbers / text
          v = rng() % 0x7f7f7f7f;
          break;
        default:
          v = (std::uint64_t{rng()} << 32) | rng();
      }
      raw.put(v);
    }
    for (auto s : sizes)
      for (std::uint64_t i = 0; i < s; ++i) raw.put(static_cast<std::uint8_t>(rng()));
    FrameDecoder dec(limits);
    std::vector<InMessage> out;
    ASSERT_NO_THROW(dec.feed(raw.b, out));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(dec.idle());
    check_within_limits(out[0], limits);
    std::string what;
    WalkResult r = try_walk(out[0], &what);
    EXPECT_NE(r, WalkResult::other_error) << what;
    if (r == WalkResult::kj_error) ++kj_errors;
    if (r == WalkResult::ok) ++decoded;
    if (r == WalkResult::protocol_error || r == WalkResult::decode_error) ++others;
  }
  // Both outcomes occur: the generator reaches past the segment table into the fields.
  EXPECT_GT(kj_errors, 100u);
  EXPECT_GT(decoded, 100u);
  EXPECT_EQ(kj_errors + decoded + others, 3000u);
}

// Valid streams with a few bytes flipped, fed in random chunks.
TEST(FramingFuzz, CorruptedValidStreamsNeverCrash) {
  DataReplyFixture fx;
  std::vector<OutMessage> batch;
  batch.push_back(distrib::detail::make_handshake(proto::Role::WORKER, "w"));
  {
    MessageBuilder mb;
    auto r = mb.root().initDataReply();
    auto values = r.initValues(2);
    values[0].setKey("a");
    mb.set_value(values[0].initValue(), fx.small);
    values[1].setKey("b");
    mb.set_value(values[1].initValue(), fx.over_limit);
    batch.push_back(mb.finish());
  }
  {
    distrib::detail::TaskSpec spec;
    spec.key = "k";
    spec.function = "f";
    spec.args.push_back(distrib::detail::TaskArg{distrib::encode_value(std::string("arg"))});
    spec.args.push_back(distrib::detail::TaskArg{std::string("dep")});
    MessageBuilder mb;
    auto cts = mb.root().initComputeTasks(1);
    distrib::detail::write_task_spec(mb, cts[0].initSpec(), spec);
    auto who = cts[0].initWhoHas(1);
    who[0].setKey("dep");
    who[0].initWorkers(1).set(0, "tcp://127.0.0.1:1");
    batch.push_back(mb.finish());
  }
  batch.push_back(distrib::detail::make_error("reason"));
  const ByteVec wire = to_wire(batch);
  const FrameLimits limits = small_limits();
  {
    auto clean = decode_all(wire, limits);
    ASSERT_EQ(clean.size(), batch.size());
    for (const auto& m : clean) EXPECT_EQ(try_walk(m), WalkResult::ok);
  }

  std::mt19937 rng(4242);
  std::size_t rejected = 0, walked = 0;
  for (int iter = 0; iter < 1500; ++iter) {
    ByteVec bytes = wire;
    int flips = 1 + static_cast<int>(rng() % 8);
    for (int f = 0; f < flips; ++f) {
      std::size_t at = rng() % bytes.size();
      bytes[at] = static_cast<std::byte>(rng() & 0xff);
    }
    if (rng() % 4 == 0) bytes.resize(rng() % bytes.size());
    FrameDecoder dec(limits);
    std::vector<InMessage> out;
    try {
      std::size_t pos = 0;
      while (pos < bytes.size()) {
        std::size_t n = std::min<std::size_t>(1 + rng() % 300, bytes.size() - pos);
        dec.feed(std::span<const std::byte>(bytes.data() + pos, n), out);
        pos += n;
      }
    } catch (const ProtocolError&) {
      ++rejected;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "unexpected exception from feed: " << e.what();
    }
    for (const auto& m : out) {
      check_within_limits(m, limits);
      std::string what;
      EXPECT_NE(try_walk(m, &what), WalkResult::other_error) << what;
      ++walked;
    }
  }
  EXPECT_GT(rejected, 0u);
  EXPECT_GT(walked, 0u);
}

}  // namespace
