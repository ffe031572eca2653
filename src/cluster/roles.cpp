#include "cluster/roles.hpp"

#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <unistd.h>

#include <csignal>

#include "cluster/scheduler_file.hpp"
#include "cluster/worker_exit.hpp"
#include "comm/endpoint.hpp"
#include "comm/security_defaults.hpp"
#include "comm/tls.hpp"
#include "comm/io_loop.hpp"
#include "core/log.hpp"

namespace distrib::detail {

int run_scheduler(const SchedulerOptions& options, const std::function<void(const std::string&)>& on_ready) {
  asio::io_context io(1);
  SchedulerServer server(io, options);
  server.on_shutdown = [&] { io.stop(); };
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](asio::error_code ec, int sig) {
    if (ec) return;
    log().info("scheduler received signal {}, stopping", sig);
    server.stop();
    io.stop();
  });
  server.start();
  name_this_thread("distrib-sched");
  if (server.local_address().empty()) log().info("scheduler listening at {}", server.address());
  else log().info("scheduler listening at {} and {}", server.address(), server.local_address());
  const auto contact = server.contact_address();
  SchedulerFileContents file;
  if (!options.scheduler_file.empty()) {
    file.address = contact;
    file.protocol = proto::PROTOCOL_VERSION;
    file.pid = static_cast<std::uint32_t>(getpid());
    if (server.dashboard_port() != 0) {
      auto host = parse_address(contact).first;
      if (host.find(':') != std::string::npos) host = "[" + host + "]";
      file.dashboard = "http://" + host + ":" + std::to_string(server.dashboard_port()) + "/status";
    }
    const auto security = with_environment_defaults(options.security);
    if (security.has_tls()) file.tls_ca_sha256 = tls_backend().ca_fingerprint(security);
    write_scheduler_file(options.scheduler_file, file);
    log().info("scheduler file {} written", options.scheduler_file);
  }
  if (on_ready) on_ready(contact);
  run_io(io, default_io_spin());
  if (!options.scheduler_file.empty()) remove_scheduler_file(options.scheduler_file, file.pid);
  return 0;
}

int run_worker(const WorkerOptions& options, const std::function<void(const std::string&)>& on_ready,
               const WorkerLifetime& lifetime) {
  static constexpr const char* kLifetimeReached = "its lifetime is over";
  // Heap-allocated: if a task ignores its stop request past the close timeout, the worker
  // returns without joining that thread, and the io context and server it would report to
  // are left alive for it (the process exits right after).
  auto io = std::make_unique<asio::io_context>(1);
  auto server = std::make_unique<WorkerServer>(*io, options);
  int code = worker_exit::kStopped;
  server->on_registered = [&] {
    log().info("worker '{}' at {} registered with {}", server->name(), server->address(), options.scheduler_address);
    if (on_ready) on_ready(server->address());
  };
  server->on_stopped = [&](const std::string& reason) {
    if (reason == kRestartRequested) {
      code = worker_exit::kRestart;  // WorkerServer asks only under a nanny
    } else if (reason == kLifetimeReached) {
      code = options.nanny && lifetime.restart ? worker_exit::kRestart : worker_exit::kStopped;
    } else if (reason.find("shut down") == std::string::npos && reason != "signal") {
      log().error("worker '{}' stopped: {}", server->name(), reason);
      code = worker_exit::kGaveUp;
    }
    io->stop();
  };
  asio::steady_timer lifetime_timer(*io);
  if (lifetime.after.count() > 0) {
    lifetime_timer.expires_after(lifetime.after);
    lifetime_timer.async_wait([&](asio::error_code ec) {
      if (ec) return;
      log().info("worker '{}' reached its lifetime of {} ms: stopping{}", server->name(), lifetime.after.count(),
                 options.nanny && lifetime.restart ? "; its nanny starts a fresh one" : "");
      server->stop(kLifetimeReached);
    });
  }
  asio::signal_set signals(*io, SIGINT, SIGTERM);
  signals.async_wait([&](asio::error_code ec, int) {
    if (!ec) server->stop("signal");
  });
  server->start();
  name_this_thread("distrib-worker");
  run_io(*io, default_io_spin());
  // Let the goodbye to the scheduler go out (the connections close once flushed).
  signals.cancel();
  lifetime_timer.cancel();
  io->restart();
  io->run_for(std::chrono::milliseconds(500));
  // Stopping asked every running task to stop: give them the close timeout to return.
  if (!server->wait_for_tasks(options.close_timeout)) {
    log().warn("worker '{}': tasks still running {} s after they were asked to stop; exiting without them",
               server->name(), static_cast<double>(options.close_timeout.count()) / 1000.0);
    (void)server.release();
    (void)io.release();
  }
  return code;
}

}  // namespace distrib::detail
