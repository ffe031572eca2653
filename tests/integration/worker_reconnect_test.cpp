// A real dworker against a fake scheduler that the test drives message by message: what the
// worker says on the wire when its scheduler goes away and comes back (held keys), when the
// scheduler removes it (reregister), and the runIds it echoes.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <distrib/distrib.hpp>
#include <stdexcept>
#include <tuple>

#include "comm/endpoint.hpp"
#include "comm/framing.hpp"
#include "comm/message.hpp"
#include "core/task_spec.hpp"
#include "helpers.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

using Clock = std::chrono::steady_clock;

/// One blocking connection speaking the framed protocol.
class WireSocket {
 public:
  explicit WireSocket(int fd) : fd_(fd) {}
  WireSocket(WireSocket&& o) noexcept : fd_(std::exchange(o.fd_, -1)), decoder_(std::move(o.decoder_)), inbox_(std::move(o.inbox_)) {}
  ~WireSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  static WireSocket connect_to(const std::string& address) {
    auto [host, port] = detail::parse_address(address);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      ::close(fd);
      throw std::runtime_error("cannot connect to " + address);
    }
    return WireSocket(fd);
  }
  void send(detail::OutMessage m) {
    std::vector<detail::OutMessage> msgs;
    msgs.push_back(std::move(m));
    std::vector<std::byte> staging;
    std::vector<std::span<const std::byte>> parts;
    detail::plan_write(msgs, staging, parts);
    for (auto p : parts) {
      std::size_t sent = 0;
      while (sent < p.size()) {
        auto n = ::send(fd_, p.data() + sent, p.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) throw std::runtime_error("send failed");
        sent += static_cast<std::size_t>(n);
      }
    }
  }
  /// The next message; throws on timeout or when the peer closes.
  detail::InMessage receive(std::chrono::milliseconds timeout = 30s) {
    auto deadline = Clock::now() + timeout;
    while (inbox_.empty()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) throw std::runtime_error("no message in time");
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      std::byte buf[65536];
      auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) throw std::runtime_error("the peer closed the connection");
      decoder_.feed(std::span<const std::byte>(buf, static_cast<std::size_t>(n)), inbox_);
    }
    auto m = std::move(inbox_.front());
    inbox_.erase(inbox_.begin());
    return m;
  }
  /// The next message that is not a heartbeat.
  detail::InMessage receive_skipping_heartbeats(std::chrono::milliseconds timeout = 30s) {
    auto deadline = Clock::now() + timeout;
    while (true) {
      auto m = receive(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
      detail::MessageReader mr(m);
      if (!mr.root().isHeartbeat()) return m;
    }
  }

 private:
  int fd_ = -1;
  detail::FrameDecoder decoder_;
  std::vector<detail::InMessage> inbox_;
};

struct Registration {
  std::string name;
  std::vector<std::tuple<std::string, std::string, std::uint64_t>> held;  // key, type, nbytes
};

/// Listens where a scheduler would and registers the workers that connect.
class FakeScheduler {
 public:
  explicit FakeScheduler(std::uint16_t port = 0) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd_, 8) != 0)
      throw std::runtime_error("fake scheduler cannot listen on port " + std::to_string(port));
    socklen_t len = sizeof sa;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
  }
  ~FakeScheduler() { ::close(fd_); }
  std::uint16_t port() const { return port_; }
  std::string address() const { return "tcp://127.0.0.1:" + std::to_string(port_); }

  /// Accepts a worker, exchanges handshakes and accepts its registration.
  std::pair<WireSocket, Registration> accept_worker(std::chrono::milliseconds timeout = 30s) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) throw std::runtime_error("no worker connected in time");
    WireSocket w(accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC));
    w.send(detail::make_handshake(proto::Role::SCHEDULER, "fake"));
    {
      auto hs = w.receive();
      detail::MessageReader mr(hs);
      if (!mr.root().isHandshake()) throw std::runtime_error("expected a handshake");
    }
    auto reg = w.receive();
    detail::MessageReader mr(reg);
    if (!mr.root().isRegisterWorker()) throw std::runtime_error("expected registerWorker");
    auto r = mr.root().getRegisterWorker();
    Registration out{r.getName(), {}};
    for (auto h : r.getHeld()) out.held.emplace_back(h.getKey(), h.getType(), h.getNbytes());
    detail::MessageBuilder mb;
    mb.root().initWorkerRegistered().setOk(true);
    w.send(mb.finish());
    return {std::move(w), std::move(out)};
  }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

