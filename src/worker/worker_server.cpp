#include "worker/worker_server.hpp"

#include <dlfcn.h>

#include <sys/resource.h>

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "comm/security_defaults.hpp"
#include "comm/message.hpp"
#include "core/log.hpp"
#include "core/process_memory.hpp"
#include "core/shared_memory.hpp"
#include "distrib/errors.hpp"
#include "distrib/task.hpp"
#include "worker/worker_wire.hpp"

namespace distrib::detail {

namespace {
double seconds(std::chrono::milliseconds ms) { return static_cast<double>(ms.count()) / 1000.0; }
}  // namespace

std::uint64_t current_rss_bytes() {
  // One open file for the process's life: heartbeats and the memory monitor read it.
  static const std::optional<ProcessMemory> self = []() -> std::optional<ProcessMemory> {
    try {
      return std::optional<ProcessMemory>(std::in_place);
    } catch (const std::exception&) {
      return std::nullopt;  // no /proc: reported as unknown (0)
    }
  }();
  return self ? self->rss_bytes() : 0;
}

std::uint64_t total_memory_bytes() {
  return static_cast<std::uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

WorkerServer::WorkerServer(asio::io_context& io, WorkerOptions options)
    : io_(io),
      options_(std::move(options)),
      accept_backoff_(io.get_executor()),
      admission_(options_.connection_caps, "worker '" + options_.name + "' data port"),
      heartbeat_timer_(io),
      reconnect_timer_(io),
      state_(std::max<std::uint32_t>(1, options_.nthreads), 10, options_.resources, make_store()),
      fetcher_(io, proto::Role::PEER, "worker", options_.limits, options_.security),
      memory_timer_(io) {
  options_.security = with_environment_defaults(std::move(options_.security));
  require_protection(options_.host, options_.security, options_.insecure, "worker");
  const bool inproc = !options_.listen_address.empty();
  listener_ = listen(io_,
                     inproc ? options_.listen_address
                            : format_address(options_.host, options_.port, listen_scheme(options_.security)),
                     options_.security, "worker");
  auto stream = connect(io_, options_.scheduler_address, options_.security, options_.connect_timeout);
  if (inproc) {
    address_ = listener_->address();
  } else if (!options_.contact_address.empty()) {
    address_ = options_.contact_address;
  } else {
    // Listening on every interface: advertise the one that reaches the scheduler, or over a
    // Unix socket (no interface) the one the default route leaves by, which peers on other
    // hosts can reach.
    auto advertised = options_.host;
    if (listener_->bound_ip().is_unspecified()) {
      advertised = stream->local_ip();
      if (advertised.empty()) advertised = default_route_ip();
    }
    address_ = format_address(advertised, listener_->port(), listen_scheme(options_.security));
  }
  if (options_.name.empty()) options_.name = address_;
  if (options_.nthreads == 0) options_.nthreads = 1;
  if (spill_) {
    // Tasks wait while spill writes are backlogged; the io thread starts them again.
    spill_->set_on_drained([this, alive = std::weak_ptr<bool>(alive_)] {
      asio::post(io_, [this, alive] {
        if (!alive.expired()) handle(wrk::StoreDrained{});
      });
    });
  }
  if (options_.memory_limit > 0) {
    // Freed buffers the pool keeps count as this process's memory: a tenth of the limit at
    // most, or spilling a value would free nothing the monitor can see.
    if (options_.process_memory_is_own) limit_pooled_buffer_cache(options_.memory_limit / 10);
    auto fractions = options_.memory_fractions;
    if (!options_.process_memory_is_own) fractions.spill = fractions.pause = fractions.terminate = std::nullopt;
    memory_policy_.emplace(wrk::MemoryPolicyOptions{.memory_limit = options_.memory_limit, .fractions = fractions});
  }
  if (options_.memory_limit == 0) options_.memory_limit = total_memory_bytes();  // reported, not enforced
  first_stream_ = std::move(stream);
  executor_ = std::make_unique<TaskExecutor>(
      options_.nthreads,
      [this](wrk::Event result, std::optional<wrk::Execute>& next) {
        std::vector<std::function<void()>> io_work;
        {
          std::lock_guard lock(state_mutex_);
          apply_locked(std::move(result), &next, io_work);
        }
        post_io_work(std::move(io_work));
      },
      static_cast<TaskServices*>(this));
}

WorkerServer::~WorkerServer() {
  {
    std::lock_guard lock(state_mutex_);
    if (!stopped_) state_.handle(wrk::ForgetAll{});  // asks running tasks to stop; queued ones never start
    stopped_ = true;                                 // task threads still running start nothing more
  }
  rejoin_cv_.notify_all();  // tasks waiting for a thread go on without one
  close_task_client();      // and those waiting on their futures get an error
  executor_.reset();  // joins running tasks before the state they report to goes away
  task_client_.reset();
  lost_task_clients_.clear();
}

void WorkerServer::start() {
  connect_scheduler(std::move(first_stream_));
  accept();
  start_memory_monitor();
}

void WorkerServer::connect_scheduler(ByteStreamPtr stream) {
  auto conn = std::make_shared<Connection>(std::move(stream), options_.limits);
  scheduler_ = conn;
  scheduler_handshaken_ = false;
  std::weak_ptr<Connection> weak = conn;
  // Messages and the close of a connection that is no longer the current one are ignored.
  conn->start(
      [this, weak](InMessage&& m) {
        if (auto c = weak.lock(); c && c == scheduler_) on_scheduler_message(std::move(m));
      },
      [this, weak](const std::string& reason) {
        if (auto c = weak.lock(); c && c == scheduler_) lose_scheduler(reason, /*removed=*/false);
      });
  conn->send(make_handshake(proto::Role::WORKER, options_.name));
  std::vector<wrk::HeldKey> held;
  {
    std::lock_guard lock(state_mutex_);
    held = state_.held_keys();
  }
  wire::Registration reg{options_.name, address_, options_.nthreads, options_.memory_limit,
                         TaskRegistry::instance().names(), options_.resources, std::move(held), options_.nanny,
                         options_.restarts};
  auto n_held = reg.held.size();
  conn->send(wire::make_register_worker(reg));
  if (ever_registered_) log().info("worker '{}' registering again with {} held keys", options_.name, n_held);
  heartbeat_timer_.cancel();
  send_heartbeat();
}

void WorkerServer::lose_scheduler(const std::string& reason, bool removed) {
  if (stopped_) return;
  {
    std::lock_guard lock(state_mutex_);
    // The scheduler reschedules what this life had not finished: its work and its queued
    // reports go; running tasks are asked to stop.
    state_.handle(removed ? wrk::Event(wrk::ForgetAll{}) : wrk::Event(wrk::SchedulerLost{}));
    finished_.clear();
    erred_.clear();
    ++life_;
  }
  heartbeat_timer_.cancel();
  if (auto old = std::exchange(scheduler_, nullptr)) old->close(reason);
  if (options_.death_timeout.count() <= 0) return stop("lost the scheduler: " + reason);
  if (!reconnecting_) {  // a new loss while reconnecting keeps the first deadline
    reconnecting_ = true;
    reconnect_deadline_ = std::chrono::steady_clock::now() + options_.death_timeout;
    reconnect_delay_ = kReconnectFirstDelay;
  }
  if (removed) {
    log().warn("worker '{}' was removed by the scheduler ({}): registering again as a new worker", options_.name, reason);
    return try_reconnect();  // the scheduler is there: at once
  }
  log().warn("worker '{}' lost the scheduler ({}): reconnecting for up to {} s", options_.name, reason,
             seconds(options_.death_timeout));
  reconnect_timer_.expires_after(reconnect_delay_);
  reconnect_timer_.async_wait([this](asio::error_code ec) {
    if (!ec) try_reconnect();
  });
}

void WorkerServer::try_reconnect() {
  if (stopped_) return;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(reconnect_deadline_ - std::chrono::steady_clock::now());
  auto attempt_timeout = std::clamp(left, std::chrono::milliseconds(100), std::max(options_.connect_timeout, std::chrono::milliseconds(100)));
  async_connect(io_, options_.scheduler_address, options_.security, attempt_timeout,
                       [this, alive = std::weak_ptr<bool>(alive_)](asio::error_code ec, ByteStreamPtr stream) {
                         if (alive.expired() || stopped_) return;
                         if (!ec) {
                           log().info("worker '{}' reached the scheduler again", options_.name);
                           return connect_scheduler(std::move(stream));
                         }
                         auto now = std::chrono::steady_clock::now();
                         if (now >= reconnect_deadline_)
                           return stop("the scheduler did not come back within the death timeout (" +
                                       std::to_string(seconds(options_.death_timeout)) + " s): " + ec.message());
                         log().debug("scheduler still unreachable: {}", ec.message());
                         auto wait = std::min<std::chrono::steady_clock::duration>(reconnect_delay_, reconnect_deadline_ - now);
                         reconnect_delay_ = std::min(reconnect_delay_ * 2, kReconnectMaxDelay);
                         reconnect_timer_.expires_after(wait);
                         reconnect_timer_.async_wait([this](asio::error_code e) {
                           if (!e) try_reconnect();
                         });
                       });
}

void WorkerServer::stop(const std::string& reason) {
  {
    std::lock_guard lock(state_mutex_);  // task threads read it
    if (stopped_) return;
    stopped_ = true;
    state_.handle(wrk::ForgetAll{});  // running tasks are asked to stop, queued ones never start
  }
  rejoin_cv_.notify_all();
  close_task_client();
  log().info("worker '{}' stopping: {}", options_.name, reason);
  listener_->close();
  accept_backoff_.cancel();
  heartbeat_timer_.cancel();
  reconnect_timer_.cancel();
  memory_timer_.cancel();
  // A polite goodbye: the scheduler tells a worker that leaves from one that died.
  if (auto conn = std::exchange(scheduler_, nullptr)) {
    conn->send(make_close());
    conn->close_after_flush(reason);
  }
  auto peers = std::move(peers_);
  for (auto& p : peers) p->close("worker stopping");
  fetcher_.close_all();
  if (on_stopped) {
    auto cb = std::move(on_stopped);
    on_stopped = nullptr;
    cb(reason);
  }
}

bool WorkerServer::wait_for_tasks(std::chrono::milliseconds timeout) { return executor_->wait_idle(timeout); }

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
  auto msg = wire::read_scheduler_message(mr);
  if (auto* work = std::get_if<wire::StateEvents>(&msg)) {
    for (auto& e : work->events) handle(std::move(e));
  } else if (auto* r = std::get_if<wire::Registered>(&msg)) {
    if (!r->ok) return stop("the scheduler rejected this worker: " + r->reason);
    reconnecting_ = false;
    if (ever_registered_) {
      log().info("worker '{}' registered again with {}", options_.name, options_.scheduler_address);
      return;
    }
    ever_registered_ = true;
    if (on_registered) on_registered();
  } else if (auto* rr = std::get_if<wire::Reregister>(&msg)) {
    lose_scheduler("removed: " + rr->reason, /*removed=*/true);
  } else if (std::holds_alternative<wire::Shutdown>(msg)) {
    stop("the scheduler asked to shut down");
  } else if (auto* err = std::get_if<wire::SchedulerError>(&msg)) {
    stop("the scheduler reported: " + err->reason);
  } else if (auto* up = std::get_if<wire::Upload>(&msg)) {
    load_upload(*up);
  } else if (auto* rep = std::get_if<wire::Replicate>(&msg)) {
    replicate(std::move(rep->copies));
  } else if (std::holds_alternative<wire::RestartRequested>(msg)) {
    if (options_.nanny) return stop(kRestartRequested);  // its nanny starts a fresh process
    log().warn("worker '{}': the scheduler asked for a restart, but no nanny supervises it; going on", options_.name);
  }
}

// client.upload_file: the library is written to the local directory, loaded (its
// DISTRIB_TASK functions register themselves, as with --preload) and unlinked at once (the
// mapping stays); the scheduler hears the functions this worker has now.
void WorkerServer::load_upload(const wire::Upload& upload) {
  static std::atomic<unsigned> counter{0};
  std::string error;
  const char* tmp = std::getenv("TMPDIR");
  const std::string dir = !options_.local_directory.empty() ? options_.local_directory : (tmp && *tmp ? tmp : "/tmp");
  const std::string path = dir + "/distrib-upload-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + "-" +
                           upload.name;
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    const bool written = std::fwrite(upload.data.bytes.data(), 1, upload.data.bytes.size(), f) == upload.data.bytes.size();
    if (std::fclose(f) != 0 || !written) error = "cannot write " + path;
  } else {
    error = "cannot write " + path + ": " + std::strerror(errno);
  }
  if (error.empty()) {
    if (!dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL)) error = std::string("cannot load ") + upload.name + ": " + dlerror();
    else log().info("worker '{}' loaded the uploaded {}", options_.name, upload.name);
  }
  std::remove(path.c_str());
  if (!scheduler_) return;
  MessageBuilder mb;
  auto r = mb.root().initUploadResult();
  r.setId(upload.id);
  r.setError(error);
  auto names = TaskRegistry::instance().names();
  auto list = r.initFunctions(static_cast<unsigned>(names.size()));
  for (unsigned i = 0; i < names.size(); ++i) list.set(i, names[i]);
  scheduler_->send(mb.finish());
}

