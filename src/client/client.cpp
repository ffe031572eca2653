#include "distrib/client.hpp"

#include <cstdlib>

#include "client/client_impl.hpp"
#include "cluster/scheduler_file.hpp"
#include "comm/security_defaults.hpp"
#include "comm/tls.hpp"
#include "comm/auth.hpp"
#include "comm/connection.hpp"
#include "dashboard/dashboard.hpp"
#include "cluster/local_cluster_impl.hpp"
#include "distrib/local_cluster.hpp"
#include "distrib/ssh_cluster.hpp"

namespace distrib {

namespace detail {
const TaskFunction& registered_function(AnyFunctionPointer fn) {  // declared in graph.hpp
  auto* f = TaskRegistry::instance().find(fn);
  if (!f)
    throw std::invalid_argument(
        "distrib: this function is not a registered task; add DISTRIB_TASK(name) next to its definition");
  return *f;
}
}  // namespace detail

Client::Client(const std::string& address, ClientOptions options)
    : impl_(std::make_shared<detail::ClientImpl>(std::move(options))) {
  impl_->connect(address);
}

namespace {
// The address in a scheduler file, checked against the CA this client trusts.
std::string address_in(const SchedulerFile& file, const ClientOptions& options) {
  detail::SchedulerFileContents contents;
  try {
    contents = detail::wait_for_scheduler_file(file.path, options.connect_timeout);
  } catch (const std::runtime_error& e) {
    throw CommError(e.what());
  }
  const auto security = detail::with_environment_defaults(options.security);
  if (!contents.tls_ca_sha256.empty() && security.has_tls()) {
    const auto ours = detail::tls_backend().ca_fingerprint(security);
    if (ours != contents.tls_ca_sha256)
      throw SecurityError("scheduler file " + file.path + ": the scheduler's CA (SHA-256 " + contents.tls_ca_sha256 +
                          ") is not this client's tls_ca_file (" + ours + ")");
  }
  return contents.address;
}

std::string configured_address(const ClientOptions& options) {
  if (auto a = config::get("client.scheduler-address"); !a.empty()) return a;
  if (auto f = config::get("client.scheduler-file"); !f.empty()) return address_in(SchedulerFile{f}, options);
  throw std::invalid_argument(
      "distrib::Client(): no scheduler given; pass an address, a SchedulerFile or a LocalCluster, or set "
      "DISTRIB_SCHEDULER_ADDRESS or DISTRIB_SCHEDULER_FILE");
}
}  // namespace

Client::Client(const SchedulerFile& file, ClientOptions options) : Client(address_in(file, options), options) {}

Client::Client(ClientOptions options) : Client(configured_address(options), options) {}

namespace {
ClientOptions with_cluster_security(ClientOptions options, const LocalCluster& cluster) {
  if (!options.security.enabled()) options.security = cluster.security();
  return options;
}
}  // namespace

Client::Client(LocalCluster& cluster, ClientOptions options)
    : impl_(std::make_shared<detail::ClientImpl>(with_cluster_security(std::move(options), cluster))) {
  impl_->connect(cluster.scheduler_address(), cluster.impl_->local_address);
  impl_->close_cluster = [weak = std::weak_ptr<LocalCluster::Impl>(cluster.impl_)] {
    if (auto c = weak.lock()) c->close();
  };
  if (!cluster.processes())
    impl_->restart_unsupported =
        "the workers of a LocalCluster with processes = false are threads of this process and cannot be restarted; "
        "use processes = true (each worker then has a nanny)";
}

Client::Client(SSHCluster& cluster, ClientOptions options)
    : Client(cluster.scheduler_address(), [&] {
        if (!options.security.enabled()) options.security = cluster.security();
        return options;
      }()) {}

Client::~Client() {
  if (impl_) impl_->close();
}

Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&& other) noexcept {
  if (this != &other) {
    if (impl_) impl_->close();
    impl_ = std::move(other.impl_);
  }
  return *this;
}

