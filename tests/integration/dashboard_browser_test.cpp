// The dashboard in a real browser: headless Chromium (Debian's `chromium`, installed by
// scripts/test.sh) opens /status while tasks run and must show the workers, their memory bars
// and a progress bar for the running prefix; /workers must show the memory columns; and the
// pages as the scheduler embeds them, fed canned figures, must draw the managed, unmanaged and
// spilled parts, the paused badge and the orange and red levels.
#include <gtest/gtest.h>
#include <unistd.h>

#include <distrib/distrib.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include "comm/auth.hpp"
#include "dashboard/http_server.hpp"
#include "helpers.hpp"
#include "http_client.hpp"
#include "tasks_for_tests.hpp"

using namespace distrib::test;
using nlohmann::json;

namespace {
std::string chromium_path() {
  if (const char* env = std::getenv("CHROMIUM")) return env;
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (access(p, X_OK) == 0) return p;
  return {};
}

// The DOM of `url` once its scripts ran for 3 s of (virtual) time.
std::string dump_dom(const std::string& chromium, const std::string& url) {
  char profile_template[] = "/tmp/distrib-chromium-XXXXXX";
  EXPECT_NE(mkdtemp(profile_template), nullptr);
  const std::string profile = profile_template;
  auto page = run_command({chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--no-first-run", "--user-data-dir=" + profile, "--virtual-time-budget=3000", "--dump-dom", url},
                          std::chrono::seconds(120));
  std::filesystem::remove_all(profile);
  EXPECT_EQ(page.exit_code, 0) << page.output.substr(0, 2000);
  return page.output;
}

// The row `<tr ... data-name="name" ...>...</tr>` of `dom`, or "".
std::string worker_row(const std::string& dom, const std::string& name) {
  const auto at = dom.find("data-name=\"" + name + "\"");
  if (at == std::string::npos) return {};
  const auto start = dom.rfind("<tr", at), end = dom.find("</tr>", at);
  if (start == std::string::npos || end == std::string::npos) return {};
  return dom.substr(start, end - start);
}

// The opening tag of the first element of `html` that has `marker` (an attribute, as text) in it.
std::string tag_with(const std::string& html, const std::string& marker) {
  const auto at = html.find(marker);
  if (at == std::string::npos) return {};
  const auto start = html.rfind('<', at), end = html.find('>', at);
  return html.substr(start, end - start + 1);
}

// The value of attribute `name` in an opening tag, or "" (and `present` false) without it.
std::string attribute(const std::string& tag, const std::string& name, bool* present = nullptr) {
  const auto at = tag.find(" " + name + "=\"");
  if (present) *present = at != std::string::npos;
  if (at == std::string::npos) return {};
  const auto from = at + name.size() + 3;
  return tag.substr(from, tag.find('"', from) - from);
}

// The width of a memory bar segment (managed, unmanaged, spilled) of a row, in percent, or -1.
double segment_width(const std::string& row, const std::string& segment) {
  const std::string style = attribute(tag_with(row, "data-segment=\"" + segment + "\""), "style");
  const auto at = style.find("width:");
  return at == std::string::npos ? -1 : std::stod(style.substr(at + 6));
}

// The text of the cell data-field="field" of a row (its first text, for cells with markup).
std::string cell_text(const std::string& row, const std::string& field) {
  const auto at = row.find("data-field=\"" + field + "\"");
  if (at == std::string::npos) return "<no cell " + field + ">";
  auto from = row.find('>', at) + 1;
  while (row.compare(from, 1, "<") == 0) from = row.find('>', from) + 1;  // into the cell's first element
  return row.substr(from, row.find('<', from) - from);
}
}  // namespace

TEST(DashboardBrowser, StatusPageShowsWorkersAndProgress) {
  const std::string chromium = chromium_path();
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (scripts/test.sh installs it)";
  distrib::LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .dashboard_address = "0"});
  distrib::Client client(cluster);
  client.wait_for_workers(2);
  // About 6 s of work on two single-thread workers: still running while the page loads.
  auto running = client.map(sleep_ms, std::vector<int>(60, 200));

  const std::string dom = dump_dom(chromium, client.dashboard_link());
  EXPECT_NE(dom.find("data-state=\"connected\""), std::string::npos) << dom.substr(0, 4000);
  EXPECT_NE(dom.find("worker-row"), std::string::npos);
  EXPECT_NE(dom.find("progress-row"), std::string::npos);
  EXPECT_NE(dom.find("data-prefix=\"sleep_ms\""), std::string::npos);
  EXPECT_NE(dom.find("id=\"memory-key\""), std::string::npos);
  for (const std::string name : {"worker-0", "worker-1"}) {
    // Each worker has its memory bar in three parts, and runs.
    const std::string row = worker_row(dom, name);
    ASSERT_NE(row, "") << name << "\n" << dom.substr(0, 4000);
    EXPECT_EQ(attribute(row, "data-status"), "running") << row;
    for (const char* segment : {"managed", "unmanaged", "spilled"}) EXPECT_GE(segment_width(row, segment), 0) << segment << row;
    const std::string bar = tag_with(row, "data-managed=");
    for (const char* figure : {"data-memory", "data-managed", "data-unmanaged", "data-spilled", "data-limit"}) {
      bool present = false;
      attribute(bar, figure, &present);
      EXPECT_TRUE(present) << figure << " " << bar;
    }
    EXPECT_EQ(attribute(bar, "data-spilled"), "0") << bar;
    bool hidden = false;
    attribute(tag_with(row, "badge-paused"), "hidden", &hidden);
    EXPECT_TRUE(hidden) << row;
  }

  // The workers table has the memory columns, and the status of each.
  const std::string link = client.dashboard_link();
  const std::string table = dump_dom(chromium, link.substr(0, link.rfind("/status")) + "/workers");
  for (const char* column : {"\"status\"", "\"managed_bytes\"", "\"unmanaged_bytes\"", "\"spilled_bytes\""})
    EXPECT_NE(table.find(std::string("<th data-sort=") + column), std::string::npos) << column;
  for (const std::string name : {"worker-0", "worker-1"}) {
    const std::string row = worker_row(table, name);
    ASSERT_NE(row, "") << name << "\n" << table.substr(0, 4000);
    EXPECT_EQ(cell_text(row, "status"), "running") << row;
    EXPECT_EQ(cell_text(row, "spilled_bytes"), "0 B") << row;
    EXPECT_NE(cell_text(row, "managed_bytes").find("B"), std::string::npos) << row;
    EXPECT_NE(cell_text(row, "unmanaged_bytes").find("B"), std::string::npos) << row;
  }
  client.cancel(running);
  client.shutdown();
}

