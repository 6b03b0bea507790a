#include "trainer/estimate.h"

#include <algorithm>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_util.h"
#include "nlohmann/json.hpp"
#include "trainer/contract.h"

namespace sweep::trainer {
namespace {

constexpr int64_t kFloat = 4;
constexpr int64_t kLabel = 8;         // int64 labels
constexpr int64_t kEvalBatch = 1000;  // as trainer.cc: max(batch_size, 1000)
constexpr int64_t kCropPad = 2;       // as loop.cc

// Layers trained (not frozen) under `freeze`; InvalidArgument as Freeze().
absl::StatusOr<std::set<std::string>> FrozenLayers(
    const std::vector<LayerShape>& layers,
    const std::vector<std::string>& names) {
  std::vector<std::string> weighted;
  for (const LayerShape& l : layers) {
    if (l.parameters > 0) weighted.push_back(l.name);
  }
  std::set<std::string> frozen;
  for (const std::string& name : names) {
    if (name == "backbone") {
      for (const std::string& l : weighted) {
        if (l != "out") frozen.insert(l);
      }
      continue;
    }
    if (std::find(weighted.begin(), weighted.end(), name) == weighted.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "parameter freeze: no layer with weights named ", name,
          "; layers: ", absl::StrJoin(weighted, ", "), ", or backbone"));
    }
    frozen.insert(name);
  }
  return frozen;
}

}  // namespace

absl::StatusOr<std::vector<LayerShape>> ModelLayers(
    const TrainerParams& p, const std::vector<int64_t>& shape,
    int64_t num_classes) {
  std::vector<LayerShape> layers;
  auto add = [&](std::string name, int64_t parameters, int64_t outputs) {
    layers.push_back({std::move(name), parameters, outputs});
  };
  int64_t features = 1;
  for (int64_t d : shape) features *= d;
  const bool bias = !p.batch_norm;

  if (p.model == "cnn") {
    if (shape.size() != 3) {
      return absl::InvalidArgumentError(
          "parameter model: cnn needs image data (an IDX dataset), not flat "
          "features");
    }
    int64_t channels = shape[0], h = shape[1], w = shape[2];
    const int64_t k = p.kernel_size;
    for (size_t i = 0; i < p.conv_channels.size(); ++i) {
      std::string n = absl::StrCat(i + 1);
      int64_t out = p.conv_channels[i];
      add("conv" + n, channels * out * k * k + (bias ? out : 0), out * h * w);
      if (p.batch_norm) add("convbn" + n, 2 * out, out * h * w);
      add("convact" + n, 0, out * h * w);
      if (p.pool != "none") {
        if (h < 2 || w < 2) {
          return absl::InvalidArgumentError(
              absl::StrCat("parameter conv_channels: ", p.conv_channels.size(),
                           " pooled blocks shrink a ", shape[1], "x", shape[2],
                           " image below 1 pixel"));
        }
        h /= 2;
        w /= 2;
        add("pool" + n, 0, out * h * w);
      }
      if (p.dropout > 0) add("convdrop" + n, 0, out * h * w);
      channels = out;
    }
    features = channels * h * w;
  }
  add("flatten", 0, 0);  // a view of its input
  for (size_t i = 0; i < p.hidden.size(); ++i) {
    std::string n = absl::StrCat(i + 1);
    int64_t out = p.hidden[i];
    add("fc" + n, features * out + (bias ? out : 0), out);
    if (p.batch_norm) add("bn" + n, 2 * out, out);
    add("act" + n, 0, out);
    if (p.dropout > 0) add("drop" + n, 0, out);
    features = out;
  }
  add("out", features * num_classes + num_classes, num_classes);
  return layers;
}

