// The LibTorch adapter of sweep-train: wires data, model, loop and checkpoints,
// and runs all of it inside TorchCall so that no LibTorch exception leaves this
// file.
#include "trainer/trainer.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <time.h>
#include <torch/cuda.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/utils.h>
#include <torch/version.h>

#ifdef SWEEP_TRAINER_CUDA_STATS
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_util.h"
#include "trainer/data.h"
#include "trainer/estimate.h"
#include "trainer/internal/checkpoint.h"
#include "trainer/internal/loop.h"
#include "trainer/internal/model.h"
#include "trainer/internal/torch_guard.h"
#include "trainer/metrics.h"

namespace sweep::trainer {
namespace {

namespace fs = std::filesystem;
using internal::TorchCall;
using Json = nlohmann::json;

// Checks that `device` can be used. Returns Unavailable naming the cause for a
// CUDA device that CUDA cannot serve; never substitutes the CPU.
absl::Status CheckDevice(const TrainerParams& p, const TrainerEnv& env) {
  if (p.device == "cpu") return absl::OkStatus();
  std::string visible =
      absl::StrCat("CUDA_VISIBLE_DEVICES=\"", env.cuda_visible_devices, "\"");
  std::string cause;
  if (!TorchBuiltWithCuda()) {
    cause = absl::StrCat(
        "this sweep-train is linked against a LibTorch built without CUDA (",
        visible,
        "; build sweep-train against PyTorch's CUDA LibTorch, see "
        "docs/trainer.md)");
  } else if (!torch::cuda::is_available()) {
    cause = absl::StrCat("no CUDA device is visible (", visible, ")");
  } else {
    int64_t index = 0;
    if (absl::StartsWith(p.device, "cuda:"))
      index = std::stoll(p.device.substr(5));
    int64_t count = static_cast<int64_t>(torch::cuda::device_count());
    if (index >= count) {
      cause = absl::StrCat("device ", p.device, " does not exist: ", count,
                           " CUDA device(s) visible (", visible, ")");
    }
  }
  if (cause.empty()) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(
      "device ", p.device, " was asked for but CUDA is not available: ", cause,
      ". Not falling back to the CPU; pass device=cpu to train on the CPU."));
}

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(
    const TrainerParams& p, const internal::Model& model) {
  std::vector<torch::Tensor> params;
  for (const auto& t : model.net->parameters()) {
    if (t.requires_grad()) params.push_back(t);
  }
  if (p.optimizer == "adam") {
    return std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(p.lr).weight_decay(p.weight_decay));
  }
  if (p.optimizer == "adamw") {
    return std::make_unique<torch::optim::AdamW>(
        params, torch::optim::AdamWOptions(p.lr).weight_decay(p.weight_decay));
  }
  return std::make_unique<torch::optim::SGD>(params,
                                             torch::optim::SGDOptions(p.lr)
                                                 .momentum(p.momentum)
                                                 .nesterov(p.nesterov)
                                                 .weight_decay(p.weight_decay));
}

int64_t PeakDeviceMemory(const torch::Device& device) {
#ifdef SWEEP_TRAINER_CUDA_STATS
  if (device.is_cuda()) {
    // getDeviceStats takes an int in LibTorch 1.13 and a DeviceIndex in 2.x.
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(
        static_cast<c10::DeviceIndex>(device.has_index() ? device.index() : 0));
    return stats.allocated_bytes[0].peak;  // [0]: StatType::AGGREGATE
  }
#endif
  return -1;
}

// CPU time of the whole process (all threads), in seconds.
double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) +
         1e-9 * static_cast<double>(ts.tv_nsec);
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since)
      .count();
}

