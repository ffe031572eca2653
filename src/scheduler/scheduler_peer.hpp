#pragma once
// What SchedulerServer knows of one connection beyond SchedulerState (scheduler_server.cpp
// and its parts: scheduler_retire.cpp).
#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "comm/connection.hpp"
#include "distrib/codec.hpp"
#include "scheduler/scheduler_server.hpp"

namespace distrib::detail {

using Clock = std::chrono::steady_clock;

struct SchedulerServer::Peer {
  enum class Kind { unknown, client, worker_unregistered, worker };
  ConnectionPtr conn;
  Kind kind = Kind::unknown;
  std::uint64_t id = 0;
  std::string name;
  std::string address;  // a worker's data address
  std::uint32_t restarts = 0;  // times its nanny restarted it (registerWorker)
  std::uint64_t shared_in = 0, shared_out = 0;  // bytes through shared memory (its heartbeats)
  Clock::time_point last_seen = Clock::now();
  bool said_goodbye = false;  // sent `close` first: a graceful departure
  bool nanny = false;  // a nanny supervises it (registerWorker): restartWorker restarts it
  bool paused = false;  // as the state was last told (WorkerPaused)
  std::string farewell;  // a worker restarting for memory said why (workerStatus.restarting)
  bool retiring = false;  // client.retire_workers is moving its values off: no new work, ever
};

/// One client.retire_workers request under way (scheduler_retire.cpp).
struct SchedulerServer::Retirement {
  std::uint64_t client = 0;
  std::uint64_t id = 0;                 // the client's request id
  std::vector<std::uint64_t> workers;   // still to close
  std::vector<std::string> retired;     // addresses closed so far
  std::unordered_map<std::string, std::uint64_t> copying;  // key -> the worker it is being copied to
  Clock::time_point deadline;
};

/// client.upload_file (scheduler_uploads.cpp): a library every worker loads, kept for the
/// workers that register later.
struct SchedulerServer::Upload {
  std::string name;
  Value data;
};
/// An upload's answer to its client, once every worker told how loading went.
struct SchedulerServer::UploadWait {
  std::uint64_t client = 0;
  std::uint64_t id = 0;  // the client's request id
  std::unordered_map<std::uint64_t, std::string> workers;  // still to answer: id -> name
  std::string errors;
};

/// A client.replicate or client.rebalance under way (scheduler_client_ops.cpp).
struct SchedulerServer::CopyOp {
  std::uint64_t client = 0;
  std::uint64_t id = 0;  // the client's request id
  struct Copy {
    std::string key;
    std::uint64_t from = 0, to = 0;
    bool move = false;  // rebalance: `from` drops its copy once `to` stores one
  };
  std::vector<Copy> pending;
  std::string errors;
};

}  // namespace distrib::detail
