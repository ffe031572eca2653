// Writes seed inputs for the harnesses (valid messages, records and values, in each
// harness's input layout) into <dir>/<harness>/, to start fuzzing from:
//   fuzz_make_seeds /tmp/seeds && message_fuzz -merge=1 tests/fuzz/corpus/message /tmp/seeds/message
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "comm/framing.hpp"
#include "comm/message.hpp"
#include "core/task_spec.hpp"
#include "distrib/codec.hpp"
#include "distrib/ndarray.hpp"
#include "journal/journal_codec.hpp"
#include "journal/record_file.hpp"
#include "scheduler/scheduler_wire.hpp"
#include "worker/worker_wire.hpp"

using namespace distrib;
using namespace distrib::detail;
namespace fs = std::filesystem;

namespace {
fs::path root;
int counter = 0;

void write(const std::string& harness, const std::vector<std::byte>& bytes) {
  fs::create_directories(root / harness);
  std::ofstream out(root / harness / ("seed-" + std::to_string(counter++)), std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// fuzz_input.hpp's layout: u8 frame_count | u8 sizes | frames | header. Frames longer than
// 255 bytes cannot be expressed and are cut.
std::vector<std::byte> as_fuzz_message(const OutMessage& m) {
  std::vector<std::byte> r;
  std::size_t n = std::min<std::size_t>(m.frames.size(), 3);
  r.push_back(std::byte(n));
  for (std::size_t i = 0; i < n; ++i) r.push_back(std::byte(std::min<std::size_t>(m.frames[i].size(), 255)));
  for (std::size_t i = 0; i < n; ++i)
    r.insert(r.end(), m.frames[i].data(), m.frames[i].data() + std::min<std::size_t>(m.frames[i].size(), 255));
  auto* h = reinterpret_cast<const std::byte*>(m.header.begin());
  r.insert(r.end(), h, h + m.header.size() * sizeof(capnp::word));
  return r;
}

void message_seed(const OutMessage& m) {
  write("message", as_fuzz_message(m));
  std::vector<std::byte> framed{std::byte(5)};
  append_framed(m, framed);
  write("framing", framed);
}

template <class T>
void codec_seed(int selector, const T& v) {
  auto value = encode_value(v);
  std::vector<std::byte> r{std::byte(selector)};
  r.insert(r.end(), value.bytes.data(), value.bytes.data() + value.bytes.size());
  write("codec", r);
}

TaskSpecPtr task(const std::string& key, std::vector<std::string> deps) {
  auto t = std::make_shared<TaskSpec>();
  t->key = key;
  t->function = "inc";
  t->args.push_back(TaskArg{encode_value(std::int32_t{1})});
  t->args.push_back(TaskArg{encode_value(std::string(5000, 'x'))});  // an out-of-band frame
  for (auto& d : deps) t->args.push_back(TaskArg{d});
  t->workers = {"tcp://w1"};
  t->resources = {{"GPU", 1}};
  return t;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  root = argv[1];

  // ---- protocol messages ----
  message_seed(make_handshake(proto::Role::WORKER, "w", true));
  message_seed(make_error("no"));
  message_seed(make_close());
  message_seed(make_shutdown());
  {
    MessageBuilder mb;
    auto graph = mb.root().initUpdateGraph();
    auto tasks = graph.initTasks(2);
    write_task_spec(mb, tasks[0], *task("a", {}));
    write_task_spec(mb, tasks[1], *task("b", {"a"}));
    auto wanted = graph.initWanted(1);
    wanted.set(0, "b");
    message_seed(mb.finish());
  }
  wire::Registration reg{"w", "tcp://w1", 2, 1 << 30, {"inc"}, {{"GPU", 1}}, {{"a", "int32", 4}}, true, 1};
  message_seed(wire::make_register_worker(reg));
  message_seed(wire::make_tasks_finished({{"a", "int32", 4, 0.1, encode_value(std::int32_t{3}), 2}}));
  message_seed(wire::make_task_erred({{"a", "Error", "boom", 2}}));
  message_seed(wire::make_steal_response({"a", true, 3}));
  message_seed(wire::make_missing_data({"a", "tcp://w2"}));
  message_seed(wire::make_push_failed("a", "tcp://w2"));
  message_seed(wire::make_worker_status(true, "memory", false));
  std::vector<sched::Action> actions;
  actions.push_back(sched::ComputeTask{1, task("b", {"a"}), {{"a", {"tcp://w2"}}}, 4, {}});
  actions.push_back(sched::ComputeTask{1, task("c", {"b"}), {}, 5, {"b"}});
  actions.push_back(sched::FreeKeys{1, {"a", "b"}, true});
  actions.push_back(sched::KeyInMemory{1, "b", "tcp://w1", "int32", 4, encode_value(std::int32_t{3})});
  actions.push_back(sched::KeyErred{1, "c", "Error", "boom"});
  actions.push_back(sched::ClusterChanged{2, 4});
  actions.push_back(sched::KeysCancelled{1, {"d"}});
  actions.push_back(sched::StealRequest{1, "b"});
  actions.push_back(sched::KeyLocations{1, "a", {"tcp://w2"}});
  actions.push_back(sched::RestartCancelled{1, {"e"}});
  actions.push_back(sched::PushTo{1, "b", {"tcp://w2"}});
  for (auto& o : wire::encode_actions(actions))
    if (o.message.header.size() > 0) message_seed(o.message);

  // ---- journal records ----
  std::vector<sched::Event> events;
  events.push_back(sched::AddClient{1});
  events.push_back(sched::AddWorker{1, "w", "tcp://w1", 2, 1 << 30, {"inc"}, {{"GPU", 1}}, {{"a", "int32", 4}}});
  events.push_back(sched::UpdateGraph{1, {task("a", {}), task("b", {"a"})}, {"b"}});
  events.push_back(sched::TaskFinished{1, "a", "int32", 4, 0.1, std::nullopt, 3});
  events.push_back(sched::TaskErred{1, "b", "Error", "boom", 4});
  events.push_back(sched::ReleaseKeys{1, {"b"}});
  events.push_back(sched::Scattered{1, {{"s", "int32", 4, {1}}}});
  events.push_back(sched::CancelKeys{1, {"b"}});
  events.push_back(sched::RemoveWorker{1, true, "bye"});
  events.push_back(sched::RemoveClient{1});
  events.push_back(sched::Restart{});
  std::vector<std::byte> file_bytes;
  std::string path = (root / "journal.tmp").string();
  fs::remove(path);
  {
    journal::RecordWriter w(path, 0);
    sched::StimulusId stimulus = 1;
    for (auto& e : events) {
      if (!journal::is_journaled(e)) continue;
      auto m = journal::encode_event(e, stimulus++, "token");
      std::vector<std::byte> r{std::byte(2)};
      auto fm = as_fuzz_message(m);
      r.insert(r.end(), fm.begin(), fm.end());
      write("journal", r);
      w.append(std::move(m));
    }
    sched::DurableState state;
    state.clients = {1};
    state.tasks.push_back(sched::DurableTask{"a", task("a", {}), sched::TaskStatus::memory});
    journal::encode_snapshot(state, {{1, "token"}}, 7, [&](OutMessage m) {
      std::vector<std::byte> r{std::byte(2)};
      auto fm = as_fuzz_message(m);
      r.insert(r.end(), fm.begin(), fm.end());
      write("journal", r);
      w.append(std::move(m));
    });
    w.sync();
  }
  {
    std::ifstream in(path, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (int torn = 0; torn < 2; ++torn) {
      std::vector<std::byte> r{std::byte(torn)};
      for (char c : bytes) r.push_back(std::byte(c));
      write("journal", r);
    }
  }
  fs::remove(path);

  // ---- values (codec_fuzz's selectors) ----
  codec_seed(0, std::int32_t{-5});
  codec_seed(1, std::int64_t{1} << 40);
  codec_seed(2, std::uint8_t{7});
  codec_seed(3, true);
  codec_seed(4, 2.5);
  codec_seed(5, 1.5f);
  codec_seed(6, std::string("hello"));
  codec_seed(7, std::vector<std::int64_t>{1, 2, 3});
  codec_seed(8, std::vector<double>{1.5, -2});
  codec_seed(9, std::vector<std::string>{"a", "bc"});
  codec_seed(10, std::vector<std::vector<std::int32_t>>{{1}, {2, 3}});
  codec_seed(11, std::map<std::string, std::int64_t>{{"a", 1}, {"b", 2}});
  codec_seed(12, std::unordered_map<std::int32_t, std::string>{{1, "x"}});
  codec_seed(13, std::tuple<std::int32_t, std::string, double>{1, "t", 2});
  codec_seed(14, std::pair<std::string, std::vector<std::uint8_t>>{"p", {1, 2}});
  codec_seed(15, std::optional<std::string>{"o"});
  codec_seed(15, std::optional<std::string>{});
  NDArray a = NDArray::zeros({2, 3}, DType::float64);
  codec_seed(16, a);
  codec_seed(16, NDArray::zeros({4}, DType::int64));
  codec_seed(17, std::vector<NDArray>{a, NDArray::zeros({1}, DType::boolean)});
  codec_seed(18, std::vector<bool>{true, false});
  codec_seed(19, std::map<std::int64_t, std::vector<double>>{{1, {2.0}}});
  std::printf("wrote %d seeds under %s\n", counter, argv[1]);
  return 0;
}
