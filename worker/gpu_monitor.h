// GpuMonitor: what the trials of one worker process do on the node's GPUs.
//
// While trials run it samples every GPU through a GpuProbe (utilization, memory,
// power) and the processes holding GPU memory, and folds each reading into the
// trials': whether a process of the trial (its process group or a descendant of its
// leader) held memory on one of its GPUs, the most memory they held at once, its
// share of the energy (power times time, split evenly between the trials of this
// process on the same GPU) and the mean utilization. After a trial ends it waits,
// bounded, until the trial's GPU memory is released, and names processes on a GPU
// that no trial of this worker started.
//
// Thread safety: every method is thread-safe; slots call it from their own threads.
// Lifecycle: construct, Begin/End around each trial, destroy (stops the sampler).
#ifndef SWEEP_WORKER_GPU_MONITOR_H_
#define SWEEP_WORKER_GPU_MONITOR_H_

#include <sys/types.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "worker/gpu.h"

namespace sweep {

// What one trial did on its GPUs so far.
struct TrialGpuUse {
  bool seen_on_gpu = false;   // a process of the trial held memory on one of its GPUs
  // False when the GPU's memory grew but nvidia-smi lists no process on it (a
  // container without the host's PID namespace): then nothing can be attributed,
  // and the trial is never flagged.
  bool attributable = true;
  int64_t peak_mib = 0;       // most memory its processes held at once
  double energy_joules = 0;   // its share of its GPUs' energy
  double utilization_sum = 0; // of its first GPU, over `samples`
  int64_t samples = 0;
  std::set<int> pids;         // its processes seen on a GPU
  double MeanUtilization() const { return samples > 0 ? utilization_sum / samples : 0; }
};

class GpuMonitor {
 public:
  // `gpus`: the node's GPUs (index and UUID); `interval`: time between samples while
  // a trial runs. The probe must outlive the monitor.
  GpuMonitor(GpuProbe* probe, std::vector<Gpu> gpus, absl::Duration interval);
  ~GpuMonitor();
  GpuMonitor(const GpuMonitor&) = delete;
  GpuMonitor& operator=(const GpuMonitor&) = delete;

  // Starts accounting for `trial`, whose leader process is `leader` (its own process
  // group) on the GPUs with these indexes; `baseline_mib` is the memory in use on its
  // first GPU just before it started (-1 when unknown).
  void Begin(const std::string& trial, pid_t leader, const std::vector<int>& gpu_indexes,
             int64_t baseline_mib);
  // Usage so far (empty for an unknown trial).
  TrialGpuUse Usage(const std::string& trial);
  // Stops accounting for `trial` (after one last sample) and returns its usage.
  TrialGpuUse End(const std::string& trial);

  // Takes a sample now and folds it into the running trials. Unavailable when the
  // probe fails.
  absl::Status SampleNow();
  // A fresh reading of GPU `index`; nullopt when the probe fails.
  std::optional<GpuSample> Reading(int index);

  // After a trial that ran on GPU `index` with `use` ended: waits up to `timeout` for
  // its processes to leave the GPU and, when `was_alone` (no other trial of this
  // worker shared the GPU) and `baseline_mib` >= 0, for the GPU's memory in use to
  // fall back to within 256 MiB of `baseline_mib`. Returns "" once released, else
  // what still holds the memory, in words.
  std::string WaitReleased(int index, const TrialGpuUse& use, int64_t baseline_mib,
                           bool was_alone, absl::Duration timeout);
  // Processes holding memory on GPU `index` that no running trial of this worker
  // started, in words ("pid 4242 (python3, 5000 MiB)"); other sweep trials are named
  // as such. Uses the last sample.
  std::vector<std::string> Foreign(int index);
  // Whether another trial of this worker runs on GPU `index` now.
  bool Shared(int index, const std::string& except_trial);

 private:
  struct Active {
    pid_t leader = 0;
    std::vector<std::string> uuids;
    int64_t baseline_mib = -1;  // memory in use on its first GPU when it began
    TrialGpuUse use;
  };
  void Loop();
  std::string UuidOf(int index) const;
  void Fold(const std::vector<GpuSample>& samples, const std::vector<GpuProcess>& procs,
            absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  GpuProbe* const probe_;
  const std::vector<Gpu> gpus_;
  const absl::Duration interval_;
  absl::Mutex mu_;
  absl::Mutex sample_mu_;  // one probe call at a time
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Active> active_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Time> last_time_ ABSL_GUARDED_BY(mu_);  // by GPU uuid
  std::vector<GpuSample> last_samples_ ABSL_GUARDED_BY(mu_);
  std::vector<GpuProcess> last_procs_ ABSL_GUARDED_BY(mu_);
  bool warned_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// Whether process `pid` belongs to the trial whose leader is `leader`: it is in the
// leader's process group, or the leader is among its ancestors (read from /proc).
bool InProcessTree(int pid, pid_t leader);

}  // namespace sweep

#endif  // SWEEP_WORKER_GPU_MONITOR_H_
