// dscheduler: the distrib scheduler daemon. Workers and clients connect to it.
//   dscheduler --port 8786
//   dscheduler --port 8786 --local-socket sched   # also unix://@sched for this host
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "limit_flags.hpp"
#include "security_flags.hpp"
#include "comm/auth.hpp"
#include "cluster/roles.hpp"
#include "core/log.hpp"
#include "dashboard/dashboard.hpp"

int main(int argc, char** argv) {
  CLI::App app{"distrib scheduler: coordinates workers and clients"};
  distrib::detail::SchedulerOptions options;
  options.host = "0.0.0.0";
  std::string log_level = "info";
  int port = 8786;
  app.add_option("--host", options.host, "Interface to listen on")->capture_default_str();
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
  bool no_stealing = false;
  app.add_flag("--no-work-stealing", no_stealing, "Do not move waiting tasks from busy workers to idle ones");
  options.dashboard_address = ":8787";
  auto* dashboard = app.add_option("--dashboard-address", options.dashboard_address,
                                   "Web dashboard: host:port, :port, 0 (any free port) or none. The default port "
                                   "moves to a free one if taken; an explicit one that is taken is an error")
                        ->capture_default_str()
                        ->check([&](const std::string& text) {
                          try {
                            distrib::detail::parse_dashboard_address(text, options.host);
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
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")->capture_default_str();
  distrib::daemons::SecurityFlags security;
  security.add_to(app);
  distrib::daemons::LimitFlags limits;
  limits.add_to(app);
  CLI11_PARSE(app, argc, argv);
  limits.apply(options.limits, options.connection_caps);
  options.port = static_cast<std::uint16_t>(port);
  options.journal_snapshot_bytes = static_cast<std::uint64_t>(snapshot_mib * 1024 * 1024);
  options.worker_timeout = std::chrono::milliseconds(static_cast<long long>(worker_ttl_s * 1000));
  options.client_grace = std::chrono::milliseconds(static_cast<std::int64_t>(client_grace * 1000));
  options.policy.work_stealing = !no_stealing;
  options.dashboard_fallback = dashboard->count() == 0;
  try {
    distrib::detail::set_log_level(log_level);
    options.security = security.security();
    options.insecure = security.insecure;
    int code = distrib::detail::run_scheduler(options, [&](const std::string& address) {
      std::string shown = address;
      if (options.host == "0.0.0.0" || options.host == "::") {
        char name[256] = {};
        gethostname(name, sizeof name - 1);
        shown = distrib::detail::format_address(name, distrib::detail::parse_address(address).second,
                                                distrib::detail::address_scheme(address));
      }
      std::printf("distrib scheduler at %s\n", shown.c_str());
      std::fflush(stdout);
    });
    distrib::detail::log().flush();
    return code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dscheduler: %s\n", e.what());
    return 1;
  }
}
