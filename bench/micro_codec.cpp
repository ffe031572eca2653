// Microbenchmarks of the data path below the scheduler: value encoding (distrib/codec.hpp),
// NDArray <-> Value (distrib/ndarray.hpp), the sans-IO framing (comm/framing.hpp:
// plan_write and FrameDecoder) and Cap'n Proto messages (comm/message.hpp:
// MessageBuilder / MessageReader). No sockets: only the CPU work of each layer.
//
// bytes_per_second is reported where the payload size matters (the payload's own bytes,
// not the encoded overhead); items_per_second for per-message figures.
//
// Run: bench_micro_codec [--benchmark_min_time=0.2] [--benchmark_filter=framing]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "comm/framing.hpp"
#include "comm/message.hpp"
#include "core/task_spec.hpp"
#include "distrib/codec.hpp"
#include "distrib/ndarray.hpp"
#include "proto/distrib.capnp.h"

namespace {

using distrib::Bytes;
using distrib::decode_value;
using distrib::encode_value;
using distrib::NDArray;
using distrib::Value;
using distrib::detail::FrameDecoder;
using distrib::detail::InMessage;
using distrib::detail::MessageBuilder;
using distrib::detail::MessageReader;
using distrib::detail::OutMessage;
using distrib::detail::plan_write;
using distrib::detail::TaskArg;
using distrib::detail::TaskSpec;
namespace proto = distrib::proto;

// A small user type, as a task result might be.
struct Sample {
  std::int64_t id = 0;
  double x = 0, y = 0, z = 0;
  std::string label;
  std::vector<std::int32_t> tags;
  static const char* distrib_type_name() { return "bench::Sample"; }
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, x, y, z, label, tags);
  }
};

std::vector<double> iota_doubles(std::size_t n) {
  std::vector<double> v(n);
  std::iota(v.begin(), v.end(), 0.5);
  return v;
}

// ---- codec: encode_value / decode_value ----

void BM_EncodeInt(benchmark::State& st) {
  std::int64_t x = 123456789;
  for (auto _ : st) {
    benchmark::DoNotOptimize(x);
    auto v = encode_value(x);
    benchmark::DoNotOptimize(v);
  }
  st.SetItemsProcessed(st.iterations());
}

void BM_DecodeInt(benchmark::State& st) {
  auto v = encode_value(std::int64_t{123456789});
  for (auto _ : st) benchmark::DoNotOptimize(decode_value<std::int64_t>(v));
  st.SetItemsProcessed(st.iterations());
}

void BM_EncodeString(benchmark::State& st) {
  std::string s(static_cast<std::size_t>(st.range(0)), 'x');
  for (auto _ : st) {
    auto v = encode_value(s);
    benchmark::DoNotOptimize(v);
  }
  st.SetBytesProcessed(st.iterations() * st.range(0));
}

void BM_DecodeString(benchmark::State& st) {
  auto v = encode_value(std::string(static_cast<std::size_t>(st.range(0)), 'x'));
  for (auto _ : st) benchmark::DoNotOptimize(decode_value<std::string>(v));
  st.SetBytesProcessed(st.iterations() * st.range(0));
}

void BM_EncodeVectorDouble(benchmark::State& st) {
  auto xs = iota_doubles(static_cast<std::size_t>(st.range(0)));
  for (auto _ : st) {
    auto v = encode_value(xs);
    benchmark::DoNotOptimize(v);
  }
  st.SetBytesProcessed(st.iterations() * st.range(0) * static_cast<std::int64_t>(sizeof(double)));
}

void BM_DecodeVectorDouble(benchmark::State& st) {
  auto v = encode_value(iota_doubles(static_cast<std::size_t>(st.range(0))));
  for (auto _ : st) benchmark::DoNotOptimize(decode_value<std::vector<double>>(v));
  st.SetBytesProcessed(st.iterations() * st.range(0) * static_cast<std::int64_t>(sizeof(double)));
}

Sample make_sample() { return Sample{42, 1.5, -2.25, 3.0, "sensor-7/temperature", {1, 2, 3, 5, 8, 13}}; }

void BM_EncodeStruct(benchmark::State& st) {
  auto s = make_sample();
  for (auto _ : st) {
    auto v = encode_value(s);
    benchmark::DoNotOptimize(v);
  }
  st.SetItemsProcessed(st.iterations());
}

void BM_DecodeStruct(benchmark::State& st) {
  auto v = encode_value(make_sample());
  for (auto _ : st) benchmark::DoNotOptimize(decode_value<Sample>(v));
  st.SetItemsProcessed(st.iterations());
}

// ---- NDArray: its buffer is its encoded form, so both directions are O(1) (a slice of
// the buffer, and a header check): items_per_second, with the array's size as a counter ----

NDArray make_array(std::int64_t n) {
  auto xs = iota_doubles(static_cast<std::size_t>(n));
  return NDArray::from_values<double>(xs);
}

