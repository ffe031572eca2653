// The scheduler's web dashboard over HTTP: pages, JSON API, Prometheus metrics, health,
// unknown paths, and what happens when its port is taken.
#include <gtest/gtest.h>

#include <distrib/distrib.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>

#include "helpers.hpp"
#include "http_client.hpp"
#include "tasks_for_tests.hpp"

using namespace distrib::test;
using nlohmann::json;

namespace {
int port_of(const std::string& link) {
  // http://127.0.0.1:PORT/status
  auto colon = link.rfind(':');
  return std::stoi(link.substr(colon + 1, link.find('/', colon) - colon - 1));
}

std::optional<HttpReply> get(int port, const std::string& path) { return http_get(port, path); }

// The value of an unlabelled metric line "name value", or -1.
double metric(const std::string& text, const std::string& name) {
  auto at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + name.size() + 2));
}

// The value of a per-worker metric line `name{worker="...",name="worker"} value`, or -1.
double worker_metric(const std::string& text, const std::string& name, const std::string& worker) {
  const std::string head = "\n" + name + "{", tail = ",name=\"" + worker + "\"} ";
  for (auto at = text.find(head); at != std::string::npos; at = text.find(head, at + 1)) {
    const auto end = text.find('\n', at + 1);
    const auto line = text.substr(at + 1, end - at - 1);
    if (auto t = line.find(tail); t != std::string::npos) return std::stod(line.substr(t + tail.size()));
  }
  return -1;
}
}  // namespace

TEST(Dashboard, PagesApiMetricsAndHealth) {
  distrib::LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .dashboard_address = "0"});
  distrib::Client client(cluster);
  const std::string link = client.dashboard_link();
  ASSERT_EQ(link.rfind("http://127.0.0.1:", 0), 0u) << link;
  ASSERT_NE(link.find("/status"), std::string::npos);
  const int port = port_of(link);

  auto health = get(port, "/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok");
  for (const char* page : {"/status", "/workers", "/tasks"}) {
    auto r = get(port, page);
    ASSERT_TRUE(r) << page;
    EXPECT_EQ(r->status, 200) << page;
    EXPECT_NE(r->header("content-type").find("text/html"), std::string::npos) << page;
    EXPECT_NE(r->body.find("<html"), std::string::npos) << page;
  }
  auto missing = get(port, "/no/such/page");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);

  // Both workers appear in the JSON once the first snapshot after they joined is out.
  json status;
  ASSERT_TRUE(eventually([&] {
    auto r = get(port, "/api/v1/status");
    if (!r || r->status != 200) return false;
    status = json::parse(r->body);
    return status["workers"].size() == 2;
  }));
  for (const char* field : {"time", "scheduler", "totals", "workers", "prefixes", "stream"})
    EXPECT_TRUE(status.contains(field)) << field;
  EXPECT_EQ(status["totals"]["workers"], 2);
  EXPECT_EQ(status["totals"]["threads"], 2);
  std::set<std::string> names;
  for (const auto& w : status["workers"]) {
    names.insert(w["name"].get<std::string>());
    EXPECT_EQ(w["nthreads"], 1);
    for (const char* field : {"address", "memory_bytes", "memory_limit_bytes", "managed_bytes", "unmanaged_bytes",
                              "spilled_bytes", "paused", "cpu_percent", "executing", "stored", "stored_bytes", "bytes_in",
                              "bytes_out"})
      EXPECT_TRUE(w.contains(field)) << field;
    // Unmanaged is the process memory beyond the stored values in memory; an idle worker is running.
    const auto memory = w["memory_bytes"].get<std::uint64_t>(), managed = w["managed_bytes"].get<std::uint64_t>();
    EXPECT_EQ(w["unmanaged_bytes"].get<std::uint64_t>(), memory > managed ? memory - managed : 0);
    EXPECT_EQ(w["paused"], false);
  }
  EXPECT_EQ(names, (std::set<std::string>{"worker-0", "worker-1"}));

  // Metrics move as tasks finish; the prefix and the task stream show them.
  auto before = get(port, "/metrics");
  ASSERT_TRUE(before);
  EXPECT_NE(before->header("content-type").find("text/plain"), std::string::npos);
  const double completed_before = metric(before->body, "distrib_tasks_completed_total");
  ASSERT_GE(completed_before, 0);
  EXPECT_NE(before->body.find("distrib_scheduler_tasks{state=\"memory\"}"), std::string::npos);
  for (const char* family : {"distrib_worker_memory_bytes", "distrib_worker_managed_bytes", "distrib_worker_unmanaged_bytes",
                             "distrib_worker_spilled_bytes", "distrib_worker_paused"}) {
    EXPECT_NE(before->body.find(std::string("# TYPE ") + family + " gauge\n"), std::string::npos) << family;
    EXPECT_NE(before->body.find(std::string(family) + "{worker=\"tcp://127.0.0.1:"), std::string::npos) << family;
  }
  // Neither worker is paused; unmanaged is the process memory beyond the managed part.
  for (const std::string name : {"worker-0", "worker-1"}) {
    EXPECT_EQ(worker_metric(before->body, "distrib_worker_paused", name), 0) << name;
    const double memory = worker_metric(before->body, "distrib_worker_memory_bytes", name),
                 managed = worker_metric(before->body, "distrib_worker_managed_bytes", name);
    ASSERT_GE(memory, 0) << name;
    ASSERT_GE(managed, 0) << name;
    EXPECT_EQ(worker_metric(before->body, "distrib_worker_unmanaged_bytes", name), std::max(0.0, memory - managed)) << name;
    EXPECT_GE(worker_metric(before->body, "distrib_worker_spilled_bytes", name), 0) << name;
  }

  std::vector<int> xs(100);
  for (int i = 0; i < 100; ++i) xs[i] = i;
  auto fs = client.map(inc, xs);
  EXPECT_EQ(client.gather(fs).size(), 100u);
  ASSERT_TRUE(eventually([&] {
    auto r = get(port, "/metrics");
    return r && metric(r->body, "distrib_tasks_completed_total") >= completed_before + 100;
  }));
  auto prefixes = json::parse(get(port, "/api/v1/prefixes")->body);
  bool found = false;
  for (const auto& p : prefixes["prefixes"])
    if (p["name"] == "inc") {
      found = true;
      EXPECT_EQ(p["total"], 100);
      EXPECT_EQ(p["memory"].get<int>() + p["released"].get<int>(), 100);
    }
  EXPECT_TRUE(found);
  auto tasks = json::parse(get(port, "/api/v1/tasks?since=0")->body);
  std::size_t inc_events = 0;
  for (const auto& e : tasks["stream"])
    if (e["prefix"] == "inc") {
      ++inc_events;
      EXPECT_LE(e["start"].get<double>(), e["stop"].get<double>());
    }
  EXPECT_EQ(inc_events, 100u);
  auto bad = get(port, "/api/v1/tasks?since=yesterday");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  client.shutdown();
}