// client.retire_workers: this worker is leaving; each value the scheduler names goes to a
// worker that stays, as a scatter would put it there, and the scheduler hears when it is.
void WorkerServer::replicate(std::vector<std::pair<std::string, std::vector<std::string>>> copies) {
  for (auto& [key, targets] : copies) {
    std::optional<Value> value;
    {
      std::lock_guard lock(state_mutex_);
      value = state_.get_data(key);
    }
    for (const auto& target : targets) {
      auto report = [this, life = life_, key = key, target](const std::string& error) {
        if (!error.empty()) log().warn("worker '{}': could not copy '{}' to {}: {}", options_.name, key, target, error);
        if (life != life_ || !scheduler_) return;
        MessageBuilder mb;
        auto list = mb.root().initReplicated(1);
        list[0].setKey(key);
        if (error.empty()) list[0].initWorkers(1).set(0, target);
        scheduler_->send(mb.finish());
      };
      if (!value) {
        report("this worker does not hold it");
        continue;
      }
      fetcher_.put(target, {{key, *value}}, report);
    }
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
  // A message for the scheduler of this life; dropped if that connection is gone by then.
  auto send_on_io = [&](OutMessage m) {
    io_work.push_back([this, life = life_, msg = std::make_shared<OutMessage>(std::move(m))] {
      if (life == life_ && scheduler_) scheduler_->send(std::move(*msg));
    });
  };
  for (auto& ins : out) {
    if (auto* ex = std::get_if<wrk::Execute>(&ins)) {
      if (next && !*next) *next = std::move(*ex);  // this task thread runs it next
      else executor_->submit(std::move(*ex));
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
      send_on_io(wire::make_missing_data(*md));
    } else if (auto* st = std::get_if<wrk::SendStealResponse>(&ins)) {
      send_on_io(wire::make_steal_response(*st));
    } else if (auto* push = std::get_if<wrk::PushData>(&ins)) {
      io_work.push_back([this, life = life_, p = std::move(*push)]() mutable {
        std::vector<std::string> keys = p.available;
        for (const auto& kv : p.data) keys.push_back(kv.first);
        fetcher_.push(p.worker, address_, std::move(p.data), std::move(p.available),
                      [this, life, target = p.worker, keys = std::move(keys),
                       alive = std::weak_ptr<bool>(alive_)](const std::string& error) {
                        if (alive.expired() || error.empty() || life != life_ || !scheduler_) return;
                        log().warn("could not push {} result(s) to {}: {}", keys.size(), target, error);
                        flush_reports();  // the scheduler must know the result is here first
                        for (const auto& k : keys) scheduler_->send(wire::make_push_failed(k, target));
                      });
      });
    } else if (auto* lr = std::get_if<wrk::SendLongRunning>(&ins)) {
      send_on_io(wire::make_long_running(*lr));
    } else if (auto* rj = std::get_if<wrk::Rejoined>(&ins)) {
      rejoin_waiting_.erase(rj->key);  // under state_mutex_, which rejoin() waits with
      rejoin_cv_.notify_all();
    } else if (auto* halt = std::get_if<wrk::StopExecution>(&ins)) {
      log().debug("asked running task '{}' to stop: its result is not wanted", halt->key);
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
    if (stopped_ || !scheduler_) return;
    finished.swap(finished_);
    erred.swap(erred_);
  }
  if (!finished.empty()) scheduler_->send(wire::make_tasks_finished(finished));
  if (!erred.empty()) scheduler_->send(wire::make_task_erred(erred));
}

std::size_t WorkerServer::n_stored() const {
  std::lock_guard lock(state_mutex_);
  return state_.n_stored();
}

std::uint64_t WorkerServer::stored_bytes() const {
  std::lock_guard lock(state_mutex_);
  return state_.stored_bytes();
}

void WorkerServer::send_heartbeat() {
  if (stopped_ || !scheduler_) return;
  trim_pooled_buffers();  // large buffers idle for a while go back to the system
  handle(wrk::Tick{});    // inputs awaited from peers for too long are asked for
  MessageBuilder mb;
  auto hb = mb.root().initHeartbeat();
  hb.setMemoryBytes(current_rss_bytes());
  {
    std::lock_guard lock(state_mutex_);
    hb.setExecuting(static_cast<std::uint32_t>(state_.n_executing()));
    hb.setStored(static_cast<std::uint32_t>(state_.n_stored()));
    if (spill_) {
      // One reading of both: a write finishing between two calls would count its value twice.
      const auto st = spill_->stats();
      hb.setManagedBytes(st.memory_bytes);
      hb.setSpilledBytes(st.spilled_bytes);
    } else {
      hb.setManagedBytes(state_.stored_bytes());
      hb.setSpilledBytes(0);
    }
    hb.setPaused(paused_);
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
  hb.setCpuSeconds(secs(usage.ru_utime) + secs(usage.ru_stime));
  hb.setBytesIn(process_bytes_read().load(std::memory_order_relaxed));
  hb.setBytesOut(process_bytes_written().load(std::memory_order_relaxed));
  auto shared = shm::stats();
  hb.setSharedBytesIn(shared.bytes_mapped);
  hb.setSharedBytesOut(shared.bytes_described);
  scheduler_->send(mb.finish());
  heartbeat_timer_.expires_after(options_.heartbeat_interval);
  heartbeat_timer_.async_wait([this](asio::error_code ec) {
    if (!ec) send_heartbeat();
  });
}

}  // namespace distrib::detail
