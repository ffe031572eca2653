#include "dashboard/dashboard_server.hpp"

#include "comm/auth.hpp"
#include "core/log.hpp"
#include "distrib/errors.hpp"

namespace distrib::detail {

namespace {

constexpr std::string_view kStoryPrefix = "/api/v1/story/";

HttpResponse text(int status, std::string body) {
  return HttpResponse{.status = status, .content_type = "text/plain; charset=utf-8", .body = std::move(body)};
}

HttpResponse html(const char* page) { return HttpResponse{.content_type = "text/html; charset=utf-8", .body = page}; }

// JSON rendered on a render thread from the latest snapshot.
HttpResponse api(std::shared_ptr<const SnapshotBox> box, std::string (*render)(const DashboardSnapshot&)) {
  return HttpResponse{.content_type = "application/json",
                      .headers = {{"Cache-Control", "no-store"}},
                      .render = [box = std::move(box), render](HttpResponse& r) { r.body = render(*box->latest()); }};
}

HttpResponse forbidden() {
  HttpResponse r = text(403,
                        "This dashboard wants the cluster's token. Open the link the scheduler printed when it "
                        "started, or the one Client::dashboard_link() gives: it ends in ?token=...\n");
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The raw query without its `token` parameters ("a=1&token=x&b=2" -> "a=1&b=2").
std::string query_without_token(std::string_view raw) {
  std::string out;
  while (!raw.empty()) {
    const auto amp = raw.find('&');
    const std::string_view part = raw.substr(0, amp);
    raw = amp == std::string_view::npos ? std::string_view{} : raw.substr(amp + 1);
    const auto key = percent_decode(part.substr(0, part.find('=')), true);
    if (part.empty() || (key && *key == "token")) continue;
    if (!out.empty()) out += '&';
    out += part;
  }
  return out;
}

}  // namespace

DashboardServer::DashboardServer(const DashboardAddress& address, std::shared_ptr<const SnapshotBox> snapshots,
                                 HttpLimits limits)
    : snapshots_(std::move(snapshots)), token_(address.token) {
  const std::string host = address.host.empty() ? "0.0.0.0" : address.host;
  try {
    // A page or two rendered at a time; the io thread answers /health meanwhile.
    server_ = std::make_unique<HttpServer>(
        HttpServer::Options{.host = host, .port = address.port, .limits = limits, .render_threads = 2, .name = "dashboard"},
        [this](const HttpRequest& request) { return handle(request); });
  } catch (const CommError&) {
    throw CommError("dashboard: cannot listen on " + host + ":" + std::to_string(address.port) +
                    " (address in use or not available); choose another with --dashboard-address, or 'none'");
  }
  port_ = server_->port();
  if (!token_.empty()) {
    cookie_name_ = cookie_name(port_);
    cookie_value_ = auth::dashboard_cookie(token_);
  }
  server_->start();  // after the members the handler reads are set
}

DashboardServer::~DashboardServer() { stop(); }

void DashboardServer::stop() {
  if (server_) server_->stop();
}

HttpResponse DashboardServer::handle(const HttpRequest& request) const {
  if (request.path == "/health") return text(200, "ok");  // open: for load balancers and probes
  if (!token_.empty())
    if (auto refused = check_token(request)) return std::move(*refused);
  return route(request);
}

std::optional<HttpResponse> DashboardServer::check_token(const HttpRequest& request) const {
  if (const std::string* given = request.param("token")) {
    if (!auth::tokens_equal(*given, token_)) return forbidden();
    // The cookie for the pages' own requests, and the same URL without the token in it (out
    // of the address bar, the history and any Referer).
    std::string path = request.raw_path;
    if (path.size() > 1 && (path[1] == '/' || path[1] == '\\')) path = "/";  // "//host": not a redirect elsewhere
    const std::string query = query_without_token(request.raw_query);
    HttpResponse r = text(302, "");
    r.headers = {{"Location", query.empty() ? path : path + "?" + query},
                 {"Set-Cookie", cookie_name_ + "=" + cookie_value_ + "; Path=/; HttpOnly; SameSite=Strict"},
                 {"Cache-Control", "no-store"},
                 {"Referrer-Policy", "no-referrer"}};
    return r;
  }
  for (const auto& [name, value] : request.headers) {
    if (name != "authorization") continue;
    std::string scheme = value.substr(0, value.find(' '));
    for (char& c : scheme) c = lower(c);
    if (scheme != "bearer") continue;  // another scheme: the cookie may still do
    const std::string given(trim(std::string_view(value).substr(scheme.size())));
    return auth::tokens_equal(given, token_) ? std::nullopt : std::optional<HttpResponse>(forbidden());
  }
  for (const auto& [name, value] : request.headers) {
    if (name != "cookie") continue;
    std::string_view list = value;
    while (!list.empty()) {
      const auto semicolon = list.find(';');
      const std::string_view pair = trim(list.substr(0, semicolon));
      list = semicolon == std::string_view::npos ? std::string_view{} : list.substr(semicolon + 1);
      const auto eq = pair.find('=');
      if (eq == std::string_view::npos || pair.substr(0, eq) != cookie_name_) continue;
      if (auth::tokens_equal(std::string(pair.substr(eq + 1)), cookie_value_)) return std::nullopt;
    }
  }
  return forbidden();
}

HttpResponse DashboardServer::route(const HttpRequest& request) const {
  const std::string& path = request.path;
  if (path == "/") {
    HttpResponse r = text(302, "");
    r.headers.emplace_back("Location", "/status");
    return r;
  }
  if (path == "/status") return html(kStatusPage);
  if (path == "/workers") return html(kWorkersPage);
  if (path == "/tasks") return html(kTasksPage);
  if (path == "/api/v1/status") return api(snapshots_, &status_json);
  if (path == "/api/v1/workers") return api(snapshots_, &workers_json);
  if (path == "/api/v1/prefixes") return api(snapshots_, &prefixes_json);
  if (path == "/api/v1/tasks") {
    double since = 0;
    if (const std::string* text = request.param("since")) {
      try {
        since = std::stod(*text);
      } catch (const std::exception&) {
        return HttpResponse{.status = 400,
                            .content_type = "application/json",
                            .body = "{\"error\": \"since must be a number of seconds\"}"};
      }
    }
    return HttpResponse{.content_type = "application/json",
                        .headers = {{"Cache-Control", "no-store"}},
                        .render = [box = snapshots_, since](HttpResponse& r) { r.body = tasks_json(*box->latest(), since); }};
  }
  // Keys may hold any character: the rest of the path, percent-decoded ("%2F" is a '/').
  if (path.size() > kStoryPrefix.size() && path.starts_with(kStoryPrefix)) {
    // The story comes from the scheduler's thread (which may take up to its timeout): rendered
    // off the io thread.
    return HttpResponse{.content_type = "application/json",
                        .headers = {{"Cache-Control", "no-store"}},
                        .render = [box = snapshots_, key = path.substr(kStoryPrefix.size())](HttpResponse& r) {
                          auto lines = box->story(key);
                          if (!lines) {
                            r.status = 503;
                            r.body = "{\"error\": \"the scheduler did not answer\"}";
                            return;
                          }
                          r.body = story_json(key, *lines);
                        }};
  }
  if (path == "/metrics")
    return HttpResponse{.content_type = "text/plain; version=0.0.4; charset=utf-8",
                        .render = [box = snapshots_](HttpResponse& r) { r.body = prometheus_metrics(*box->latest()); }};
  return text(404, "not found\n");
}

}  // namespace distrib::detail

// The module's entry point (dashboard.hpp): C linkage so the loader finds it by name.
extern "C" __attribute__((visibility("default"))) distrib::detail::Dashboard* distrib_start_dashboard(
    const distrib::detail::DashboardAddress& address, std::shared_ptr<const distrib::detail::SnapshotBox> snapshots) {
  return new distrib::detail::DashboardServer(address, std::move(snapshots));
}
