// The dashboard's HTTP server when attacked (issue 17, parts 4 and 5), and its token.
//
// On a scheduler's dashboard (default limits): a hundred slow peers, connected and accepted,
// do not delay /health; a request line over 8 KiB is 414 and a header block over 16 KiB is
// 431; a peer that never finishes its request is answered 408 and closed after the 5 s
// request deadline; story keys are percent-decoded. On HttpServer itself, with small limits:
// keep-alive, pipelining and HEAD; renders off the io thread; idle and slow peers closed;
// past max_connections, 503. With a token: every path but /health wants it, through
// ?token= (a cookie and a redirect), the cookie, or a Bearer header.
#include <dirent.h>
#include <gtest/gtest.h>

#include <distrib/distrib.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <future>
#include <memory>

#include "comm/auth.hpp"
#include "dashboard/dashboard.hpp"
#include "dashboard/http_server.hpp"
#include "helpers.hpp"
#include "http_client.hpp"
#include "tasks_for_tests.hpp"

namespace distrib::test {
namespace {

using detail::HttpLimits;
using detail::HttpRequest;
using detail::HttpResponse;
using detail::HttpServer;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

// Open file descriptors of a process.
std::size_t open_fds(int pid) {
  std::size_t n = 0;
  if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

// The status of the one response in what a peer received, or 0.
int status_of(const RawPeer& peer) {
  auto r = parse_http_reply(peer.received());
  return r ? r->status : 0;
}

struct DashboardScheduler {
  Daemon scheduler = start_scheduler({"--dashboard-address", "127.0.0.1:0"});
  std::unique_ptr<Client> client = std::make_unique<Client>(scheduler.address);
  int port = port_of_link(client->dashboard_link());
  ~DashboardScheduler() {
    if (client) client->close();
  }
};

TEST(DashboardHttp, HealthAnswersWithinASecondWithAHundredSlowPeersConnected) {
  DashboardScheduler s;
  ASSERT_GT(s.port, 0);
  const int pid = s.scheduler.process.pid();
  const std::size_t fds_before = open_fds(pid);
  std::vector<std::unique_ptr<RawPeer>> peers;
  for (int i = 0; i < 100; ++i) {
    peers.push_back(std::make_unique<RawPeer>(s.port));
    ASSERT_TRUE(peers.back()->connected()) << i;
    ASSERT_TRUE(peers.back()->send("GET /stat")) << i;  // a request line, partly
  }
  // Genuinely connected: the scheduler has accepted every one (a descriptor each).
  ASSERT_TRUE(eventually([&] { return open_fds(pid) >= fds_before + 100; }, 30s))
      << open_fds(pid) << " descriptors, " << fds_before << " before";
  for (auto& p : peers) ASSERT_TRUE(p->send("u"));  // one more byte each, and then nothing
  const auto start = Clock::now();
  auto health = http_get(s.port, "/health");
  const auto took = Clock::now() - start;
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok");
  EXPECT_LT(took, 1s) << std::chrono::duration<double>(took).count() << " s";
  // The pages answer too, while the peers are still there.
  auto status = http_get(s.port, "/api/v1/status");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->status, 200);
}

TEST(DashboardHttp, OversizedRequestLineIs414AndOversizedHeaderBlockIs431) {
  DashboardScheduler s;
  const HttpLimits limits;  // the dashboard's
  {
    RawPeer peer(s.port);
    ASSERT_TRUE(peer.send("GET /" + std::string(limits.max_request_line_bytes + 100, 'a') + " HTTP/1.1\r\n\r\n"));
    EXPECT_TRUE(peer.wait_for_close(30s));
    EXPECT_EQ(status_of(peer), 414) << peer.received().substr(0, 200);
  }
  {  // no end of line at all: decided once the limit is past
    RawPeer peer(s.port);
    ASSERT_TRUE(peer.send("GET /" + std::string(limits.max_request_line_bytes + 100, 'a')));
    EXPECT_TRUE(peer.wait_for_close(30s));
    EXPECT_EQ(status_of(peer), 414) << peer.received().substr(0, 200);
  }
  {
    RawPeer peer(s.port);
    std::string headers;
    while (headers.size() <= limits.max_header_bytes) headers += "X-Padding: " + std::string(100, 'p') + "\r\n";
    ASSERT_TRUE(peer.send("GET /health HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n"));
    EXPECT_TRUE(peer.wait_for_close(30s));
    EXPECT_EQ(status_of(peer), 431) << peer.received().substr(0, 200);
  }
  // Just under the limits: served.
  auto long_path = http_get(s.port, "/" + std::string(limits.max_request_line_bytes - 100, 'a'));
  ASSERT_TRUE(long_path);
  EXPECT_EQ(long_path->status, 404);
  std::vector<std::pair<std::string, std::string>> many;
  for (std::size_t bytes = 0; bytes + 300 < limits.max_header_bytes; bytes += 113)  // "X-Padding: " 100 bytes CRLF
    many.emplace_back("X-Padding", std::string(100, 'p'));
  auto long_headers = http_get(s.port, "/health", many);
  ASSERT_TRUE(long_headers);
  EXPECT_EQ(long_headers->status, 200);
}

TEST(DashboardHttp, SlowPeerIsAnswered408AndClosedAfterTheRequestDeadline) {
  DashboardScheduler s;
  const HttpLimits limits;
  RawPeer slow(s.port), silent(s.port);
  const auto start = Clock::now();
  ASSERT_TRUE(slow.send("GET /status HTTP/1.1\r\nHost: x\r\n"));  // and never the empty line
  ASSERT_TRUE(slow.send("X"));
  EXPECT_TRUE(slow.wait_for_close(limits.request_deadline + 30s));
  EXPECT_GE(Clock::now() - start, limits.request_deadline - 100ms);  // not before its time
  EXPECT_EQ(status_of(slow), 408) << slow.received();
  // One that sent nothing is closed too, without an answer.
  EXPECT_TRUE(silent.wait_for_close(30s));
  EXPECT_EQ(silent.received(), "");
}

TEST(DashboardHttp, StoryKeysArePercentDecodedAndOtherMethodsAre405) {
  DashboardScheduler s;
  auto story = http_get(s.port, "/api/v1/story/" + detail::percent_encode("odd/key ?&%\"x"));
  ASSERT_TRUE(story);
  ASSERT_EQ(story->status, 200) << story->body;
  EXPECT_EQ(json::parse(story->body)["key"], "odd/key ?&%\"x");
  EXPECT_EQ(story->header("cache-control"), "no-store");
  auto post = http_request(s.port, "/status", {}, "POST");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->header("allow"), "GET, HEAD");
  auto head = http_request(s.port, "/metrics", {}, "HEAD");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->body, "");
  EXPECT_GT(std::stoul(head->header("content-length")), 0u);
  auto root = http_get(s.port, "/");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->status, 302);
  EXPECT_EQ(root->header("location"), "/status");
  auto missing = http_get(s.port, "/nothing/here");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->body, "not found\n");
}

