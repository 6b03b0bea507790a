// Placement: whether a trial fits on a GPU, how many trials of a sweep the connected
// GPUs can run at once, and whether a sweep could ever run at all. Pure functions of
// their input; thread-safe.
//
// The model (docs/spec.md, resources): GPU worker slots register the GPU they run
// on; the scheduler groups them by (host, GPU UUID) into GpuLoad entries, with the
// trials running there now. A trial fits on a GPU when
//   - the GPU is not held by a trial of several GPUs,
//   - fewer trials run there than both its own trials_per_gpu and that of every
//     trial already there (default 1: a GPU to itself; no count limit when only
//     gpu_memory is given),
//   - when memory is declared: the gpu_memory of the trials there, plus its own,
//     plus the headroom, is at most the GPU's memory.
// A trial of N >= 2 GPUs takes its slot's GPU and N - 1 other GPUs of the same host,
// all with no trial and none a MIG device, and holds them alone until it ends.
#ifndef SWEEP_SCHEDULER_PLACEMENT_H_
#define SWEEP_SCHEDULER_PLACEMENT_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "sweeps/spec.h"

namespace sweep {

// What one trial of a sweep needs of a GPU slot.
struct GpuNeed {
  int gpus = 0;            // resources.gpus_per_trial (0: any slot, CPU or GPU)
  int trials_per_gpu = 0;  // 0 when not given
  int64_t memory_mib = 0;  // per GPU; 0 when not given
  // How many trials, this one included, may share a GPU with it.
  int ShareLimit() const {
    if (trials_per_gpu > 0) return trials_per_gpu;
    return memory_mib > 0 && gpus <= 1 ? std::numeric_limits<int>::max() : 1;
  }
};
GpuNeed NeedOf(const spec::Resources& r);

// Memory kept free on every GPU beyond what trials declare: 2% of it, at least
// 256 MiB.
int64_t HeadroomMib(int64_t gpu_memory_mib);

// One GPU and what runs on it now.
struct GpuLoad {
  std::string host;
  std::string uuid;
  int index = -1;
  std::string name;
  int64_t memory_mib = 0;
  int slots = 0;             // connected slots on it (neither lost nor draining)
  int trials = 0;            // trials running on it, leased by its slots
  int64_t reserved_mib = 0;  // sum of their gpu_memory
  int share_limit = std::numeric_limits<int>::max();  // min of their ShareLimit()
  bool held = false;         // an extra GPU of a running trial of several GPUs
  bool Empty() const { return trials == 0 && !held; }
  // A MIG device (a slice of a partitioned card, UUID "MIG-..."): a process sees at
  // most one, so it is never one of a trial's several GPUs.
  bool IsMig() const { return uuid.starts_with("MIG-"); }
};

// Adds a trial needing `need` to the load of `g`.
void AddTrial(const GpuNeed& need, GpuLoad& g);

// Whether a trial needing `need` would fit on an otherwise empty GPU of
// `memory_mib` (memory only; count limits always allow one trial).
bool FitsEmpty(const GpuNeed& need, int64_t memory_mib);

// Whether one more trial needing `need` fits on `g` now (for need.gpus >= 2: whether
// `g` can be its first GPU). When not, sets *why (if given) to the reason.
bool FitsNow(const GpuNeed& need, const GpuLoad& g, std::string* why = nullptr);

// For a trial of need.gpus >= 2 whose slot runs on gpus[own]: picks need.gpus - 1
// other GPUs of the same host that are empty and fit, lowest index first. Returns
// their positions in `gpus`, or nullopt when there are not enough.
std::optional<std::vector<size_t>> PickExtraGpus(const GpuNeed& need,
                                                 const std::vector<GpuLoad>& gpus,
                                                 size_t own);

// How many trials needing `need` the GPUs can run at once (`total`, ignoring what
// runs now), and how many more could start now (`free`).
struct Capacity {
  int total = 0;
  int free = 0;
};
Capacity CountCapacity(const GpuNeed& need, const std::vector<GpuLoad>& gpus);

// Returns why no trial needing `need` could ever run on these GPUs (the need and the
// largest capacity, as a message naming the resources key), or "" when one could, or
// when there are no GPUs at all (workers may connect later).
std::string NeverPlaceable(const GpuNeed& need, const std::vector<GpuLoad>& gpus);

// "800 MiB", "12.0 GiB".
std::string FormatMib(int64_t mib);

}  // namespace sweep

#endif  // SWEEP_SCHEDULER_PLACEMENT_H_