void BM_NDArrayToValue(benchmark::State& st) {
  auto a = make_array(st.range(0));
  for (auto _ : st) {
    auto v = encode_value(a);  // Codec<NDArray>::to_value: a slice of the buffer
    benchmark::DoNotOptimize(v);
  }
  st.SetItemsProcessed(st.iterations());
  st.counters["array_bytes"] = static_cast<double>(a.nbytes());
}

void BM_NDArrayFromValue(benchmark::State& st) {
  auto v = encode_value(make_array(st.range(0)));
  for (auto _ : st) benchmark::DoNotOptimize(decode_value<NDArray>(v));
  st.SetItemsProcessed(st.iterations());
  st.counters["array_bytes"] = static_cast<double>(st.range(0) * static_cast<std::int64_t>(sizeof(double)));
}

// ---- messages: a ComputeTask for inc(x) with one dependency, as the scheduler sends ----

TaskSpec small_task() {
  TaskSpec t;
  t.key = "inc-7f3a9c0e21b44d55a8e6c1f0b2d39e47";
  t.function = "inc";
  t.priority = 12345;
  t.args.push_back(TaskArg{encode_value(std::int32_t{41})});
  t.args.push_back(TaskArg{std::string("widen-0c1d2e3f405162738495a6b7c8d9eafb")});
  return t;
}

OutMessage build_compute_task(const TaskSpec& spec) {
  MessageBuilder mb;
  auto list = mb.root().initComputeTasks(1);
  distrib::detail::write_task_spec(mb, list[0].initSpec(), spec);
  auto wh = list[0].initWhoHas(1);
  wh[0].setKey(spec.args[1].key());
  wh[0].initWorkers(1).set(0, "tcp://127.0.0.1:40001");
  return mb.finish();
}

std::vector<std::byte> to_wire(const std::vector<OutMessage>& ms) {
  std::vector<std::byte> staging, wire;
  std::vector<std::span<const std::byte>> parts;
  plan_write(ms, staging, parts);
  for (auto p : parts) wire.insert(wire.end(), p.begin(), p.end());
  return wire;
}

void BM_MessageBuild(benchmark::State& st) {
  auto spec = small_task();
  std::int64_t bytes = 0;
  for (auto _ : st) {
    auto m = build_compute_task(spec);
    bytes += static_cast<std::int64_t>(m.header.size() * sizeof(capnp::word));
    benchmark::DoNotOptimize(m);
  }
  st.SetItemsProcessed(st.iterations());
  st.SetBytesProcessed(bytes);
}

void BM_MessageRead(benchmark::State& st) {
  auto spec = small_task();
  auto out = build_compute_task(spec);
  InMessage in{kj::heapArray<capnp::word>(out.header.asPtr()), {}};
  for (auto _ : st) {
    MessageReader mr(in);
    auto ct = mr.root().getComputeTasks()[0];
    auto t = distrib::detail::read_task_spec(mr, ct.getSpec());
    benchmark::DoNotOptimize(t);
    std::vector<std::string> holders;
    for (auto w : ct.getWhoHas()[0].getWorkers()) holders.emplace_back(w);
    benchmark::DoNotOptimize(holders);
  }
  st.SetItemsProcessed(st.iterations());
  st.SetBytesProcessed(st.iterations() * static_cast<std::int64_t>(in.header.size() * sizeof(capnp::word)));
}

// ---- framing ----

// plan_write of a batch of small task messages (copied into the staging buffer).
void BM_PlanWriteSmall(benchmark::State& st) {
  auto spec = small_task();
  std::vector<OutMessage> ms;
  for (std::int64_t i = 0; i < st.range(0); ++i) ms.push_back(build_compute_task(spec));
  std::vector<std::byte> staging;
  std::vector<std::span<const std::byte>> parts;
  std::int64_t bytes = 0;
  for (auto _ : st) {
    plan_write(ms, staging, parts);
    for (auto p : parts) bytes += static_cast<std::int64_t>(p.size());
    benchmark::DoNotOptimize(parts.data());
  }
  st.SetItemsProcessed(st.iterations() * st.range(0));
  st.SetBytesProcessed(bytes);
}

// FrameDecoder over a stream of small task messages, fed in socket-read-sized chunks.
void BM_FrameDecodeSmall(benchmark::State& st) {
  auto spec = small_task();
  std::vector<OutMessage> ms;
  for (std::int64_t i = 0; i < st.range(0); ++i) ms.push_back(build_compute_task(spec));
  auto wire = to_wire(ms);
  constexpr std::size_t kChunk = 256 * 1024;  // the connection's read buffer
  FrameDecoder dec;
  std::vector<InMessage> got;
  for (auto _ : st) {
    got.clear();
    for (std::size_t off = 0; off < wire.size(); off += kChunk)
      dec.feed(std::span<const std::byte>(wire).subspan(off, std::min(kChunk, wire.size() - off)), got);
    if (got.size() != ms.size()) st.SkipWithError("decoder lost messages");
  }
  st.SetItemsProcessed(st.iterations() * st.range(0));
  st.SetBytesProcessed(st.iterations() * static_cast<std::int64_t>(wire.size()));
}

