// dworker's command line (daemon_main.hpp), also your program's after --distrib-worker.
//   dworker tcp://head:8786 --nthreads 8 --preload libmytasks.so
// By default this process is the worker's nanny: it runs the worker as a child process
// (this same command line plus --no-nanny) and restarts it when it dies (src/cluster/nanny.hpp).
#include <dlfcn.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "cluster/address_flags.hpp"
#include "cluster/config_flags.hpp"
#include "cluster/daemon_main.hpp"
#include "cluster/scheduler_file.hpp"
#include "cluster/limit_flags.hpp"
#include "cluster/security_flags.hpp"
#include "cluster/stdin_watch.hpp"
#include "comm/auth.hpp"
#include "cluster/nanny.hpp"
#include "cluster/process.hpp"
#include "cluster/roles.hpp"
#include "core/log.hpp"
#include "core/memory_limit.hpp"

namespace distrib::detail {
namespace {
std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

// A lifetime drawn from [lifetime - stagger, lifetime + stagger], as Dask's --lifetime-stagger,
// so that workers started together do not all restart at once.
std::chrono::milliseconds staggered(double lifetime_s, double stagger_s) {
  if (lifetime_s <= 0) return std::chrono::milliseconds(0);
  std::mt19937_64 rng(std::random_device{}());
  double s = lifetime_s + std::uniform_real_distribution<double>(-stagger_s, stagger_s)(rng);
  return std::max(std::chrono::milliseconds(1), to_ms(s));  // 0 would mean "no lifetime"
}
}  // namespace

int worker_main(const std::string& program, const std::vector<std::string>& args,
                const std::vector<std::string>& relaunch) {
  CLI::App app{"distrib worker: runs tasks for a distrib scheduler", program};
  WorkerOptions options;
  options.host = "0.0.0.0";
  std::string log_level = "info";
  std::vector<std::string> preload;
  double timeout_s = 10;
  double death_timeout_s = 60;
  double close_timeout_s = 5;  // running tasks' time to stop; the nanny waits 1 s more
  options.nthreads = std::max(1u, std::thread::hardware_concurrency());
  auto* address = app.add_option("address", options.scheduler_address,
                                 "Scheduler address, tcp://host:port (or unix://@name on this host)");
  std::string scheduler_file;
  app.add_option("--scheduler-file", scheduler_file,
                 "Read the scheduler's address from this file (dscheduler --scheduler-file), waiting up to "
                 "--death-timeout for it to appear")
      ->excludes(address);
  app.add_option("--nthreads", options.nthreads, "Threads that run tasks")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--name", options.name, "Worker name (default: its address)");
  auto* host = app.add_option("--host", options.host, "Address to serve data to peers on")->capture_default_str();
  daemons::AddressFlags address_flags;
  address_flags.add_to(app, host);
  std::string memory_limit = "auto";
  app.add_option("--memory-limit", memory_limit,
                 "Memory limit: bytes, a size such as 4GiB, a fraction of the machine's memory such as 0.5, "
                 "auto (the machine's memory times min(1, nthreads / cores)), or 0 for none. Past its "
                 "fractions below the worker spills to disk, pauses, or is restarted")
      ->capture_default_str();
  app.add_option("--local-directory", options.local_directory,
                 "Where the worker makes its private spill directory, removed when it exits (default: $TMPDIR or /tmp)");
  // Dask's distributed.worker.memory.target / spill / pause / terminate (worker_memory.cpp).
  struct FractionOption {
    const char* name;
    std::string text;
    std::optional<double>* into;
    const char* help;
  };
  FractionOption fractions[] = {
      {"--memory-target-fraction", "0.6", &options.memory_fractions.target,
       "Fraction of --memory-limit above which stored values start to spill to disk"},
      {"--memory-spill-fraction", "0.7", &options.memory_fractions.spill,
       "Fraction of --memory-limit of process memory above which values spill until it is under the target"},
      {"--memory-pause-fraction", "0.8", &options.memory_fractions.pause,
       "Fraction of --memory-limit of process memory above which no task starts and nothing is fetched"},
      {"--memory-terminate-fraction", "0.95", &options.memory_fractions.terminate,
       "Fraction of --memory-limit of process memory above which the nanny restarts the worker"},
  };
  for (auto& f : fractions)
    app.add_option(f.name, f.text, std::string(f.help) + " (default " + f.text + "; false to disable)")
        ->option_text("FRACTION");
  app.add_option("--preload", preload, "Shared library with DISTRIB_TASK functions to load (repeatable)")
      ->allow_extra_args(false);  // one library per --preload, so the address may follow
  std::vector<std::string> resources;
  app.add_option("--resources", resources, "Resources for tasks that ask for them, as Dask: \"GPU=2 MEM=10e9\"")
      ->allow_extra_args(false);
  app.add_option("--timeout", timeout_s, "Seconds to keep trying to reach the scheduler")->capture_default_str();
  app.add_option("--death-timeout", death_timeout_s,
                 "Seconds to keep trying to reach a scheduler that went away before exiting with code 1")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")->capture_default_str();
  daemons::SecurityFlags security;
  security.add_to(app);
  daemons::LimitFlags limits;
  limits.add_to(app);
  // DURATION takes a unit, as Dask's: 90, 90s, 1.5m, 2h, 500ms (plain numbers are seconds).
  const std::map<std::string, double> units{{"ms", 0.001}, {"s", 1}, {"m", 60}, {"min", 60}, {"h", 3600}};
  bool nanny = true, lifetime_restart = true;
  double lifetime_s = 0, stagger_s = 0;
  app.add_flag("--nanny,!--no-nanny", nanny,
               "Run the worker in a child process that this one restarts when it dies (default); "
               "--no-nanny runs it in this process")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->option_text(" ");
  app.add_option("--lifetime", lifetime_s,
                 "Stop the worker gracefully after this long (e.g. 3600, 1h); under a nanny a fresh worker "
                 "starts at once")
      ->transform(CLI::AsNumberWithUnit(units))
      ->check(CLI::NonNegativeNumber)
      ->option_text("DURATION");
  app.add_option("--lifetime-stagger", stagger_s, "Random spread of --lifetime, plus or minus (e.g. 5m)")
      ->transform(CLI::AsNumberWithUnit(units))
      ->check(CLI::NonNegativeNumber)
      ->option_text("DURATION");
  app.add_flag("--lifetime-restart,!--no-lifetime-restart", lifetime_restart,
               "Under a nanny, start a fresh worker when the lifetime is over (default), or stop for good")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->option_text(" ");
  app.add_option("--close-timeout", close_timeout_s,
                 "On SIGTERM or SIGINT, how long running tasks get to stop; the worker then exits without them, "
                 "and a nanny kills a worker still there a second later (default 5 s)")
      ->transform(CLI::AsNumberWithUnit(units))
      ->check(CLI::NonNegativeNumber)
      ->option_text("DURATION");
  bool shared_memory = true;
  app.add_flag("--shared-memory,!--no-shared-memory", shared_memory,
               "Hand large values to processes of the same user on this host through shared memory instead of "
               "the socket (default: on; also DISTRIB_SHARED_MEMORY=0)");
  app.footer(
      "Nanny (default): this process runs the worker as a child and restarts it when it dies (a signal, abort,\n"
      "the OOM killer) after 0.1 s, doubling up to 10 s; a restart the scheduler asks for, or the end of\n"
      "--lifetime, starts a fresh worker at once. The worker's environment gets OMP_NUM_THREADS,\n"
      "OPENBLAS_NUM_THREADS and MKL_NUM_THREADS = 1 unless they are set already. SIGTERM or SIGINT stops both\n"
      "(SIGKILL after --close-timeout plus 1 s). Exit code 0: stopped (scheduler shutdown or a signal);\n"
      "1: bad options, or the worker gave up on its scheduler (no restart then). DURATION: seconds, or with a\n"
      "unit: 500ms, 90s, 30m (or 30min), 2h.");
  StdinWatchFlag stdin_watch;
  stdin_watch.add_to(app);
  ConfigFlags config(app, {"worker.", "comm.", "security."});
  config.bind_all();
  if (auto code = config.parse(program, args)) return *code;
  stdin_watch.start();
  if (options.scheduler_address.empty() && scheduler_file.empty()) {
    std::fprintf(stderr, "%s: give the scheduler's address or --scheduler-file\n", program.c_str());
    return 1;
  }
  options.contact_address = address_flags.contact_address;
  // Read once, when the first large buffer is made; the worker of a nanny inherits it.
  if (!shared_memory) setenv("DISTRIB_SHARED_MEMORY", "0", 1);
  if (stagger_s > 0 && lifetime_s <= 0) {
    std::fprintf(stderr, "%s: --lifetime-stagger needs --lifetime\n", program.c_str());
    return 1;
  }
  try {
    // No limit is reported as the machine's memory (0 here), as before limits existed.
    options.memory_limit = parse_memory_limit(memory_limit, total_memory_bytes(),
                                                               options.nthreads, std::thread::hardware_concurrency())
                               .value_or(0);
    for (auto& f : fractions) *f.into = parse_memory_fraction(f.text, f.name);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
    return 1;
  }
  try {
    set_log_level(log_level);
    options.security = security.security();
    options.insecure = security.insecure;
    limits.apply(options.limits, options.connection_caps);
    for (const auto& spec : resources) {
      std::istringstream in(spec);
      std::string item;
      while (in >> item) {
        auto eq = item.find('=');
        double amount = 0;
        try {
          amount = eq == std::string::npos ? 0 : std::stod(item.substr(eq + 1));
        } catch (const std::exception&) {
        }
        if (eq == 0 || !(amount > 0)) {
          std::fprintf(stderr, "%s: bad resource '%s' (expected NAME=amount, amount > 0)\n", program.c_str(), item.c_str());
          return 1;
        }
        options.resources.emplace_back(item.substr(0, eq), amount);
      }
    }
    if (nanny) {
      // The nanny loads no task library (user code runs only in the worker): the worker
      // checks --preload and exits 1 on a bad one, which ends the nanny too.
      std::vector<std::string> worker_argv = relaunch;
      worker_argv.insert(worker_argv.end(), args.begin(), args.end());
      worker_argv.emplace_back("--no-nanny");
      NannyOptions nanny_options;
      nanny_options.name = options.name.empty() ? "worker" : "worker '" + options.name + "'";
      // A second more than the worker's own --close-timeout, to let it exit by itself.
      nanny_options.close_timeout = to_ms(close_timeout_s) + std::chrono::seconds(1);
      // The backstop for a worker that cannot act on its own terminate threshold.
      if (options.memory_limit > 0 && options.memory_fractions.terminate)
        nanny_options.memory_kill_bytes =
            static_cast<std::uint64_t>(static_cast<double>(options.memory_limit) * *options.memory_fractions.terminate);
      int code = run_nanny(worker_argv, nanny_options);
      log().flush();
      return code;
    }
    auto context = take_nanny_context();
    options.nanny = context.nanny;
    options.restarts = context.restarts;
    // Each restarted worker prints its address again: if whoever read the first line has
    // closed the pipe since, SIGPIPE would kill every fresh worker in turn. Ignored, as
    // Python (and so Dask's worker) does.
    if (options.nanny) signal(SIGPIPE, SIG_IGN);
    for (const auto& lib : preload) {
      // Loading runs the library's DISTRIB_TASK registrations into libdistrib's registry.
      if (!dlopen(lib.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
        std::fprintf(stderr, "%s: cannot preload %s: %s\n", program.c_str(), lib.c_str(), dlerror());
        return 1;
      }
      log().info("preloaded {}", lib);
    }
    address_flags.apply(options.host);
    if (!scheduler_file.empty()) {
      // Read by the worker, not its nanny: a worker restarted after the scheduler moved
      // (a new file) finds the new address.
      options.scheduler_address = wait_for_scheduler_file(scheduler_file, to_ms(death_timeout_s)).address;
    }
    options.connect_timeout = to_ms(timeout_s);
    options.death_timeout = to_ms(death_timeout_s);
    options.close_timeout = to_ms(close_timeout_s);
    WorkerLifetime lifetime{staggered(lifetime_s, stagger_s), lifetime_restart};
    int code = run_worker(
        options,
        [](const std::string& address) {
          std::printf("distrib worker at %s\n", address.c_str());
          std::fflush(stdout);
        },
        lifetime);
    log().flush();
    std::fflush(nullptr);
    _exit(code);  // a task that ignored its stop request past --close-timeout is not waited for
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
    return 1;
  }
}

}  // namespace distrib::detail
