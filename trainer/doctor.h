// `sweep-train doctor`: what this node's LibTorch can do, checked the way a
// careful user would before a long sweep. Reports the LibTorch version, whether
// CUDA is usable and why not, every visible device with its total and free
// memory (asked of the NVIDIA driver, libcuda.so.1, loaded at run time: no CUDA
// header or library is needed to build this), and times the same work on the
// CPU and the GPU: one scalar multiplication with its host -> device -> host
// transfers (where the GPU loses) and large fp32 matrix products (where it
// wins), with GFLOP/s and the GPU/CPU speedup. Without a usable CUDA device it
// says so and measures the CPU only.
//
// A problem is something that makes GPU trials fail or run on the wrong
// device: the driver sees GPUs that LibTorch cannot use (a CPU-only LibTorch
// on a GPU node), or a GPU computation that fails or disagrees with the CPU's.
//
// Thread-compatible: one run per process (it sets torch's thread count).
#ifndef SWEEP_TRAINER_DOCTOR_H_
#define SWEEP_TRAINER_DOCTOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sweep::trainer {

struct DoctorOptions {
  bool json = false;      // one JSON object on stdout instead of the report
  std::string json_file;  // also write the JSON object to this file
  int64_t cpu_size =
      1024;  // n of the CPU's n x n matmul (small: CPUs are slow)
  int64_t gpu_size = 4096;  // n of the GPU's large n x n matmul
  int64_t device = 0;       // the CUDA device index to time
  int64_t threads = 0;      // CPU threads; 0: every CPU this process may use
};

// Parses the arguments after `doctor` (--json, --json-file=PATH,
// --cpu-size=N, --gpu-size=N, --device=N, --threads=N). InvalidArgument names
// a bad one.
absl::StatusOr<DoctorOptions> ParseDoctorArgs(
    const std::vector<std::string>& args);

// Runs the checks and timings and prints the report (or the JSON) to stdout.
// Returns 0 when no problem was found, 1 when one was (each is named in the
// report, and in the JSON's "problems"), 2 when the JSON file cannot be
// written.
int RunDoctor(const DoctorOptions& options);

}  // namespace sweep::trainer

#endif  // SWEEP_TRAINER_DOCTOR_H_
