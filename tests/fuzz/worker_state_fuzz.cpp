// Sequences of events into WorkerState, decoded from fuzz bytes, with validate() after
// each. What the scheduler and peers say is arbitrary (keys from a small alphabet); what
// the worker's own executor and fetcher report follows its instructions: a task finishes
// only once after it was executed, a gather is answered only once after it was asked.
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "worker/worker_state.hpp"

using namespace distrib;
using namespace distrib::detail;
using namespace distrib::detail::wrk;

namespace {
class In {
 public:
  In(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
  bool done() const { return i_ >= n_; }
  std::uint8_t u8() { return i_ < n_ ? d_[i_++] : 0; }
  std::string key() { return std::string("k") + char('a' + u8() % 10); }
  std::string peer() { return "tcp://w" + std::to_string(u8() % 3); }
  std::vector<std::string> keys() {
    std::vector<std::string> r(u8() % 4);
    for (auto& k : r) k = key();
    return r;
  }
  std::vector<std::pair<std::string, Value>> data(const std::vector<std::string>& ks) {
    std::vector<std::pair<std::string, Value>> r;
    for (auto& k : ks) r.emplace_back(k, encode_value(std::int32_t{u8()}));
    return r;
  }

 private:
  const std::uint8_t* d_;
  std::size_t n_, i_ = 0;
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  In in(data, size);
  WorkerState s(in.u8() % 3 + 1, in.u8() % 3 + 1);
  std::vector<std::string> executing;                  // Execute given, not yet reported
  std::vector<std::pair<std::string, std::vector<std::string>>> gathers;  // GatherDep given, not answered
  std::vector<Instruction> out;
  for (int n = 0; n < 400 && !in.done(); ++n) {
    Event e = Tick{};
    switch (in.u8() % 16) {
      case 0: case 1: {
        auto t = std::make_shared<TaskSpec>();
        t->key = in.key();
        t->function = "inc";
        t->args.push_back(TaskArg{encode_value(std::int32_t{1})});
        ComputeTask c{nullptr, {}, in.u8() % 8u, {}};
        for (auto& d : in.keys()) {
          t->args.push_back(TaskArg{d});
          std::uint8_t where = in.u8() % 3;
          if (where == 0) c.pending.push_back(d);
          else c.who_has.push_back({d, {in.peer()}});
        }
        c.spec = std::move(t);
        e = std::move(c);
        break;
      }
      case 2: e = FreeKeys{in.keys()}; break;
      case 3: case 4: {
        if (executing.empty()) continue;
        std::size_t i = in.u8() % executing.size();
        std::string k = executing[i];
        executing.erase(executing.begin() + static_cast<std::ptrdiff_t>(i));
        if (in.u8() & 1) e = ExecuteSuccess{k, encode_value(std::int32_t{7}), 0.001};
        else e = ExecuteFailure{k, "Error", "boom"};
        break;
      }
      case 5: case 6: {
        if (gathers.empty()) continue;
        std::size_t i = in.u8() % gathers.size();
        auto [worker, ks] = gathers[i];
        gathers.erase(gathers.begin() + static_cast<std::ptrdiff_t>(i));
        if (in.u8() & 1) {
          GatherSuccess g{worker, {}, {}};
          for (auto& k : ks) {
            if (in.u8() % 4 == 0) g.missing.push_back(k);
            else g.data.emplace_back(k, encode_value(std::int32_t{1}));
          }
          e = std::move(g);
        } else {
          e = GatherFailure{worker, ks, "lost"};
        }
        break;
      }
      case 7: e = StoreData{in.data(in.keys())}; break;
      case 8: e = StealRequest{in.key()}; break;
      case 9: e = KeyLocations{in.key(), {in.peer()}}; break;
      case 10: e = SchedulerLost{}; break;
      case 11: e = ForgetAll{}; break;
      case 12: e = PushTo{in.key(), {in.peer()}}; break;
      case 13: {
        PushedData p{in.peer(), {}, {}};
        p.data = in.data(in.keys());
        p.available = in.keys();
        e = std::move(p);
        break;
      }
      case 14: e = Pause{static_cast<bool>(in.u8() & 1)}; break;
      case 15:
        if (in.u8() & 1) e = StoreDrained{};
        else e = Tick{};
        break;
    }
    out.clear();
    s.handle(std::move(e), out);
    s.validate();
    for (auto& i : out) {
      if (auto* x = std::get_if<Execute>(&i)) executing.push_back(x->spec->key);
      else if (auto* g = std::get_if<GatherDep>(&i)) gathers.emplace_back(g->worker, g->keys);
    }
  }
  return 0;
}
