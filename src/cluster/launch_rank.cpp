#include "cluster/launch_rank.hpp"

#include <cctype>
#include <stdexcept>

namespace distrib::detail {

namespace {
std::optional<int> number(const std::function<const char*(const char*)>& getenv, const char* name) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  std::size_t used = 0;
  int n = 0;
  try {
    n = std::stoi(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || v[used] != '\0' || n < 0)
    throw std::runtime_error(std::string("drun: ") + name + "='" + v + "' is not a rank number");
  return n;
}

std::string text(const std::function<const char*(const char*)>& getenv, const char* name) {
  const char* v = getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}
}  // namespace

LaunchRank read_launch_rank(const std::function<const char*(const char*)>& getenv) {
  LaunchRank r;
  if (auto rank = number(getenv, "SLURM_PROCID")) {
    r.rank = *rank;
    r.launcher = "slurm";
    r.size = number(getenv, "SLURM_NTASKS");
    if (!r.size) r.size = number(getenv, "SLURM_NPROCS");
    auto nodes = number(getenv, "SLURM_NNODES");
    r.single_host = nodes && *nodes == 1;
    const auto job = text(getenv, "SLURM_JOB_ID");
    if (!job.empty()) r.job_id = "slurm-" + job + "." + text(getenv, "SLURM_STEP_ID");
  } else if (auto rank = number(getenv, "OMPI_COMM_WORLD_RANK")) {
    r.rank = *rank;
    r.launcher = "openmpi";
    r.size = number(getenv, "OMPI_COMM_WORLD_SIZE");
    auto local = number(getenv, "OMPI_COMM_WORLD_LOCAL_SIZE");
    r.single_host = local && r.size && *local == *r.size;
    auto job = text(getenv, "OMPI_MCA_ess_base_jobid");
    if (job.empty()) job = text(getenv, "PMIX_NAMESPACE");
    if (!job.empty()) r.job_id = "mpi-" + job;
  } else if (auto rank = number(getenv, "PMI_RANK")) {
    r.rank = *rank;
    r.launcher = "pmi";
    r.size = number(getenv, "PMI_SIZE");
    const auto job = text(getenv, "PMI_JOBID");
    if (!job.empty()) r.job_id = "pmi-" + job;
  } else if (auto rank = number(getenv, "PMIX_RANK")) {
    r.rank = *rank;
    r.launcher = "pmix";
    const auto job = text(getenv, "PMIX_NAMESPACE");
    if (!job.empty()) r.job_id = "pmix-" + job;
  } else {
    throw std::runtime_error(
        "drun: no rank in the environment (SLURM_PROCID, OMPI_COMM_WORLD_RANK, PMI_RANK or PMIX_RANK); "
        "start it with srun or mpirun, e.g. `mpirun -n 4 drun ./app`");
  }
  // Job ids are used in a file name: keep them to safe characters.
  for (auto& c : r.job_id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  return r;
}

}  // namespace distrib::detail
