// SlurmJob: the options checked once, then written out as an sbatch script; submit() hands
// it to `sbatch --parsable`, which prints the job id (and ";cluster" on federations).
#include "distrib/slurm_job.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <stdexcept>
#include <utility>

#include "cluster/process.hpp"

namespace distrib {

namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument("SlurmJob: " + message);
}

// The value in the message, with its line breaks shown as \n and \r so the message is one line.
void require_one_line(const std::string& option, const std::string& value) {
  if (value.find_first_of("\r\n") == std::string::npos) return;
  std::string shown;
  for (char c : value) shown += c == '\n' ? "\\n" : c == '\r' ? "\\r" : std::string(1, c);
  require(false, option + " holds a newline: \"" + shown + "\"");
}

void require_one_line(const std::string& option, const std::vector<std::string>& values) {
  for (const auto& v : values) require_one_line(option, v);
}

// Slurm's --time forms that say hours, minutes and seconds.
bool is_walltime(const std::string& s) {
  static const std::regex form(R"(([0-9]+-[0-9]{1,2}|[0-9]+):[0-5][0-9]:[0-5][0-9])");
  return std::regex_match(s, form);
}

// One shell word: bare if it cannot be misread, else in single quotes.
std::string shell_quote(const std::string& s) {
  const bool plain = !s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                       "0123456789_-+=:,./@%") == std::string::npos;
  if (plain) return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  // standard output and error together
};