TEST(Dashboard, NoneMeansNoDashboard) {
  distrib::LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1, .processes = false, .dashboard_address = "none"});
  distrib::Client client(cluster);
  EXPECT_EQ(client.dashboard_link(), "");
  EXPECT_EQ(client.submit(inc, 1).result(), 2);
}

TEST(Dashboard, TakenPortFailsClearlyAndNoneStartsWithout) {
  // Hold a port with a scheduler's dashboard, then ask another scheduler for the same one.
  auto first = start_scheduler({"--dashboard-address", "127.0.0.1:0"});
  distrib::Client client(first.address);
  const int port = port_of(client.dashboard_link());
  auto clash = run_command({DSCHEDULER_PATH, "--host", "127.0.0.1", "--port", "0", "--dashboard-address",
                            "127.0.0.1:" + std::to_string(port)});
  EXPECT_NE(clash.exit_code, 0);
  EXPECT_NE(clash.output.find("dashboard"), std::string::npos) << clash.output;
  EXPECT_NE(clash.output.find(std::to_string(port)), std::string::npos) << clash.output;
  // Without a dashboard it starts (and serves clients) as usual.
  auto plain = start_scheduler({"--dashboard-address", "none"});
  distrib::Client other(plain.address);
  EXPECT_EQ(other.dashboard_link(), "");
  auto bad = run_command({DSCHEDULER_PATH, "--port", "0", "--dashboard-address", "nowhere:xyz"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("dashboard"), std::string::npos) << bad.output;
  client.close();
  other.close();
}

namespace {
// Whether a process has a shared object whose path contains `name` mapped.
bool maps_library(int pid, const std::string& name) {
  auto maps = run_command({"cat", "/proc/" + std::to_string(pid) + "/maps"});
  EXPECT_EQ(maps.exit_code, 0) << maps.output;
  return maps.output.find(name) != std::string::npos;
}
}  // namespace

TEST(Dashboard, OnlyASchedulerServingItMapsTheHttpServer) {
  // The HTTP server is a module: workers (and a scheduler without a dashboard) stay small.
  auto serving = start_scheduler({"--dashboard-address", "127.0.0.1:0"});
  auto plain = start_scheduler({"--dashboard-address", "none"});
  auto worker = start_worker(serving.address);
  distrib::Client client(serving.address);
  ASSERT_NE(client.dashboard_link(), "");
  EXPECT_TRUE(maps_library(serving.process.pid(), "libdistrib_dashboard.so"));
  // The server is ours, on Asio: without a token nobody maps OpenSSL, the serving scheduler neither.
  EXPECT_FALSE(maps_library(serving.process.pid(), "libcrypto"));
  for (int pid : {plain.process.pid(), worker.process.pid()}) {
    EXPECT_FALSE(maps_library(pid, "libdistrib_dashboard.so")) << pid;
    EXPECT_FALSE(maps_library(pid, "libcrypto")) << pid;
  }
  client.close();
}
