// `sweep doctor`: checks this node the way a careful user would before a long
// sweep, and says plainly what it found:
//
//   1. GPUs: what NVML (libnvidia-ml.so.1, loaded at run time) lists, MIG devices
//      included (worker/gpu.h), or that there are none and why.
//   2. the scheduler, when --scheduler or $SWEEP_SCHEDULER names one:
//   reachable.
//   3. the work directory: writable, with free disk space.
//   4. sweep-train (--trainer, else next to this binary, in the build tree, or
//      on PATH): runs `sweep-train doctor` and relays its report: LibTorch,
//      CUDA, device memory, and the same work timed on the CPU and the GPU.
//
// A check fails when something it looked at is broken: NVML present but too old
// or failing to start, a scheduler that cannot be reached, a work directory that is not
// writable or nearly full, a --trainer that does not run, and, loudest, GPUs
// listed by NVML while sweep-train's LibTorch cannot use CUDA (GPU trials
// would fail, and a program that picks its device by "is CUDA available" would
// train on the CPU without a word). A sweep-train that is not found is
// reported, not failed: sweeps need not use it.
//
// Thread-compatible; the command runs once per process.
#ifndef SWEEP_CLI_DOCTOR_H_
#define SWEEP_CLI_DOCTOR_H_

#include <string>

namespace CLI {
class App;
}  // namespace CLI

namespace sweep {

struct DoctorCommandOptions {
  std::string scheduler;   // "" : not checked
  std::string token_file;  // for the scheduler
  std::string tls_ca;
  std::string work_dir = "sweep-runs";
  std::string trainer;      // "" : look for sweep-train
  double min_free_gib = 1;  // less free disk in the work directory fails
};

// Runs the checks, printing the report to stdout. Returns 0 when every check
// passed, 1 when one failed (each failure is printed as a PROBLEM line).
int DoctorCommand(const DoctorCommandOptions& options);

// Adds the `doctor` subcommand to `app`. When it is chosen, its callback runs
// DoctorCommand during app->parse() and exits the process with its code.
void AddDoctorCommand(CLI::App* app);

}  // namespace sweep

#endif  // SWEEP_CLI_DOCTOR_H_
