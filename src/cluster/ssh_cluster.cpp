// SSHCluster: each daemon is `ssh host -- sh -c 'read token; exec daemon ...'`, a child
// process of this program whose standard input carries the token and then stays open: when
// the session ends, the daemon's --stop-on-stdin-eof stops it.
#include "distrib/ssh_cluster.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

#include "cluster/process.hpp"
#include "comm/auth.hpp"
#include "comm/security_defaults.hpp"
#include "distrib/client.hpp"
#include "distrib/errors.hpp"

namespace distrib {

namespace {
using Clock = std::chrono::steady_clock;

// One word for the remote shell.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

bool is_pem_text(const std::string& v) { return v.find("-----BEGIN") != std::string::npos; }

struct Remote {
  std::string host;
  std::string role;  // "scheduler", "worker 2"
  detail::ChildProcess ssh;
  int stdin_write = -1;   // the session's standard input: the token, then held open
  int stdout_read = -1;   // the daemon's announcement
  std::string output;     // read so far
  std::string address;    // announced

  ~Remote() {
    if (stdin_write >= 0) ::close(stdin_write);
    if (stdout_read >= 0) ::close(stdout_read);
  }
};

// Reads the remote's output until a line starting with `marker`; returns its rest.
std::string wait_for_line(Remote& r, const std::string& marker, Clock::time_point deadline) {
  while (true) {
    auto at = r.output.find(marker);
    if (at != std::string::npos) {
      auto end = r.output.find('\n', at);
      if (end != std::string::npos) return r.output.substr(at + marker.size(), end - at - marker.size());
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) throw CommError("SSHCluster: the " + r.role + " on " + r.host + " did not start in time");
    pollfd p{r.stdout_read, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (ready < 0 && errno != EINTR) throw CommError("SSHCluster: poll failed");
    if (ready <= 0) continue;
    char buffer[4096];
    const auto n = ::read(r.stdout_read, buffer, sizeof buffer);
    if (n > 0) {
      r.output.append(buffer, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    r.ssh.wait(std::chrono::milliseconds(2000));
    throw CommError("SSHCluster: the " + r.role + " on " + r.host + " exited before it started (" +
                    r.ssh.exit_description() + "; ssh and the daemon wrote to this program's stderr)" +
                    (r.output.empty() ? "" : ": " + r.output));
  }
}
}  // namespace

class SSHCluster::Impl {
 public:
  Impl(std::vector<std::string> hosts, SSHClusterOptions o) : options(std::move(o)) {
    if (hosts.size() < 2)
      throw std::invalid_argument("SSHCluster: give at least two hosts (the scheduler's, then one per worker)");
    ssh_path = detail::find_in_path(options.ssh);
    if (ssh_path.empty()) throw std::invalid_argument("SSHCluster: no '" + options.ssh + "' on PATH");
    security = detail::with_environment_defaults(options.security);
    for (const auto* f : {&security.tls_ca_file, &security.tls_cert, &security.tls_key})
      if (is_pem_text(*f))
        throw std::invalid_argument("SSHCluster: give the TLS files as paths on the hosts, not PEM text");
    if (security.token.empty()) security.token = detail::auth::generate_token();
    const auto deadline = Clock::now() + options.start_timeout;

    std::vector<std::string> scheduler{options.scheduler_command, "--port", std::to_string(options.scheduler_port),
                                       "--dashboard-address", options.dashboard_address};
    scheduler.insert(scheduler.end(), options.scheduler_args.begin(), options.scheduler_args.end());
    auto& s = start(hosts[0], "scheduler", scheduler);
    address = wait_for_line(s, "distrib scheduler at ", deadline);

    for (std::size_t i = 1; i < hosts.size(); ++i) {
      std::vector<std::string> worker = options.worker_command;
      worker.push_back(address);
      if (options.nthreads > 0) worker.insert(worker.end(), {"--nthreads", std::to_string(options.nthreads)});
      worker.insert(worker.end(), options.worker_args.begin(), options.worker_args.end());
      start(hosts[i], "worker " + std::to_string(i), worker);
    }
    for (std::size_t i = 1; i < remotes.size(); ++i)
      remotes[i]->address = wait_for_line(*remotes[i], "distrib worker at ", deadline);
  }

  ~Impl() { close(); }

  void close() {
    if (closed) return;
    closed = true;
    try {
      ClientOptions o;
      o.security = security;
      o.connect_timeout = std::chrono::seconds(5);
      o.reconnect_timeout = std::chrono::milliseconds(0);
      o.name = "ssh-cluster";
      Client(address, o).shutdown();
    } catch (const std::exception&) {
      // the scheduler is gone already: ending the sessions below stops the workers
    }
    // Closing each session's input stops its daemon (--stop-on-stdin-eof) if it still runs.
    for (auto& r : remotes) {
      if (r->stdin_write >= 0) ::close(r->stdin_write);
      r->stdin_write = -1;
    }
    for (auto& r : remotes)
      if (!r->ssh.wait(std::chrono::seconds(10))) r->ssh.stop(std::chrono::seconds(1));
  }

  SSHClusterOptions options;
  Security security;
  std::string ssh_path;
  std::string address;
  std::vector<std::unique_ptr<Remote>> remotes;
  bool closed = false;

 private:
  Remote& start(const std::string& host, const std::string& role, std::vector<std::string> command) {
    command.insert(command.begin() + static_cast<long>(role == "scheduler" ? 1 : options.worker_command.size()),
                   "--stop-on-stdin-eof");
    if (security.has_tls())
      command.insert(command.end(), {"--tls-ca-file", security.tls_ca_file, "--tls-cert", security.tls_cert,
                                     "--tls-key", security.tls_key});
    // The remote shell reads the token line into the environment and becomes the daemon:
    // the token is in no command line, here or there.
    std::string line = "read -r DISTRIB_AUTH_TOKEN && export DISTRIB_AUTH_TOKEN && exec";
    for (const auto& word : command) line += " " + shell_quote(word);
    std::vector<std::string> argv{ssh_path, "-o", "BatchMode=yes"};
    argv.insert(argv.end(), options.ssh_options.begin(), options.ssh_options.end());
    argv.insert(argv.end(), {host, "--", "sh", "-c", shell_quote(line)});

    auto r = std::make_unique<Remote>();
    r->host = host;
    r->role = role;
    // Standard input is a socket, so that writing to a session that died fails with EPIPE
    // (MSG_NOSIGNAL) instead of raising SIGPIPE in this program.
    int in[2], out[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0 || pipe2(out, O_CLOEXEC) != 0)
      throw CommError("SSHCluster: pipe failed");
    r->ssh = detail::ChildProcess::spawn(argv, {}, {}, out[1], true, in[0]);
    ::close(in[0]);
    ::close(out[1]);
    r->stdin_write = in[1];
    r->stdout_read = out[0];
    const std::string token_line = security.token + "\n";
    // A session that died at once makes this fail (ignored): its announcement is then
    // missing, and the wait names the host.
    if (::send(r->stdin_write, token_line.data(), token_line.size(), MSG_NOSIGNAL) < 0) {
    }
    remotes.push_back(std::move(r));
    return *remotes.back();
  }
};

SSHCluster::SSHCluster(std::vector<std::string> hosts, SSHClusterOptions options)
    : impl_(std::make_unique<Impl>(std::move(hosts), std::move(options))) {}
SSHCluster::~SSHCluster() = default;
const std::string& SSHCluster::scheduler_address() const { return impl_->address; }
const Security& SSHCluster::security() const { return impl_->security; }
int SSHCluster::n_workers() const { return static_cast<int>(impl_->remotes.size()) - 1; }
void SSHCluster::close() { impl_->close(); }

}  // namespace distrib