absl::StatusOr<MemoryEstimate> EstimateMemory(const TrainerParams& p,
                                              const DataShape& shape) {
  SWEEP_ASSIGN_OR_RETURN(std::vector<LayerShape> layers,
                         ModelLayers(p, shape.sample_shape, shape.num_classes));
  SWEEP_ASSIGN_OR_RETURN(std::set<std::string> frozen,
                         FrozenLayers(layers, p.freeze));

  MemoryEstimate e;
  int64_t sum_outputs = 0, max_output = 0, max_pair = 0;
  const int64_t features = shape.features();
  int64_t previous = features;  // the input of the next layer
  for (const LayerShape& l : layers) {
    e.parameters += l.parameters;
    if (!frozen.count(l.name)) e.trainable_parameters += l.parameters;
    sum_outputs += l.outputs;
    max_output = std::max(max_output, l.outputs);
    if (l.outputs > 0) {
      max_pair = std::max(max_pair, previous + l.outputs);
      previous = l.outputs;
    }
  }
  if (p.optimizer == "adam" || p.optimizer == "adamw") {
    e.optimizer_slots = 2;
  } else {
    e.optimizer_slots = p.momentum > 0 ? 1 : 0;
  }
  e.parameter_bytes = e.parameters * kFloat;
  e.gradient_bytes = e.trainable_parameters * kFloat;
  e.optimizer_bytes = e.optimizer_slots * e.trainable_parameters * kFloat;

  // Per sample of a training step: the batch (index_select copies it), the
  // augmentation's copies, the layer outputs, log-softmax, and the gradient
  // buffers of the backward pass.
  int64_t train_sample = features + sum_outputs + shape.num_classes +
                         2 * std::max(max_output, features);
  if (shape.images && shape.sample_shape.size() == 3) {
    const int64_t c = shape.sample_shape[0], h = shape.sample_shape[1],
                  w = shape.sample_shape[2];
    if (p.augment_crop) {
      train_sample += c * (h + 2 * kCropPad) * (w + 2 * kCropPad) +
                      c * h * (w + 2 * kCropPad) + c * h * w;
    }
    if (p.augment_flip) train_sample += 2 * c * h * w;
  }
  const int64_t train_batch =
      std::max<int64_t>(1, std::min(p.batch_size, shape.train));
  const int64_t eval_batch =
      std::max<int64_t>(1, std::min(std::max(p.batch_size, kEvalBatch),
                                    std::max(shape.val, shape.test)));
  e.train_activation_bytes = train_batch * train_sample * kFloat;
  e.eval_activation_bytes =
      eval_batch * (max_pair + shape.num_classes) * kFloat;
  e.activation_bytes =
      std::max(e.train_activation_bytes, e.eval_activation_bytes);

  const int64_t samples = shape.train + shape.val + shape.test;
  e.data_bytes = samples * features * kFloat + samples * kLabel;
  e.total_bytes = e.parameter_bytes + e.gradient_bytes + e.optimizer_bytes +
                  e.activation_bytes + e.data_bytes;
  return e;
}

std::string MemoryEstimateJson(const MemoryEstimate& e, const TrainerParams& p,
                               const DataShape& shape) {
  nlohmann::ordered_json j;
  j["parameters"] = e.parameters;
  j["bytes_per_parameter"] = e.bytes_per_parameter;
  j["parameter_bytes"] = e.parameter_bytes;
  j["gradient_bytes"] = e.gradient_bytes;
  j["optimizer_bytes"] = e.optimizer_bytes;
  j["activation_bytes"] = e.activation_bytes;
  j["data_bytes"] = e.data_bytes;
  j[kEstimateTotalKey] = e.total_bytes;
  j["trainable_parameters"] = e.trainable_parameters;
  j["optimizer"] = p.optimizer;
  j["optimizer_slots"] = e.optimizer_slots;
  j["batch_size"] = p.batch_size;
  j["train_activation_bytes"] = e.train_activation_bytes;
  j["eval_activation_bytes"] = e.eval_activation_bytes;
  j["samples"] = {
      {"train", shape.train}, {"val", shape.val}, {"test", shape.test}};
  j["sample_shape"] = shape.sample_shape;
  j["classes"] = shape.num_classes;
  j["data_shape_from"] = shape.source;
  j["device"] = p.device;
  return j.dump();
}

}  // namespace sweep::trainer
