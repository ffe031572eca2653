#pragma once
// The LocalCluster the client benchmarks run on.
#include <distrib/distrib.hpp>

#include <cstdlib>
#include <string>

namespace bench {

/// A LocalCluster of `workers` one-thread workers, with what the environment asks for:
/// DISTRIB_BENCH_SECURITY=tls (mutual TLS with Security::temporary()) or token, and
/// DISTRIB_BENCH_SHARED_MEMORY=0 (sockets only: what TLS against TCP compares), and
/// DISTRIB_BENCH_PROCESSES=0 (workers as threads of this process: inproc://, or Unix
/// sockets with DISTRIB_INPROC=0).
inline distrib::LocalClusterOptions cluster_options(int workers) {
  distrib::LocalClusterOptions o;
  o.n_workers = workers;
  o.threads_per_worker = 1;
  const char* security = std::getenv("DISTRIB_BENCH_SECURITY");
  if (security && std::string(security) == "tls") o.security = distrib::Security::temporary();
  if (security && std::string(security) == "token") o.security.token = distrib::Security::temporary().token;
  const char* shm = std::getenv("DISTRIB_BENCH_SHARED_MEMORY");
  if (shm && std::string(shm) == "0") o.shared_memory = false;
  const char* processes = std::getenv("DISTRIB_BENCH_PROCESSES");
  if (processes && std::string(processes) == "0") o.processes = false;
  return o;
}

}  // namespace bench
