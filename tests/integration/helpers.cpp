#include "helpers.hpp"

#include <gtest/gtest.h>

#include "test_tasks.hpp"

#include <distrib/distrib.hpp>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "comm/connection.hpp"
#include "comm/message.hpp"

namespace distrib::test {

namespace {
using Clock = std::chrono::steady_clock;

// Reads from fd until `stop(buffer)` or EOF or the deadline.
std::string read_until(int fd, Clock::time_point deadline, const std::function<bool(const std::string&)>& stop) {
  std::string out;
  while (!stop(out)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left));
    if (r <= 0) continue;
    char buf[4096];
    auto n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

Daemon start_daemon(std::vector<std::string> argv, const std::string& marker) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  Daemon d;
  d.process = detail::ChildProcess::spawn(argv, {}, {}, fds[1]);
  close(fds[1]);
  d.stdout_fd = fds[0];
  auto line = read_until(d.stdout_fd, Clock::now() + 30s, [](const std::string& s) { return s.find('\n') != std::string::npos; });
  auto at = line.find(marker);
  if (at == std::string::npos)
    throw std::runtime_error("daemon " + argv[0] + " did not announce itself; output: " + line);
  auto start = at + marker.size();
  d.address = line.substr(start, line.find('\n', start) - start);
  return d;
}
}  // namespace

Daemon::Daemon(Daemon&& o) noexcept
    : process(std::move(o.process)), address(std::move(o.address)), stdout_fd(std::exchange(o.stdout_fd, -1)) {}
Daemon& Daemon::operator=(Daemon&& o) noexcept {
  process = std::move(o.process);
  address = std::move(o.address);
  std::swap(stdout_fd, o.stdout_fd);
  return *this;
}
Daemon::~Daemon() {
  process.stop(std::chrono::milliseconds(3000));
  if (stdout_fd >= 0) close(stdout_fd);
}

std::string Daemon::rest_of_output(std::chrono::milliseconds timeout) {
  return read_until(stdout_fd, Clock::now() + timeout, [](const std::string&) { return false; });
}

Daemon start_scheduler(const std::vector<std::string>& extra) {
  std::vector<std::string> argv{DSCHEDULER_PATH, "--host", "127.0.0.1", "--port", "0", "--log-level", "warn"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return start_daemon(argv, "distrib scheduler at ");
}

Daemon start_scheduler_at(std::uint16_t port, const std::vector<std::string>& extra) {
  std::vector<std::string> argv{DSCHEDULER_PATH, "--host", "127.0.0.1", "--port", std::to_string(port), "--log-level", "warn"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return start_daemon(argv, "distrib scheduler at ");
}

Daemon start_worker(const std::string& scheduler, const std::vector<std::string>& extra) {
  std::vector<std::string> argv{DWORKER_PATH, scheduler, "--host", "127.0.0.1", "--log-level", "warn"};
  if (std::find(extra.begin(), extra.end(), "--nthreads") == extra.end()) argv.insert(argv.end(), {"--nthreads", "1"});
  argv.insert(argv.end(), extra.begin(), extra.end());
  return start_daemon(argv, "distrib worker at ");
}

RunResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  // stderr goes to the same pipe as stdout: the child is started through a shell-free dup.
  std::vector<std::string> args{"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1"};
  args.insert(args.end(), argv.begin(), argv.end());
  auto child = detail::ChildProcess::spawn(args, {}, {}, fds[1]);
  close(fds[1]);
  auto deadline = Clock::now() + timeout;
  RunResult r;
  r.output = read_until(fds[0], deadline, [](const std::string&) { return false; });
  close(fds[0]);
  if (!child.wait(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()) + 1s)) {
    child.stop(std::chrono::milliseconds(0));
    r.exit_code = -1;
    return r;
  }
  auto d = child.exit_description();
  r.exit_code = d.rfind("exit code ", 0) == 0 ? std::stoi(d.substr(10)) : -2;
  return r;
}

Watched::Watched(Watched&& o) noexcept
    : process(std::move(o.process)), output_fd(std::exchange(o.output_fd, -1)), output(std::move(o.output)) {}

