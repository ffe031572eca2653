// drun: one launcher for srun and mpirun, as dask-mpi, without an MPI library.
//   mpirun -n 4 drun ./app args...        srun -n 4 drun ./app args...
// Each rank takes its part from the launcher's environment (cluster/launch_rank.hpp): rank 0
// is the scheduler, rank 1 runs `./app args...` as the client, every other rank runs
// `./app --distrib-worker` (so the program must call distrib::init first thing). They meet
// through a scheduler file in the working directory (a shared filesystem across nodes); the
// program's `distrib::Client client;` finds it through DISTRIB_SCHEDULER_FILE. When the
// program exits, drun shuts the cluster down and exits with the program's code.
//
// Unless the environment gives a token or TLS files (or --insecure), rank 0 draws a token
// and writes it, readable by this user only, next to the scheduler file: the cluster then
// refuses everyone else.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "cluster/daemon_main.hpp"
#include "cluster/launch_rank.hpp"
#include "cluster/process.hpp"
#include "cluster/scheduler_file.hpp"
#include "comm/auth.hpp"
#include "distrib/client.hpp"

namespace {
using distrib::detail::LaunchRole;

struct Options {
  std::string scheduler_file;
  std::string nthreads;
  std::string memory_limit;
  std::string interface;
  std::string port = "0";
  std::string dashboard_address = ":8787";
  std::string timeout = "60";
  bool insecure = false;
  bool nanny = true;
};

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "drun: %s\n", message.c_str());
  std::exit(1);
}

// Written before the scheduler starts (so before its scheduler file exists): a rank that
// sees the scheduler file finds the token too.
void write_private_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp-" + std::to_string(getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) fail("cannot write " + tmp + ": " + std::strerror(errno));
  fchmod(fileno(f), 0600);
  const bool ok = std::fputs(text.c_str(), f) >= 0 && std::fflush(f) == 0 && fsync(fileno(f)) == 0;
  if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), path.c_str()) != 0)
    fail("cannot write " + path + ": " + std::strerror(errno));
}

std::vector<char*> c_argv(std::vector<std::string>& args) {
  std::vector<char*> out;
  for (auto& a : args) out.push_back(a.data());
  out.push_back(nullptr);
  return out;
}

