#pragma once
// Which part of a cluster a process started by srun or mpirun is (drun, issue 18): read from
// the launcher's environment, as dask-mpi reads its MPI rank, but without linking MPI.
// Rank 0 is the scheduler, rank 1 runs the program as the client, the rest are workers.
#include <functional>
#include <optional>
#include <string>

namespace distrib::detail {

enum class LaunchRole { scheduler, client, worker };

struct LaunchRank {
  int rank = 0;
  std::optional<int> size;      // ranks in the job, when the launcher says
  bool single_host = false;     // every rank on this host (then loopback is enough)
  std::string job_id;           // names the default scheduler file; "" if unknown
  std::string launcher;         // "slurm", "openmpi", "pmi", "pmix": for messages
  LaunchRole role() const {
    return rank == 0 ? LaunchRole::scheduler : rank == 1 ? LaunchRole::client : LaunchRole::worker;
  }
};

/// Reads SLURM_PROCID, OMPI_COMM_WORLD_RANK, PMI_RANK or PMIX_RANK (the first one set) and
/// their sizes and job ids through `getenv`; throws std::runtime_error naming the variables
/// if none is set or one is not a number.
LaunchRank read_launch_rank(const std::function<const char*(const char*)>& getenv);

}  // namespace distrib::detail
