// GPU discovery and telemetry behind one interface each, so tests can fake the GPUs
// a node has (a fake `nvidia-smi` on PATH).
//
// The real implementations ask `nvidia-smi` (found on PATH) for each GPU's index,
// UUID, name and memory, for its utilization, memory in use and power draw, and for
// the processes that hold memory on it. NVML is not loaded: nvidia-smi is its
// command-line face and is present wherever the driver is. Thread-safe: the calls
// have no shared state.
#ifndef SWEEP_WORKER_GPU_H_
#define SWEEP_WORKER_GPU_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sweep {

struct Gpu {
  int index = 0;
  std::string uuid;
  std::string name;
  int64_t memory_mib = 0;
};

class GpuDiscovery {
 public:
  virtual ~GpuDiscovery() = default;
  // Returns the node's GPUs in index order. NotFound when the node has none or the
  // tool to list them is missing (the message says what to do instead).
  virtual absl::StatusOr<std::vector<Gpu>> Discover() = 0;
};

// Lists GPUs with `nvidia-smi --query-gpu=...`.
std::unique_ptr<GpuDiscovery> NewNvidiaSmiDiscovery();

// One reading of one GPU.
struct GpuSample {
  int index = 0;
  std::string uuid;
  double utilization = 0;      // percent; 0 when the driver does not say
  int64_t memory_used_mib = 0;
  int64_t memory_total_mib = 0;
  double power_watts = 0;      // 0 when the driver does not say
};

// A process that holds memory on a GPU.
struct GpuProcess {
  int pid = 0;
  std::string uuid;            // of the GPU
  int64_t used_mib = 0;
};

class GpuProbe {
 public:
  virtual ~GpuProbe() = default;
  // Every GPU of the node, now. Unavailable when the tool fails.
  virtual absl::StatusOr<std::vector<GpuSample>> Sample() = 0;
  // Every process holding GPU memory on the node, now. Unavailable when the tool
  // fails. Inside a container without the host's PID namespace the list may be
  // empty although memory is in use.
  virtual absl::StatusOr<std::vector<GpuProcess>> Processes() = 0;
};

// Telemetry with `nvidia-smi --query-gpu=...` and `--query-compute-apps=...`.
std::unique_ptr<GpuProbe> NewNvidiaSmiProbe();

// Parses `--query-gpu=index,uuid,utilization.gpu,memory.used,memory.total,power.draw
// --format=csv,noheader,nounits`; "[N/A]" and the like read as 0 for utilization and
// power. InvalidArgument names a line it cannot read.
absl::StatusOr<std::vector<GpuSample>> ParseGpuSampleCsv(const std::string& text);

// Parses `--query-compute-apps=pid,gpu_uuid,used_memory --format=csv,noheader,nounits`;
// a used_memory of "[N/A]" reads as 0. InvalidArgument names a line it cannot read.
absl::StatusOr<std::vector<GpuProcess>> ParseComputeAppsCsv(const std::string& text);

// Parses nvidia-smi's `--format=csv,noheader,nounits` output of
// index,uuid,name,memory.total. InvalidArgument names a line it cannot read.
absl::StatusOr<std::vector<Gpu>> ParseNvidiaSmiCsv(const std::string& text);

// Picks GPUs from `all` by a --gpus value: "all" or a comma list of indexes.
// InvalidArgument for a malformed list, NotFound for an index the node lacks.
absl::StatusOr<std::vector<Gpu>> SelectGpus(const std::vector<Gpu>& all,
                                            const std::string& which);

}  // namespace sweep

#endif  // SWEEP_WORKER_GPU_H_
