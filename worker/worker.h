// The `sweep worker` daemon: leases trials from the scheduler and runs each as a
// child process pinned to its slot's GPU (or on a CPU slot).
//
// One worker process runs one GPU slot (--gpu N) or N CPU slots (--cpus N); each slot
// registers with the scheduler on its own and runs one trial at a time. `--gpus
// all|LIST` makes this process a node supervisor that starts one `sweep worker --gpu
// N` process per GPU and stops them all when it is stopped.
//
// Trial contract (docs/trial-contract.md): argv without a shell, its own process
// group, environment CUDA_VISIBLE_DEVICES (empty on a CPU slot), SWEEP_TRIAL_ID,
// SWEEP_SWEEP_ID, SWEEP_PARAMS, SWEEP_TRIAL_DIR, SWEEP_CHECKPOINT_DIR (kept across
// attempts), SWEEP_METRICS_FILE; stdout and stderr to files in the trial directory.
//
// Lifecycle: SIGTERM or SIGINT drains (no new trials; running ones may finish for
// --drain-timeout, then get SIGTERM and, after --kill-grace, SIGKILL, and go back to
// the queue); a second signal stops at once. Trials die with their worker
// (PR_SET_PDEATHSIG), so none outlives it.
#ifndef SWEEP_WORKER_WORKER_H_
#define SWEEP_WORKER_WORKER_H_

#include <string>

#include "absl/time/time.h"
#include "worker/gpu.h"

namespace sweep {

struct WorkerOptions {
  std::string scheduler = "127.0.0.1:50051";
  std::string token_file;  // the scheduler's shared token (docs/security.md)
  std::string tls_ca;      // CA of the scheduler's TLS certificate; empty: plaintext
  std::string work_dir = "sweep-runs";  // trial directories go under it
  int gpu = -1;            // --gpu N: one slot pinned to GPU N
  std::string gpus;        // --gpus all|0,2: supervise one process per GPU
  int cpus = 0;            // --cpus N: N CPU slots
  absl::Duration drain_timeout = absl::Seconds(60);
  absl::Duration kill_grace = absl::Seconds(10);
  absl::Duration poll_interval = absl::Milliseconds(100);  // metrics file, child exit
  std::string log_level = "info";
};

// Runs the worker until it is drained or stopped. Returns the process exit code:
// 0 after a clean drain, 2 for bad options (message on stderr), 1 otherwise.
int RunWorker(const WorkerOptions& options, GpuDiscovery* discovery);

}  // namespace sweep

#endif  // SWEEP_WORKER_WORKER_H_
