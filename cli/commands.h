// The `sweep` subcommands, each a function from parsed options to an exit code
// (0 success, 2 bad input, 1 other failure; see common/status_util.h). Results go
// to stdout, messages to stderr. main.cc only parses flags and dispatches here.
#ifndef SWEEP_CLI_COMMANDS_H_
#define SWEEP_CLI_COMMANDS_H_

#include <string>

#include "cli/client.h"
#include "common/address.h"
#include "scheduler/server.h"
#include "sweeps/spec.h"
#include "worker/worker.h"

namespace sweep {

struct SchedulerCommandOptions {
  ServerOptions server;
  std::string port_file;  // written with the bound address once listening
};
int SchedulerCommand(const SchedulerCommandOptions& o);

int WorkerCommand(const WorkerOptions& o);

// With `dry_run` the scheduler checks the spec and its placement on the connected
// workers and stores nothing; the budget and the verdict are printed.
int SubmitCommand(const ClientOptions& scheduler, const std::string& file,
                  bool dry_run = false);
int StatusCommand(const ClientOptions& scheduler, const std::string& sweep_id, bool json);
int TrialsCommand(const ClientOptions& scheduler, const std::string& sweep_id,
                  const std::string& sort_metric, bool reverse, bool json);
int BestCommand(const ClientOptions& scheduler, const std::string& sweep_id, bool json);
int CancelCommand(const ClientOptions& scheduler, const std::string& sweep_id);
int LogsCommand(const ClientOptions& scheduler, const std::string& trial_id, bool stderr_only);
int ExportCommand(const ClientOptions& scheduler, const std::string& sweep_id,
                  const std::string& format, const std::string& output);
int ValidateCommand(const std::string& file);

// Returns a warning when the first trial's program cannot be found from the current
// directory (where trials run from), or "" when it can.
std::string CheckProgram(const spec::SweepSpec& spec);

struct RunCommandOptions {
  std::string file;
  std::string gpus;  // all|LIST; empty: GPUs if the node has any, else CPU slots
  int cpus = 0;
  std::string db = "sweeps.db";
  std::string work_dir = "sweep-runs";
  std::string log_level = "warn";
  std::string http = kDefaultDashboardAddress;  // the dashboard's address, or "off"
};
int RunCommand(const RunCommandOptions& o);

}  // namespace sweep

#endif  // SWEEP_CLI_COMMANDS_H_
