// drun's reading of srun's and mpirun's environment (cluster/launch_rank.hpp).
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "cluster/launch_rank.hpp"

namespace distrib::detail {
namespace {

LaunchRank read(const std::map<std::string, std::string>& env) {
  return read_launch_rank([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(LaunchRank, SlurmRanksAndJob) {
  auto r = read({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}, {"SLURM_NNODES", "1"}, {"SLURM_JOB_ID", "77"},
                 {"SLURM_STEP_ID", "0"}});
  EXPECT_EQ(r.rank, 0);
  EXPECT_EQ(r.role(), LaunchRole::scheduler);
  EXPECT_EQ(r.size, 4);
  EXPECT_TRUE(r.single_host);
  EXPECT_EQ(r.job_id, "slurm-77.0");
  EXPECT_EQ(read({{"SLURM_PROCID", "1"}, {"SLURM_NNODES", "3"}}).role(), LaunchRole::client);
  EXPECT_FALSE(read({{"SLURM_PROCID", "1"}, {"SLURM_NNODES", "3"}}).single_host);
  EXPECT_EQ(read({{"SLURM_PROCID", "5"}}).role(), LaunchRole::worker);
}

TEST(LaunchRank, OpenMpiLocalSizeTellsOneHost) {
  auto r = read({{"OMPI_COMM_WORLD_RANK", "2"}, {"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"},
                 {"OMPI_MCA_ess_base_jobid", "123:4/5"}});
  EXPECT_EQ(r.role(), LaunchRole::worker);
  EXPECT_TRUE(r.single_host);
  EXPECT_EQ(r.launcher, "openmpi");
  EXPECT_EQ(r.job_id, "mpi-123_4_5");  // only characters safe in a file name
  EXPECT_FALSE(read({{"OMPI_COMM_WORLD_RANK", "2"}, {"OMPI_COMM_WORLD_SIZE", "8"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}})
                   .single_host);
}

TEST(LaunchRank, SlurmWinsOverMpiAndPmiVariablesAreRead) {
  // srun --mpi=pmix sets both: Slurm's own rank is the one to trust.
  EXPECT_EQ(read({{"SLURM_PROCID", "3"}, {"PMIX_RANK", "0"}}).rank, 3);
  EXPECT_EQ(read({{"PMI_RANK", "1"}, {"PMI_SIZE", "3"}}).size, 3);
  EXPECT_EQ(read({{"PMIX_RANK", "4"}, {"PMIX_NAMESPACE", "job.7"}}).job_id, "pmix-job.7");
}

TEST(LaunchRank, MissingOrMalformedRankIsAClearError) {
  try {
    read({});
    FAIL() << "no rank accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("SLURM_PROCID, OMPI_COMM_WORLD_RANK"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read({{"SLURM_PROCID", "x1"}}), std::runtime_error);
  EXPECT_THROW(read({{"OMPI_COMM_WORLD_RANK", "-1"}}), std::runtime_error);
  EXPECT_THROW(read({{"PMI_RANK", "2junk"}}), std::runtime_error);
}

}  // namespace
}  // namespace distrib::detail
