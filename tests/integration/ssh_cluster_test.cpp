// SSHCluster against Debian's openssh-server, started by the test on loopback with fresh
// keys (as root); and --stop-on-stdin-eof, which stops a daemon whose ssh session ended.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <distrib/distrib.hpp>
#include <fstream>
#include <numeric>

#include "helpers.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

// A port that was free a moment ago (sshd cannot take port 0 and say which it got).
int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

struct Sshd {
  TempDir dir{"distrib-sshd"};
  int port = free_port();
  std::optional<Watched> daemon;
  std::vector<std::string> ssh_options;

  bool start(std::string& why) {
    const auto d = dir.str();
    for (const auto& key : {d + "/host_key", d + "/id"}) {
      auto r = run_command({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key});
      if (r.exit_code != 0) return why = "ssh-keygen failed: " + r.output, false;
    }
    std::filesystem::copy_file(d + "/id.pub", d + "/authorized_keys");
    std::ofstream(d + "/sshd_config") << "Port " << port << "\nListenAddress 127.0.0.1\nHostKey " << d
                                       << "/host_key\nAuthorizedKeysFile " << d << "/authorized_keys\nPidFile " << d
                                       << "/sshd.pid\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                                          "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
                                          "StrictModes no\nUsePAM no\n";
    std::filesystem::create_directories("/run/sshd");  // its privilege-separation directory
    daemon.emplace(spawn_watched({"/usr/sbin/sshd", "-D", "-e", "-f", d + "/sshd_config"}));
    if (daemon->wait_for("Server listening on 127.0.0.1", 30s) == std::string::npos)
      return why = "sshd did not start: " + daemon->output, false;
    ssh_options = {"-p", std::to_string(port), "-i", d + "/id", "-o", "StrictHostKeyChecking=no",
                   "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"};
    return true;
  }
};

TEST(SSHCluster, StartsASchedulerAndWorkersOverSshAndStopsThem) {
  if (geteuid() != 0 || access("/usr/sbin/sshd", X_OK) != 0 || access("/usr/bin/ssh", X_OK) != 0)
    GTEST_SKIP() << "needs root and Debian's openssh-server and openssh-client (scripts/test.sh installs them)";
  Sshd sshd;
  std::string why;
  ASSERT_TRUE(sshd.start(why)) << why;

  SSHClusterOptions o;
  o.ssh_options = sshd.ssh_options;
  o.scheduler_command = DSCHEDULER_PATH;
  o.scheduler_args = {"--host", "127.0.0.1", "--log-level", "warn"};
  o.worker_command = {DWORKER_PATH};
  o.worker_args = {"--host", "127.0.0.1", "--preload", TEST_TASKS_PATH, "--log-level", "warn"};
  o.nthreads = 1;
  o.scheduler_port = 0;
  o.dashboard_address = "none";
  std::string address;
  {
    SSHCluster cluster({"127.0.0.1", "127.0.0.1", "127.0.0.1"}, o);
    address = cluster.scheduler_address();
    EXPECT_EQ(cluster.n_workers(), 2);
    EXPECT_EQ(cluster.security().token.size(), 64u) << "a fresh token by default";
    Client client(cluster);
    client.wait_for_workers(2, 60s);
    std::vector<int> xs(200);
    std::iota(xs.begin(), xs.end(), 0);
    auto ys = client.gather(client.map(triple, xs));
    for (int i = 0; i < 200; ++i) ASSERT_EQ(ys[static_cast<std::size_t>(i)], 3 * i);
    // The token reached the daemons: a client without it is refused.
    ClientOptions stranger;
    stranger.security.token = "not-the-token";
    stranger.connect_timeout = 3s;
    EXPECT_THROW(Client(address, stranger), Error);
  }
  // Gone with the cluster object (its destructor waits for the sessions to end): nothing
  // answers at the scheduler's address any more.
  ClientOptions again;
  again.connect_timeout = 500ms;
  again.reconnect_timeout = 0ms;
  EXPECT_THROW(Client(address, again), CommError);
}

TEST(SSHCluster, AHostThatCannotBeReachedIsNamed) {
  SSHClusterOptions o;
  o.ssh = "/bin/false";  // an "ssh" that fails at once, as for an unknown host
  o.start_timeout = 20s;
  try {
    SSHCluster cluster({"nowhere.invalid", "nowhere.invalid"}, o);
    FAIL() << "started without ssh";
  } catch (const CommError& e) {
    EXPECT_NE(std::string(e.what()).find("scheduler on nowhere.invalid"), std::string::npos) << e.what();
  }
  EXPECT_THROW(SSHCluster({"only-one"}, o), std::invalid_argument);
}

TEST(StdinWatch, ADaemonStopsWhenItsInputCloses) {
  int in[2];
  ASSERT_EQ(pipe2(in, O_CLOEXEC), 0);  // else the child would hold the write end too
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  auto child = detail::ChildProcess::spawn({DSCHEDULER_PATH, "--host", "127.0.0.1", "--port", "0",
                                            "--dashboard-address", "none", "--stop-on-stdin-eof"},
                                           {}, {}, out[1], true, in[0]);
  close(in[0]);
  close(out[1]);
  std::string line;
  char c;
  while (line.find('\n') == std::string::npos && read(out[0], &c, 1) == 1) line += c;
  EXPECT_NE(line.find("distrib scheduler at "), std::string::npos) << line;
  EXPECT_TRUE(child.running());
  close(in[1]);  // the ssh session ends
  ASSERT_TRUE(child.wait(30s));
  EXPECT_EQ(child.exit_code(), 0) << child.exit_description();
  close(out[0]);
}

}  // namespace
}  // namespace distrib::test
