// sweep-train's run: from parsed parameters to a trained model, with metrics
// each epoch, a checkpoint each epoch, resume, fine-tuning and device
// discipline. This is the trainer's public entry point; it includes no LibTorch
// header, and its implementation is the adapter that turns every LibTorch
// exception into a status.
//
// Order of a run (each step's failure ends it before the next):
//   1. device: `cuda` that CUDA cannot serve is Unavailable, before anything
//   else
//   2. data: loaded once, normalized, copied to the device (NotFound, DataLoss)
//   3. model: built from the seed; `init_from` weights and `freeze`
//   (InvalidArgument,
//      FailedPrecondition on a shape mismatch)
//   4. resume: from last.pt in the checkpoint directory when there is one
//   5. epochs: train, validate, checkpoint, report; a non-finite loss is
//   Aborted
//   6. test: accuracy on the test set, once
//
// Thread-compatible: one run per process (it sets torch's global thread count
// and random state).
#ifndef SWEEP_TRAINER_TRAINER_H_
#define SWEEP_TRAINER_TRAINER_H_

#include <atomic>
#include <string>

#include "absl/status/status.h"
#include "trainer/contract.h"
#include "trainer/params.h"

namespace sweep::trainer {

struct TrainerEnv {
  std::string metrics_file;  // SWEEP_METRICS_FILE; empty: JSON lines to stdout
  std::string
      checkpoint_dir;  // SWEEP_CHECKPOINT_DIR; empty: no checkpoints, no resume
  std::string cuda_visible_devices;         // for messages
  const std::atomic<bool>* stop = nullptr;  // set by the SIGTERM handler
  bool quiet = false;                       // no progress lines on stdout
};

// Runs the training described by `params`. Returns OK when every epoch and the
// test evaluation are done; Unavailable when CUDA was asked for and is not
// there; InvalidArgument, NotFound, DataLoss or FailedPrecondition for bad
// input found before training; Aborted when the loss diverged;
// ResourceExhausted when memory ran out; Cancelled when `env.stop` was set;
// Internal for anything else LibTorch threw.
absl::Status RunTrainer(const TrainerParams& params, const TrainerEnv& env);

// One line about the build, for `sweep-train --version`:
// "sweep-train (LibTorch 1.13.1, built with CUDA: no, CUDA device usable: no)".
std::string BuildInfo();

// Whether this process runs a CUDA build of LibTorch (libtorch_cuda loaded),
// whether or not a device is usable. at::hasCUDA() does not tell: it is false
// on a CUDA build without a usable device (LibTorch 1.13 and 2.x alike).
bool TorchBuiltWithCuda();

// Sets the intra-op threads of ATen and, when the BLAS in use is OpenBLAS
// (Debian's libtorch with libopenblas0-pthread), of OpenBLAS too: it otherwise
// starts one thread per core whatever torch was told.
void SetTorchThreads(int64_t threads);

// The exit code for a RunTrainer (or ParseParams) status, per the table above.
int ExitCodeFor(const absl::Status& status);

}  // namespace sweep::trainer

#endif  // SWEEP_TRAINER_TRAINER_H_
