// sweep-train's parameters: the trainer's public interface (docs/trainer.md).
//
// A trial gets its parameters as one JSON object in SWEEP_PARAMS and, when the
// spec's command has `${args}`, again as `--key=value` arguments written the
// way W&B's agent writes them (`True`/`False`, `None`, lists as JSON
// `[128,64]`). ParseParams merges both (an argument overrides the same key from
// SWEEP_PARAMS), rejects unknown names, checks every value's type and range,
// and resolves the defaults that depend on the environment (the device from
// CUDA_VISIBLE_DEVICES, the data directory from the dataset). Nothing here
// touches LibTorch or the file system.
//
// Thread-safe: pure functions.
#ifndef SWEEP_TRAINER_PARAMS_H_
#define SWEEP_TRAINER_PARAMS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sweep::trainer {

struct TrainerParams {
  // Data.
  std::string dataset = "fashion-mnist";  // fashion-mnist | mnist | idx | csv
  std::string data_dir;                   // default depends on dataset
  double val_fraction = 0.1;  // held out of the training set, (0, 0.5]
  int64_t train_limit = 0;    // use at most this many training samples (0: all)

  // Model.
  std::string model = "mlp";  // mlp | cnn
  std::vector<int64_t>
      hidden;  // mlp: hidden widths; cnn: fully connected widths
  std::string activation =
      "relu";            // relu | gelu | tanh | sigmoid | silu | leaky_relu
  double dropout = 0.0;  // [0, 1)
  bool batch_norm = false;
  std::vector<int64_t> conv_channels;  // cnn: one block per entry
  int64_t kernel_size = 3;             // cnn: odd, 1..15
  std::string pool = "max";  // cnn: max | avg | none (2x2 after each block)

  // Optimization.
  std::string optimizer = "sgd";  // sgd | adam | adamw
  double lr = 0.01;
  double momentum = 0.0;  // sgd only
  bool nesterov = false;  // sgd only, needs momentum > 0
  double weight_decay = 0.0;
  std::string schedule = "constant";  // constant | step | cosine
  double warmup_epochs = 0.0;         // linear warm-up, in (fractional) epochs
  int64_t step_epochs =
      0;  // step schedule: decay every N epochs (0: epochs / 3)
  double step_gamma = 0.1;  // step schedule: factor per decay
  int64_t batch_size = 64;
  int64_t epochs = 5;
  double label_smoothing = 0.0;  // [0, 1)
  bool augment_crop = false;  // random crop with 2-pixel zero padding (images)
  bool augment_flip = false;  // random horizontal flip (images)

  // Run.
  int64_t seed = 0;
  int64_t threads = 1;    // intra-op threads (torch and OpenBLAS)
  std::string device;     // "cpu", "cuda" or "cuda:N"; resolved, never empty
  std::string init_from;  // a checkpoint file (or a directory holding last.pt)
  std::vector<std::string> freeze;  // layer names (or "backbone") kept fixed

  // The parameters as received, for checkpoints and logs.
  std::string json;
  // Parameters that were given but do not apply (momentum with adam,
  // conv_channels with an mlp, ...): ignored, so that one sweep can vary the
  // optimizer or model.
  std::vector<std::string> warnings;
};

// Every public parameter name, in documentation order.
const std::vector<std::string>& ParamNames();

// Parses `sweep_params_json` (the SWEEP_PARAMS value; empty means none) and
// then `args` (argv without the program name: `--key=value` items, or a bare
// `--flag` for a true boolean). `cuda_visible_devices` is CUDA_VISIBLE_DEVICES
// (nullopt when unset); it decides the default device: `cuda` when non-empty,
// else `cpu`. Returns the parameters (with a warning for each given parameter
// that does not apply to the chosen model, optimizer or schedule), or
// InvalidArgument naming the parameter and what was expected (malformed JSON,
// unknown name, wrong type, value out of range, a contradiction such as
// `nesterov` without momentum or a cnn on CSV).
absl::StatusOr<TrainerParams> ParseParams(
    const std::string& sweep_params_json, const std::vector<std::string>& args,
    std::optional<std::string> cuda_visible_devices);

// A help text listing the parameters, their defaults and meaning.
std::string ParamsHelp();

}  // namespace sweep::trainer

#endif  // SWEEP_TRAINER_PARAMS_H_