TEST(DashboardBrowser, TokenLinkOpensThePageAndItsRequestsCarryTheCookie) {
  const std::string chromium = chromium_path();
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (scripts/test.sh installs it)";
  // With a token the link ends in ?token=...: the browser gets the cookie and a redirect, and
  // the page's own requests to /api/v1/... are let in by the cookie.
  distrib::detail::auth::set_process_token(distrib::detail::auth::generate_token());
  struct Clear {
    ~Clear() { distrib::detail::auth::set_process_token(""); }
  } clear;
  distrib::LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1, .processes = false, .dashboard_address = "127.0.0.1:0"});
  distrib::Client client(cluster);
  client.wait_for_workers(1);
  const std::string link = client.dashboard_link();
  ASSERT_NE(link.find("?token="), std::string::npos) << link;
  // The dashboard's snapshot is refreshed every 500 ms: wait until it has the worker, so the
  // page (whose clock runs on virtual time) has it on its first request.
  const std::string token = link.substr(link.find("?token=") + 7);
  ASSERT_TRUE(eventually([&] {
    auto reply = http_get(port_of_link(link), "/api/v1/workers", {{"Authorization", "Bearer " + token}});
    return reply && reply->status == 200 && reply->body.find("worker-0") != std::string::npos;
  }));
  const std::string dom = dump_dom(chromium, link);
  EXPECT_NE(dom.find("data-state=\"connected\""), std::string::npos) << dom.substr(0, 4000);
  EXPECT_NE(worker_row(dom, "worker-0"), "") << dom.substr(0, 4000);
  // Without the token the browser gets the 403 text, not the page.
  const std::string refused = dump_dom(chromium, link.substr(0, link.find('?')));
  EXPECT_EQ(refused.find("data-state"), std::string::npos) << refused.substr(0, 2000);
  EXPECT_NE(refused.find("dashboard_link()"), std::string::npos) << refused.substr(0, 2000);
  client.shutdown();
}

