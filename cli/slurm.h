// `sweep slurm workers`: one `sweep worker` on every node of a Slurm allocation.
//
// Sites that run Slurm want one long allocation per node that runs many short tasks,
// not thousands of tiny jobs; a sweep worker per allocated node is exactly that. This
// module renders the sbatch script (a pure function of the options, so it is
// unit-tested without Slurm) and submits it with `sbatch --parsable`.
//
// The script's stop protocol (docs/cluster.md explains it to users):
// - SIGTERM to the batch shell alone (`scancel --batch --signal=TERM JOB`, and
//   `#SBATCH --signal=B:TERM@drain_before` before the time limit) drains: the script
//   sends one SIGTERM to each node's `sweep worker` process and to nothing else, so
//   running trials go on for --drain-timeout, are then stopped and given back to the
//   scheduler, the workers exit 0 and the job ends COMPLETED.
// - A plain `scancel JOB` is Slurm's own kill: SIGTERM to every process of the job
//   (trials included), SIGKILL after the cluster's KillWait.
//
// Thread-compatible; everything but SlurmWorkersCommand is a pure function.
#ifndef SWEEP_CLI_SLURM_H_
#define SWEEP_CLI_SLURM_H_

#include <cstdint>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/client.h"

namespace sweep {

struct SlurmWorkersOptions {
  // The allocation.
  int nodes = 1;
  // GPUs per node (sbatch --gpus-per-node). > 0: each node runs `sweep worker --gpus
  // all`, one slot per GPU Slurm gave the job.
  int gpus_per_node = 0;
  // CPUs per node (sbatch --cpus-per-task; the node's single task is the worker).
  // With gpus_per_node == 0 each node runs `sweep worker --cpus N`: N CPU slots.
  int cpus_per_node = 0;
  std::string partition;  // empty: the cluster's default partition
  std::string time;       // time limit ("30", "4:00:00", "2-00:00:00"); empty: the partition's
  std::string account;    // empty: the user's default account
  std::string job_name = "sweep-workers";
  std::vector<std::string> sbatch_options;  // extra `#SBATCH` lines: "--constraint=a100"
  std::string output = "sweep-workers-%j.out";  // the job's log (sbatch --output)

  // What every worker is told. Paths must be valid on the compute nodes (a shared
  // file system); the token itself never appears in the script, only its file.
  ClientOptions scheduler;
  std::string sweep_bin;  // the `sweep` executable on the compute nodes
  std::string work_dir = "sweep-runs";
  double drain_timeout = 60;  // worker --drain-timeout
  double kill_grace = 10;     // worker --kill-grace
  // Seconds before the time limit at which the workers start draining
  // (#SBATCH --signal=B:TERM@N); 0: drain_timeout + kill_grace + 30.
  int drain_before = 0;
};

// Returns the drain warning in seconds: o.drain_before, or its default when 0.
int DrainBeforeSeconds(const SlurmWorkersOptions& o);

// Parses a Slurm time limit: "M", "M:S", "H:M:S", "D-H", "D-H:M", "D-H:M:S".
// Returns seconds, or InvalidArgument naming the accepted forms.
absl::StatusOr<int64_t> ParseSlurmTime(const std::string& text);

// Quotes `s` as one word for a POSIX shell ('...' with ' written as '\'').
std::string ShellQuote(const std::string& s);

// Checks every option that reaches the script. Returns OK, or InvalidArgument whose
// message names the flag and says what is accepted: no slots asked for, a partition,
// account or job name with characters outside [A-Za-z0-9_.+-] (partitions may also
// hold ','), an unparsable or too short --time, a drain warning not longer than
// drain timeout + kill grace, control characters in any value, spaces or quotes in
// the log path, an extra sbatch option that does not start with '-'.
absl::Status ValidateSlurmWorkers(const SlurmWorkersOptions& o);

// Returns the sbatch script for `o`, or ValidateSlurmWorkers' error. Every value
// that reaches a shell command is single-quoted; `#SBATCH` lines hold only
// validated values.
absl::StatusOr<std::string> RenderSlurmWorkersScript(const SlurmWorkersOptions& o);

// Runs `sweep slurm workers`: makes relative paths absolute, fills in sweep_bin
// (this executable) when empty, validates, then prints the script (`dry_run`) or
// submits it with `sbatch --parsable` and prints the job id on stdout, how to stop
// the job on stderr. Returns 0, 2 for bad options (or a token or CA file that cannot
// be read here), 1 when sbatch is missing or fails (its message is shown).
int SlurmWorkersCommand(SlurmWorkersOptions o, bool dry_run);

// Registers `sweep slurm workers` on `app`. Its flags fill a copy of `scheduler`'s
// defaults (--scheduler, --token-file, --tls-ca as for every client command). The
// subcommand runs from its CLI11 callback once parsing succeeded and ends the
// process with the command's exit code, so main() needs no dispatch line for it.
void AddSlurmCommands(CLI::App& app, const ClientOptions& scheduler);

}  // namespace sweep

#endif  // SWEEP_CLI_SLURM_H_
