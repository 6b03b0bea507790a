#include "trainer/internal/loop.h"

#include <ATen/ATen.h>
#include <torch/nn/functional/padding.h>
#include <torch/utils.h>

#include <algorithm>

namespace sweep::trainer::internal {

DeviceData ToDevice(const Data& data, torch::Device device) {
  auto to = [&](const Split& s) {
    std::vector<int64_t> shape = {s.size()};
    shape.insert(shape.end(), data.sample_shape.begin(),
                 data.sample_shape.end());
    DeviceSplit out;
    // from_blob does not copy; to(..., copy=true) makes the tensor own its
    // memory.
    out.x =
        torch::from_blob(const_cast<float*>(s.x.data()), shape, torch::kFloat32)
            .to(device, /*non_blocking=*/false, /*copy=*/true);
    out.y = torch::from_blob(const_cast<int64_t*>(s.y.data()), {s.size()},
                             torch::kInt64)
                .to(device, /*non_blocking=*/false, /*copy=*/true);
    return out;
  };
  DeviceData d;
  d.train = to(data.train);
  d.val = to(data.val);
  d.test = to(data.test);
  d.background = data.background;
  return d;
}

int64_t StepsPerEpoch(int64_t n, int64_t batch_size) {
  return (n + batch_size - 1) / batch_size;
}

uint64_t EpochSeed(int64_t seed, int64_t epoch) {
  // splitmix64 of (seed, epoch): well-mixed, different for every epoch.
  uint64_t z = static_cast<uint64_t>(seed) * 0x9E3779B97F4A7C15ull +
               static_cast<uint64_t>(epoch) + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return (z ^ (z >> 31)) >> 1;
}

torch::Tensor SmoothedCrossEntropy(const torch::Tensor& logits,
                                   const torch::Tensor& labels,
                                   double epsilon) {
  torch::Tensor logp = torch::log_softmax(logits, 1);
  torch::Tensor nll = -logp.gather(1, labels.unsqueeze(1)).squeeze(1);
  if (epsilon == 0) return nll.mean();
  torch::Tensor uniform = -logp.mean(1);
  return ((1.0 - epsilon) * nll + epsilon * uniform).mean();
}

torch::Tensor Augment(const torch::Tensor& images, bool crop, bool flip,
                      int64_t pad, double background) {
  torch::Tensor x = images;
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  auto opts = torch::TensorOptions().device(x.device());
  if (crop) {
    torch::Tensor padded =
        torch::constant_pad_nd(x, {pad, pad, pad, pad}, background);
    torch::Tensor dy =
        torch::randint(0, 2 * pad + 1, {b, 1}, opts.dtype(torch::kInt64));
    torch::Tensor dx =
        torch::randint(0, 2 * pad + 1, {b, 1}, opts.dtype(torch::kInt64));
    torch::Tensor rows =
        (torch::arange(h, opts.dtype(torch::kInt64)).unsqueeze(0) + dy)
            .view({b, 1, h, 1})
            .expand({b, c, h, w + 2 * pad});
    torch::Tensor cols =
        (torch::arange(w, opts.dtype(torch::kInt64)).unsqueeze(0) + dx)
            .view({b, 1, 1, w})
            .expand({b, c, h, w});
    x = padded.gather(2, rows).gather(3, cols);
  }
  if (flip) {
    torch::Tensor mask = torch::rand({b}, opts.dtype(torch::kFloat32))
                             .lt(0.5)
                             .view({b, 1, 1, 1});
    x = torch::where(mask, x.flip({3}), x);
  }
  return x;
}

EpochResult TrainEpoch(const Model& model, torch::optim::Optimizer& optimizer,
                       const DeviceData& data, const EpochOptions& o,
                       int64_t* global_step) {
  EpochResult r;
  const DeviceSplit& train = data.train;
  const int64_t n = train.size();
  torch::manual_seed(EpochSeed(o.seed, o.epoch));
  // The shuffle is drawn on the CPU generator, so it is the same on every
  // device.
  torch::Tensor order =
      torch::randperm(n, torch::TensorOptions().dtype(torch::kInt64))
          .to(train.x.device());
  model.SetTraining(true);
  torch::nn::Sequential net = model.net;  // a handle to the (non-const) module
  torch::Tensor loss_sum = torch::zeros({}, train.x.options());
  for (int64_t begin = 0; begin < n; begin += o.batch_size) {
    if (o.stop != nullptr && o.stop->load()) {
      r.stopped = true;
      break;
    }
    int64_t end = std::min(n, begin + o.batch_size);
    torch::Tensor idx = order.slice(0, begin, end);
    torch::Tensor xb = train.x.index_select(0, idx);
    torch::Tensor yb = train.y.index_select(0, idx);
    if (o.augment_crop || o.augment_flip) {
      xb = Augment(xb, o.augment_crop, o.augment_flip, /*pad=*/2,
                   data.background);
    }
    double lr = LearningRate(o.schedule, *global_step);
    for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
    optimizer.zero_grad();
    torch::Tensor loss =
        SmoothedCrossEntropy(net->forward(xb), yb, o.label_smoothing);
    loss.backward();
    optimizer.step();
    loss_sum += loss.detach() * static_cast<double>(end - begin);
    r.samples += end - begin;
    r.last_lr = lr;
    ++r.steps;
    ++*global_step;
  }
  r.train_loss = r.samples > 0
                     ? loss_sum.item<double>() / static_cast<double>(r.samples)
                     : 0;
  return r;
}

EvalResult Evaluate(const Model& model, const DeviceSplit& split,
                    int64_t batch_size) {
  torch::NoGradGuard no_grad;
  model.SetTraining(false);
  torch::nn::Sequential net = model.net;
  const int64_t n = split.size();
  torch::Tensor loss_sum = torch::zeros({}, split.x.options());
  torch::Tensor correct = torch::zeros({}, split.y.options());
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    int64_t end = std::min(n, begin + batch_size);
    torch::Tensor logits = net->forward(split.x.slice(0, begin, end));
    torch::Tensor labels = split.y.slice(0, begin, end);
    loss_sum += SmoothedCrossEntropy(logits, labels, 0) *
                static_cast<double>(end - begin);
    correct += logits.argmax(1).eq(labels).sum();
  }
  EvalResult r;
  r.loss = loss_sum.item<double>() / static_cast<double>(n);
  r.accuracy =
      static_cast<double>(correct.item<int64_t>()) / static_cast<double>(n);
  return r;
}

}  // namespace sweep::trainer::internal
