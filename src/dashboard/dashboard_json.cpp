// JSON and Prometheus renderings of a dashboard snapshot.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "dashboard/dashboard_server.hpp"

namespace distrib::detail {

namespace {
using nlohmann::json;

json worker_json(const DashboardWorker& w) {
  return json{{"name", w.name},
              {"address", w.address},
              {"nthreads", w.nthreads},
              {"memory_bytes", w.memory_bytes},
              {"memory_limit_bytes", w.memory_limit_bytes},
              {"managed_bytes", w.managed_bytes},
              {"unmanaged_bytes", w.memory_bytes > w.managed_bytes ? w.memory_bytes - w.managed_bytes : 0},
              {"spilled_bytes", w.spilled_bytes},
              {"paused", w.paused},
              {"cpu_percent", w.cpu_percent},
              {"executing", w.executing},
              {"processing", w.processing},
              {"stored", w.stored},
              {"stored_bytes", w.stored_bytes},
              {"bytes_in", w.bytes_in},
              {"bytes_out", w.bytes_out},
              {"restarts", w.restarts},
              {"nanny", w.nanny}};
}

json workers_array(const DashboardSnapshot& s) {
  json out = json::array();
  for (const auto& w : s.workers) out.push_back(worker_json(w));
  return out;
}

json prefixes_array(const DashboardSnapshot& s) {
  json out = json::array();
  for (const auto& p : s.prefixes)
    out.push_back(json{{"name", p.name},
                       {"waiting", p.waiting},
                       {"processing", p.processing},
                       {"memory", p.memory},
                       {"erred", p.erred},
                       {"released", p.released},
                       {"total", p.total()}});
  return out;
}

json stream_array(const DashboardSnapshot& s, double since, std::size_t max) {
  json out = json::array();
  std::size_t first = s.stream.size() > max ? s.stream.size() - max : 0;
  for (std::size_t i = first; i < s.stream.size(); ++i) {
    const auto& e = s.stream[i];
    if (e.stop <= since) continue;
    out.push_back(json{{"key", e.key}, {"prefix", e.prefix}, {"worker", e.worker}, {"start", e.start}, {"stop", e.stop}});
  }
  return out;
}

json totals(const DashboardSnapshot& s) {
  std::uint64_t threads = 0, memory = 0, limit = 0;
  for (const auto& w : s.workers) {
    threads += w.nthreads;
    memory += w.memory_bytes;
    limit += w.memory_limit_bytes;
  }
  return json{{"workers", s.workers.size()},       {"threads", threads},
              {"memory_bytes", memory},            {"memory_limit_bytes", limit},
              {"tasks_per_second", s.tasks_per_second}, {"tasks_completed", s.tasks_completed},
              {"tasks_erred", s.tasks_erred},      {"bytes_transferred", s.bytes_transferred},
              {"worker_restarts", s.worker_restarts}, {"task_states", s.task_states}};
}

// Prometheus label values escape backslash, double quote and newline.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}
}  // namespace

std::string status_json(const DashboardSnapshot& s) {
  json j{{"time", s.time},
         {"scheduler", s.scheduler},
         {"totals", totals(s)},
         {"workers", workers_array(s)},
         {"prefixes", prefixes_array(s)},
         {"stream", stream_array(s, 0, 1000)}};
  return j.dump();
}

std::string workers_json(const DashboardSnapshot& s) { return json{{"time", s.time}, {"workers", workers_array(s)}}.dump(); }

std::string prefixes_json(const DashboardSnapshot& s) {
  return json{{"time", s.time}, {"prefixes", prefixes_array(s)}}.dump();
}

std::string tasks_json(const DashboardSnapshot& s, double since) {
  return json{{"time", s.time}, {"stream", stream_array(s, since, DashboardRecorder::kStreamCapacity)}}.dump();
}

std::string story_json(const std::string& key, const std::vector<DashboardStoryLine>& lines) {
  json story = json::array();
  for (const auto& l : lines)
    story.push_back({{"stimulus", l.stimulus}, {"from", l.from}, {"to", l.to}, {"worker", l.worker}, {"time", l.time}});
  return json{{"key", key}, {"story", story}}.dump();
}

std::string prometheus_metrics(const DashboardSnapshot& s) {
  std::string out;
  char buf[64];
  auto num = [&](double v) {
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return std::string(buf);
  };
  auto family = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  family("distrib_scheduler_tasks", "gauge", "Tasks in the scheduler by state.");
  for (const char* st : {"released", "waiting", "no-worker", "queued", "processing", "memory", "erred"}) {
    auto it = s.task_states.find(st);
    out += std::string("distrib_scheduler_tasks{state=\"") + st + "\"} " +
           std::to_string(it == s.task_states.end() ? 0 : it->second) + "\n";
  }
  family("distrib_scheduler_workers", "gauge", "Connected workers.");
  out += "distrib_scheduler_workers " + std::to_string(s.workers.size()) + "\n";
  family("distrib_tasks_completed_total", "counter", "Tasks finished since the scheduler started.");
  out += "distrib_tasks_completed_total " + std::to_string(s.tasks_completed) + "\n";
  family("distrib_tasks_erred_total", "counter", "Tasks that raised since the scheduler started.");
  out += "distrib_tasks_erred_total " + std::to_string(s.tasks_erred) + "\n";
  family("distrib_transferred_bytes_total", "counter", "Bytes received by the workers.");
  out += "distrib_transferred_bytes_total " + std::to_string(s.bytes_transferred) + "\n";
  family("distrib_worker_restarts_total", "counter", "Worker processes that registered after their nanny restarted them.");
  out += "distrib_worker_restarts_total " + std::to_string(s.worker_restarts) + "\n";
  family("distrib_tasks_per_second", "gauge", "Recent task completion rate.");
  out += "distrib_tasks_per_second " + num(s.tasks_per_second) + "\n";
  struct PerWorker {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const DashboardWorker&);
  };
  const PerWorker per_worker[] = {
      {"distrib_worker_threads", "gauge", "Threads of the worker.", [](const DashboardWorker& w) { return double(w.nthreads); }},
      {"distrib_worker_memory_bytes", "gauge", "Resident memory of the worker process.",
       [](const DashboardWorker& w) { return double(w.memory_bytes); }},
      {"distrib_worker_memory_limit_bytes", "gauge", "Memory limit of the worker (0: none).",
       [](const DashboardWorker& w) { return double(w.memory_limit_bytes); }},
      {"distrib_worker_managed_bytes", "gauge", "Sizes of the values the worker stores in memory.",
       [](const DashboardWorker& w) { return double(w.managed_bytes); }},
      {"distrib_worker_unmanaged_bytes", "gauge", "Resident memory of the worker beyond its stored values.",
       [](const DashboardWorker& w) { return double(w.memory_bytes > w.managed_bytes ? w.memory_bytes - w.managed_bytes : 0); }},
      {"distrib_worker_spilled_bytes", "gauge", "Sizes of the values the worker spilled to disk.",
       [](const DashboardWorker& w) { return double(w.spilled_bytes); }},
      {"distrib_worker_paused", "gauge", "1 while the worker is paused for memory.",
       [](const DashboardWorker& w) { return w.paused ? 1.0 : 0.0; }},
      {"distrib_worker_cpu_percent", "gauge", "CPU use of the worker process.", [](const DashboardWorker& w) { return w.cpu_percent; }},
      {"distrib_worker_executing", "gauge", "Tasks running on the worker.", [](const DashboardWorker& w) { return double(w.executing); }},
      {"distrib_worker_processing", "gauge", "Tasks assigned to the worker.", [](const DashboardWorker& w) { return double(w.processing); }},
      {"distrib_worker_stored", "gauge", "Keys held by the worker.", [](const DashboardWorker& w) { return double(w.stored); }},
      {"distrib_worker_stored_bytes", "gauge", "Bytes of the keys held.", [](const DashboardWorker& w) { return double(w.stored_bytes); }},
      {"distrib_worker_received_bytes_total", "counter", "Bytes the worker received.",
       [](const DashboardWorker& w) { return double(w.bytes_in); }},
      {"distrib_worker_sent_bytes_total", "counter", "Bytes the worker sent.", [](const DashboardWorker& w) { return double(w.bytes_out); }},
      {"distrib_worker_restarts", "gauge", "Times the worker's nanny restarted its process.",
       [](const DashboardWorker& w) { return double(w.restarts); }},
  };
  for (const auto& m : per_worker) {
    family(m.name, m.type, m.help);
    for (const auto& w : s.workers)
      out += std::string(m.name) + "{worker=\"" + label(w.address) + "\",name=\"" + label(w.name) + "\"} " + num(m.value(w)) + "\n";
  }
  return out;
}

}  // namespace distrib::detail
