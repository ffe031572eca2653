// Authentication by a shared token (issue 17, part 3): daemons started with
// --auth-token-file serve only peers that prove they hold the token; a client with the wrong
// token or none is refused, with a logged reason, while the daemons keep serving a
// legitimate client.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <distrib/distrib.hpp>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "comm/auth.hpp"
#include "helpers.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

namespace fs = std::filesystem;

/// The process's token for one scope (the test's client side), cleared afterwards.
struct TokenScope {
  explicit TokenScope(const std::string& token) { detail::auth::set_process_token(token); }
  ~TokenScope() { detail::auth::set_process_token(""); }
};

class TokenFile {
 public:
  explicit TokenFile(const std::string& token) {
    char tmpl[] = "/tmp/distrib-token-XXXXXX";
    int fd = ::mkstemp(tmpl);
    path_ = tmpl;
    ::close(fd);
    std::ofstream(path_) << token << "\n";
  }
  ~TokenFile() { fs::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool refused(const std::string& address) {
  try {
    Client c(address, {.connect_timeout = 5s, .reconnect_timeout = 0s});
    return false;
  } catch (const std::exception&) {
    return true;
  }
}

TEST(Auth, OnlyPeersWithTheTokenAreServed) {
  const std::string token = detail::auth::generate_token();
  ASSERT_EQ(token.size(), 64u);
  TokenFile file(token);
  auto scheduler = start_scheduler({"--auth-token-file", file.path()});
  auto worker = start_worker(scheduler.address, {"--preload", TEST_TASKS_PATH, "--auth-token-file", file.path()});
  {
    TokenScope wrong("not-the-token");
    EXPECT_TRUE(refused(scheduler.address)) << "a client with the wrong token";
  }
  {
    TokenScope none("");
    EXPECT_TRUE(refused(scheduler.address)) << "a client without a token";
  }
  // Random bytes are closed too: no handshake parsed, nothing learned but a nonce.
  auto raw = raw_exchange(scheduler.address, std::string(100, 'x'), 15s);
  EXPECT_TRUE(raw.closed);
  EXPECT_LE(raw.received.size(), detail::auth::kHelloBytes) << "only our hello goes to an unproven peer";

  TokenScope right(token);
  Client client(scheduler.address, {.connect_timeout = 10s});
  client.wait_for_workers(1, 30s);
  std::vector<int> xs(100);
  std::iota(xs.begin(), xs.end(), 0);
  auto ys = client.gather(client.map(triple, xs));
  for (std::size_t i = 0; i < xs.size(); ++i) ASSERT_EQ(ys[i], 3 * xs[i]);
  // Worker-to-worker and client-to-worker data ports check the token too: a gather just
  // read results from the worker's data port.
  EXPECT_EQ(client.scheduler_info().workers.size(), 1u);
}

TEST(Auth, AWorkerWithTheWrongTokenNeverRegisters) {
  const std::string token = detail::auth::generate_token();
  TokenFile file(token), other(detail::auth::generate_token());
  auto scheduler = start_scheduler({"--auth-token-file", file.path()});
  auto intruder = spawn_watched({DWORKER_PATH, scheduler.address, "--no-nanny", "--auth-token-file", other.path(),
                                 "--death-timeout", "1", "--timeout", "2"});
  // Its proof and the scheduler's differ: each end closes, saying why.
  EXPECT_NE(intruder.wait_for("wrong auth token", 30s), std::string::npos) << intruder.output;
  TokenScope right(token);
  Client client(scheduler.address, {.connect_timeout = 10s});
  EXPECT_EQ(client.scheduler_info().workers.size(), 0u);
}

}  // namespace
}  // namespace distrib::test
