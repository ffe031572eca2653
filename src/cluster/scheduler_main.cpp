// dscheduler's command line (daemon_main.hpp). Workers and clients connect to it.
//   dscheduler --port 8786
//   dscheduler --port 8786 --local-socket sched   # also unix://@sched for this host
//   dscheduler --preload libmytasks.so            # its DISTRIB_TASKs for client.run_on_scheduler
#include <CLI/CLI.hpp>
#include <dlfcn.h>

#include <cstdio>

#include "cluster/address_flags.hpp"
#include "cluster/config_flags.hpp"
#include "cluster/daemon_main.hpp"
#include "cluster/limit_flags.hpp"
#include "cluster/security_flags.hpp"
#include "cluster/stdin_watch.hpp"
#include "comm/auth.hpp"
#include "cluster/roles.hpp"
#include "core/log.hpp"
#include "dashboard/dashboard.hpp"

namespace distrib::detail {

int scheduler_main(const std::string& program, const std::vector<std::string>& args) {
  CLI::App app{"distrib scheduler: coordinates workers and clients", program};
  SchedulerOptions options;
  options.host = "0.0.0.0";
  std::string log_level = "info";
  int port = 8786;
  auto* host = app.add_option("--host", options.host, "Address to listen on (0.0.0.0: every interface)")->capture_default_str();
  daemons::AddressFlags address_flags;
  address_flags.add_to(app, host);
  app.add_option("--scheduler-file", options.scheduler_file,
                 "Write the scheduler's address (and dashboard URL, CA fingerprint; never the token) to this JSON "
                 "file once listening, for `dworker --scheduler-file` and clients; removed at exit");
  app.add_option("--port", port, "Port to listen on (0: any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
  app.add_option("--worker-saturation", options.policy.worker_saturation,
                 "Root tasks a worker may hold per thread before the rest wait on the scheduler (inf: no queuing)")
      ->capture_default_str()
      ->check([](const std::string& text) {
        try {
          return std::stod(text) > 0 ? std::string() : std::string("must be positive");
        } catch (const std::exception&) {
          return std::string("not a number");
        }
      });
  bool work_stealing = true;
  app.add_flag("--work-stealing,!--no-work-stealing", work_stealing,
               "Move waiting tasks from busy workers to idle ones (default); --no-work-stealing does not")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  options.dashboard_address = ":8787";
  auto* dashboard = app.add_option("--dashboard-address", options.dashboard_address,
                                   "Web dashboard: host:port, :port, 0 (any free port) or none. The default port "
                                   "moves to a free one if taken; an explicit one that is taken is an error")
                        ->capture_default_str()
                        ->check([&](const std::string& text) {
                          try {
                            parse_dashboard_address(text, options.host);
                            return std::string();
                          } catch (const std::exception& e) {
                            return std::string(e.what());
                          }
                        });
  app.add_option("--local-socket", options.local_socket,
                 "Also listen on the abstract Unix socket unix://@NAME, for workers and clients on this host "
                 "(a hop then skips the TCP stack)")
      ->check([](const std::string& name) {
        if (name.empty() || name.front() == '@' || name.find('/') != std::string::npos)
          return std::string("a plain name, without '@' or '/'");
        return name.size() > 100 ? std::string("at most 100 bytes") : std::string();
      });
  app.add_option("--assign-ahead-depth", options.policy.assign_ahead_depth,
                 "Levels of unfinished inputs a task may wait on when it is sent to a worker ahead of them (0: off)")
      ->capture_default_str();
  app.add_option("--allowed-failures", options.policy.allowed_failures,
                 "A task processing on this many workers that died errs with KilledWorker")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  double worker_ttl_s = static_cast<double>(options.worker_timeout.count()) / 1000;
  app.add_option("--worker-ttl", worker_ttl_s,
                 "Seconds a worker may stay silent (hung, paused) before it is removed and its work rescheduled")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  double client_grace = 60;
  app.add_option("--client-grace", client_grace,
                 "Seconds a client whose connection dropped keeps its keys, to reconnect and re-attach to them "
                 "(0: release them at once, as Dask)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--journal", options.journal_dir,
                 "Directory of a write-ahead journal: a restarted scheduler replays it and carries on "
                 "(created if missing; empty: no journal)");
  double snapshot_mib = static_cast<double>(options.journal_snapshot_bytes >> 20);
  app.add_option("--journal-snapshot-mib", snapshot_mib,
                 "Replace the journal by a snapshot of the state once it passes this many MiB")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  std::vector<std::string> preload;
  app.add_option("--preload", preload,
                 "Shared library with DISTRIB_TASK functions to load, for client.run_on_scheduler (repeatable)")
      ->allow_extra_args(false);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")->capture_default_str();
  daemons::SecurityFlags security;
  security.add_to(app);
  daemons::LimitFlags limits;
  limits.add_to(app);
  StdinWatchFlag stdin_watch;
  stdin_watch.add_to(app);
  ConfigFlags config(app, {"scheduler.", "comm.", "security."});
  config.bind_all();
  if (auto code = config.parse(program, args)) return *code;
  stdin_watch.start();
  limits.apply(options.limits, options.connection_caps);
  options.port = static_cast<std::uint16_t>(port);
  options.contact_address = address_flags.contact_address;
  options.journal_snapshot_bytes = static_cast<std::uint64_t>(snapshot_mib * 1024 * 1024);
  options.worker_timeout = std::chrono::milliseconds(static_cast<long long>(worker_ttl_s * 1000));
  options.client_grace = std::chrono::milliseconds(static_cast<std::int64_t>(client_grace * 1000));
  options.policy.work_stealing = work_stealing;
  options.dashboard_fallback = dashboard->count() == 0;
  for (const auto& lib : preload) {
    // Loading runs the library's DISTRIB_TASK registrations into libdistrib's registry.
    if (!dlopen(lib.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
      std::fprintf(stderr, "%s: cannot preload %s: %s\n", program.c_str(), lib.c_str(), dlerror());
      return 1;
    }
  }
  try {
    set_log_level(log_level);
    address_flags.apply(options.host);
    options.security = security.security();
    options.insecure = security.insecure;
    int code = run_scheduler(options, [&](const std::string& address) {
      std::printf("distrib scheduler at %s\n", address.c_str());
      std::fflush(stdout);
    });
    log().flush();
    return code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
    return 1;
  }
}

}  // namespace distrib::detail
