// Every decoder of a protocol message, over a message made of arbitrary bytes (a Cap'n
// Proto header and up to three frames): the scheduler's adapter for client and worker
// peers, the worker's, the handshake check, the values a client reads from keysInMemory,
// and what a worker's data port and a fetcher read (values, shared-buffer descriptors, a
// function to run). Each must return or throw an exception the connection handler catches
// (std::exception, or kj::Exception from Cap'n Proto), never crash.
#include <kj/exception.h>

#include <cstdint>
#include <exception>
#include <span>
#include <vector>

#include "comm/message.hpp"
#include "comm/same_host.hpp"
#include "fuzz_input.hpp"
#include "scheduler/scheduler_wire.hpp"
#include "worker/worker_wire.hpp"

using namespace distrib;
using namespace distrib::detail;

namespace {
template <class F>
void guarded(F&& f) {
  try {
    f();
  } catch (const kj::Exception&) {
  } catch (const std::exception&) {
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  InMessage m;
  if (!fuzz::message_from_bytes({data, size}, m)) return 0;
  guarded([&] {
    MessageReader mr(m);
    std::vector<sched::Event> events;
    wire::WorkerByAddress by_address = [](const std::string& a) -> std::optional<sched::WorkerId> {
      if (a.size() % 2) return std::nullopt;
      return sched::WorkerId{a.size()};
    };
    guarded([&] { wire::decode_events(mr, wire::PeerKind::client, 1, by_address, events); });
    events.clear();
    guarded([&] { wire::decode_events(mr, wire::PeerKind::worker, 2, by_address, events); });
    guarded([&] { (void)wire::read_scheduler_message(mr); });
    guarded([&] { (void)check_handshake(mr.root(), proto::Role::SCHEDULER, proto::Role::CLIENT); });
    // What ClientImpl::on_message reads from scheduler -> client messages.
    guarded([&] {
      auto root = mr.root();
      switch (root.which()) {
        case proto::Message::KEYS_IN_MEMORY:
          for (auto k : root.getKeysInMemory()) {
            (void)k.getKey();
            (void)k.getWorker();
            if (k.hasValue()) (void)mr.value(k.getValue());
          }
          break;
        case proto::Message::TASK_ERRED:
          for (auto e : root.getTaskErred()) {
            (void)e.getKey();
            (void)e.getExceptionType();
            (void)e.getMessage();
          }
          break;
        default:
          break;
      }
    });
    guarded([&] {
      auto root = mr.root();
      auto read_values = [&](auto list) {
        for (auto kv : list) {
          (void)kv.getKey();
          auto v = kv.getValue();
          if (v.isShared()) (void)read_descriptor(v.getShared());
          else (void)mr.value(v);
        }
      };
      switch (root.which()) {
        case proto::Message::PUT_DATA:
          read_values(root.getPutData().getValues());
          for (auto k : root.getPutData().getAvailable()) (void)k;
          break;
        case proto::Message::DATA_REPLY:
          read_values(root.getDataReply().getValues());
          for (auto k : root.getDataReply().getMissing()) (void)k;
          break;
        case proto::Message::GET_DATA:
          for (auto k : root.getGetData().getKeys()) (void)k;
          break;
        case proto::Message::RUN_FUNCTION:
          (void)read_task_spec(mr, root.getRunFunction().getSpec());
          break;
        default:
          break;
      }
    });
  });
  return 0;
}
