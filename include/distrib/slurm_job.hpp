#pragma once
// SlurmJob: the sbatch script that runs a distrib program as one Slurm job, as
// dask-jobqueue's SLURMCluster.job_script(). The job's tasks are drun's ranks: task 0 is the
// scheduler, task 1 runs the program (the client), every other task is a worker (the program
// started with --distrib-worker), so the program must call distrib::init first thing.
//
//   distrib::SlurmJobOptions o;
//   o.queue = "compute";
//   o.walltime = "01:00:00";
//   o.ntasks = 10;           // the scheduler, the program, 8 workers
//   o.cpus_per_task = 4;     // each worker's threads (drun reads SLURM_CPUS_PER_TASK)
//   o.program = {"./app", "input.csv"};
//   distrib::SlurmJob job(o);
//   std::cout << job.job_script();   // or: std::string id = job.submit();
//
// The job's working directory (by default where sbatch runs) must be shared between the
// nodes: the ranks meet through a scheduler file there.
#include <string>
#include <vector>

namespace distrib {

struct SlurmJobOptions {
  /// #SBATCH --job-name.
  std::string job_name = "distrib";
  /// #SBATCH --partition (dask-jobqueue's `queue`); empty: the cluster's default partition.
  std::string queue;
  /// #SBATCH --account; empty: the user's default account.
  std::string account;
  /// #SBATCH --time, as "HH:MM:SS" (hours may have more digits) or "D-HH:MM:SS"; empty:
  /// the partition's limit.
  std::string walltime = "00:30:00";
  /// #SBATCH --nodes; 0: as many as Slurm needs for the tasks.
  int nodes = 0;
  /// #SBATCH --ntasks: the scheduler, the program and ntasks - 2 workers (so at least 3).
  int ntasks = 3;
  /// #SBATCH --cpus-per-task, and srun's too (since Slurm 22.05 a step does not inherit
  /// it): each worker's threads, through SLURM_CPUS_PER_TASK, unless `nthreads` says
  /// otherwise; 0: not requested (one CPU per task).
  int cpus_per_task = 1;
  /// #SBATCH --mem: memory per node, in Slurm's units ("16G", "4000M"); empty: not requested.
  std::string memory;
  /// #SBATCH --output: the job's standard output and error ("logs/%x-%j.out"); empty:
  /// Slurm's default, slurm-<job id>.out in the working directory.
  std::string output;
  /// More directives, each written as "#SBATCH <directive>", e.g. "--constraint=ib" or
  /// "--exclusive" (dask-jobqueue's job_extra_directives). Directive values, here and above,
  /// are written as given: sbatch, not the shell, reads them.
  std::vector<std::string> job_extra_directives;
  /// Shell lines run before srun, e.g. "module load gcc/12" (dask-jobqueue's
  /// job_script_prologue). Written as given: they are shell code.
  std::vector<std::string> job_script_prologue;
  /// Arguments for srun itself, e.g. {"--mpi=none"}.
  std::vector<std::string> srun_args;
  /// The drun program (a path, or a name found on PATH on the nodes).
  std::string drun = "drun";
  /// drun's --scheduler-file; empty: drun's default, distrib-scheduler-<job id>.json in the
  /// job's working directory.
  std::string scheduler_file;
  /// drun's --nthreads (threads per worker); 0: drun's default, SLURM_CPUS_PER_TASK.
  int nthreads = 0;
  /// More arguments for drun, e.g. {"--interface", "ib0", "--dashboard-address", "none"}.
  std::vector<std::string> drun_args;
  /// The program and its arguments; program[0] is a path the nodes can run.
  std::vector<std::string> program;
};

class SlurmJob {
 public:
  /// Checks the options: throws std::invalid_argument, naming the option, if ntasks < 3,
  /// nodes, cpus_per_task or nthreads is negative, nodes > ntasks, walltime is not
  /// "HH:MM:SS" or "D-HH:MM:SS", program is empty, or any text holds a newline (it would end
  /// a directive or a command early).
  explicit SlurmJob(SlurmJobOptions options);

  /// The sbatch script: "#!/usr/bin/env bash", the #SBATCH directives, the prologue, then
  /// `srun [--cpus-per-task=N] [srun_args] drun [drun options] program args...` with each
  /// word shell-quoted.
  std::string job_script() const;

  /// Writes job_script() to a temporary file, runs `sbatch --parsable` on it in the current
  /// directory and returns the job id. Throws std::runtime_error if sbatch is not on PATH,
  /// or fails (with its output).
  std::string submit() const;

  const SlurmJobOptions& options() const { return options_; }

 private:
  SlurmJobOptions options_;
};

}  // namespace distrib
