// TLS between real daemons and clients (issue 17, part 2) and protected mode (part 4): a
// tls:// cluster serves only peers with a certificate of its CA, and each refused peer leaves
// the daemon serving a legitimate client; a daemon refuses to listen unprotected off
// loopback unless told --insecure.
#include <gtest/gtest.h>

#include <distrib/distrib.hpp>
#include <fstream>
#include <numeric>

#include "comm/auth.hpp"
#include "comm/endpoint.hpp"
#include "comm/tls.hpp"
#include "helpers.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

/// A CA, a certificate and its key written to files, as an operator's would be.
struct TlsFiles {
  TempDir dir{"distrib-tls"};
  std::string ca, cert, key;
  explicit TlsFiles(const detail::TemporaryCredentials& c)
      : ca(dir.str() + "/ca.pem"), cert(dir.str() + "/cert.pem"), key(dir.str() + "/key.pem") {
    std::ofstream(ca) << c.ca_pem;
    std::ofstream(cert) << c.cert_pem;
    std::ofstream(key) << c.key_pem;
  }
  std::vector<std::string> args() const { return {"--tls-ca-file", ca, "--tls-cert", cert, "--tls-key", key}; }
  Security security() const {
    Security s;
    s.tls_ca_file = ca;
    s.tls_cert = cert;
    s.tls_key = key;
    return s;
  }
};

detail::TemporaryCredentials fresh_credentials() { return detail::tls_backend().make_temporary(-60, 3600); }

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

/// Why a client with `security` cannot connect to `address`, or "" if it could.
std::string refusal(const std::string& address, const Security& security) {
  try {
    Client c(address, {.connect_timeout = 5s, .reconnect_timeout = 0s, .security = security});
    return "";
  } catch (const std::exception& e) {
    return e.what()[0] ? e.what() : "refused";
  }
}

void expect_work_done(Client& client) {
  std::vector<int> xs(50);
  std::iota(xs.begin(), xs.end(), 0);
  auto ys = client.gather(client.map(triple, xs));  // results come from the worker's data port
  for (std::size_t i = 0; i < xs.size(); ++i) ASSERT_EQ(ys[i], 3 * xs[i]);
  std::vector<double> big(1 << 20, 1.5);
  EXPECT_EQ(client.scatter(big).result(60s), big);
}

