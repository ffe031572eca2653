#pragma once
// The worker's wire adapter: scheduler messages in, as WorkerState events or the few
// messages about the connection itself; the state's reports out, as protocol messages. No
// I/O, so that it is unit-tested without sockets; WorkerServer only moves the bytes.
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "comm/framing.hpp"
#include "comm/message.hpp"
#include "worker/worker_state.hpp"

namespace distrib::detail::wire {

// ---- scheduler -> worker ----
/// Work for the state: computeTasks (one event per task), freeKeys, keyLocations, stealRequest, pushTo.
struct StateEvents {
  std::vector<wrk::Event> events;
};
struct Registered {
  bool ok = false;
  std::string reason;
};
struct Reregister {
  std::string reason;
};
struct Shutdown {};
/// restartWorker: the scheduler wants a fresh process (only a nanny can give one).
struct RestartRequested {};
struct SchedulerError {
  std::string reason;
};
/// Copy these stored keys to these workers (client.retire_workers), then say so.
struct Replicate {
  std::vector<std::pair<std::string, std::vector<std::string>>> copies;  // key, target addresses
};
/// A library to load (client.upload_file); answered with uploadResult `id`.
struct Upload {
  std::uint64_t id = 0;
  std::string name;
  Value data;
};
using SchedulerMessage =
    std::variant<StateEvents, Registered, Reregister, Shutdown, RestartRequested, SchedulerError, Replicate, Upload>;

/// Reads one message from the scheduler (after the handshake). Throws std::runtime_error
/// for a message a scheduler does not send to a worker (the connection is then closed).
SchedulerMessage read_scheduler_message(MessageReader& mr);

// ---- worker -> scheduler ----
/// What a worker tells the scheduler about itself when it registers.
struct Registration {
  std::string name;
  std::string address;
  std::uint32_t nthreads = 1;
  std::uint64_t memory_limit = 0;
  std::vector<std::string> functions;
  std::vector<std::pair<std::string, double>> resources;
  std::vector<wrk::HeldKey> held;  // results it still holds (registering again)
  bool nanny = false;              // a nanny supervises it: restartWorker restarts it
  std::uint32_t restarts = 0;      // times its nanny restarted it so far
};
OutMessage make_register_worker(const Registration& r);
OutMessage make_tasks_finished(const std::vector<wrk::SendTaskFinished>& finished);
OutMessage make_task_erred(const std::vector<wrk::SendTaskErred>& erred);
OutMessage make_steal_response(const wrk::SendStealResponse& s);
OutMessage make_long_running(const wrk::SendLongRunning& l);
OutMessage make_missing_data(const wrk::SendMissingData& m);
/// Pushing `key` to the worker at `target` failed (PushData).
OutMessage make_push_failed(const std::string& key, const std::string& target);
/// The worker paused (memory past its pause threshold, or a full spill disk) or resumed.
OutMessage make_worker_status(bool paused, const std::string& reason, bool restarting = false);

}  // namespace distrib::detail::wire
