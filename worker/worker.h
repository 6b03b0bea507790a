// The `sweep worker` daemon: leases trials from the scheduler and runs each as a
// child process pinned to its slot's GPU (or on a CPU slot).
//
// One worker process runs the slots of one GPU or MIG device (--gpu N|UUID,
// --slots-per-gpu of them) or N CPU slots (--cpus N); each slot registers with the
// scheduler on its own and runs one trial at a time. The scheduler decides how many
// of a GPU's slots get trials at once (resources.trials_per_gpu, gpu_memory); the
// others wait. `--gpus all|LIST` makes this process a node supervisor that starts one
// `sweep worker --gpu UUID` process per GPU (per MIG device of a card in MIG mode)
// and stops them all when it is stopped.
//
// On a GPU slot (docs/operations.md, GPUs) one sampler thread (GpuMonitor) reads the
// GPU through NVML (memory, utilization, power, energy counter, processes: peak
// memory and energy per trial); nothing on the path of a heartbeat, a lease or a
// trial's start and end waits for the driver. A GPU that NVML reports lost stops its
// slots' leasing (they drain, saying why). The worker flags
// a trial none of whose processes holds memory on its GPU within
// resources.gpu_check (and stops it when the spec says so), records an out-of-memory
// crash as failure kind `oom`, asks `sweep-train --estimate-memory` before starting
// a sweep-train trial and fails it as `oom` when it cannot fit the GPU's free memory,
// and after each trial waits (bounded) until the trial's GPU memory is released,
// reporting what still holds it and processes it did not start.
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

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "common/address.h"
#include "worker/gpu.h"
#include "worker/metrics_reader.h"

namespace sweep {

struct WorkerOptions {
  std::string scheduler = kDefaultSchedulerAddress;
  std::string token_file;  // the scheduler's shared token (docs/security.md)
  std::string tls_ca;      // CA of the scheduler's TLS certificate; empty: plaintext
  std::string work_dir = "sweep-runs";  // trial directories go under it
  std::string gpu;         // --gpu N|UUID: the slots of one GPU or MIG device
  std::string gpus;        // --gpus all|LIST: supervise one process per GPU or MIG device
  int cpus = 0;            // --cpus N: N CPU slots
  int slots_per_gpu = 4;   // slots per GPU: at most this many trials share it
  absl::Duration gpu_sample_interval = absl::Seconds(5);   // telemetry while trials run
  absl::Duration gpu_release_timeout = absl::Seconds(30);  // wait for memory after a trial
  absl::Duration drain_timeout = absl::Seconds(60);
  absl::Duration kill_grace = absl::Seconds(10);
  absl::Duration poll_interval = absl::Milliseconds(100);  // metrics file, child exit
  int64_t max_log_mib = 64;             // each of a trial's stdout.log and stderr.log
  int64_t max_metrics_backlog_mib = 256;
  MetricsLimits metrics;                // its max_backlog_bytes comes from the line above
  std::string log_level = "info";
};

// Runs the worker until it is drained or stopped. Returns the process exit code:
// 0 after a clean drain, 2 for bad options (message on stderr), 1 otherwise.
// `discovery` finds the node's GPUs, `probe` samples them (null: NVML); neither is
// used on CPU slots. A GPU that cannot be found or selected is bad input (2), with
// the reason on stderr: no NVML (the message says why and suggests --cpus N), an
// index or UUID the node lacks, an NVML too old.
int RunWorker(const WorkerOptions& options, GpuDiscovery* discovery,
              std::shared_ptr<GpuProbe> probe = nullptr);

}  // namespace sweep

#endif  // SWEEP_WORKER_WORKER_H_
