// sweep-train's training and evaluation loop over data that lives on the
// training device: one epoch of shuffled mini-batches (with optional
// augmentation, label smoothing and a per-step learning rate), and batched
// evaluation.
//
// Determinism: an epoch draws every random number (the shuffle, dropout masks,
// augmentation) from torch's generators after reseeding them from (seed,
// epoch), so epoch k is identical whether the run started at epoch 0 or resumed
// from a checkpoint at epoch k. Loss sums stay on the device until the epoch
// ends, so a GPU step never waits for the host.
//
// Thread-compatible. Throws what LibTorch throws; callers go through TorchCall.
#ifndef SWEEP_TRAINER_INTERNAL_LOOP_H_
#define SWEEP_TRAINER_INTERNAL_LOOP_H_

#include <torch/optim/optimizer.h>

#include <atomic>
#include <cstdint>

#include "trainer/data.h"
#include "trainer/internal/model.h"
#include "trainer/schedule.h"

namespace sweep::trainer::internal {

// One split on the device: x is [N, ...sample_shape] float32, y is [N] int64.
struct DeviceSplit {
  torch::Tensor x, y;
  int64_t size() const { return y.size(0); }
};

struct DeviceData {
  DeviceSplit train, val, test;
  double background =
      0;  // the normalized value of a black pixel (crop padding)
};

// Copies the host arrays to `device` once.
DeviceData ToDevice(const Data& data, torch::Device device);

struct EpochOptions {
  int64_t epoch = 0;  // 0-based
  int64_t seed = 0;
  int64_t batch_size = 64;
  double label_smoothing = 0;
  bool augment_crop = false;
  bool augment_flip = false;
  ScheduleOptions schedule;                 // steps_per_epoch filled in
  const std::atomic<bool>* stop = nullptr;  // checked before every step
};

struct EpochResult {
  double train_loss = 0;  // mean over the epoch's samples
  double last_lr = 0;     // the rate of the epoch's last step
  int64_t steps = 0;
  int64_t samples = 0;
  bool stopped = false;  // *stop was set; the epoch is incomplete
};

// Steps per epoch for `n` samples: the last batch may be smaller.
int64_t StepsPerEpoch(int64_t n, int64_t batch_size);

// The seed that epoch `epoch` of a run seeded `seed` reseeds torch with.
uint64_t EpochSeed(int64_t seed, int64_t epoch);

// Trains one epoch; `global_step` is the step count before it and is advanced.
EpochResult TrainEpoch(const Model& model, torch::optim::Optimizer& optimizer,
                       const DeviceData& data, const EpochOptions& options,
                       int64_t* global_step);

struct EvalResult {
  double loss = 0;      // mean cross-entropy (no label smoothing)
  double accuracy = 0;  // share of samples whose arg-max class is the label
};

// Evaluates `model` on `split` in evaluation mode, without gradients.
EvalResult Evaluate(const Model& model, const DeviceSplit& split,
                    int64_t batch_size);

// Random crop with `pad` pixels of `background` on each side and random
// horizontal flips, for a batch of images [B, C, H, W]; each sample draws its
// own offsets.
torch::Tensor Augment(const torch::Tensor& images, bool crop, bool flip,
                      int64_t pad, double background);

// Cross-entropy of `logits` against `labels` with label smoothing `epsilon`, as
// PyTorch's CrossEntropyLoss(label_smoothing=epsilon) defines it; mean over the
// batch.
torch::Tensor SmoothedCrossEntropy(const torch::Tensor& logits,
                                   const torch::Tensor& labels, double epsilon);

}  // namespace sweep::trainer::internal

#endif  // SWEEP_TRAINER_INTERNAL_LOOP_H_