Watched::~Watched() {
  process.stop(std::chrono::milliseconds(3000));
  if (output_fd >= 0) close(output_fd);
}

std::size_t Watched::wait_for(const std::string& text, std::chrono::milliseconds timeout, std::size_t from) {
  auto found = [&] { return output.size() >= from ? output.find(text, from) : std::string::npos; };
  auto more = read_until(output_fd, Clock::now() + timeout, [&](const std::string& fresh) {
    return (output + fresh).find(text, from) != std::string::npos;
  });
  output += more;
  return found();
}

Watched spawn_watched(const std::vector<std::string>& argv) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  std::vector<std::string> args{"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1"};
  args.insert(args.end(), argv.begin(), argv.end());
  Watched w;
  w.process = detail::ChildProcess::spawn(args, {}, {}, fds[1]);
  close(fds[1]);
  w.output_fd = fds[0];
  return w;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto delay = std::chrono::milliseconds(1);
  while (!condition()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(delay);  // polling a condition, not waiting for time to pass
    delay = std::min(delay * 2, std::chrono::milliseconds(100));
  }
  return true;
}

RawExchange raw_exchange(const std::string& address, const std::string& bytes, std::chrono::milliseconds timeout) {
  auto [host, port] = detail::parse_address(address);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, host.c_str(), &sa.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    throw std::runtime_error("cannot connect to " + address);
  }
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    auto n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the peer may close before reading everything
    sent += static_cast<std::size_t>(n);
  }
  RawExchange r;
  auto deadline = Clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    auto n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      r.closed = true;
      break;
    }
    r.received.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return r;
}

std::string framed_handshake(unsigned version, int role) {
  detail::MessageBuilder mb;
  auto h = mb.root().initHandshake();
  h.setVersion(version);
  h.setRole(static_cast<proto::Role>(role));
  h.setName("test");
  std::vector<detail::OutMessage> msgs;
  msgs.push_back(mb.finish());
  std::vector<std::byte> staging;
  std::vector<std::span<const std::byte>> parts;
  detail::plan_write(msgs, staging, parts);
  std::string out;
  for (auto p : parts) out.append(reinterpret_cast<const char*>(p.data()), p.size());
  return out;
}

int worker_process_of(Daemon& nanny) {
  std::vector<int> children;
  EXPECT_TRUE(eventually([&] {
    children = child_pids(nanny.process.pid());
    return children.size() == 1;
  })) << children.size() << " children";
  return children.empty() ? -1 : children.front();
}

std::size_t keys_on_cluster(Client& client) {
  std::size_t n = 0;
  for (const auto& [worker, keys] : client.has_what()) n += keys.size();
  return n;
}

TempDir::TempDir(const std::string& prefix) {
  std::string templ = "/tmp/" + prefix + "-XXXXXX";
  if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed for " + templ);
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<int> child_pids(int parent) {
  std::vector<int> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (auto* e = readdir(d)) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream stat("/proc/" + std::string(e->d_name) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    auto close_paren = line.rfind(')');
    if (close_paren == std::string::npos) continue;
    std::istringstream rest(line.substr(close_paren + 2));
    char state;
    int ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent && state != 'Z') out.push_back(pid);
  }
  closedir(d);
  return out;
}

bool process_alive(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto close_paren = line.rfind(')');
  return close_paren != std::string::npos && line.size() > close_paren + 2 && line[close_paren + 2] != 'Z';
}

bool workers_back(Client& client, std::size_t workers, unsigned restarts, std::chrono::milliseconds timeout) {
  return eventually(
      [&] {
        auto info = client.scheduler_info().workers;
        unsigned total = 0;
        for (const auto& w : info) total += w.restarts;
        return info.size() == workers && total == restarts;
      },
      timeout);
}

std::map<std::string, int> worker_pids(Client& client) {
  std::map<std::string, int> pids;
  for (auto& [address, pid] : client.run(process_id, 0)) pids[address] = pid;
  return pids;
}

}  // namespace distrib::test
