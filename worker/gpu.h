// GPU discovery behind one interface, so tests can fake the GPUs a node has.
//
// The real implementation asks `nvidia-smi` (found on PATH) for each GPU's index,
// UUID, name and memory. Thread-safe: Discover() has no shared state.
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

// Parses nvidia-smi's `--format=csv,noheader,nounits` output of
// index,uuid,name,memory.total. InvalidArgument names a line it cannot read.
absl::StatusOr<std::vector<Gpu>> ParseNvidiaSmiCsv(const std::string& text);

// Picks GPUs from `all` by a --gpus value: "all" or a comma list of indexes.
// InvalidArgument for a malformed list, NotFound for an index the node lacks.
absl::StatusOr<std::vector<Gpu>> SelectGpus(const std::vector<Gpu>& all,
                                            const std::string& which);

}  // namespace sweep

#endif  // SWEEP_WORKER_GPU_H_
