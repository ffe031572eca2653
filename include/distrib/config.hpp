#pragma once
// Configuration, one schema (as Dask's dask.config): every knob of the daemons, LocalCluster
// and the client has one key, e.g. "worker.nthreads", and comes from, in rising precedence:
//   1. its built-in default;
//   2. the YAML file named by DISTRIB_CONFIG:
//        scheduler:
//          port: 8786
//        worker:
//          nthreads: 4
//          memory:
//            target: 0.6
//   3. its environment variable, DISTRIB_ + the key in capitals with "." as "__" and "-" as
//      "_" (DISTRIB_WORKER__NTHREADS, DISTRIB_LOCAL_CLUSTER__N_WORKERS), as Dask's DASK_*;
//      a few keep their established names (DISTRIB_AUTH_TOKEN, DISTRIB_TLS_CERT, ...);
//   4. a daemon's command-line flag (dworker --nthreads 4), or a field you set in
//      ClientOptions or LocalClusterOptions (their defaults are read from here).
// An unknown key in the file, or an unknown DISTRIB_<SECTION>__<KEY> variable, is an error
// that names it. `dscheduler --print-config` and `dworker --print-config` show the effective
// values and where each came from; docs/user-guide.md lists every key.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace distrib::config {

/// The effective text of `key`. Throws std::invalid_argument for an unknown key, or for a
/// configuration file that cannot be read or names an unknown key.
std::string get(const std::string& key);
/// The same, read as a number, a boolean (true/false, yes/no, on/off, 1/0) or a duration
/// (seconds, or with a unit: 500ms, 90s, 2m, 1h). Throws std::invalid_argument naming the
/// key and where its value came from if it is not one.
long long get_int(const std::string& key);
double get_double(const std::string& key);
bool get_bool(const std::string& key);
std::chrono::milliseconds get_duration(const std::string& key);
/// A fraction in [0, 1], or std::nullopt for "false" / "none" (a threshold turned off).
std::optional<double> get_fraction(const std::string& key);

struct Setting {
  std::string key;
  std::string value;
  std::string source;  // "default", "file /etc/distrib.yaml", "env DISTRIB_WORKER__NTHREADS"
  std::string env;     // its environment variable
  std::string help;
};
/// Every key whose name starts with `prefix` ("" for all), in the schema's order.
std::vector<Setting> settings(const std::string& prefix = "");

/// Reads DISTRIB_CONFIG and the environment again (they are read once, on first use).
void reload();

}  // namespace distrib::config
