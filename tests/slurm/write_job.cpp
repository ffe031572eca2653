// slurm_job_writer: distrib::SlurmJob from the command line, for run_slurm_test.sh.
//   slurm_job_writer [--submit] NAME=VALUE... -- program args...
// NAME is one of ntasks, output, drun, scheduler_file, nthreads, directive (repeatable),
// srun_arg (repeatable), drun_arg (repeatable). Prints job_script(), or with --submit submits
// it (SlurmJob::submit) and prints the job id.
#include <distrib/slurm_job.hpp>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

int main(int argc, char** argv) {
  distrib::SlurmJobOptions o;
  o.job_name = "distrib-slurm-test";
  o.walltime = "00:05:00";
  bool submit = false;
  int i = 1;
  try {
    for (; i < argc && std::strcmp(argv[i], "--") != 0; ++i) {
      const std::string arg = argv[i];
      if (arg == "--submit") {
        submit = true;
        continue;
      }
      const auto eq = arg.find('=');
      const std::string name = arg.substr(0, eq), value = eq == std::string::npos ? "" : arg.substr(eq + 1);
      if (name == "ntasks") o.ntasks = std::stoi(value);
      else if (name == "output") o.output = value;
      else if (name == "drun") o.drun = value;
      else if (name == "scheduler_file") o.scheduler_file = value;
      else if (name == "nthreads") o.nthreads = std::stoi(value);
      else if (name == "directive") o.job_extra_directives.push_back(value);
      else if (name == "srun_arg") o.srun_args.push_back(value);
      else if (name == "drun_arg") o.drun_args.push_back(value);
      else throw std::invalid_argument("unknown option " + arg);
    }
    for (++i; i < argc; ++i) o.program.emplace_back(argv[i]);
    const distrib::SlurmJob job(o);
    std::fputs(submit ? (job.submit() + "\n").c_str() : job.job_script().c_str(), stdout);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slurm_job_writer: %s\n", e.what());
    return 1;
  }
}
