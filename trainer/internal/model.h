// The models sweep-train builds: `mlp` and `cnn`, as a torch::nn::Sequential
// whose layers have stable names (the names `freeze` and checkpoints use):
//
//   mlp: flatten, then per hidden width i=1..: fc<i> [bn<i>] act<i> [drop<i>],
//   then out cnn: per conv block i=1..: conv<i> [convbn<i>] convact<i>
//   [pool<i>] [convdrop<i>],
//        flatten, then the mlp's hidden layers and out
//
// Convolutions keep the spatial size (padding kernel_size / 2); pooling halves
// it. BuildModel also counts parameters and the activations one sample keeps
// for the backward pass, for the memory estimate.
//
// Thread-compatible: a built model is used by one thread.
#ifndef SWEEP_TRAINER_INTERNAL_MODEL_H_
#define SWEEP_TRAINER_INTERNAL_MODEL_H_

#include <torch/nn/modules/container/sequential.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "trainer/params.h"

namespace sweep::trainer::internal {

struct Model {
  torch::nn::Sequential net{nullptr};
  int64_t parameters = 0;  // trainable and frozen
  int64_t activations_per_sample =
      0;  // elements of every layer's output, summed
  std::vector<std::string>
      weight_layers;                // names of the layers that have parameters
  std::vector<std::string> frozen;  // layers Freeze fixed, in layer order

  // Sets training mode (dropout on, batch norm updating its statistics) except
  // for frozen layers, which stay in evaluation mode; `training` false sets
  // eval mode.
  void SetTraining(bool training) const;
};

// Builds the model for samples of `sample_shape` ({1, H, W} images or {F}
// features) and `num_classes` outputs, initialized from torch's current random
// state (seed it first). Returns InvalidArgument when the architecture does not
// fit the input (a cnn on flat features, more pooling than the image has
// pixels).
absl::StatusOr<Model> BuildModel(const TrainerParams& params,
                                 const std::vector<int64_t>& sample_shape,
                                 int64_t num_classes);


// Marks the parameters of the layers in `names` as fixed (requires_grad false,
// and batch norm statistics no longer updated) and records them in
// model->frozen. "backbone" names every layer except `out`. Returns
// InvalidArgument naming an unknown layer and listing the layers that have
// parameters.
absl::Status Freeze(Model* model, const std::vector<std::string>& names);

}  // namespace sweep::trainer::internal

#endif  // SWEEP_TRAINER_INTERNAL_MODEL_H_