absl::Status Run(const TrainerParams& p, const TrainerEnv& env) {
  auto say = [&](const std::string& line) {
    if (!env.quiet) std::cout << line << std::endl;
  };
  SetTorchThreads(p.threads);
  SWEEP_RETURN_IF_ERROR(CheckDevice(p, env));
  torch::Device device(p.device);
  if (device.is_cuda()) {
    at::globalContext().setBenchmarkCuDNN(false);
    at::globalContext().setDeterministicCuDNN(
        true);  // resume reproduces the run
  }
  SWEEP_ASSIGN_OR_RETURN(MetricsWriter metrics,
                         MetricsWriter::Open(env.metrics_file));

  // Data, once.
  auto t0 = std::chrono::steady_clock::now();
  SWEEP_ASSIGN_OR_RETURN(Data data, LoadData({.dataset = p.dataset,
                                              .data_dir = p.data_dir,
                                              .val_fraction = p.val_fraction,
                                              .train_limit = p.train_limit}));
  say(absl::StrFormat(
      "data: %s from %s: %d train, %d val, %d test samples, %d classes (%.1fs)",
      p.dataset, p.data_dir, data.train.size(), data.val.size(),
      data.test.size(), data.num_classes, Seconds(t0)));
  if ((p.augment_crop || p.augment_flip) && !data.images) {
    return absl::InvalidArgumentError(
        "parameter augment: applies to image data only");
  }

  // Model.
  torch::manual_seed(static_cast<uint64_t>(p.seed));
  SWEEP_ASSIGN_OR_RETURN(
      internal::Model model,
      internal::BuildModel(p, data.sample_shape, data.num_classes));
  model.net->to(device);
  if (!p.init_from.empty()) {
    SWEEP_RETURN_IF_ERROR(internal::LoadWeights(p.init_from, model));
    say(absl::StrCat("init_from: weights from ", p.init_from));
  }
  SWEEP_RETURN_IF_ERROR(internal::Freeze(&model, p.freeze));
  std::unique_ptr<torch::optim::Optimizer> optimizer = MakeOptimizer(p, model);
  // The same estimate as `sweep-train --estimate-memory` (estimate.h).
  SWEEP_ASSIGN_OR_RETURN(MemoryEstimate estimate,
                         EstimateMemory(p, {.train = data.train.size(),
                                            .val = data.val.size(),
                                            .test = data.test.size(),
                                            .sample_shape = data.sample_shape,
                                            .num_classes = data.num_classes,
                                            .images = data.images,
                                            .source = "files"}));
  int64_t data_bytes = estimate.data_bytes;
  int64_t memory = estimate.total_bytes - data_bytes;

  // Resume.
  internal::CheckpointState state;
  std::string checkpoint;
  if (!env.checkpoint_dir.empty()) {
    std::error_code ec;
    fs::create_directories(env.checkpoint_dir, ec);
    checkpoint =
        (fs::path(env.checkpoint_dir) / internal::kCheckpointFile).string();
    if (fs::exists(checkpoint, ec)) {
      SWEEP_ASSIGN_OR_RETURN(
          state, internal::LoadCheckpoint(checkpoint, model, *optimizer));
      say(absl::StrCat("resumed from ", checkpoint, " after epoch ",
                       state.epoch));
      if (state.params_json != p.json) {
        std::cerr << "warning: " << checkpoint
                  << " was written with parameters " << state.params_json
                  << ", this run has " << p.json << "\n";
      }
    }
  }

  internal::DeviceData on_device = internal::ToDevice(data, device);
  data = Data();  // the host copy is no longer needed

  const int64_t steps_per_epoch =
      internal::StepsPerEpoch(on_device.train.size(), p.batch_size);
  if (state.epoch == 0) {
    say(
        absl::StrFormat("model: %s, %d parameters, memory estimate %.1f MiB (+ "
                        "%.1f MiB data) on %s",
                        p.model, model.parameters, memory / 1048576.0,
                        data_bytes / 1048576.0, p.device));
    SWEEP_RETURN_IF_ERROR(metrics.Write({{"step", 0},
                                         {"parameters", model.parameters},
                                         {"memory_estimate_bytes", memory},
                                         {"data_bytes", data_bytes}}));
  }

  internal::EpochOptions eo;
  eo.seed = p.seed;
  eo.batch_size = p.batch_size;
  eo.label_smoothing = p.label_smoothing;
  eo.augment_crop = p.augment_crop;
  eo.augment_flip = p.augment_flip;
  eo.stop = env.stop;
  eo.schedule = {.kind = p.schedule,
                 .lr = p.lr,
                 .warmup_epochs = p.warmup_epochs,
                 .step_epochs = p.step_epochs,
                 .step_gamma = p.step_gamma,
                 .epochs = p.epochs,
                 .steps_per_epoch = steps_per_epoch};
  const int64_t eval_batch = std::max<int64_t>(p.batch_size, 1000);
  for (int64_t epoch = state.epoch; epoch < p.epochs; ++epoch) {
    eo.epoch = epoch;
    auto start = std::chrono::steady_clock::now();
    double cpu_start = CpuSeconds();
    internal::EpochResult r = internal::TrainEpoch(model, *optimizer, on_device,
                                                   eo, &state.global_step);
    if (r.stopped) {
      return absl::CancelledError(
          absl::StrCat("stopped by SIGTERM during epoch ", epoch + 1,
                       "; the last checkpoint holds epoch ", epoch));
    }
    double train_seconds = Seconds(start);
    double train_cpu_seconds = CpuSeconds() - cpu_start;
    internal::EvalResult val =
        internal::Evaluate(model, on_device.val, eval_batch);
    double epoch_seconds = Seconds(start);
    state.epoch = epoch + 1;
    state.params_json = p.json;
    bool finite = std::isfinite(r.train_loss) && std::isfinite(val.loss);
    if (!checkpoint.empty() && finite) {
      SWEEP_RETURN_IF_ERROR(
          internal::SaveCheckpoint(checkpoint, model, *optimizer, state));
    }
    Json line = {
        {"step", state.epoch},
        {"epoch", state.epoch},
        {"train_loss", r.train_loss},
        {"val_loss", val.loss},
        {"val_acc", val.accuracy},
        {"lr", r.last_lr},
        {"epoch_seconds", epoch_seconds},
        {"samples_per_second", r.samples / std::max(1e-9, train_seconds)},
        {"train_cpu_seconds", train_cpu_seconds}};
    int64_t peak = PeakDeviceMemory(device);
    if (peak >= 0) line["gpu_peak_memory_bytes"] = peak;
    SWEEP_RETURN_IF_ERROR(metrics.Write(line));
    say(absl::StrFormat(
        "epoch %d/%d: train_loss %.4f val_loss %.4f val_acc %.4f lr %.3g "
        "(%.2fs, %.0f samples/s)",
        state.epoch, p.epochs, r.train_loss, val.loss, val.accuracy, r.last_lr,
        epoch_seconds, r.samples / std::max(1e-9, train_seconds)));
    if (!finite) {
      return absl::AbortedError(
          absl::StrFormat("training diverged in epoch %d: train_loss %g, "
                          "val_loss %g (lower lr?)",
                          state.epoch, r.train_loss, val.loss));
    }
  }

  internal::EvalResult test =
      internal::Evaluate(model, on_device.test, eval_batch);
  SWEEP_RETURN_IF_ERROR(metrics.Write({{"step", state.epoch},
                                       {"test_acc", test.accuracy},
                                       {"test_loss", test.loss}}));
  say(absl::StrFormat("test: test_acc %.4f test_loss %.4f", test.accuracy,
                      test.loss));
  return absl::OkStatus();
}

}  // namespace

