// sweep-train's checkpoints: one file, `last.pt` in SWEEP_CHECKPOINT_DIR,
// rewritten after every epoch, and what `init_from` reads.
//
// A checkpoint is a LibTorch archive holding the model's parameters and buffers
// by layer name ("fc1.weight", "bn1.running_mean"), the optimizer's state
// (momentum buffers, Adam moments and step counts), the number of completed
// epochs and global steps (the schedule's position), and the parameters as
// JSON. Random state needs no saving: the trainer reseeds from (seed, epoch) at
// every epoch start, so shuffling, dropout and augmentation of epoch k are the
// same whether or not the run stopped before it.
//
// Writes are atomic: the archive goes to `last.pt.tmp`, is flushed to disk, and
// is renamed over `last.pt`, so a killed trial leaves the previous checkpoint
// intact.
//
// Thread-compatible.
#ifndef SWEEP_TRAINER_INTERNAL_CHECKPOINT_H_
#define SWEEP_TRAINER_INTERNAL_CHECKPOINT_H_

#include <torch/optim/optimizer.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "trainer/internal/model.h"

namespace sweep::trainer::internal {

inline constexpr char kCheckpointFile[] = "last.pt";

struct CheckpointState {
  int64_t epoch = 0;        // completed epochs
  int64_t global_step = 0;  // optimizer steps taken
  std::string params_json;  // the parameters of the run that wrote it
};

// Writes `model`, `optimizer` and `state` to `path` atomically. Returns
// Internal (with the file and the cause) when the file cannot be written.
absl::Status SaveCheckpoint(const std::string& path, const Model& model,
                            torch::optim::Optimizer& optimizer,
                            const CheckpointState& state);

// Restores `model` and `optimizer` from `path`. Returns the saved state,
// DataLoss when the file is not a readable sweep-train checkpoint, or
// FailedPrecondition when it was written for another architecture (a tensor
// missing, extra, or of another shape: the message names it and both shapes).
absl::StatusOr<CheckpointState> LoadCheckpoint(
    const std::string& path, const Model& model,
    torch::optim::Optimizer& optimizer);

// Copies the weights (and batch norm statistics) of the checkpoint at `path` (a
// file, or a directory holding last.pt) into `model`, for fine-tuning; the
// optimizer and epoch count start fresh. Returns NotFound when there is no such
// file, DataLoss when it is unreadable, FailedPrecondition on any name or shape
// mismatch.
absl::Status LoadWeights(const std::string& path, const Model& model);

}  // namespace sweep::trainer::internal

#endif  // SWEEP_TRAINER_INTERNAL_CHECKPOINT_H_
