#pragma once
// Timing, JSON output and /proc readers shared by the benchmark programs.
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace bench {


using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// One JSON line: {"bench": name, "unit": unit, "median": ..., "runs": [...]}.
inline void report(const std::string& name, const char* unit, const std::vector<double>& runs) {
  std::printf("{\"bench\": \"%s\", \"unit\": \"%s\", \"median\": %.6g, \"runs\": [", name.c_str(), unit, median(runs));
  for (std::size_t i = 0; i < runs.size(); ++i) std::printf("%s%.6g", i ? ", " : "", runs[i]);
  std::printf("]}\n");
  std::fflush(stdout);
}

inline std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\', out += c;
    else if (static_cast<unsigned char>(c) < 0x20) out += ' ';
    else out += c;
  }
  return out;
}

inline void report_value(const std::string& name, const char* unit, double value) { report(name, unit, {value}); }

inline void report_error(const std::string& name, const std::string& what) {
  std::printf("{\"bench\": \"%s\", \"error\": \"%s\"}\n", json_escape(name).c_str(), json_escape(what).c_str());
  std::fflush(stdout);
}

// Runs one section; if it throws, reports the error under `name` and carries on.
inline void section(const std::string& name, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    report_error(name, e.what());
  } catch (...) {
    report_error(name, "unknown exception");
  }
}

// ---- /proc ------------------------------------------------------------------------------

/// The 1-minute load average (-1 if /proc/loadavg cannot be read): other work on the
/// machine shows in every figure, the load before and after says how much.
inline double loadavg_1min() {
  double one = -1;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &one) != 1) one = -1;
    std::fclose(f);
  }
  return one;
}

/// The fields of /proc/<pid>/stat after the command name (field 3, the state, first); empty
/// if the process is gone.
inline std::vector<std::string> stat_fields(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(f, stat)) return {};
  auto close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) return {};
  std::istringstream rest(stat.substr(close_paren + 1));
  std::vector<std::string> out;
  for (std::string field; rest >> field;) out.push_back(field);
  return out;
}

/// The direct children of `parent` (a scan of /proc/*/stat).
inline std::vector<int> child_pids(int parent) {
  std::vector<int> out;
  DIR* dir = opendir("/proc");
  if (!dir) return out;
  while (dirent* e = readdir(dir)) {
    const std::string d = e->d_name;
    if (d.empty() || d.find_first_not_of("0123456789") != std::string::npos) continue;
    auto fields = stat_fields(std::stoi(d));
    if (fields.size() > 1 && std::stoi(fields[1]) == parent) out.push_back(std::stoi(d));
  }
  closedir(dir);
  return out;
}

/// CPU seconds (user + system) a process has used itself, and those of its children it has
/// waited for; both -1 if the process is gone. /proc counts in clock ticks (10 ms here).
struct CpuTimes {
  double self = -1, reaped_children = -1;
};
inline CpuTimes cpu_times(int pid) {
  auto f = stat_fields(pid);  // utime, stime, cutime, cstime: fields 14-17, here 11-14
  if (f.size() < 15) return {};
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  return {(std::stod(f[11]) + std::stod(f[12])) / tick, (std::stod(f[13]) + std::stod(f[14])) / tick};
}

/// A variable of /proc/<pid>/environ ("" if unset or unreadable).
inline std::string environ_var(int pid, const std::string& name) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  std::string entry;
  while (std::getline(f, entry, '\0')) {
    if (entry.rfind(name + "=", 0) == 0) return entry.substr(name.size() + 1);
  }
  return {};
}

/// A LocalCluster's child processes by role: "scheduler", "worker-0", "worker-1", ... (the
/// children of this process, named by the DISTRIB_ROLE / DISTRIB_NAME variables that
/// LocalCluster sets in their environment).
inline std::map<std::string, int> cluster_children() {
  std::map<std::string, int> out;
  for (int pid : child_pids(static_cast<int>(getpid()))) {
    std::string role = environ_var(pid, "DISTRIB_ROLE");
    if (role.empty()) continue;
    if (role == "worker") {
      std::string name = environ_var(pid, "DISTRIB_NAME");
      role = name.empty() ? "worker-pid" + std::to_string(pid) : name;
    }
    out[role] = pid;
  }
  return out;
}

}  // namespace bench