detail::OutMessage compute_task(const std::string& key, const std::string& function, int arg, std::uint64_t run_id) {
  detail::MessageBuilder mb;
  auto list = mb.root().initComputeTasks(1);
  detail::TaskSpec spec;
  spec.key = key;
  spec.function = function;
  spec.args.push_back(detail::TaskArg{encode_value(arg)});
  detail::write_task_spec(mb, list[0].initSpec(), spec);
  list[0].setRunId(run_id);
  return mb.finish();
}

/// What a peer gets from the worker's data port for `key`: the value, or nullopt if missing.
std::optional<int> fetch_from_data_port(const std::string& worker_address, const std::string& key) {
  auto peer = WireSocket::connect_to(worker_address);
  peer.send(detail::make_handshake(proto::Role::PEER, "test-peer"));
  peer.receive();  // the worker's handshake
  detail::MessageBuilder mb;
  auto req = mb.root().initGetData();
  req.setId(1);
  req.initKeys(1).set(0, key);
  peer.send(mb.finish());
  auto reply = peer.receive();
  detail::MessageReader mr(reply);
  if (!mr.root().isDataReply()) throw std::runtime_error("expected a dataReply");
  auto values = mr.root().getDataReply().getValues();
  if (values.size() == 0) return std::nullopt;
  return decode_value<int>(mr.value(values[0].getValue()));
}