// A DataReply carrying one value, as a worker answers a gather: values above
// kInlineValueBytes travel as an out-of-band frame that is never copied on the sending side
// (set_value + plan_write). On the receiving side the FrameDecoder path the connection uses:
// small reads until the frame starts, then reading straight into direct_target(), emulated
// here with a memcpy (the one copy a socket read makes).
OutMessage build_data_reply(const Value& v) {
  MessageBuilder mb;
  auto reply = mb.root().initDataReply();
  reply.setId(7);
  auto values = reply.initValues(1);
  values[0].setKey("inc-7f3a9c0e21b44d55a8e6c1f0b2d39e47");
  mb.set_value(values[0].initValue(), v);
  return mb.finish();
}

void BM_FrameSendLarge(benchmark::State& st) {
  auto v = encode_value(iota_doubles(static_cast<std::size_t>(st.range(0))));
  std::vector<std::byte> staging;
  std::vector<std::span<const std::byte>> parts;
  for (auto _ : st) {
    std::vector<OutMessage> ms;
    ms.push_back(build_data_reply(v));
    plan_write(ms, staging, parts);
    benchmark::DoNotOptimize(parts.data());
  }
  // The frame is written from its own memory: the cost does not depend on its size.
  st.SetItemsProcessed(st.iterations());
  st.counters["frame_bytes"] = static_cast<double>(v.bytes.size());
}

void BM_FrameReceiveLarge(benchmark::State& st) {
  auto v = encode_value(iota_doubles(static_cast<std::size_t>(st.range(0))));
  std::vector<OutMessage> ms;
  ms.push_back(build_data_reply(v));
  auto wire = to_wire(ms);
  constexpr std::size_t kChunk = 256 * 1024;
  FrameDecoder dec;
  std::vector<InMessage> got;
  for (auto _ : st) {
    got.clear();
    std::size_t off = 0;
    while (off < wire.size()) {
      auto direct = dec.direct_target();
      if (!direct.empty()) {
        std::size_t n = std::min(direct.size(), wire.size() - off);
        std::memcpy(direct.data(), wire.data() + off, n);
        dec.commit_direct(n, got);
        off += n;
      } else {
        // As async_read_some: up to a read buffer's worth, but never past what was sent.
        std::size_t n = std::min(kChunk, wire.size() - off);
        dec.feed(std::span<const std::byte>(wire).subspan(off, n), got);
        off += n;
      }
    }
    if (got.size() != 1) st.SkipWithError("decoder lost the message");
  }
  st.SetBytesProcessed(st.iterations() * static_cast<std::int64_t>(v.bytes.size()));
}

BENCHMARK(BM_EncodeInt)->Name("encode/i64");
BENCHMARK(BM_DecodeInt)->Name("decode/i64");
BENCHMARK(BM_EncodeString)->Name("encode/string")->Arg(16)->Arg(1024)->Arg(1 << 20);
BENCHMARK(BM_DecodeString)->Name("decode/string")->Arg(16)->Arg(1024)->Arg(1 << 20);
BENCHMARK(BM_EncodeVectorDouble)->Name("encode/vector<f64>")->Arg(1000)->Arg(1000000);
BENCHMARK(BM_DecodeVectorDouble)->Name("decode/vector<f64>")->Arg(1000)->Arg(1000000);
BENCHMARK(BM_EncodeStruct)->Name("encode/struct");
BENCHMARK(BM_DecodeStruct)->Name("decode/struct");
BENCHMARK(BM_NDArrayToValue)->Name("ndarray/to_value")->Arg(1000)->Arg(1000000);
BENCHMARK(BM_NDArrayFromValue)->Name("ndarray/from_value")->Arg(1000)->Arg(1000000);
BENCHMARK(BM_MessageBuild)->Name("message/build_compute_task");
BENCHMARK(BM_MessageRead)->Name("message/read_compute_task");
BENCHMARK(BM_PlanWriteSmall)->Name("framing/plan_write_small")->Arg(1)->Arg(1000);
BENCHMARK(BM_FrameDecodeSmall)->Name("framing/decode_small")->Arg(1)->Arg(1000);
BENCHMARK(BM_FrameSendLarge)->Name("framing/send_large_frame")->Arg(1000000);
BENCHMARK(BM_FrameReceiveLarge)->Name("framing/receive_large_frame")->Arg(1000)->Arg(1000000);

}  // namespace

BENCHMARK_MAIN();