absl::Status RunTrainer(const TrainerParams& params, const TrainerEnv& env) {
  return TorchCall("training failed", absl::StatusCode::kInternal,
                   [&] { return Run(params, env); });
}

void SetTorchThreads(int64_t threads) {
  at::set_num_threads(static_cast<int>(threads));
  using SetFn = void (*)(int);
  if (auto fn = reinterpret_cast<SetFn>(
          dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    fn(static_cast<int>(threads));
  }
}

bool TorchBuiltWithCuda() {
  // CUDA's hooks are registered when libtorch_cuda is loaded; their
  // hasCUDART() is true whether or not a device is usable, the CPU-only
  // default's false. (at::hasCUDA() asks for a usable device.)
  if (at::globalContext().hasCUDART()) return true;
  for (const char* lib : {"libtorch_cuda.so", "libc10_cuda.so"}) {
    if (void* h = dlopen(lib, RTLD_NOW | RTLD_NOLOAD)) {
      dlclose(h);
      return true;
    }
  }
  return false;
}

std::string BuildInfo() {
  bool usable = false;
  TorchCall("probing CUDA", absl::StatusCode::kInternal, [&] {
    usable = torch::cuda::is_available();
  }).IgnoreError();
  return absl::StrCat(
      "sweep-train (LibTorch ", TORCH_VERSION,
      ", built with CUDA: ", TorchBuiltWithCuda() ? "yes" : "no",
      ", CUDA device usable: ", usable ? "yes" : "no", ")");
}

int ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitTrained;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return kExitBadInput;
    case absl::StatusCode::kUnavailable:
      return kExitNoCuda;
    case absl::StatusCode::kAborted:
      return kExitDiverged;
    case absl::StatusCode::kResourceExhausted:
      return kExitOutOfMemory;
    case absl::StatusCode::kCancelled:
      return kExitStopped;
    default:
      return kExitInternal;
  }
}

}  // namespace sweep::trainer
