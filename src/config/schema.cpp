#include "config/schema.hpp"

#include <cctype>

namespace distrib::detail::config {

namespace {
// Daemon flags keep their flags' defaults (shown by --help and --print-config); the
// defaults here are those of the keys without a flag.
std::vector<SettingSpec> make_schema() {
  return {
      // dscheduler
      {"scheduler.host", "0.0.0.0", "address the scheduler listens on", "", "--host"},
      {"scheduler.port", "8786", "its port (0: any free port)", "", "--port"},
      {"scheduler.interface", "", "network interface to listen on instead of host", "", "--interface"},
      {"scheduler.contact-address", "", "the address workers and clients are told to use", "", "--contact-address"},
      {"scheduler.scheduler-file", "", "write the scheduler file here", "", "--scheduler-file"},
      {"scheduler.dashboard-address", ":8787", "the web dashboard (none: off)", "", "--dashboard-address"},
      {"scheduler.local-socket", "", "also listen on unix://@NAME", "", "--local-socket"},
      {"scheduler.worker-saturation", "1.1", "root tasks per worker thread before queuing (inf: none)", "",
       "--worker-saturation"},
      {"scheduler.work-stealing", "true", "move waiting tasks from busy workers to idle ones", "", "--work-stealing"},
      {"scheduler.assign-ahead-depth", "2", "levels of unfinished inputs a task may be sent ahead of", "",
       "--assign-ahead-depth"},
      {"scheduler.allowed-failures", "3", "worker deaths a task may take part in before KilledWorker", "",
       "--allowed-failures"},
      {"scheduler.worker-ttl", "30", "seconds a silent worker is kept", "", "--worker-ttl"},
      {"scheduler.client-grace", "60", "seconds a disconnected client keeps its keys", "", "--client-grace"},
      {"scheduler.journal", "", "directory of the write-ahead journal", "", "--journal"},
      {"scheduler.journal-snapshot-mib", "64", "snapshot the journal past this size", "", "--journal-snapshot-mib"},
      {"scheduler.log-level", "info", "trace ... off", "", "--log-level"},
      // dworker (and ./app --distrib-worker)
      {"worker.scheduler-file", "", "read the scheduler's address from this file", "", "--scheduler-file"},
      {"worker.nthreads", "", "threads that run tasks (default: the host's cores)", "", "--nthreads"},
      {"worker.name", "", "the worker's name (default: its address)", "", "--name"},
      {"worker.host", "0.0.0.0", "address the data port listens on", "", "--host"},
      {"worker.interface", "", "network interface to listen on instead of host", "", "--interface"},
      {"worker.contact-address", "", "the address peers are told to use", "", "--contact-address"},
      {"worker.memory-limit", "auto", "bytes, a size (4GiB), a fraction, auto or 0", "", "--memory-limit"},
      {"worker.memory.target", "0.6", "spill stored values past this fraction of the limit", "",
       "--memory-target-fraction"},
      {"worker.memory.spill", "0.7", "spill by process memory past this fraction", "", "--memory-spill-fraction"},
      {"worker.memory.pause", "0.8", "start no task past this fraction", "", "--memory-pause-fraction"},
      {"worker.memory.terminate", "0.95", "the nanny restarts the worker past this fraction", "",
       "--memory-terminate-fraction"},
      {"worker.local-directory", "", "where the spill directory is made", "", "--local-directory"},
      {"worker.preload", "", "task libraries to load (a list)", "", "--preload"},
      {"worker.resources", "", "resources, as \"GPU=2 MEM=10e9\"", "", "--resources"},
      {"worker.timeout", "10", "seconds to keep trying to reach the scheduler", "", "--timeout"},
      {"worker.death-timeout", "60", "seconds without the scheduler before giving up", "", "--death-timeout"},
      {"worker.close-timeout", "5", "seconds running tasks get to stop", "", "--close-timeout"},
      {"worker.nanny", "true", "run the worker under a nanny that restarts it", "", "--nanny"},
      {"worker.lifetime", "0", "stop (and restart) after this long", "", "--lifetime"},
      {"worker.lifetime-stagger", "0", "random spread of the lifetime", "", "--lifetime-stagger"},
      {"worker.lifetime-restart", "true", "a fresh worker after the lifetime", "", "--lifetime-restart"},
      {"worker.shared-memory", "true", "hand large values over through shared memory on a host",
       "DISTRIB_SHARED_MEMORY", "--shared-memory"},
      {"worker.log-level", "info", "trace ... off", "", "--log-level"},
      // both daemons
      {"comm.handshake-timeout", "10", "seconds a peer has for its handshake", "", "--handshake-timeout"},
      {"comm.max-connections", "4096", "connections a daemon keeps open (0: no cap)", "", "--max-connections"},
      {"comm.max-unauthenticated-connections", "256", "connections still in their handshake (0: no cap)", "",
       "--max-unauthenticated-connections"},
      {"security.tls-ca-file", "", "the cluster's CA (PEM)", "DISTRIB_TLS_CA_FILE", "--tls-ca-file"},
      {"security.tls-cert", "", "this process's certificate (PEM)", "DISTRIB_TLS_CERT", "--tls-cert"},
      {"security.tls-key", "", "its private key (PEM)", "DISTRIB_TLS_KEY", "--tls-key"},
      {"security.auth-token-file", "", "file holding the cluster's token", "", "--auth-token-file"},
      {"security.token", "", "the cluster's token itself", "DISTRIB_AUTH_TOKEN", ""},
      {"security.insecure", "false", "listen beyond loopback with neither TLS nor a token", "", "--insecure"},
      // distrib::Client (ClientOptions)
      {"client.scheduler-address", "", "the scheduler a Client() connects to", "DISTRIB_SCHEDULER_ADDRESS", ""},
      {"client.scheduler-file", "", "the scheduler file a Client() reads", "DISTRIB_SCHEDULER_FILE", ""},
      {"client.connect-timeout", "10s", "how long a client waits for the scheduler", "", ""},
      {"client.reconnect-timeout", "30s", "how long a client reconnects after a drop", "", ""},
      {"client.name", "client", "the client's name in the scheduler's logs", "", ""},
      // distrib::LocalCluster (LocalClusterOptions)
      {"local-cluster.n-workers", "0", "workers (0: as Dask, from the cores)", "", ""},
      {"local-cluster.threads-per-worker", "0", "threads per worker (0: as Dask)", "", ""},
      {"local-cluster.processes", "true", "workers as child processes (false: threads)", "", ""},
      {"local-cluster.host", "127.0.0.1", "address the scheduler and workers listen on", "", ""},
      {"local-cluster.log-level", "warn", "log level of the scheduler and workers", "", ""},
      {"local-cluster.start-timeout", "30s", "how long the cluster waits for its processes", "", ""},
      {"local-cluster.dashboard-address", ":8787", "the dashboard (none: off)", "", ""},
      {"local-cluster.shared-memory", "true", "hand large values over through shared memory", "", ""},
      {"local-cluster.memory-limit", "auto", "each worker's memory limit", "", ""},
      {"local-cluster.memory.target", "0.6", "as worker.memory.target (false: off)", "", ""},
      {"local-cluster.memory.spill", "0.7", "as worker.memory.spill", "", ""},
      {"local-cluster.memory.pause", "0.8", "as worker.memory.pause", "", ""},
      {"local-cluster.memory.terminate", "0.95", "as worker.memory.terminate", "", ""},
      {"local-cluster.local-directory", "", "where workers make spill directories", "", ""},
  };
}
}  // namespace

const std::vector<SettingSpec>& schema() {
  static const std::vector<SettingSpec> s = make_schema();
  return s;
}

const SettingSpec* find(const std::string& key) {
  for (const auto& s : schema())
    if (s.key == key) return &s;
  return nullptr;
}

std::string env_name(const SettingSpec& spec) {
  if (!spec.env.empty()) return spec.env;
  std::string out = "DISTRIB_";
  for (std::size_t i = 0; i < spec.key.size(); ++i) {
    const char c = spec.key[i];
    if (c == '.') out += "__";
    else if (c == '-') out += '_';
    else out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace distrib::detail::config
