#include "comm/security_defaults.hpp"
#include "distrib/local_cluster.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <future>
#include <numeric>
#include <system_error>

#include "cluster/local_cluster_impl.hpp"
#include "comm/inproc_stream.hpp"
#include "core/log.hpp"
#include "core/memory_limit.hpp"
#include "worker/worker_server.hpp"
#include "distrib/errors.hpp"

namespace distrib {

namespace {
using Clock = std::chrono::steady_clock;

// Reads the line a child writes to its ready pipe once it serves ("tcp://host:port").
std::string read_ready_line(int fd, detail::ChildProcess& child, Clock::time_point deadline, const std::string& what) {
  std::string line;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) throw Error("LocalCluster: the " + what + " did not start in time");
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[256];
    auto n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      child.wait(std::chrono::milliseconds(2000));
      throw Error("LocalCluster: the " + what + " exited before it was ready (" + child.exit_description() +
                  "); its log is on stderr");
    }
    line.append(buf, static_cast<std::size_t>(n));
    auto nl = line.find('\n');
    if (nl != std::string::npos) return line.substr(0, nl);
  }
}

std::pair<int, int> make_pipe() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
  return {fds[0], fds[1]};
}
}  // namespace

std::pair<int, int> default_workers_and_threads(int cores) {
  cores = std::max(1, cores);
  if (cores <= 4) return {cores, 1};
  int root = static_cast<int>(std::ceil(std::sqrt(cores)));
  for (int f = root; f <= cores; ++f)
    if (cores % f == 0) return {f, cores / f};
  return {cores, 1};
}

LocalCluster::Impl::Impl(LocalClusterOptions o) : options(std::move(o)) {
  options.security = detail::with_environment_defaults(std::move(options.security));
  auto [workers, threads] = default_workers_and_threads(static_cast<int>(std::thread::hardware_concurrency()));
  if (options.n_workers < 0 || options.threads_per_worker < 0)
    throw std::invalid_argument("LocalCluster: n_workers and threads_per_worker must not be negative");
  int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  if (options.n_workers == 0 && options.threads_per_worker == 0) {
    options.n_workers = workers;
    options.threads_per_worker = threads;
  } else if (options.n_workers == 0) {  // as Dask: the cores shared among workers
    options.n_workers = std::max(1, cores / options.threads_per_worker);
  } else if (options.threads_per_worker == 0) {
    options.threads_per_worker = std::max(1, cores / options.n_workers);
  }
  try {
    memory_limit_bytes = detail::parse_memory_limit(options.memory_limit, detail::total_memory_bytes(),
                                                    static_cast<unsigned>(options.threads_per_worker),
                                                    static_cast<unsigned>(cores))
                             .value_or(0);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("LocalCluster: memory_limit: ") + e.what());
  }
  for (auto [name, f] : {std::pair{"memory_target_fraction", options.memory_target_fraction},
                         std::pair{"memory_spill_fraction", options.memory_spill_fraction},
                         std::pair{"memory_pause_fraction", options.memory_pause_fraction},
                         std::pair{"memory_terminate_fraction", options.memory_terminate_fraction}})
    if (f && !(*f > 0 && *f <= 1))
      throw std::invalid_argument(std::string("LocalCluster: ") + name + " must be in (0, 1], or std::nullopt to turn it off");
  try {
    if (options.processes) start_processes();
    else start_threads();
  } catch (...) {
    close();
    throw;
  }
}

LocalCluster::Impl::~Impl() { close(); }

std::string LocalCluster::Impl::memory_fractions_text() const {
  std::string out;
  for (const auto& f : {options.memory_target_fraction, options.memory_spill_fraction, options.memory_pause_fraction,
                        options.memory_terminate_fraction}) {
    if (!out.empty()) out += ",";
    out += f ? std::to_string(*f) : "false";
  }
  return out;
}

detail::ChildProcess LocalCluster::Impl::spawn_child(const std::string& role,
                                                    std::vector<std::pair<std::string, std::string>> env,
                                                    int ready_write) {
  env.emplace_back("DISTRIB_ROLE", role);
  env.emplace_back("DISTRIB_READY_FD", std::to_string(ready_write));
  env.emplace_back("DISTRIB_PARENT_FD", std::to_string(parent_pipe_read_));
  env.emplace_back("DISTRIB_HOST", options.host);
  env.emplace_back("DISTRIB_LOG_LEVEL", options.log_level);
  if (!options.shared_memory) env.emplace_back("DISTRIB_SHARED_MEMORY", "0");
  // The children's Security::from_environment() (PEM text fits an environment variable).
  env.emplace_back("DISTRIB_AUTH_TOKEN", options.security.token);
  env.emplace_back("DISTRIB_TLS_CA_FILE", options.security.tls_ca_file);
  env.emplace_back("DISTRIB_TLS_CERT", options.security.tls_cert);
  env.emplace_back("DISTRIB_TLS_KEY", options.security.tls_key);
  std::vector<int> inherit{parent_pipe_read_};
  if (ready_write >= 0) inherit.push_back(ready_write);
  // No PR_SET_PDEATHSIG: it would kill the children when the thread that made the cluster
  // ends. They exit instead when the parent pipe closes, i.e. when this process dies.
  return detail::ChildProcess::spawn({exe_}, env, inherit, -1, false);
}

