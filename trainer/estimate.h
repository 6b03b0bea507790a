// sweep-train's memory estimate: how many bytes a training run keeps on its
// device, computed from the parameters and the dataset's shape alone, without
// building the model or loading the data (`sweep-train --estimate-memory`, and
// the `memory_estimate_bytes` metric of a run). The worker compares its total
// with a GPU's free memory before it starts a trial there.
//
// The model is walked layer by layer from the same rules BuildModel follows
// (internal/model.h; tests/trainer_estimate_test.cc checks both agree on every
// parameter count), so a model too big for any host can still be estimated.
// Everything is float32 (4 bytes) except the labels (int64).
//
// Thread-safe: pure functions.
#ifndef SWEEP_TRAINER_ESTIMATE_H_
#define SWEEP_TRAINER_ESTIMATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "trainer/data.h"
#include "trainer/params.h"

namespace sweep::trainer {

// One layer of the model, as BuildModel names it.
struct LayerShape {
  std::string name;        // "conv1", "act2", "out", ...
  int64_t parameters = 0;  // elements of its weights and biases
  int64_t outputs = 0;     // elements of its output for one sample (0: a view)
};

// The layers BuildModel builds for `params` on samples of `sample_shape` with
// `num_classes` outputs. Returns InvalidArgument where BuildModel does, with
// the same message (a cnn on flat features, more pooling than the image has
// pixels).
absl::StatusOr<std::vector<LayerShape>> ModelLayers(
    const TrainerParams& params, const std::vector<int64_t>& sample_shape,
    int64_t num_classes);

struct MemoryEstimate {
  int64_t parameters = 0;            // all of them, frozen ones included
  int64_t trainable_parameters = 0;  // not frozen: these have gradients
  int64_t bytes_per_parameter = 4;   // float32
  int optimizer_slots = 0;  // 0 plain sgd, 1 sgd with momentum, 2 adam(w)
  int64_t parameter_bytes = 0;
  int64_t gradient_bytes = 0;
  int64_t optimizer_bytes = 0;
  // The larger of the training step's and the evaluation's activations.
  int64_t activation_bytes = 0;
  // A training step at batch_size: the batch copied out of the dataset, any
  // augmentation copies, every layer's output (kept for the backward pass),
  // the log-softmax, and two gradient buffers the size of the largest output.
  int64_t train_activation_bytes = 0;
  // Evaluation (no gradients) at max(batch_size, 1000): the largest pair of
  // consecutive layer outputs.
  int64_t eval_activation_bytes = 0;
  int64_t data_bytes = 0;  // all three splits resident on the device
  // parameter + gradient + optimizer + activation + data bytes.
  int64_t total_bytes = 0;
};

// Estimates the device memory of training `params` on data of `shape`.
// Returns InvalidArgument for a model that does not fit the data (as
// ModelLayers) or a `freeze` naming a layer without weights.
absl::StatusOr<MemoryEstimate> EstimateMemory(const TrainerParams& params,
                                              const DataShape& shape);

// The estimate as one JSON object on one line (no newline), with the keys
// parameters, bytes_per_parameter, parameter_bytes, gradient_bytes,
// optimizer_bytes, activation_bytes, data_bytes and total_bytes, and more
// detail after them.
std::string MemoryEstimateJson(const MemoryEstimate& estimate,
                               const TrainerParams& params,
                               const DataShape& shape);

}  // namespace sweep::trainer

#endif  // SWEEP_TRAINER_ESTIMATE_H_
