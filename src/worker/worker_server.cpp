#include "worker/worker_server.hpp"

#include <sys/resource.h>

#include <cxxabi.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <thread>
#include <typeinfo>

#include "comm/message.hpp"
#include "core/log.hpp"
#include "distrib/errors.hpp"
#include "distrib/task.hpp"

namespace distrib::detail {

namespace {
std::string demangle(const char* name) {
  int status = 0;
  char* s = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = status == 0 && s ? s : name;
  std::free(s);
  return out;
}

wrk::WhoHas read_who_has(capnp::List<proto::KeyLocation>::Reader list) {
  wrk::WhoHas out;
  out.reserve(list.size());
  for (auto loc : list) {
    std::vector<std::string> workers;
    for (auto w : loc.getWorkers()) workers.emplace_back(w);
    out.emplace_back(loc.getKey(), std::move(workers));
  }
  return out;
}
}  // namespace

std::uint64_t current_rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

std::uint64_t total_memory_bytes() {
  return static_cast<std::uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

WorkerServer::WorkerServer(asio::io_context& io, WorkerOptions options)
    : io_(io),
      options_(std::move(options)),
      acceptor_(io),
      heartbeat_timer_(io),
      state_(std::max<std::uint32_t>(1, options_.nthreads), 10, options_.resources),
      fetcher_(io, proto::Role::PEER, "worker", options_.limits) {
  auto addr = listen_on(acceptor_, options_.host, options_.port, "worker");
  auto socket = connect_socket(io_, options_.scheduler_address, options_.connect_timeout);
  // Listening on every interface: advertise the one that reaches the scheduler, or over a
  // Unix socket (no interface) the one the default route leaves by, which peers on other
  // hosts can reach.
  auto advertised = options_.host;
  if (addr.is_unspecified()) {
    advertised = local_ip(socket);
    if (advertised.empty()) advertised = default_route_ip();
  }
  address_ = format_address(advertised, acceptor_.local_endpoint().port());
  if (options_.name.empty()) options_.name = address_;
  if (options_.nthreads == 0) options_.nthreads = 1;
  if (options_.memory_limit == 0) options_.memory_limit = total_memory_bytes();
  scheduler_ = std::make_shared<Connection>(std::move(socket), options_.limits);
  pool_ = std::make_unique<ThreadPool>(options_.nthreads);
}

WorkerServer::~WorkerServer() {
  {
    std::lock_guard lock(state_mutex_);
    stopped_ = true;  // task threads still running start nothing more
  }
  pool_.reset();  // joins running tasks before the state they report to goes away
}

void WorkerServer::start() {
  scheduler_->start([this](InMessage&& m) { on_scheduler_message(std::move(m)); },
                    [this](const std::string& reason) { stop("lost the scheduler: " + reason); });
  scheduler_->send(make_handshake(proto::Role::WORKER, options_.name));
  MessageBuilder mb;
  auto reg = mb.root().initRegisterWorker();
  reg.setName(options_.name);
  reg.setAddress(address_);
  reg.setNthreads(options_.nthreads);
  reg.setMemoryLimit(options_.memory_limit);
  auto names = TaskRegistry::instance().names();
  auto fns = reg.initFunctions(static_cast<unsigned>(names.size()));
  for (unsigned i = 0; i < names.size(); ++i) fns.set(i, names[i]);
  auto res = reg.initResources(static_cast<unsigned>(options_.resources.size()));
  for (unsigned i = 0; i < options_.resources.size(); ++i) {
    res[i].setName(options_.resources[i].first);
    res[i].setAmount(options_.resources[i].second);
  }
  scheduler_->send(mb.finish());
  accept();
  send_heartbeat();
}

void WorkerServer::stop(const std::string& reason) {
  {
    std::lock_guard lock(state_mutex_);  // task threads read it
    if (stopped_) return;
    stopped_ = true;
  }
  log().info("worker '{}' stopping: {}", options_.name, reason);
  asio::error_code ec;
  acceptor_.close(ec);
  heartbeat_timer_.cancel();
  scheduler_->close(reason);
  auto peers = std::move(peers_);
  for (auto& p : peers) p->close("worker stopping");
  fetcher_.close_all();
  if (on_stopped) {
    auto cb = std::move(on_stopped);
    on_stopped = nullptr;
    cb(reason);
  }
}

void WorkerServer::on_scheduler_message(InMessage&& m) {
  MessageReader mr(m);
  auto root = mr.root();
  if (!scheduler_handshaken_) {
    auto why = check_handshake(root, proto::Role::SCHEDULER, proto::Role::SCHEDULER);
    if (!why.empty()) {
      log().error("scheduler handshake failed: {}", why);
      return stop("bad scheduler handshake: " + why);
    }
    scheduler_handshaken_ = true;
    return;
  }
  switch (root.which()) {
    case proto::Message::WORKER_REGISTERED: {
      auto r = root.getWorkerRegistered();
      if (!r.getOk()) return stop("the scheduler rejected this worker: " + std::string(r.getReason()));
      if (on_registered) on_registered();
      return;
    }
    case proto::Message::COMPUTE_TASKS:
      for (auto ct : root.getComputeTasks())
        handle(wrk::ComputeTask{std::make_shared<TaskSpec>(read_task_spec(mr, ct.getSpec())), read_who_has(ct.getWhoHas()),
                                ct.getRunId()});
      return;
    case proto::Message::FREE_KEYS: {
      wrk::FreeKeys ev;
      for (auto k : root.getFreeKeys()) ev.keys.emplace_back(k);
      handle(std::move(ev));
      return;
    }
    case proto::Message::KEY_LOCATIONS: {
      wrk::KeyLocations ev{root.getKeyLocations().getKey(), {}};
      for (auto w : root.getKeyLocations().getWorkers()) ev.addresses.emplace_back(w);
      return handle(std::move(ev));
    }
    case proto::Message::STEAL_REQUEST:
      return handle(wrk::StealRequest{root.getStealRequest()});
    case proto::Message::SHUTDOWN:
      return stop("the scheduler asked to shut down");
    case proto::Message::ERROR:
      return stop("the scheduler reported: " + std::string(root.getError().getReason()));
    default:
      throw std::runtime_error("unexpected message from the scheduler (kind " +
                               std::to_string(static_cast<int>(root.which())) + ")");
  }
}

void WorkerServer::handle(wrk::Event e) {
  std::vector<std::function<void()>> io_work;
  {
    std::lock_guard lock(state_mutex_);
    apply_locked(std::move(e), nullptr, io_work);
  }
  for (auto& fn : io_work) fn();  // outside the lock: sends and fetches may call back
}

void WorkerServer::post_io_work(std::vector<std::function<void()>> io_work) {
  if (io_work.empty()) return;
  asio::post(io_, [io_work = std::move(io_work), alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    for (auto& fn : io_work) fn();
  });
}

void WorkerServer::apply_locked(wrk::Event e, std::optional<wrk::Execute>* next,
                                std::vector<std::function<void()>>& io_work) {
  if (stopped_) return;
  std::vector<wrk::Instruction> out;
  state_.handle(std::move(e), out);
  auto send_on_io = [&](MessageBuilder& mb) {
    io_work.push_back([this, msg = std::make_shared<OutMessage>(mb.finish())] { scheduler_->send(std::move(*msg)); });
  };
  for (auto& ins : out) {
    if (auto* ex = std::get_if<wrk::Execute>(&ins)) {
      if (next && !*next) *next = std::move(*ex);  // this task thread runs it next
      else execute(std::move(*ex));
    } else if (auto* g = std::get_if<wrk::GatherDep>(&ins)) {
      io_work.push_back([this, worker = std::move(g->worker), keys = std::move(g->keys)]() mutable {
        auto requested = keys;
        fetcher_.fetch(worker, std::move(keys),
                       [this, worker, requested, alive = std::weak_ptr<bool>(alive_)](FetchResult r) {
                         if (alive.expired()) return;
                         if (!r.error.empty()) handle(wrk::GatherFailure{worker, requested, r.error});
                         else handle(wrk::GatherSuccess{worker, std::move(r.values), std::move(r.missing)});
                       });
      });
    } else if (auto* f = std::get_if<wrk::SendTaskFinished>(&ins)) {
      finished_.push_back(std::move(*f));
    } else if (auto* er = std::get_if<wrk::SendTaskErred>(&ins)) {
      erred_.push_back(std::move(*er));
    } else if (auto* md = std::get_if<wrk::SendMissingData>(&ins)) {
      MessageBuilder mb;
      auto m = mb.root().initMissingData();
      m.setKey(md->key);
      m.setWorker(md->worker);
      send_on_io(mb);
    } else if (auto* st = std::get_if<wrk::SendStealResponse>(&ins)) {
      MessageBuilder mb;
      auto r = mb.root().initStealResponse();
      r.setKey(st->key);
      r.setReleased(st->released);
      r.setRunId(st->run_id);
      send_on_io(mb);
    }
  }
  // Reports leave together from the io thread, in one message per kind, once it gets to them:
  // under load that is one message for many tasks.
  if ((!finished_.empty() || !erred_.empty()) && !flush_scheduled_) {
    flush_scheduled_ = true;
    asio::post(io_, [this, alive = std::weak_ptr<bool>(alive_)] {
      if (!alive.expired()) flush_reports();
    });
  }
}

void WorkerServer::flush_reports() {
  std::vector<wrk::SendTaskFinished> finished;
  std::vector<wrk::SendTaskErred> erred;
  {
    std::lock_guard lock(state_mutex_);
    flush_scheduled_ = false;
    if (stopped_) return;
    finished.swap(finished_);
    erred.swap(erred_);
  }
  if (!finished.empty()) {
    MessageBuilder mb;
    auto list = mb.root().initTasksFinished(static_cast<unsigned>(finished.size()));
    for (unsigned i = 0; i < finished.size(); ++i) {
      list[i].setKey(finished[i].key);
      list[i].setType(finished[i].type);
      list[i].setNbytes(finished[i].nbytes);
      list[i].setDuration(finished[i].duration);
      list[i].setRunId(finished[i].run_id);
      if (finished[i].value) mb.set_value(list[i].initValue(), *finished[i].value);
    }
    scheduler_->send(mb.finish());
  }
  if (!erred.empty()) {
    MessageBuilder mb;
    auto list = mb.root().initTaskErred(static_cast<unsigned>(erred.size()));
    for (unsigned i = 0; i < erred.size(); ++i) {
      list[i].setKey(erred[i].key);
      list[i].setExceptionType(erred[i].exception_type);
      list[i].setMessage(erred[i].message);
      list[i].setRunId(erred[i].run_id);
    }
    scheduler_->send(mb.finish());
  }
}

namespace {
// Runs one task: its result or its exception as the event for the state.
wrk::Event invoke_task(const TaskFunction* fn, const std::string& key, std::vector<Value>& args) {
  try {
    auto start = std::chrono::steady_clock::now();
    auto value = fn->invoke(args);
    return wrk::ExecuteSuccess{key, std::move(value),
                               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
  } catch (const std::exception& e) {
    return wrk::ExecuteFailure{key, demangle(typeid(e).name()), e.what()};
  } catch (...) {
    return wrk::ExecuteFailure{key, "unknown", "a non-standard exception was thrown"};
  }
}
}  // namespace

void WorkerServer::run_tasks(wrk::Execute ex) {
  std::optional<wrk::Execute> next = std::move(ex);
  while (next) {
    wrk::Execute current = std::move(*next);
    next.reset();
    const TaskFunction* fn = TaskRegistry::instance().find(current.spec->function);
    wrk::Event result = fn ? invoke_task(fn, current.spec->key, current.args)
                           : wrk::Event(wrk::ExecuteFailure{current.spec->key, "distrib::NoWorkerCanRun",
                                                            "task function '" + current.spec->function +
                                                                "' is not registered in this worker"});
    current.args.clear();  // inputs are released before the next task starts
    std::vector<std::function<void()>> io_work;
    {
      std::lock_guard lock(state_mutex_);
      apply_locked(std::move(result), &next, io_work);
    }
    post_io_work(std::move(io_work));
  }
}

void WorkerServer::execute(wrk::Execute ex) {
  auto alive = std::weak_ptr<bool>(alive_);
  pool_->submit([this, alive, ex = std::move(ex)]() mutable {
    if (alive.expired()) return;
    {
      std::lock_guard lock(state_mutex_);
      if (stopped_) return;  // stopped or being destroyed: do not start user code
    }
    run_tasks(std::move(ex));
  });
}

std::size_t WorkerServer::n_stored() const {
  std::lock_guard lock(state_mutex_);
  return state_.n_stored();
}

std::uint64_t WorkerServer::stored_bytes() const {
  std::lock_guard lock(state_mutex_);
  return state_.stored_bytes();
}

void WorkerServer::accept() {
  acceptor_.async_accept([this](asio::error_code ec, asio::ip::tcp::socket socket) {
    if (ec) {
      if (!stopped_ && ec != asio::error::operation_aborted) accept();
      return;
    }
    auto conn = std::make_shared<Connection>(StreamSocket(std::move(socket)), options_.limits);
    auto handshaken = std::make_shared<bool>(false);
    peers_.push_back(conn);
    std::weak_ptr<Connection> weak = conn;
    conn->start([this, weak, handshaken](InMessage&& m) {
                  if (auto c = weak.lock()) on_peer_message(c, *handshaken, std::move(m));
                },
                [this, weak](const std::string& reason) {
                  if (is_bad_input_reason(reason)) log().warn("closed peer connection: {}", reason);
                  auto c = weak.lock();
                  std::erase(peers_, c);
                });
    conn->send(make_handshake(proto::Role::WORKER, options_.name));
    accept();
  });
}

void WorkerServer::on_peer_message(const ConnectionPtr& conn, bool& handshaken, InMessage&& m) {
  MessageReader mr(m);
  auto root = mr.root();
  if (!handshaken) {
    auto why = check_handshake(root, proto::Role::PEER, proto::Role::CLIENT);
    if (!why.empty()) {
      log().warn("rejected {}: {}", conn->peer(), why);
      conn->send(make_error(why));
      conn->close_after_flush("rejected: " + why);
      return;
    }
    handshaken = true;
    return;
  }
  if (root.isClose()) return conn->close("peer closed the connection");
  if (root.isPutData()) {  // scatter: a client places values here
    auto put = root.getPutData();
    wrk::StoreData ev;
    for (auto kv : put.getValues()) ev.data.emplace_back(kv.getKey(), mr.value(kv.getValue()));
    handle(std::move(ev));
    MessageBuilder mb;
    mb.root().setPutDataDone(put.getId());
    conn->send(mb.finish());
    return;
  }
  if (root.isRunFunction()) {
    auto run = root.getRunFunction();
    return run_function(conn, run.getId(), read_task_spec(mr, run.getSpec()));
  }
  if (!root.isGetData()) throw std::runtime_error("unexpected message on the data port");
  auto req = root.getGetData();
  MessageBuilder mb;
  auto reply = mb.root().initDataReply();
  reply.setId(req.getId());
  std::vector<std::pair<std::string, Value>> found;
  std::vector<std::string> missing;
  {
    std::lock_guard lock(state_mutex_);
    for (auto k : req.getKeys()) {
      std::string key = k;
      if (auto v = state_.get_data(key)) found.emplace_back(std::move(key), std::move(*v));
      else missing.push_back(std::move(key));
    }
  }
  auto values = reply.initValues(static_cast<unsigned>(found.size()));
  for (unsigned i = 0; i < found.size(); ++i) {
    values[i].setKey(found[i].first);
    mb.set_value(values[i].initValue(), found[i].second);
  }
  auto miss = reply.initMissing(static_cast<unsigned>(missing.size()));
  for (unsigned i = 0; i < missing.size(); ++i) miss.set(i, missing[i]);
  conn->send(mb.finish());
}

// Client::run: calls a function on this worker now, outside the scheduler, on a thread of
// its own so that it neither waits for nor blocks the task threads.
void WorkerServer::run_function(const ConnectionPtr& conn, std::uint64_t id, TaskSpec spec) {
  std::weak_ptr<Connection> weak = conn;
  auto alive = std::weak_ptr<bool>(alive_);
  auto reply = [this, weak, alive, id](std::optional<Value> value, std::string type, std::string message) {
    asio::post(io_, [weak, alive, id, value = std::move(value), type = std::move(type), message = std::move(message)] {
      auto c = weak.lock();
      if (!c || alive.expired()) return;
      MessageBuilder mb;
      auto r = mb.root().initRunResult();
      r.setId(id);
      if (value) {
        mb.set_value(r.initValue(), *value);
      } else {
        auto e = r.initError();
        e.setExceptionType(type);
        e.setMessage(message);
      }
      c->send(mb.finish());
    });
  };
  const TaskFunction* fn = TaskRegistry::instance().find(spec.function);
  if (!fn) return reply(std::nullopt, "distrib::NoWorkerCanRun", "'" + spec.function + "' is not registered here");
  std::vector<Value> args;
  for (const auto& a : spec.args) {
    if (!a.is_key() && !a.is_key_list()) {
      args.push_back(a.value());
      continue;
    }
    return reply(std::nullopt, "std::invalid_argument", "Client::run takes plain values, not futures");
  }
  std::thread([fn, args = std::move(args), reply]() mutable {
    try {
      reply(fn->invoke(args), {}, {});
    } catch (const std::exception& e) {
      reply(std::nullopt, demangle(typeid(e).name()), e.what());
    } catch (...) {
      reply(std::nullopt, "unknown", "a non-standard exception was thrown");
    }
  }).detach();
}

void WorkerServer::send_heartbeat() {
  if (stopped_) return;
  trim_pooled_buffers();  // large buffers idle for a while go back to the system
  MessageBuilder mb;
  auto hb = mb.root().initHeartbeat();
  hb.setMemoryBytes(current_rss_bytes());
  {
    std::lock_guard lock(state_mutex_);
    hb.setExecuting(static_cast<std::uint32_t>(state_.n_executing()));
    hb.setStored(static_cast<std::uint32_t>(state_.n_stored()));
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
  hb.setCpuSeconds(seconds(usage.ru_utime) + seconds(usage.ru_stime));
  hb.setBytesIn(process_bytes_read().load(std::memory_order_relaxed));
  hb.setBytesOut(process_bytes_written().load(std::memory_order_relaxed));
  scheduler_->send(mb.finish());
  heartbeat_timer_.expires_after(options_.heartbeat_interval);
  heartbeat_timer_.async_wait([this](asio::error_code ec) {
    if (!ec) send_heartbeat();
  });
}

}  // namespace distrib::detail