std::vector<std::pair<std::string, std::string>> LocalCluster::Impl::worker_env(int index, std::uint32_t restarts) const {
  std::vector<std::pair<std::string, std::string>> env{{"DISTRIB_SCHEDULER", local_address},
                                                       {"DISTRIB_NTHREADS", std::to_string(options.threads_per_worker)},
                                                       {"DISTRIB_NAME", "worker-" + std::to_string(index)},
                                                       {"DISTRIB_MEMORY_LIMIT", std::to_string(memory_limit_bytes)},
                                                       {"DISTRIB_MEMORY_FRACTIONS", memory_fractions_text()},
                                                       {"DISTRIB_LOCAL_DIRECTORY", options.local_directory}};
  for (auto& kv : detail::nanny_worker_environment(restarts)) env.push_back(std::move(kv));
  return env;
}

void LocalCluster::Impl::start_processes() {
  if (!initialized())
    throw std::logic_error(
        "LocalCluster(processes = true) re-runs this program as its scheduler and workers: call "
        "distrib::init(argc, argv) first thing in main(), or use processes = false");
  auto deadline = Clock::now() + options.start_timeout;
  std::tie(parent_pipe_read_, parent_pipe_write_) = make_pipe();
  exe_ = detail::current_executable();

  auto [sr, sw] = make_pipe();
  auto socket_name = detail::unique_unix_socket_name();
  scheduler_ = spawn_child("scheduler", {{"DISTRIB_DASHBOARD", options.dashboard_address}, {"DISTRIB_LOCAL_SOCKET", socket_name}},
                           sw);
  ::close(sw);
  try {
    address = read_ready_line(sr, scheduler_, deadline, "scheduler");
  } catch (...) {
    ::close(sr);
    throw;
  }
  ::close(sr);
  local_address = detail::unix_address(socket_name);  // listening once the scheduler is ready

  std::vector<int> indices(static_cast<std::size_t>(options.n_workers));
  std::iota(indices.begin(), indices.end(), 0);
  add_process_workers(indices, deadline);
  next_index_ = options.n_workers;
}

void LocalCluster::Impl::add_process_workers(const std::vector<int>& indices, Clock::time_point deadline) {
  // Until every worker is ready they belong to this function (killed if one fails).
  std::vector<detail::ChildProcess> started;
  std::vector<int> ready_fds;
  for (int i : indices) {
    auto [r, w] = make_pipe();
    started.push_back(spawn_child("worker", worker_env(i, 0), w));
    ::close(w);
    ready_fds.push_back(r);
  }
  std::exception_ptr failure;
  for (std::size_t i = 0; i < ready_fds.size(); ++i) {
    try {
      if (!failure) read_ready_line(ready_fds[i], started[i], deadline, "worker " + std::to_string(indices[i]));
    } catch (...) {
      failure = std::current_exception();
    }
    ::close(ready_fds[i]);
  }
  if (failure) std::rethrow_exception(failure);

  for (std::size_t k = 0; k < indices.size(); ++k) {
    const int i = indices[k];
    detail::NannyOptions no;
    no.name = "worker 'worker-" + std::to_string(i) + "'";
    no.close_timeout = std::chrono::milliseconds(5000);
    if (memory_limit_bytes > 0 && options.memory_terminate_fraction)
      no.memory_kill_bytes = static_cast<std::uint64_t>(static_cast<double>(memory_limit_bytes) * *options.memory_terminate_fraction);
    SupervisedWorker w;
    w.index = i;
    // Restarts happen on the nanny's thread; the pipes and options they use live until close().
    w.nanny = std::make_unique<detail::Nanny>(
        no, [this, i](std::uint32_t restarts) { return spawn_child("worker", worker_env(i, restarts), -1); });
    w.thread = std::thread([nanny = w.nanny.get(), child = std::move(started[k])]() mutable {
      try {
        nanny->run(std::move(child));
      } catch (const std::exception& e) {
        detail::log().error("nanny of a LocalCluster worker failed: {}", e.what());
      }
    });
    workers_.push_back(std::move(w));
  }
}

