// GpuMonitor: what the trials of one worker process do on the node's GPUs, without
// ever making a trial, a heartbeat or a lease wait for the GPU driver.
//
// One sampler thread per monitor (one per worker process, whatever its number of
// slots) is the only caller of the GpuProbe. Every `interval`, and at once when a
// slot asks, it reads the devices it watches (the slot's own) and those of the
// running trials, and folds each reading into the trials': whether a process of
// the trial (its process group or a descendant of its leader) held memory on one
// of its devices, the most memory they held at once, its share of the energy (the
// driver's energy counter where the card has one, else power times time; split
// evenly between the trials of this process on the same device, for the time each
// ran) and the mean utilization. It also keeps the Xid errors each reading brings
// (GpuReading::faults): one that breaks a card marks it broken for good. Slots read
// the newest sample; where they must see
// the GPU as it is after an event (a trial's end) they wait for a sample that
// began after it, bounded by a deadline they choose. A probe call that takes
// seconds, or hangs, delays only the sampler.
//
// Thread safety: every method is thread-safe and returns without calling the probe.
// Lifecycle: construct (starts the sampler), Begin/End around each trial, destroy
// (stops the sampler; a probe call that does not return within a second is left to
// finish on its own, holding the probe alive).
#ifndef SWEEP_WORKER_GPU_MONITOR_H_
#define SWEEP_WORKER_GPU_MONITOR_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"
#include "worker/gpu.h"

namespace sweep {

// What one trial did on its GPUs so far.
struct TrialGpuUse {
  bool seen_on_gpu = false;   // a process of the trial held memory on one of its GPUs
  // False when the GPU's memory grew but NVML lists no process on it (a container
  // without the host's PID namespace): then nothing can be attributed, and the
  // trial is never flagged.
  bool attributable = true;
  int64_t peak_mib = 0;       // most memory its processes held at once
  double energy_joules = 0;   // its share of its GPUs' energy
  double utilization_sum = 0; // of its first GPU, over `utilization_samples`
  int64_t utilization_samples = 0;
  int64_t samples = 0;        // readings of its first GPU while it ran
  std::set<int> pids;         // its processes seen on a GPU
  double MeanUtilization() const {
    return utilization_samples > 0 ? utilization_sum / utilization_samples : 0;
  }
};

class GpuMonitor {
 public:
  // `watch`: UUIDs of devices sampled always (the slot's own); `interval`: time
  // between samples on `clock` (not owned; it outlives the sampler), which also
  // times the samples and the deadlines given to the methods below.
  GpuMonitor(std::shared_ptr<GpuProbe> probe, std::vector<std::string> watch,
             absl::Duration interval, Clock* clock = SystemClock::Get());
  ~GpuMonitor();
  GpuMonitor(const GpuMonitor&) = delete;
  GpuMonitor& operator=(const GpuMonitor&) = delete;

  // Starts accounting for `trial`, whose leader process is `leader` (its own process
  // group) on the devices with these UUIDs (its first is its own); `baseline_mib`
  // is the memory in use on its first device just before it started (-1 when
  // unknown). Asks for a sample.
  void Begin(const std::string& trial, pid_t leader, const std::vector<std::string>& uuids,
             int64_t baseline_mib);
  // Usage so far (empty for an unknown trial).
  TrialGpuUse Usage(const std::string& trial);
  // Stops accounting for `trial` and returns its usage up to the newest sample.
  TrialGpuUse End(const std::string& trial);

  // Asks the sampler for a sample now; returns at once.
  void RequestSample();
  // When the newest sample began; InfinitePast before the first.
  absl::Time LastSampleTime();
  // How long the driver takes to answer, in real time (not the injected clock's):
  // the newest read's duration, or longer while a read is in flight for longer than
  // that. Zero before the first read.
  absl::Duration ReadDuration();
  // Asks for a sample and waits until one that began at or after `after` is in, or
  // until `deadline`. Returns whether it is.
  bool WaitForSample(absl::Time after, absl::Time deadline);
  // The newest reading of device `uuid`; nullopt when there is none yet.
  std::optional<GpuSample> Reading(const std::string& uuid);

  enum class Release { kReleased, kHeld, kUnknown };
  // Whether the memory of a trial that ran on device `uuid` with `use` is released,
  // judged on a sample that began at or after `after` (waited for until
  // `deadline`): kUnknown when none came in time, kHeld (with `*held` saying what
  // holds it, in words) while a process of the trial holds memory there or, when
  // `was_alone` (no other trial of this worker shared the device) and
  // `baseline_mib` >= 0, while its memory in use is more than 256 MiB above
  // `baseline_mib`; else kReleased.
  Release CheckReleased(const std::string& uuid, const TrialGpuUse& use, int64_t baseline_mib,
                        bool was_alone, absl::Time after, absl::Time deadline,
                        std::string* held);
  // Processes holding memory on device `uuid` that no running trial of this worker
  // started, in words ("pid 4242 (python3, 5000 MiB)"); other sweep trials are named
  // as such. From the newest sample.
  std::vector<std::string> Foreign(const std::string& uuid);
  // Whether another trial of this worker runs on device `uuid` now.
  bool Shared(const std::string& uuid, const std::string& except_trial);
  // Whether device `uuid` is out of use for good, and why (`*why`, to follow the
  // device's name): "is lost: <NVML's error>" while the newest sample found it
  // lost (NVML_ERROR_GPU_IS_LOST), "reported Xid 79 (GPU has fallen off the bus)"
  // once the driver reported an Xid of XidKind::kDevice for it (that one stays:
  // the card needs a reset).
  bool Broken(const std::string& uuid, std::string* why);
  // The Xids the driver reported for device `uuid` in samples that began at or
  // after `since`, oldest first (the newest 256 of the node are kept).
  std::vector<int64_t> XidsSince(const std::string& uuid, absl::Time since);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// Whether process `pid` belongs to the trial whose leader is `leader`: it is in the
// leader's process group, or the leader is among its ancestors (read from /proc).
bool InProcessTree(int pid, pid_t leader);

}  // namespace sweep

#endif  // SWEEP_WORKER_GPU_MONITOR_H_
