#include "trainer/internal/checkpoint.h"

#include <fcntl.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_util.h"
#include "trainer/internal/torch_guard.h"

namespace sweep::trainer::internal {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kFormat = 1;

std::string Shape(const torch::Tensor& t) {
  return absl::StrCat("[", absl::StrJoin(t.sizes(), ", "), "]");
}

// Every parameter and buffer of the model by its dotted name.
std::vector<std::pair<std::string, torch::Tensor>> Tensors(const Model& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : model.net->named_parameters())
    out.emplace_back(item.key(), item.value());
  for (const auto& item : model.net->named_buffers())
    out.emplace_back(item.key(), item.value());
  return out;
}

absl::Status Fsync(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags);
  if (fd < 0)
    return absl::InternalError(absl::StrCat(path, ": ", std::strerror(errno)));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0)
    return absl::InternalError(
        absl::StrCat(path, ": fsync: ", std::strerror(errno)));
  return absl::OkStatus();
}

// Reads the weights sub-archive into `model`, checking names and shapes first
// so that nothing is copied from a mismatched file.
absl::Status ReadWeights(const std::string& path,
                         torch::serialize::InputArchive& weights,
                         const Model& model) {
  auto tensors = Tensors(model);
  std::vector<torch::Tensor> loaded(tensors.size());
  std::set<std::string> expected;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, target] = tensors[i];
    expected.insert(name);
    bool found = false;
    SWEEP_RETURN_IF_ERROR(
        TorchCall(absl::StrCat("reading ", name, " from ", path),
                  absl::StatusCode::kDataLoss,
                  [&] { found = weights.try_read(name, loaded[i]); }));
    if (!found) {
      return absl::FailedPreconditionError(absl::StrCat(
          "checkpoint ", path, " was written for another model: it has no ",
          name, " (shape ", Shape(target), " here)"));
    }
    if (loaded[i].sizes() != target.sizes()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "checkpoint ", path, " was written for another model: ", name,
          " has shape ", Shape(loaded[i]), " there but ", Shape(target),
          " here"));
    }
  }
  std::vector<std::string> keys;
  SWEEP_RETURN_IF_ERROR(TorchCall(absl::StrCat("reading ", path),
                                  absl::StatusCode::kDataLoss,
                                  [&] { keys = weights.keys(); }));
  for (const auto& key : keys) {
    if (!expected.count(key)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "checkpoint ", path, " was written for another model: it has ", key,
          ", which this model does not"));
    }
  }
  return TorchCall(absl::StrCat("loading weights from ", path),
                   absl::StatusCode::kInternal, [&] {
                     torch::NoGradGuard no_grad;
                     for (size_t i = 0; i < tensors.size(); ++i) {
                       tensors[i].second.copy_(loaded[i]);
                     }
                   });
}

absl::Status OpenArchive(const std::string& path,
                         torch::serialize::InputArchive& archive) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return absl::NotFoundError(
        absl::StrCat("checkpoint ", path, ": no such file"));
  }
  SWEEP_RETURN_IF_ERROR(
      TorchCall(absl::StrCat("checkpoint ", path, " is not readable"),
                absl::StatusCode::kDataLoss, [&] { archive.load_from(path); }));
  c10::IValue format;
  bool ok = false;
  SWEEP_RETURN_IF_ERROR(
      TorchCall(absl::StrCat("checkpoint ", path), absl::StatusCode::kDataLoss,
                [&] { ok = archive.try_read("sweep_train_format", format); }));
  if (!ok || !format.isInt() || format.toInt() != kFormat) {
    return absl::DataLossError(absl::StrCat(
        "checkpoint ", path, " is not a sweep-train checkpoint (format ",
        kFormat, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SaveCheckpoint(const std::string& path, const Model& model,
                            torch::optim::Optimizer& optimizer,
                            const CheckpointState& state) {
  std::string tmp = path + ".tmp";
  SWEEP_RETURN_IF_ERROR(
      TorchCall(absl::StrCat("writing checkpoint ", tmp),
                absl::StatusCode::kInternal, [&] {
                  torch::serialize::OutputArchive archive;
                  archive.write("sweep_train_format", c10::IValue(kFormat));
                  archive.write("epoch", c10::IValue(state.epoch));
                  archive.write("global_step", c10::IValue(state.global_step));
                  archive.write("params", c10::IValue(state.params_json));
                  torch::serialize::OutputArchive weights;
                  for (const auto& [name, t] : Tensors(model)) {
                    weights.write(name, t.detach().to(torch::kCPU));
                  }
                  archive.write("weights", weights);
                  torch::serialize::OutputArchive opt;
                  optimizer.save(opt);
                  archive.write("optimizer", opt);
                  archive.save_to(tmp);
                }));
  SWEEP_RETURN_IF_ERROR(Fsync(tmp, O_RDONLY));
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("renaming ", tmp, " to ", path, ": ", ec.message()));
  return Fsync(fs::path(path).parent_path().string(), O_RDONLY | O_DIRECTORY);
}

absl::StatusOr<CheckpointState> LoadCheckpoint(
    const std::string& path, const Model& model,
    torch::optim::Optimizer& optimizer) {
  torch::serialize::InputArchive archive;
  SWEEP_RETURN_IF_ERROR(OpenArchive(path, archive));
  CheckpointState state;
  torch::serialize::InputArchive weights, opt;
  SWEEP_RETURN_IF_ERROR(
      TorchCall(absl::StrCat("checkpoint ", path, " is incomplete"),
                absl::StatusCode::kDataLoss, [&] {
                  c10::IValue v;
                  archive.read("epoch", v);
                  state.epoch = v.toInt();
                  archive.read("global_step", v);
                  state.global_step = v.toInt();
                  archive.read("params", v);
                  state.params_json = v.toStringRef();
                  archive.read("weights", weights);
                  archive.read("optimizer", opt);
                }));
  SWEEP_RETURN_IF_ERROR(ReadWeights(path, weights, model));
  SWEEP_RETURN_IF_ERROR(TorchCall(
      absl::StrCat("checkpoint ", path,
                   ": optimizer state does not match this run"),
      absl::StatusCode::kFailedPrecondition, [&] { optimizer.load(opt); }));
  return state;
}

absl::Status LoadWeights(const std::string& path_or_dir, const Model& model) {
  std::string path = path_or_dir;
  std::error_code ec;
  if (fs::is_directory(path, ec))
    path = (fs::path(path) / kCheckpointFile).string();
  torch::serialize::InputArchive archive;
  absl::Status st = OpenArchive(path, archive);
  if (!st.ok())
    return absl::Status(st.code(),
                        absl::StrCat("parameter init_from: ", st.message()));
  torch::serialize::InputArchive weights;
  SWEEP_RETURN_IF_ERROR(TorchCall(
      absl::StrCat("checkpoint ", path, " is incomplete"),
      absl::StatusCode::kDataLoss, [&] { archive.read("weights", weights); }));
  st = ReadWeights(path, weights, model);
  if (!st.ok())
    return absl::Status(st.code(),
                        absl::StrCat("parameter init_from: ", st.message()));
  return absl::OkStatus();
}

}  // namespace sweep::trainer::internal