TEST(TlsCluster, ASchedulerAWorkerAndAClientWorkOverMutualTls) {
  // The cluster trusts two CAs: its own, and one whose only certificate has expired.
  auto expired = detail::tls_backend().make_temporary(-7200, -3600);
  auto own = fresh_credentials();
  own.ca_pem += expired.ca_pem;
  expired.ca_pem = own.ca_pem;
  TlsFiles files(own);
  auto scheduler = spawn_watched(
      with({DSCHEDULER_PATH, "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "none"}, files.args()));
  auto at = scheduler.wait_for("distrib scheduler at ");
  ASSERT_NE(at, std::string::npos) << scheduler.output;
  auto start = at + std::string("distrib scheduler at ").size();
  const std::string address = scheduler.output.substr(start, scheduler.output.find('\n', start) - start);
  ASSERT_EQ(address.rfind("tls://", 0), 0u) << address;
  auto worker = start_worker(address, with({"--preload", TEST_TASKS_PATH}, files.args()));

  // Each refused peer is closed with a logged reason; the scheduler goes on serving.
  EXPECT_NE(refusal(address, {}).find("TLS"), std::string::npos) << "no TLS files: refused before connecting";
  TlsFiles other(fresh_credentials());
  EXPECT_NE(refusal(address, other.security()), "") << "a certificate of another CA";
  TlsFiles expired_files(expired);
  EXPECT_NE(refusal(address, expired_files.security()), "") << "an expired certificate";
  EXPECT_NE(scheduler.wait_for("certificate has expired", 30s), std::string::npos) << scheduler.output;
  const std::string plaintext = "tcp://" + address.substr(std::string("tls://").size());
  EXPECT_NE(refusal(plaintext, {}), "") << "plaintext to a TLS port";
  EXPECT_NE(scheduler.wait_for("TLS handshake failed", 30s), std::string::npos) << scheduler.output;

  Client client(address, {.connect_timeout = 10s, .security = files.security()});
  client.wait_for_workers(1, 30s);
  expect_work_done(client);
  EXPECT_EQ(client.scheduler_info().workers.at(0).address.rfind("tls://", 0), 0u) << "the data port is TLS too";
}

TEST(TlsCluster, ATlsClientIsRefusedByAPlaintextScheduler) {
  auto scheduler = start_scheduler();
  TlsFiles files(fresh_credentials());
  const std::string as_tls = "tls://" + scheduler.address.substr(std::string("tcp://").size());
  EXPECT_NE(refusal(as_tls, files.security()), "");
  EXPECT_EQ(refusal(scheduler.address, {}), "") << "the scheduler still serves plaintext clients";
}

TEST(TlsCluster, ALocalClusterWithTemporaryCredentialsInBothModes) {
  for (bool processes : {true, false}) {
    LocalClusterOptions o;
    o.n_workers = 1;
    o.threads_per_worker = 1;
    o.processes = processes;
    o.dashboard_address = "none";
    o.security = Security::temporary();
    LocalCluster cluster(o);
    ASSERT_EQ(cluster.scheduler_address().rfind("tls://", 0), 0u) << cluster.scheduler_address();
    Client client(cluster);
    client.wait_for_workers(1, 30s);
    EXPECT_EQ(client.submit(triple, 7).result(60s), 21) << "processes = " << processes;
    EXPECT_NE(refusal(cluster.scheduler_address(), {}), "") << "a client without the cluster's credentials";
  }
}

TEST(ProtectedMode, ADaemonOffLoopbackWithoutTlsOrATokenRefusesAndSaysHowToFixIt) {
  auto refused = run_command({DSCHEDULER_PATH, "--host", "0.0.0.0", "--port", "0", "--dashboard-address", "none"});
  EXPECT_NE(refused.exit_code, 0);
  for (const char* advice : {"protected mode", "--auth-token-file", "--tls-ca-file", "--insecure", "127.0.0.1"})
    EXPECT_NE(refused.output.find(advice), std::string::npos) << advice << " in: " << refused.output;

  auto insecure = spawn_watched(
      {DSCHEDULER_PATH, "--host", "0.0.0.0", "--port", "0", "--dashboard-address", "none", "--insecure"});
  auto at = insecure.wait_for("distrib scheduler at ");
  ASSERT_NE(at, std::string::npos) << insecure.output;
  auto start = at + std::string("distrib scheduler at ").size();
  auto port = detail::parse_address(insecure.output.substr(start, insecure.output.find('\n', start) - start)).second;
  const std::string address = "tcp://127.0.0.1:" + std::to_string(port);

  // A worker serving its data port on every interface is held to the same rule.
  auto worker = run_command({DWORKER_PATH, address, "--host", "0.0.0.0", "--no-nanny", "--timeout", "5"});
  EXPECT_NE(worker.exit_code, 0);
  EXPECT_NE(worker.output.find("protected mode"), std::string::npos) << worker.output;
  auto escaped = spawn_watched({DWORKER_PATH, address, "--preload", TEST_TASKS_PATH, "--host", "0.0.0.0", "--insecure",
                                "--nthreads", "1"});
  ASSERT_NE(escaped.wait_for("distrib worker at "), std::string::npos) << escaped.output;
  Client client(address, {.connect_timeout = 10s});
  client.wait_for_workers(1, 30s);
  EXPECT_EQ(client.submit(triple, 2).result(60s), 6);
}

TEST(ProtectedMode, ATokenIsProtectionEnough) {
  TempDir dir;
  const std::string token_file = dir.str() + "/token";
  std::ofstream(token_file) << detail::auth::generate_token() << "\n";
  auto scheduler = spawn_watched({DSCHEDULER_PATH, "--host", "0.0.0.0", "--port", "0", "--dashboard-address", "none",
                                  "--auth-token-file", token_file});
  EXPECT_NE(scheduler.wait_for("distrib scheduler at "), std::string::npos) << scheduler.output;
}

}  // namespace
}  // namespace distrib::test
