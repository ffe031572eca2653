// Sequences of events into SchedulerState, decoded from fuzz bytes, with validate() after
// each. What the server guarantees is kept (a worker or client is added once with a fresh
// id, events come only from registered peers); what a peer says is arbitrary (keys from a
// small alphabet, graphs with any dependencies, results for any key, any run id).
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "scheduler/scheduler_state.hpp"

using namespace distrib;
using namespace distrib::detail;
using namespace distrib::detail::sched;

namespace {
class Bytes_ {
 public:
  Bytes_(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
  bool done() const { return i_ >= n_; }
  std::uint8_t u8() { return i_ < n_ ? d_[i_++] : 0; }
  std::string key() { return std::string("k") + char('a' + u8() % 10); }
  std::vector<std::string> keys() {
    std::vector<std::string> r(u8() % 4);
    for (auto& k : r) k = key();
    return r;
  }

 private:
  const std::uint8_t* d_;
  std::size_t n_, i_ = 0;
};

template <class T>
T pick(Bytes_& in, const std::set<T>& from) {
  auto it = from.begin();
  std::advance(it, in.u8() % from.size());
  return *it;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  Bytes_ in(data, size);
  SchedulerConfig config;
  config.assign_ahead_depth = in.u8() % 3;
  config.work_stealing = in.u8() & 1;
  SchedulerState s{config};
  std::set<ClientId> clients;
  std::set<WorkerId> workers;
  ClientId next_client = 1;
  WorkerId next_worker = 1;
  std::vector<Action> out;
  for (int n = 0; n < 400 && !in.done(); ++n) {
    Event e = Restart{};
    std::uint8_t op = in.u8() % 20;
    if (op >= 4 && op < 9 && clients.empty()) op = 0;
    if (op >= 9 && workers.empty()) op = 2;
    switch (op) {
      case 0: clients.insert(next_client); e = AddClient{next_client++}; break;
      case 1:
        if (clients.empty()) continue;
        e = RemoveClient{pick(in, clients)};
        clients.erase(std::get<RemoveClient>(e).client);
        break;
      case 2: {
        AddWorker w{next_worker, "w" + std::to_string(next_worker), "tcp://w" + std::to_string(next_worker)};
        w.nthreads = in.u8() % 3 + 1;
        w.functions = {"inc"};
        if (in.u8() & 1) w.functions.push_back("add");
        for (auto& k : in.keys()) w.held.push_back(HeldKey{k, "int32", in.u8()});
        workers.insert(next_worker++);
        e = std::move(w);
        break;
      }
      case 3: {
        if (workers.empty()) continue;
        RemoveWorker r{pick(in, workers)};
        r.safe = in.u8() & 1;
        workers.erase(r.worker);
        e = std::move(r);
        break;
      }
      case 4: {
        UpdateGraph g{pick(in, clients)};
        std::size_t tasks = in.u8() % 5;
        for (std::size_t i = 0; i < tasks; ++i) {
          auto t = std::make_shared<TaskSpec>();
          t->key = in.key();
          t->function = (in.u8() & 1) ? "inc" : "add";
          t->priority = static_cast<std::int8_t>(in.u8());
          t->retries = in.u8() % 2;
          t->args.push_back(TaskArg{encode_value(std::int32_t{1})});
          for (auto& d : in.keys()) t->args.push_back(TaskArg{d});
          if (in.u8() % 8 == 0) {
            t->workers = {"tcp://w" + std::to_string(in.u8() % 4)};
            t->allow_other_workers = in.u8() & 1;
          }
          g.tasks.push_back(std::move(t));
        }
        g.wanted = in.keys();
        e = std::move(g);
        break;
      }
      case 5: e = ReleaseKeys{pick(in, clients), in.keys()}; break;
      case 6: e = CancelKeys{pick(in, clients), in.keys()}; break;
      case 7: {
        Scattered sc{pick(in, clients)};
        for (auto& k : in.keys()) {
          Scattered::Key key{k, "int32", in.u8()};
          if (!workers.empty()) key.holders.push_back(pick(in, workers));
          sc.keys.push_back(std::move(key));
        }
        e = std::move(sc);
        break;
      }
      case 8: e = Restart{}; break;
      case 9: {
        TaskFinished f{pick(in, workers), in.key(), "int32", in.u8()};
        f.duration = in.u8() / 100.0;
        f.run_id = in.u8() % 8;
        e = std::move(f);
        break;
      }
      case 10: e = TaskErred{pick(in, workers), in.key(), "Error", "boom", std::uint64_t{in.u8()} % 8}; break;
      case 11: e = WorkerMetrics{pick(in, workers), std::uint64_t{in.u8()} << 20, 0, 0}; break;
      case 12: e = WorkerPaused{pick(in, workers), static_cast<bool>(in.u8() & 1)}; break;
      case 13: {
        StealResponse r{pick(in, workers), in.key(), static_cast<bool>(in.u8() & 1)};
        r.run_id = in.u8() % 8;
        e = std::move(r);
        break;
      }
      case 14: e = MissingData{pick(in, workers), in.key(), "tcp://w" + std::to_string(in.u8() % 4)}; break;
      case 15: e = PushFailed{pick(in, workers), in.key(), "tcp://w" + std::to_string(in.u8() % 4)}; break;
      case 16: e = Replicated{pick(in, workers), {in.key(), in.key()}}; break;
      case 17:
        if (clients.empty()) continue;
        e = FireAndForget{pick(in, clients), {in.key(), in.key()}};
        break;
      case 18:
        if (clients.empty()) continue;
        e = RetryKeys{pick(in, clients), in.u8(), {in.key()}};
        break;
      case 19: e = DropReplicas{pick(in, workers), {in.key(), in.key()}}; break;
    }
    out.clear();
    s.handle(std::move(e), out);
    s.validate();
  }
  return 0;
}