int run_client(std::vector<std::string> program, const Options& o) {
  const pid_t child = fork();
  if (child < 0) fail(std::string("fork: ") + std::strerror(errno));
  if (child == 0) {
    auto argv = c_argv(program);
    execvp(argv[0], argv.data());
    std::fprintf(stderr, "drun: cannot run %s: %s\n", argv[0], std::strerror(errno));
    _exit(127);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  // The program is done: stop the scheduler and the workers, as dask-mpi does.
  try {
    distrib::ClientOptions options;
    options.connect_timeout = std::chrono::seconds(std::stoi(o.timeout));
    options.reconnect_timeout = std::chrono::milliseconds(0);
    options.name = "drun";
    distrib::Client client(distrib::SchedulerFile{o.scheduler_file}, options);
    client.shutdown();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "drun: could not shut the cluster down: %s\n", e.what());
  }
  return code;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"drun: runs a distrib program under srun or mpirun; rank 0 is the scheduler, rank 1 the program "
               "(the client), the other ranks are workers (the program started with --distrib-worker)",
               "drun"};
  app.prefix_command();  // everything from the program's name on is the program's
  Options o;
  app.add_option("--scheduler-file", o.scheduler_file,
                 "Where the ranks meet (default: distrib-scheduler-<job id>.json in the working directory, which "
                 "must be shared between nodes)");
  app.add_option("--nthreads", o.nthreads, "Threads per worker (default: SLURM_CPUS_PER_TASK, else dworker's)");
  app.add_option("--memory-limit", o.memory_limit, "Memory limit per worker, as dworker's (default: auto)");
  app.add_option("--interface", o.interface, "Network interface the scheduler and workers listen on (ib0, eth0)");
  app.add_option("--scheduler-port", o.port, "The scheduler's port (default 0: any free one)");
  app.add_option("--dashboard-address", o.dashboard_address, "The scheduler's dashboard (none: off)")
      ->capture_default_str();
  app.add_option("--timeout", o.timeout, "Seconds the ranks wait for the scheduler")->capture_default_str();
  app.add_flag("--insecure", o.insecure,
               "No token: anyone who can reach the ports can run code on the cluster (default: rank 0 draws one)");
  app.add_flag("--nanny,!--no-nanny", o.nanny, "Workers run under a nanny that restarts them (default)");
  CLI11_PARSE(app, argc, argv);
  std::vector<std::string> program = app.remaining();
  if (program.empty()) fail("no program given: drun [options] ./app [args...]");

  distrib::detail::LaunchRank rank;
  try {
    rank = distrib::detail::read_launch_rank([](const char* name) { return std::getenv(name); });
  } catch (const std::exception& e) {
    fail(e.what());
  }
  if (rank.size && *rank.size < 3)
    fail("needs at least 3 ranks (the scheduler, the program, one worker); this job has " + std::to_string(*rank.size));
  if (o.scheduler_file.empty()) {
    if (rank.job_id.empty()) fail("the " + rank.launcher + " job has no id here: give --scheduler-file");
    o.scheduler_file = "distrib-scheduler-" + rank.job_id + ".json";
  }
  setenv("DISTRIB_SCHEDULER_FILE", o.scheduler_file.c_str(), 1);
  const std::string token_file = o.scheduler_file + ".token";
  const bool configured = std::getenv("DISTRIB_AUTH_TOKEN") != nullptr || std::getenv("DISTRIB_TLS_CERT") != nullptr;
  const bool draw_token = !configured && !o.insecure;
  // One host: loopback keeps the cluster off the network; else every interface, or one.
  const std::string host = rank.single_host ? "127.0.0.1" : "0.0.0.0";
  std::vector<std::string> placement;
  if (!o.interface.empty()) placement = {"--interface", o.interface};
  else placement = {"--host", host};
  if (o.insecure) placement.emplace_back("--insecure");

  if (rank.role() == LaunchRole::scheduler) {
    if (draw_token) {
      const auto token = distrib::detail::auth::generate_token();
      write_private_file(token_file, token + "\n");
      setenv("DISTRIB_AUTH_TOKEN", token.c_str(), 1);
    }
    std::vector<std::string> args{"--scheduler-file", o.scheduler_file, "--port", o.port, "--dashboard-address",
                                  o.dashboard_address};
    args.insert(args.end(), placement.begin(), placement.end());
    const int code = distrib::detail::scheduler_main("drun (scheduler)", args);
    if (draw_token) std::remove(token_file.c_str());
    return code;
  }
  // Everyone else waits for the scheduler, then takes its token.
  try {
    distrib::detail::wait_for_scheduler_file(o.scheduler_file, std::chrono::seconds(std::stoi(o.timeout)));
    if (draw_token) {
      const auto token = distrib::detail::auth::read_token_file(token_file);
      setenv("DISTRIB_AUTH_TOKEN", token.c_str(), 1);
    }
  } catch (const std::exception& e) {
    fail(e.what());
  }
  if (rank.role() == LaunchRole::client) return run_client(program, o);

  std::vector<std::string> worker{program.front(), "--distrib-worker", "--scheduler-file", o.scheduler_file,
                                  o.nanny ? "--nanny" : "--no-nanny"};
  worker.insert(worker.end(), placement.begin(), placement.end());
  std::string nthreads = o.nthreads;
  if (nthreads.empty())
    if (const char* cpus = std::getenv("SLURM_CPUS_PER_TASK")) nthreads = cpus;
  if (!nthreads.empty()) worker.insert(worker.end(), {"--nthreads", nthreads});
  if (!o.memory_limit.empty()) worker.insert(worker.end(), {"--memory-limit", o.memory_limit});
  worker.insert(worker.end(), {"--name", "rank-" + std::to_string(rank.rank)});
  auto argv_worker = c_argv(worker);
  execvp(argv_worker[0], argv_worker.data());
  fail("cannot run " + worker.front() + ": " + std::strerror(errno));
}