TEST(DashboardBrowser, MemoryBarsShowManagedUnmanagedSpilledAndPaused) {
  const std::string chromium = chromium_path();
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (scripts/test.sh installs it)";
  // The pages as a scheduler serves them...
  std::string status_page, workers_page;
  {
    auto scheduler = start_scheduler({"--dashboard-address", "127.0.0.1:0"});
    distrib::Client client(scheduler.address);
    const int port = port_of_link(client.dashboard_link());
    auto s = http_get(port, "/status"), w = http_get(port, "/workers");
    ASSERT_TRUE(s && s->status == 200 && w && w->status == 200);
    status_page = s->body;
    workers_page = w->body;
    client.close();
  }
  // ...served next to canned figures: limits of 10^9 bytes.
  auto worker = [](const std::string& name, double memory, double managed, double spilled, bool paused) {
    return json{{"name", name},         {"address", "tcp://10.0.0.1:" + std::to_string(40000 + name.back() - 'a')},
                {"nthreads", 1},        {"memory_bytes", memory},
                {"memory_limit_bytes", 1e9}, {"managed_bytes", managed},
                {"unmanaged_bytes", memory - managed}, {"spilled_bytes", spilled},
                {"paused", paused},     {"cpu_percent", 50.0},
                {"executing", 0},       {"processing", 0},
                {"stored", 3},          {"stored_bytes", managed + spilled},
                {"bytes_in", 0},        {"bytes_out", 0},
                {"restarts", 0},        {"nanny", true}};
  };
  const json workers = json::array({
      worker("worker-a", 300e6, 200e6, 0, false),    // 30 % of its limit: blue
      worker("worker-b", 850e6, 700e6, 500e6, true),  // paused, and spilled past its limit
      worker("worker-c", 960e6, 100e6, 0, false),    // 96 %: red
      worker("worker-d", 820e6, 0, 0, false),        // past the pause fraction, not (yet) paused: orange
  });
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const json status{{"time", now},
                    {"scheduler", "tcp://10.0.0.1:8786"},
                    {"totals", {{"workers", 4}, {"threads", 4}, {"memory_bytes", 2930e6}, {"memory_limit_bytes", 4e9}}},
                    {"workers", workers},
                    {"prefixes", json::array()},
                    {"stream", json::array()}};
  // The dashboard's own HTTP server (compiled into the tests), with canned answers.
  using distrib::detail::HttpRequest;
  using distrib::detail::HttpResponse;
  distrib::detail::HttpServer server({.host = "127.0.0.1"}, [&](const HttpRequest& req) {
    if (req.path == "/status") return HttpResponse{.content_type = "text/html", .body = status_page};
    if (req.path == "/workers") return HttpResponse{.content_type = "text/html", .body = workers_page};
    if (req.path == "/api/v1/status") return HttpResponse{.content_type = "application/json", .body = status.dump()};
    if (req.path == "/api/v1/workers")
      return HttpResponse{.content_type = "application/json", .body = json{{"time", now}, {"workers", workers}}.dump()};
    return HttpResponse{.status = 404, .body = "not found\n"};
  });
  server.start();
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  const std::string dom = dump_dom(chromium, base + "/status");
  const std::string table = dump_dom(chromium, base + "/workers");
  server.stop();

  struct Expected {
    std::string name, level, status;
    double managed, unmanaged, spilled;  // percent of the bar
    std::string limit_mark;              // the limit's place on the bar, "" when the bar is the limit
  };
  const Expected expected[] = {
      {"worker-a", "ok", "running", 20, 10, 0, ""},
      // 850 MB in memory + 500 MB on disk: the bar is 1350 MB long, the limit at 74 %.
      {"worker-b", "pause", "paused", 100 * 700 / 1350.0, 100 * 150 / 1350.0, 100 * 500 / 1350.0, "74.07%"},
      {"worker-c", "terminate", "running", 10, 86, 0, ""},
      {"worker-d", "pause", "running", 0, 82, 0, ""},
  };
  EXPECT_NE(dom.find("4 workers, 1 paused"), std::string::npos) << dom.substr(0, 4000);
  for (const auto& e : expected) {
    SCOPED_TRACE(e.name);
    const std::string row = worker_row(dom, e.name);
    ASSERT_NE(row, "") << dom.substr(0, 4000);
    const std::string bar = tag_with(row, "data-managed=");
    EXPECT_EQ(attribute(row, "data-status"), e.status) << row;
    EXPECT_EQ(attribute(bar, "data-level"), e.level) << bar;
    EXPECT_NEAR(segment_width(row, "managed"), e.managed, 0.01) << row;
    EXPECT_NEAR(segment_width(row, "unmanaged"), e.unmanaged, 0.01) << row;
    EXPECT_NEAR(segment_width(row, "spilled"), e.spilled, 0.01) << row;
    const std::string mark = tag_with(row, "class=\"bar-limit\"");
    bool hidden = false;
    attribute(mark, "hidden", &hidden);
    EXPECT_EQ(hidden, e.limit_mark.empty()) << mark;
    if (!e.limit_mark.empty()) {
      EXPECT_NE(attribute(mark, "style").find("left: " + e.limit_mark), std::string::npos) << mark;
    }
    bool badge_hidden = false;
    attribute(tag_with(row, "badge-paused"), "hidden", &badge_hidden);
    EXPECT_EQ(badge_hidden, e.status != "paused") << row;
    const std::string tip = attribute(bar, "title");
    for (const char* figure : {"managed ", "unmanaged ", "spilled ", "limit of 954 MiB"})
      EXPECT_NE(tip.find(figure), std::string::npos) << figure << ": " << tip;
  }
  // The tooltip gives the figures (10^6 bytes = 0.95 MiB).
  const std::string tip_b = attribute(tag_with(worker_row(dom, "worker-b"), "data-managed="), "title");
  for (const char* figure : {"managed 668 MiB", "unmanaged 143 MiB", "spilled 477 MiB", "limit of 954 MiB", "paused"})
    EXPECT_NE(tip_b.find(figure), std::string::npos) << figure << ": " << tip_b;

  // The workers table: a status and the three figures per worker, and the paused count.
  for (const char* column : {">Status<", ">Managed<", ">Unmanaged<", ">Spilled<"})
    EXPECT_NE(table.find(column), std::string::npos) << column;
  EXPECT_NE(table.find("data-total=\"paused\"><b>1</b>"), std::string::npos) << table.substr(0, 4000);
  struct Cells {
    std::string name, status, managed, unmanaged, spilled, level;
  };
  const Cells cells[] = {
      {"worker-a", "running", "191 MiB", "95.4 MiB", "0 B", "ok"},
      {"worker-b", "paused", "668 MiB", "143 MiB", "477 MiB", "pause"},
      {"worker-c", "running", "95.4 MiB", "820 MiB", "0 B", "terminate"},
      {"worker-d", "running", "0 B", "782 MiB", "0 B", "pause"},
  };
  for (const auto& c : cells) {
    SCOPED_TRACE(c.name);
    const std::string row = worker_row(table, c.name);
    ASSERT_NE(row, "") << table.substr(0, 4000);
    EXPECT_EQ(cell_text(row, "status"), c.status) << row;
    EXPECT_EQ(cell_text(row, "managed_bytes"), c.managed) << row;
    EXPECT_EQ(cell_text(row, "unmanaged_bytes"), c.unmanaged) << row;
    EXPECT_EQ(cell_text(row, "spilled_bytes"), c.spilled) << row;
    EXPECT_EQ(attribute(tag_with(row, "data-managed="), "data-level"), c.level) << row;
  }
}