std::vector<detail::FutureHandle> Client::submit_tasks(std::vector<detail::TaskRequest> batch) {
  return impl_->submit(std::move(batch));
}

std::vector<Value> Client::gather_values(const std::vector<detail::FutureHandle>& futures) {
  std::vector<const detail::FutureState*> raw;
  raw.reserve(futures.size());
  for (auto& f : futures) {
    if (!f) throw std::invalid_argument("distrib::Client::gather: an empty Future was passed");
    raw.push_back(f.get());
  }
  return impl_->gather(raw);
}

std::vector<detail::FutureHandle> Client::submit_graph(const Graph& graph, const std::vector<std::string>& targets) {
  return impl_->submit_graph(graph, targets, false);
}

Client::Persisted Client::persist(const Graph& graph) {
  std::vector<std::string> keys;
  for (const auto& n : graph.nodes()) keys.push_back(n.key);
  auto handles = impl_->submit_graph(graph, keys, true);
  Persisted p;
  for (std::size_t i = 0; i < keys.size(); ++i) p.futures_.emplace(keys[i], handles[i]);
  return p;
}

std::vector<detail::FutureHandle> Client::scatter_values(std::vector<Value> values, const ScatterOptions& options) {
  return impl_->scatter(std::move(values), options);
}

detail::FutureHandle Client::scatter_lent(const std::string& type, const void* data, std::size_t size,
                                          const ScatterOptions& options) {
  return impl_->scatter_lent(type, data, size, options);
}

void Client::cancel_handles(const std::vector<detail::FutureHandle>& futures) { impl_->cancel(futures); }

std::vector<std::pair<std::string, Value>> Client::run_on_workers(detail::TaskRequest request,
                                                                  const std::vector<std::string>& workers) {
  return impl_->run(request, workers);
}

detail::ClusterSnapshot Client::snapshot(const std::vector<std::string>& keys, bool with_story) {
  return impl_->snapshot(keys, with_story);
}

std::vector<Transition> Client::story(const std::string& key) { return impl_->snapshot({key}, true).story; }

std::map<std::string, std::vector<std::string>> Client::has_what() { return impl_->snapshot({}).has_what; }

std::map<std::string, unsigned> Client::nthreads() {
  std::map<std::string, unsigned> out;
  for (const auto& w : impl_->workers()) out[w.address] = w.nthreads;
  return out;
}

SchedulerInfo Client::scheduler_info() { return impl_->snapshot({}).info; }

void Client::upload_file(const std::string& path, std::chrono::milliseconds timeout) {
  impl_->upload_file(path, timeout);
}

std::vector<std::string> Client::retire_workers(const std::vector<std::string>& workers,
                                               std::chrono::milliseconds timeout) {
  return impl_->retire_workers(workers, timeout);
}

void Client::restart(std::chrono::milliseconds timeout, bool wait_for_workers) {
  impl_->restart(timeout, wait_for_workers);
}
void Client::close() { impl_->close(); }
void Client::shutdown() { impl_->shutdown(); }
std::string Client::scheduler_address() const { return impl_->address(); }
std::size_t Client::n_workers() const { return impl_->n_workers(); }

std::string Client::dashboard_link() const {
  const auto port = impl_->dashboard_port();
  if (port == 0) return {};
  // With a token, the scheduler's dashboard wants it (the same token: this client got in).
  const std::string token = detail::dashboard_token_query(impl_->security().token);
  if (detail::is_unix_address(impl_->address())) return "http://127.0.0.1:" + std::to_string(port) + "/status" + token;
  auto [host, scheduler_port] = detail::parse_address(impl_->address());
  if (host == "0.0.0.0" || host == "::") host = "127.0.0.1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(port) + "/status" + token;
}
void Client::wait_for_workers(std::size_t n, std::chrono::milliseconds timeout) { impl_->wait_for_workers(n, timeout); }

}  // namespace distrib
