#include "trainer/internal/model.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>

#include <algorithm>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sweep::trainer::internal {
namespace {

void AddActivation(torch::nn::Sequential& net, std::string name,
                   const std::string& kind) {
  if (kind == "relu") {
    net->push_back(std::move(name), torch::nn::ReLU());
  } else if (kind == "gelu") {
    net->push_back(std::move(name), torch::nn::GELU());
  } else if (kind == "tanh") {
    net->push_back(std::move(name), torch::nn::Tanh());
  } else if (kind == "sigmoid") {
    net->push_back(std::move(name), torch::nn::Sigmoid());
  } else if (kind == "silu") {
    net->push_back(std::move(name), torch::nn::SiLU());
  } else {
    net->push_back(std::move(name),
                   torch::nn::LeakyReLU(
                       torch::nn::LeakyReLUOptions().negative_slope(0.01)));
  }
}

}  // namespace

absl::StatusOr<Model> BuildModel(const TrainerParams& p,
                                 const std::vector<int64_t>& shape,
                                 int64_t num_classes) {
  Model m;
  m.net = torch::nn::Sequential();
  auto& net = m.net;
  int64_t acts = 0;  // activation elements per sample
  int64_t features = 1;
  for (int64_t d : shape) features *= d;

  if (p.model == "cnn") {
    if (shape.size() != 3) {
      return absl::InvalidArgumentError(
          "parameter model: cnn needs image data (an IDX dataset), not flat "
          "features");
    }
    int64_t channels = shape[0], h = shape[1], w = shape[2];
    for (size_t i = 0; i < p.conv_channels.size(); ++i) {
      std::string n = absl::StrCat(i + 1);
      int64_t out = p.conv_channels[i];
      net->push_back("conv" + n,
                     torch::nn::Conv2d(
                         torch::nn::Conv2dOptions(channels, out, p.kernel_size)
                             .padding(p.kernel_size / 2)
                             .bias(!p.batch_norm)));
      acts += out * h * w;
      if (p.batch_norm) {
        net->push_back("convbn" + n, torch::nn::BatchNorm2d(out));
        acts += out * h * w;
      }
      AddActivation(net, "convact" + n, p.activation);
      acts += out * h * w;
      if (p.pool != "none") {
        if (h < 2 || w < 2) {
          return absl::InvalidArgumentError(
              absl::StrCat("parameter conv_channels: ", p.conv_channels.size(),
                           " pooled blocks shrink a ", shape[1], "x", shape[2],
                           " image below 1 pixel"));
        }
        if (p.pool == "max") {
          net->push_back("pool" + n,
                         torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2)));
        } else {
          net->push_back("pool" + n,
                         torch::nn::AvgPool2d(torch::nn::AvgPool2dOptions(2)));
        }
        h /= 2;
        w /= 2;
        acts += out * h * w;
      }
      if (p.dropout > 0) {
        net->push_back("convdrop" + n, torch::nn::Dropout(p.dropout));
        acts += out * h * w;
      }
      channels = out;
    }
    features = channels * h * w;
  }
  net->push_back("flatten", torch::nn::Flatten());
  for (size_t i = 0; i < p.hidden.size(); ++i) {
    std::string n = absl::StrCat(i + 1);
    int64_t out = p.hidden[i];
    net->push_back(
        "fc" + n,
        torch::nn::Linear(
            torch::nn::LinearOptions(features, out).bias(!p.batch_norm)));
    acts += out;
    if (p.batch_norm) {
      net->push_back("bn" + n, torch::nn::BatchNorm1d(out));
      acts += out;
    }
    AddActivation(net, "act" + n, p.activation);
    acts += out;
    if (p.dropout > 0) {
      net->push_back("drop" + n, torch::nn::Dropout(p.dropout));
      acts += out;
    }
    features = out;
  }
  net->push_back("out", torch::nn::Linear(features, num_classes));
  acts += num_classes;

  for (const auto& t : net->parameters()) m.parameters += t.numel();
  for (const auto& item : net->named_children()) {
    if (!item.value()->parameters().empty())
      m.weight_layers.push_back(item.key());
  }
  m.activations_per_sample = acts;
  return m;
}

void Model::SetTraining(bool training) const {
  torch::nn::Sequential net = this->net;  // a handle; the module is not const
  net->train(training);
  if (!training) return;
  for (const auto& item : net->named_children()) {
    if (std::find(frozen.begin(), frozen.end(), item.key()) != frozen.end()) {
      item.value()->eval();
    }
  }
}

absl::Status Freeze(Model* model, const std::vector<std::string>& names) {
  const Model& m = *model;
  std::set<std::string> chosen;
  for (const auto& name : names) {
    if (name == "backbone") {
      for (const auto& l : m.weight_layers) {
        if (l != "out") chosen.insert(l);
      }
      continue;
    }
    if (std::find(m.weight_layers.begin(), m.weight_layers.end(), name) ==
        m.weight_layers.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "parameter freeze: no layer with weights named ", name,
          "; layers: ", absl::StrJoin(m.weight_layers, ", "), ", or backbone"));
    }
    chosen.insert(name);
  }
  model->frozen.clear();
  for (const auto& item : m.net->named_children()) {
    if (!chosen.count(item.key())) continue;
    for (auto& t : item.value()->parameters()) t.set_requires_grad(false);
    model->frozen.push_back(item.key());
  }
  return absl::OkStatus();
}

}  // namespace sweep::trainer::internal
