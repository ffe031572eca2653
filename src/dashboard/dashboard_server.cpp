#include "dashboard/dashboard_server.hpp"

#include <httplib.h>


#include "core/log.hpp"
#include "distrib/errors.hpp"

namespace distrib::detail {

DashboardServer::DashboardServer(const DashboardAddress& address, std::shared_ptr<const SnapshotBox> snapshots)
    : server_(std::make_unique<httplib::Server>()), snapshots_(std::move(snapshots)) {
  auto& srv = *server_;
  srv.new_task_queue = [] { return new httplib::ThreadPool(2); };  // a page or two at a time
  // httplib's default sets SO_REUSEPORT, which would let a second scheduler share (and
  // steal requests from) a port already in use; SO_REUSEADDR alone reports the clash.
  srv.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  auto box = snapshots_;
  auto html = [](const char* page) {
    return [page](const httplib::Request&, httplib::Response& res) { res.set_content(page, "text/html; charset=utf-8"); };
  };
  auto api = [box](std::string (*render)(const DashboardSnapshot&)) {
    return [box, render](const httplib::Request&, httplib::Response& res) {
      res.set_header("Cache-Control", "no-store");
      res.set_content(render(*box->latest()), "application/json");
    };
  };
  srv.Get("/", [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/status"); });
  srv.Get("/status", html(kStatusPage));
  srv.Get("/workers", html(kWorkersPage));
  srv.Get("/tasks", html(kTasksPage));
  srv.Get("/api/v1/status", api(&status_json));
  srv.Get("/api/v1/workers", api(&workers_json));
  srv.Get("/api/v1/prefixes", api(&prefixes_json));
  srv.Get("/api/v1/tasks", [box](const httplib::Request& req, httplib::Response& res) {
    double since = 0;
    if (req.has_param("since")) {
      try {
        since = std::stod(req.get_param_value("since"));
      } catch (const std::exception&) {
        res.status = 400;
        res.set_content("{\"error\": \"since must be a number of seconds\"}", "application/json");
        return;
      }
    }
    res.set_header("Cache-Control", "no-store");
    res.set_content(tasks_json(*box->latest(), since), "application/json");
  });
  // Keys may hold any character: the rest of the path, percent-decoded by httplib.
  srv.Get(R"(/api/v1/story/(.+))", [box](const httplib::Request& req, httplib::Response& res) {
    const std::string key = req.matches[1];
    res.set_header("Cache-Control", "no-store");
    auto lines = box->story(key);
    if (!lines) {
      res.status = 503;
      res.set_content("{\"error\": \"the scheduler did not answer\"}", "application/json");
      return;
    }
    res.set_content(story_json(key, *lines), "application/json");
  });
  srv.Get("/metrics", [box](const httplib::Request&, httplib::Response& res) {
    res.set_content(prometheus_metrics(*box->latest()), "text/plain; version=0.0.4; charset=utf-8");
  });
  srv.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
  srv.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.status == 404) res.set_content("not found\n", "text/plain");
  });

  const std::string host = address.host.empty() ? "0.0.0.0" : address.host;
  int port = address.port == 0 ? srv.bind_to_any_port(host) : (srv.bind_to_port(host, address.port) ? address.port : -1);
  if (port <= 0)
    throw CommError("dashboard: cannot listen on " + host + ":" + std::to_string(address.port) +
                    " (address in use or not available); choose another with --dashboard-address, or 'none'");
  port_ = static_cast<std::uint16_t>(port);
  thread_ = std::thread([this] {
    server_->listen_after_bind();
    listener_done_ = true;
  });
}

DashboardServer::~DashboardServer() { stop(); }

void DashboardServer::stop() {
  if (server_ && thread_.joinable()) {
    // httplib's stop() does nothing until the listener runs: stopped before that (a
    // scheduler told to exit right after it started), the listener would never end.
    while (!server_->is_running() && !listener_done_) std::this_thread::yield();
    server_->stop();
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace distrib::detail

// The module's entry point (dashboard.hpp): C linkage so the loader finds it by name.
extern "C" __attribute__((visibility("default"))) distrib::detail::Dashboard* distrib_start_dashboard(
    const distrib::detail::DashboardAddress& address, std::shared_ptr<const distrib::detail::SnapshotBox> snapshots) {
  return new distrib::detail::DashboardServer(address, std::move(snapshots));
}