void LocalCluster::Impl::start_threads() {
  detail::SchedulerOptions so;
  so.host = options.host;
  so.port = 0;
  so.dashboard_address = options.dashboard_address;
  so.dashboard_fallback = true;
  // Its client and workers talk inproc://, without sockets; DISTRIB_INPROC=0 keeps a Unix
  // socket and TCP data ports instead (for comparison, or for other processes to reach them).
  const char* inproc_env = std::getenv("DISTRIB_INPROC");
  const bool inproc = !(inproc_env && std::string(inproc_env) == "0");
  so.local_socket = inproc ? detail::unique_inproc_address() : detail::unique_unix_socket_name();
  so.security = options.security;
  scheduler_node_ = std::make_unique<InProcessNode<detail::SchedulerServer>>();
  scheduler_node_->server = std::make_unique<detail::SchedulerServer>(scheduler_node_->io, so);
  address = scheduler_node_->server->address();
  local_address = scheduler_node_->server->local_address();
  auto* sched_io = &scheduler_node_->io;
  scheduler_node_->server->on_shutdown = [sched_io] { sched_io->stop(); };
  scheduler_node_->server->start();
  scheduler_node_->run();

  std::vector<int> indices(static_cast<std::size_t>(options.n_workers));
  std::iota(indices.begin(), indices.end(), 0);
  add_thread_workers(indices, Clock::now() + options.start_timeout);
  next_index_ = options.n_workers;
}

void LocalCluster::Impl::add_thread_workers(const std::vector<int>& indices, Clock::time_point deadline) {
  const bool inproc = detail::address_scheme(local_address) == "inproc";
  std::vector<std::future<void>> ready;
  for (int i : indices) {
    detail::WorkerOptions wo;
    wo.scheduler_address = local_address;
    if (inproc) wo.listen_address = detail::unique_inproc_address();
    wo.host = options.host;
    wo.security = options.security;
    wo.nthreads = static_cast<std::uint32_t>(options.threads_per_worker);
    wo.name = "worker-" + std::to_string(i);
    wo.memory_limit = memory_limit_bytes;
    wo.memory_fractions = {options.memory_target_fraction, options.memory_spill_fraction,
                           options.memory_pause_fraction, options.memory_terminate_fraction};
    wo.process_memory_is_own = false;  // every worker shares this process's memory
    wo.local_directory = options.local_directory;
    auto node = std::make_unique<InProcessNode<detail::WorkerServer>>();
    node->index = i;
    node->server = std::make_unique<detail::WorkerServer>(node->io, wo);
    auto registered = std::make_shared<std::promise<void>>();
    ready.push_back(registered->get_future());
    auto* io = &node->io;
    node->server->on_registered = [registered] { registered->set_value(); };
    node->server->on_stopped = [io](const std::string&) { io->stop(); };
    asio::post(node->io, [s = node->server.get()] { s->start(); });
    node->run();
    worker_nodes_.push_back(std::move(node));
  }
  for (auto& f : ready)
    if (f.wait_until(deadline) != std::future_status::ready) throw Error("LocalCluster: workers did not start in time");
}

void LocalCluster::Impl::close() {
  stop_adapting();
  std::lock_guard scaling(scale_mutex_);
  std::lock_guard lock(mutex_);
  if (closed_) return;
  closed_ = true;
  // Each nanny sends SIGTERM to its worker and waits up to 5 s (then SIGKILL), all at once.
  for (auto& w : workers_) w.nanny->request_stop();
  for (auto& w : workers_)
    if (w.thread.joinable()) w.thread.join();
  workers_.clear();
  scheduler_.stop(std::chrono::milliseconds(5000));
  for (int* fd : {&parent_pipe_write_, &parent_pipe_read_})
    if (*fd >= 0) {
      ::close(*fd);
      *fd = -1;
    }
  for (auto& n : worker_nodes_) n->stop([](detail::WorkerServer& s) { s.stop("cluster closing"); });
  worker_nodes_.clear();
  if (scheduler_node_) scheduler_node_->stop([](detail::SchedulerServer& s) { s.stop(); });
  scheduler_node_.reset();
}

LocalCluster::LocalCluster(LocalClusterOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {}
LocalCluster::~LocalCluster() {
  if (impl_) impl_->close();
}
const std::string& LocalCluster::scheduler_address() const { return impl_->address; }
const Security& LocalCluster::security() const { return impl_->options.security; }
int LocalCluster::n_workers() const { return impl_->count(); }
void LocalCluster::scale(int n) { impl_->scale(n); }
void LocalCluster::adapt(int minimum, int maximum, AdaptOptions options) { impl_->adapt(minimum, maximum, options); }
void LocalCluster::stop_adapting() { impl_->stop_adapting(); }
int LocalCluster::threads_per_worker() const { return impl_->options.threads_per_worker; }
bool LocalCluster::processes() const { return impl_->options.processes; }
void LocalCluster::close() { impl_->close(); }

}  // namespace distrib