Watched start_worker_on(const std::string& scheduler, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv{DWORKER_PATH, scheduler, "--host", "127.0.0.1", "--nthreads", "1", "--preload",
                                TEST_TASKS_PATH, "--name", "w1"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return spawn_watched(argv);
}

std::string worker_address_of(Watched& w) {
  const std::string marker = "distrib worker at ";
  auto at = w.wait_for(marker);
  if (at == std::string::npos) throw std::runtime_error("the worker did not announce itself: " + w.output);
  auto end = w.wait_for("\n", 30s, at);
  return w.output.substr(at + marker.size(), end - at - marker.size());
}

TEST(WorkerAgainstAFakeScheduler, ReportsEchoTheRunIdOfTheirComputeTask) {
  FakeScheduler fake;
  auto worker = start_worker_on(fake.address());
  auto [conn, reg] = fake.accept_worker();
  EXPECT_EQ(reg.name, "w1");
  EXPECT_TRUE(reg.held.empty());
  conn.send(compute_task("t", "triple", 2, 77));
  auto m = conn.receive_skipping_heartbeats();
  detail::MessageReader mr(m);
  ASSERT_TRUE(mr.root().isTasksFinished());
  auto fin = mr.root().getTasksFinished();
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_EQ(std::string(fin[0].getKey()), "t");
  EXPECT_EQ(fin[0].getRunId(), 77u);

  conn.send(compute_task("bad", "no_such_function", 0, 78));
  auto e = conn.receive_skipping_heartbeats();
  detail::MessageReader er(e);
  ASSERT_TRUE(er.root().isTaskErred());
  EXPECT_EQ(er.root().getTaskErred()[0].getRunId(), 78u);

  detail::MessageBuilder steal;
  steal.root().setStealRequest("t");  // finished: not released, held under runId 77
  conn.send(steal.finish());
  auto s = conn.receive_skipping_heartbeats();
  detail::MessageReader sr(s);
  ASSERT_TRUE(sr.root().isStealResponse());
  EXPECT_FALSE(sr.root().getStealResponse().getReleased());
  EXPECT_EQ(sr.root().getStealResponse().getRunId(), 77u);
}

TEST(WorkerAgainstAFakeScheduler, ALostSchedulerIsReachedAgainWithTheKeysTheWorkerHolds) {
  auto fake = std::make_unique<FakeScheduler>();
  const auto port = fake->port();
  auto worker = start_worker_on(fake->address(), {"--death-timeout", "60"});
  std::string address;
  {
    auto [conn, reg] = fake->accept_worker();
    address = worker_address_of(worker);  // announced once registered
    conn.send(compute_task("kept", "triple", 5, 1));
    auto m = conn.receive_skipping_heartbeats();
    detail::MessageReader mr(m);
    ASSERT_TRUE(mr.root().isTasksFinished());
    // A long task still running when the scheduler goes: it is asked to stop, not reported.
    conn.send(compute_task("long", "wait_for_stop", 120'000, 2));
    ASSERT_NE(worker.wait_for("started wait_for_stop"), std::string::npos) << worker.output;
  }  // the scheduler's connection closes...
  fake.reset();  // ...and nobody listens any more
  ASSERT_NE(worker.wait_for("lost the scheduler"), std::string::npos) << worker.output;
  // Peers still get its data meanwhile.
  EXPECT_EQ(fetch_from_data_port(address, "kept"), std::optional<int>(15));

  FakeScheduler again(port);
  auto [conn, reg] = again.accept_worker();
  EXPECT_EQ(reg.name, "w1");
  ASSERT_EQ(reg.held.size(), 1u);
  EXPECT_EQ(std::get<0>(reg.held[0]), "kept");
  EXPECT_EQ(std::get<1>(reg.held[0]), encode_value(15).type);
  EXPECT_EQ(std::get<2>(reg.held[0]), encode_value(15).bytes.size());
  // The new life's first report is its own task: nothing of the old one (the stopped task).
  conn.send(compute_task("fresh", "triple", 3, 9));
  auto m = conn.receive_skipping_heartbeats();
  detail::MessageReader mr(m);
  ASSERT_TRUE(mr.root().isTasksFinished());
  ASSERT_EQ(mr.root().getTasksFinished().size(), 1u);
  EXPECT_EQ(std::string(mr.root().getTasksFinished()[0].getKey()), "fresh");
  EXPECT_EQ(mr.root().getTasksFinished()[0].getRunId(), 9u);
}

TEST(WorkerAgainstAFakeScheduler, ReregisterDropsEverythingAndRegistersAsANewWorker) {
  FakeScheduler fake;
  auto worker = start_worker_on(fake.address());
  std::string address;
  {
    auto [conn, reg] = fake.accept_worker();
    address = worker_address_of(worker);  // announced once registered
    conn.send(compute_task("old", "triple", 4, 1));
    auto m = conn.receive_skipping_heartbeats();
    detail::MessageReader mr(m);
    ASSERT_TRUE(mr.root().isTasksFinished());
    conn.send(compute_task("long", "wait_for_stop", 120'000, 2));
    ASSERT_NE(worker.wait_for("started wait_for_stop"), std::string::npos) << worker.output;
    detail::MessageBuilder rr;
    rr.root().setReregister("silent for longer than the worker TTL");
    conn.send(rr.finish());
  }  // and the scheduler closes the connection, as it does after reregister
  auto [conn, reg] = fake.accept_worker();
  EXPECT_EQ(reg.name, "w1");
  EXPECT_TRUE(reg.held.empty());
  EXPECT_EQ(fetch_from_data_port(address, "old"), std::nullopt);
  // The thread of the stopped task is free again, and only new work is reported.
  conn.send(compute_task("fresh", "triple", 1, 3));
  auto m = conn.receive_skipping_heartbeats();
  detail::MessageReader mr(m);
  ASSERT_TRUE(mr.root().isTasksFinished());
  ASSERT_EQ(mr.root().getTasksFinished().size(), 1u);
  EXPECT_EQ(std::string(mr.root().getTasksFinished()[0].getKey()), "fresh");
}

TEST(WorkerAgainstAFakeScheduler, AWorkerWhoseSchedulerNeverComesBackExitsWithCode1) {
  auto fake = std::make_unique<FakeScheduler>();
  auto worker = start_worker_on(fake->address(), {"--death-timeout", "0.5"});
  { auto registered = fake->accept_worker(); }
  fake.reset();
  ASSERT_TRUE(worker.process.wait(30s));
  EXPECT_EQ(worker.process.exit_description(), "exit code 1");
  worker.wait_for("did not come back", 5s);
  EXPECT_NE(worker.output.find("did not come back"), std::string::npos) << worker.output;
}

}  // namespace
}  // namespace distrib::test