CommandResult run_capturing(std::vector<std::string> argv) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error(std::string("SlurmJob: pipe: ") + std::strerror(errno));
  std::vector<char*> c_argv;
  for (auto& a : argv) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);
  const pid_t child = ::fork();
  if (child < 0) {
    ::close(out[0]);
    ::close(out[1]);
    throw std::runtime_error(std::string("SlurmJob: fork: ") + std::strerror(errno));
  }
  if (child == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(out[1], STDERR_FILENO);
    ::execv(c_argv[0], c_argv.data());
    _exit(127);
  }
  ::close(out[1]);
  CommandResult result;
  char buffer[4096];
  for (ssize_t n; (n = ::read(out[0], buffer, sizeof buffer)) != 0;) {
    if (n > 0) result.output.append(buffer, static_cast<std::size_t>(n));
    else if (errno != EINTR) break;
  }
  ::close(out[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// The job id from `sbatch --parsable`: the last line that starts with digits (warnings may
// come before it), up to a ';'.
std::string parsable_job_id(const std::string& output) {
  static const std::regex line(R"((?:^|\n)([0-9]+)(?:;[^\n]*)?\n?$)");
  std::smatch m;
  return std::regex_search(output, m, line) ? m[1].str() : "";
}

// Removes the script file however submit() leaves.
struct TempFile {
  std::string path;
  ~TempFile() {
    if (!path.empty()) std::remove(path.c_str());
  }
};

}  // namespace

SlurmJob::SlurmJob(SlurmJobOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  require(o.ntasks >= 3, "ntasks must be at least 3 (the scheduler, the program and one worker), not " +
                             std::to_string(o.ntasks));
  require(o.nodes >= 0, "nodes must not be negative, not " + std::to_string(o.nodes));
  require(o.nodes <= o.ntasks, "nodes (" + std::to_string(o.nodes) + ") is more than ntasks (" +
                                   std::to_string(o.ntasks) + "): some nodes would have no task");
  require(o.cpus_per_task >= 0, "cpus_per_task must not be negative, not " + std::to_string(o.cpus_per_task));
  require(o.nthreads >= 0, "nthreads must not be negative, not " + std::to_string(o.nthreads));
  require(!o.program.empty() && !o.program.front().empty(), "no program given: set program = {\"./app\", args...}");
  require(!o.drun.empty(), "drun must name the drun program");
  require_one_line("job_name", o.job_name);
  require_one_line("queue", o.queue);
  require_one_line("account", o.account);
  require_one_line("walltime", o.walltime);
  require_one_line("memory", o.memory);
  require_one_line("output", o.output);
  require_one_line("job_extra_directives", o.job_extra_directives);
  require_one_line("job_script_prologue", o.job_script_prologue);
  require_one_line("srun_args", o.srun_args);
  require_one_line("drun", o.drun);
  require_one_line("scheduler_file", o.scheduler_file);
  require_one_line("drun_args", o.drun_args);
  require_one_line("program", o.program);
  require(o.walltime.empty() || is_walltime(o.walltime),
          "walltime must be HH:MM:SS or D-HH:MM:SS, not \"" + o.walltime + "\"");
}

std::string SlurmJob::job_script() const {
  const auto& o = options_;
  std::string script = "#!/usr/bin/env bash\n";
  auto directive = [&](const std::string& text) { script += "#SBATCH " + text + "\n"; };
  if (!o.job_name.empty()) directive("--job-name=" + o.job_name);
  if (!o.queue.empty()) directive("--partition=" + o.queue);
  if (!o.account.empty()) directive("--account=" + o.account);
  if (!o.walltime.empty()) directive("--time=" + o.walltime);
  if (o.nodes > 0) directive("--nodes=" + std::to_string(o.nodes));
  directive("--ntasks=" + std::to_string(o.ntasks));
  if (o.cpus_per_task > 0) directive("--cpus-per-task=" + std::to_string(o.cpus_per_task));
  if (!o.memory.empty()) directive("--mem=" + o.memory);
  if (!o.output.empty()) directive("--output=" + o.output);
  for (const auto& d : o.job_extra_directives) directive(d);
  for (const auto& line : o.job_script_prologue) script += line + "\n";

  script += "# drun: task 0 is the scheduler, task 1 runs the program, the others are its workers\n";
  std::vector<std::string> words{"srun"};
  // Since Slurm 22.05 a step no longer inherits the job's --cpus-per-task: without it again
  // here each worker would get one CPU.
  if (o.cpus_per_task > 0) words.push_back("--cpus-per-task=" + std::to_string(o.cpus_per_task));
  words.insert(words.end(), o.srun_args.begin(), o.srun_args.end());
  words.push_back(o.drun);
  if (!o.scheduler_file.empty()) words.insert(words.end(), {"--scheduler-file", o.scheduler_file});
  if (o.nthreads > 0) words.insert(words.end(), {"--nthreads", std::to_string(o.nthreads)});
  words.insert(words.end(), o.drun_args.begin(), o.drun_args.end());
  words.insert(words.end(), o.program.begin(), o.program.end());
  std::string command;
  for (const auto& w : words) command += (command.empty() ? "" : " ") + shell_quote(w);
  return script + command + "\n";
}

std::string SlurmJob::submit() const {
  const std::string sbatch = detail::find_in_path("sbatch");
  if (sbatch.empty()) throw std::runtime_error("SlurmJob: sbatch is not on PATH (is this a Slurm login node?)");

  const char* tmpdir = std::getenv("TMPDIR");
  std::string path = std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") + "/distrib-job-XXXXXX";
  const int fd = ::mkstemp(path.data());
  if (fd < 0) throw std::runtime_error("SlurmJob: cannot create " + path + ": " + std::strerror(errno));
  TempFile file{path};
  const std::string script = job_script();
  std::size_t written = 0;
  while (written < script.size()) {
    const ssize_t n = ::write(fd, script.data() + written, script.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = errno;
      ::close(fd);
      throw std::runtime_error("SlurmJob: cannot write " + path + ": " + std::strerror(error));
    }
    written += static_cast<std::size_t>(n);
  }
  ::close(fd);

  // sbatch reads the script now and keeps a copy: the file may go as soon as it returns.
  const auto result = run_capturing({sbatch, "--parsable", path});
  const std::string id = parsable_job_id(result.output);
  if (result.exit_code != 0 || id.empty())
    throw std::runtime_error("SlurmJob: sbatch failed (" +
                             (result.exit_code == 127 ? std::string("could not run ") + sbatch
                                                      : "exit code " + std::to_string(result.exit_code)) +
                             "): " + result.output);
  return id;
}

}  // namespace distrib