// ---- HttpServer itself, with small limits ----

HttpLimits quick_limits() {
  HttpLimits l;
  l.request_deadline = 300ms;
  l.idle_keep_alive = 600ms;
  l.max_connections = 4;
  return l;
}

TEST(HttpServer, KeepAlivePipeliningAndHeadOnOneConnection) {
  HttpServer server({.host = "127.0.0.1"}, [](const HttpRequest& r) {
    return HttpResponse{.body = "path " + r.path + (r.param("q") ? " q=" + *r.param("q") : "")};
  });
  server.start();
  RawPeer peer(server.port());
  // Two requests in one write: two answers, in order.
  ASSERT_TRUE(peer.send("GET /a?q=1%202 HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(peer.wait_for_replies(2, 30s)) << peer.received();
  std::size_t used = 0;
  auto first = parse_http_reply(peer.received(), &used);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->body, "path /a q=1 2");
  std::size_t used_second = 0;
  auto second = parse_http_reply(peer.received().substr(used), &used_second);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body, "path /b");
  used += used_second;
  EXPECT_EQ(peer.received().size(), used);
  // HEAD: the head of a GET (its Content-Length), no body.
  ASSERT_TRUE(peer.send("HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(peer.wait_for_text("\r\n\r\n", used, 30s));
  auto head = parse_http_reply(peer.received().substr(used), nullptr, true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("content-length"), "7");
  used = peer.received().find("\r\n\r\n", used) + 4;
  // The same connection serves a third request, and closes as asked.
  ASSERT_TRUE(peer.send("GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  EXPECT_TRUE(peer.wait_for_close(30s));
  const std::string last = peer.received().substr(used);
  EXPECT_EQ(last.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << "bytes after the HEAD's head: " << last;
  EXPECT_NE(last.find("Connection: close"), std::string::npos);
  EXPECT_NE(last.find("path /c"), std::string::npos);
}

TEST(HttpServer, RendersRunOffTheIoThread) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  HttpServer server({.host = "127.0.0.1", .render_threads = 1}, [released](const HttpRequest& r) {
    if (r.path != "/slow") return HttpResponse{.body = "quick"};
    return HttpResponse{.render = [released](HttpResponse& res) {
      released.wait_for(60s);
      res.body = "rendered";
    }};
  });
  server.start();
  auto slow = std::async(std::launch::async, [&] { return http_request(server.port(), "/slow", {}, "GET", 60s); });
  // While the only render thread is held, the io thread still answers.
  auto quick = http_get(server.port(), "/quick");
  ASSERT_TRUE(quick);
  EXPECT_EQ(quick->body, "quick");
  release.set_value();
  auto rendered = slow.get();
  ASSERT_TRUE(rendered);
  EXPECT_EQ(rendered->body, "rendered");
}

TEST(HttpServer, SlowAndIdlePeersAreClosedAndPastTheLimitIs503) {
  HttpServer server({.host = "127.0.0.1", .limits = quick_limits()}, [](const HttpRequest&) { return HttpResponse{.body = "ok"}; });
  server.start();
  {
    RawPeer drip(server.port());
    ASSERT_TRUE(drip.send("GET / HT"));
    EXPECT_TRUE(drip.wait_for_close(30s));
    EXPECT_EQ(status_of(drip), 408);
  }
  {  // answered, then idle past idle_keep_alive: closed
    RawPeer idle(server.port());
    ASSERT_TRUE(idle.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_TRUE(idle.wait_for_replies(1, 30s));
    const auto answered = Clock::now();
    EXPECT_TRUE(idle.wait_for_close(30s));
    EXPECT_GE(Clock::now() - answered, 500ms);
  }
  ASSERT_TRUE(eventually([&] { return server.connections() == 0; }));
  std::vector<std::unique_ptr<RawPeer>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<RawPeer>(server.port()));
    ASSERT_TRUE(held.back()->send("G"));
  }
  ASSERT_TRUE(eventually([&] { return server.connections() == 4; }));
  RawPeer extra(server.port());
  EXPECT_TRUE(extra.wait_for_close(30s));
  EXPECT_EQ(status_of(extra), 503) << extra.received();
  held.clear();  // they go (or time out): there is room again
  ASSERT_TRUE(eventually([&] { return server.connections() == 0; }));
  auto r = http_get(server.port(), "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST(HttpServer, StopsBeforeStartRightAfterItAndTwice) {
  {
    HttpServer never({.host = "127.0.0.1"}, [](const HttpRequest&) { return HttpResponse{}; });
    never.stop();
  }
  for (int i = 0; i < 20; ++i) {
    HttpServer server({.host = "127.0.0.1"}, [](const HttpRequest&) { return HttpResponse{}; });
    server.start();
    server.stop();
    server.stop();
  }
  // A port in use is refused (no SO_REUSEPORT sharing).
  HttpServer first({.host = "127.0.0.1"}, [](const HttpRequest&) { return HttpResponse{}; });
  EXPECT_THROW(HttpServer({.host = "127.0.0.1", .port = first.port()}, [](const HttpRequest&) { return HttpResponse{}; }),
               CommError);
}

// ---- the token ----

struct TokenScope {
  explicit TokenScope(const std::string& token) { detail::auth::set_process_token(token); }
  ~TokenScope() { detail::auth::set_process_token(""); }
};

TEST(DashboardToken, EveryPathButHealthWantsTheToken) {
  const std::string token = detail::auth::generate_token();
  TokenScope scope(token);
  LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1, .processes = false, .dashboard_address = "127.0.0.1:0"});
  Client client(cluster);
  EXPECT_EQ(client.submit(inc, 1).result(), 2);
  const std::string link = client.dashboard_link();
  ASSERT_NE(link, "");
  EXPECT_EQ(link.substr(link.find('?')), "?token=" + token) << link;
  const int port = port_of_link(link);

  // Without it: 403 with a line saying where the link is, and nothing of the cluster.
  for (const char* path : {"/status", "/workers", "/api/v1/status", "/api/v1/tasks?since=0", "/metrics",
                           "/api/v1/story/x", "/", "/no/such/page"}) {
    auto r = http_get(port, path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 403) << path;
    EXPECT_NE(r->body.find("dashboard_link()"), std::string::npos) << r->body;
    EXPECT_EQ(r->body.find("worker"), std::string::npos) << path;
    EXPECT_EQ(r->header("set-cookie"), "") << path;
  }
  auto health = http_get(port, "/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  // ?token=: a cookie for the pages' own requests, and the same URL without the token.
  auto entry = http_get(port, target_of_link(link));
  ASSERT_TRUE(entry);
  EXPECT_EQ(entry->status, 302);
  EXPECT_EQ(entry->header("location"), "/status");
  const std::string cookie = entry->header("set-cookie");
  const std::string name = "distrib-dashboard-" + std::to_string(port) + "=";
  ASSERT_EQ(cookie.rfind(name, 0), 0u) << cookie;
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos) << cookie;
  EXPECT_EQ(cookie.find(token), std::string::npos) << "the cookie is not the cluster's token";
  const std::string pair = cookie.substr(0, cookie.find(';'));
  auto other = http_get(port, "/tasks?since=1&token=" + token + "&x=y");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->header("location"), "/tasks?since=1&x=y");

  // The cookie works, with others around it.
  auto page = http_get(port, "/status", {{"Cookie", "a=b; " + pair + "; c=d"}});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("<html"), std::string::npos);
  EXPECT_TRUE(eventually([&] {  // the worker is in once the next snapshot is out
    auto api = http_get(port, "/api/v1/status", {{"Cookie", pair}});
    return api && api->status == 200 && json::parse(api->body)["totals"]["workers"] == 1;
  }));

  // Bearer, for Prometheus.
  auto metrics = http_get(port, "/metrics", {{"Authorization", "Bearer " + token}});
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("distrib_tasks_completed_total"), std::string::npos);

  // Wrong ones: 403.
  const std::string wrong = detail::auth::generate_token();
  for (const auto& [header, value] : std::vector<std::pair<std::string, std::string>>{
           {"Authorization", "Bearer " + wrong},
           {"Authorization", "Bearer " + token.substr(0, 63)},
           {"Authorization", "Bearer"},
           {"Cookie", name + detail::auth::dashboard_cookie(wrong)},
           {"Cookie", name + token},                                          // the token is not the cookie
           {"Cookie", "distrib-dashboard-1=" + pair.substr(name.size())}}) {  // another port's
    auto r = http_get(port, "/metrics", {{header, value}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 403) << header << ": " << value;
  }
  auto wrong_query = http_get(port, "/status?token=" + wrong);
  ASSERT_TRUE(wrong_query);
  EXPECT_EQ(wrong_query->status, 403);
  EXPECT_EQ(wrong_query->header("set-cookie"), "");
  auto empty_query = http_get(port, "/status?token=");
  ASSERT_TRUE(empty_query);
  EXPECT_EQ(empty_query->status, 403);
  client.shutdown();
}

TEST(DashboardToken, LinkWithoutATokenHasNone) {
  LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1, .processes = false, .dashboard_address = "127.0.0.1:0"});
  Client client(cluster);
  const std::string link = client.dashboard_link();
  EXPECT_EQ(link.find('?'), std::string::npos) << link;
  auto r = http_get(port_of_link(link), "/api/v1/status");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST(DashboardToken, TokenCharactersAreEscapedInTheLink) {
  TokenScope scope("a b&c=d/é");
  LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1, .processes = false, .dashboard_address = "127.0.0.1:0"});
  Client client(cluster);
  const std::string link = client.dashboard_link();
  EXPECT_EQ(link.substr(link.find('?')), "?token=a%20b%26c%3Dd%2F%C3%A9") << link;
  auto entry = http_get(port_of_link(link), target_of_link(link));
  ASSERT_TRUE(entry);
  EXPECT_EQ(entry->status, 302);
  EXPECT_EQ(entry->header("location"), "/status");
  client.shutdown();
}

}  // namespace
}  // namespace distrib::test
