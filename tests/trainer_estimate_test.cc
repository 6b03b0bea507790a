// sweep-train's memory estimate: the layer walk agrees with the model LibTorch
// builds (parameter counts, output sizes), and `sweep-train --estimate-memory`
// prints one JSON line that grows with the hidden width and the batch size as
// the real parameter count says, reads only the data's headers, agrees with a
// training run's start metrics, and exits 2 on bad parameters.
#include <torch/types.h>
#include <torch/utils.h>

#include <filesystem>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing.h"
#include "tests/trainer_testdata.h"
#include "trainer/estimate.h"
#include "trainer/internal/model.h"

namespace sweep::trainer {
namespace {

using ::sweep::testing::ReadFile;
using ::sweep::testing::TempDir;
using ::testing::HasSubstr;
using Json = nlohmann::json;

TrainerParams Params(const std::string& model, std::vector<int64_t> hidden) {
  TrainerParams p;
  p.model = model;
  p.hidden = std::move(hidden);
  p.conv_channels = {8, 16};
  p.device = "cpu";
  return p;
}

// Architectures that cover every layer kind and option.
std::vector<TrainerParams> Architectures() {
  std::vector<TrainerParams> all;
  all.push_back(Params("mlp", {256, 128}));
  all.push_back(Params("mlp", {}));
  TrainerParams p = Params("mlp", {64, 32, 16});
  p.batch_norm = true;
  p.dropout = 0.2;
  p.activation = "gelu";
  all.push_back(p);
  all.push_back(Params("cnn", {128}));
  p = Params("cnn", {32});
  p.batch_norm = true;
  p.dropout = 0.1;
  p.kernel_size = 5;
  p.pool = "avg";
  p.conv_channels = {4, 8, 16};
  all.push_back(p);
  p = Params("cnn", {});
  p.pool = "none";
  p.kernel_size = 1;
  all.push_back(p);
  return all;
}

DataShape Shape(int64_t train, int64_t val, int64_t test,
                std::vector<int64_t> sample_shape, int64_t classes) {
  DataShape s;
  s.train = train;
  s.val = val;
  s.test = test;
  s.images = sample_shape.size() == 3;
  s.sample_shape = std::move(sample_shape);
  s.num_classes = classes;
  return s;
}

TEST(TrainerEstimateTest, LayerWalkMatchesTheBuiltModelLayerByLayer) {
  for (const TrainerParams& p : Architectures()) {
    SCOPED_TRACE(p.model + " with " + std::to_string(p.hidden.size()) +
                 " hidden layers");
    torch::manual_seed(0);
    auto model = internal::BuildModel(p, {1, 28, 28}, 10);
    ASSERT_TRUE(model.ok()) << model.status();
    auto layers = ModelLayers(p, {1, 28, 28}, 10);
    ASSERT_TRUE(layers.ok()) << layers.status();
    auto children = model->net->named_children();
    ASSERT_EQ(children.size(), layers->size());
    // One sample forward, layer by layer (training mode, as a training step
    // keeps them): each output has the size the walk says; flatten is a view
    // and counts nothing.
    torch::Tensor x = torch::randn({2, 1, 28, 28});  // 2: batch norm needs it
    model->net->train();
    int64_t numel = 0;
    size_t i = 0;
    for (torch::nn::AnyModule& layer : *model->net) {
      const LayerShape& l = (*layers)[i];
      EXPECT_EQ(children[i].key(), l.name);
      int64_t params = 0;
      for (const auto& t : children[i].value()->parameters())
        params += t.numel();
      EXPECT_EQ(params, l.parameters) << l.name;
      numel += params;
      x = layer.forward(x);
      EXPECT_EQ(l.name == "flatten" ? 0 : x.numel() / 2, l.outputs) << l.name;
      ++i;
    }
    EXPECT_EQ(numel, model->parameters);
    auto estimate = EstimateMemory(p, Shape(1, 1, 1, {1, 28, 28}, 10));
    ASSERT_TRUE(estimate.ok()) << estimate.status();
    EXPECT_EQ(estimate->parameters, numel);
  }
}

TEST(TrainerEstimateTest, OptimizerStateAndGradientsCountOnlyTrainableWeights) {
  DataShape shape = Shape(900, 100, 200, {1, 28, 28}, 10);
  TrainerParams p = Params("mlp", {64});
  const int64_t fc1 = 784 * 64 + 64, out = 64 * 10 + 10;
  struct Case {
    std::string optimizer;
    double momentum;
    int slots;
  };
  for (const Case& c : {Case{"sgd", 0, 0}, Case{"sgd", 0.9, 1},
                        Case{"adam", 0, 2}, Case{"adamw", 0, 2}}) {
    p.optimizer = c.optimizer;
    p.momentum = c.momentum;
    auto e = EstimateMemory(p, shape);
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ(e->parameters, fc1 + out);
    EXPECT_EQ(e->optimizer_slots, c.slots) << c.optimizer;
    EXPECT_EQ(e->parameter_bytes, 4 * (fc1 + out));
    EXPECT_EQ(e->gradient_bytes, 4 * (fc1 + out));
    EXPECT_EQ(e->optimizer_bytes, c.slots * 4 * (fc1 + out));
    EXPECT_EQ(e->data_bytes, 1200 * (784 * 4 + 8));
    EXPECT_EQ(e->total_bytes, e->parameter_bytes + e->gradient_bytes +
                                  e->optimizer_bytes + e->activation_bytes +
                                  e->data_bytes);
  }
  p.freeze = {"backbone"};  // fc1 fixed: no gradient, no optimizer state
  auto e = EstimateMemory(p, shape);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->trainable_parameters, out);
  EXPECT_EQ(e->parameter_bytes, 4 * (fc1 + out));
  EXPECT_EQ(e->gradient_bytes, 4 * out);
  EXPECT_EQ(e->optimizer_bytes, 2 * 4 * out);
  p.freeze = {"fc7"};
  EXPECT_EQ(EstimateMemory(p, shape).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TrainerEstimateTest, ArchitectureErrorsAreTheModelBuildersErrors) {
  TrainerParams cnn = Params("cnn", {16});
  auto flat = EstimateMemory(cnn, Shape(9, 1, 1, {5}, 2));
  EXPECT_EQ(flat.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(flat.status(), internal::BuildModel(cnn, {5}, 2).status());
  cnn.conv_channels = {4, 4, 4, 4, 4, 4};  // six poolings of 28 pixels
  auto deep = EstimateMemory(cnn, Shape(9, 1, 1, {1, 28, 28}, 10));
  EXPECT_EQ(deep.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(deep.status(), internal::BuildModel(cnn, {1, 28, 28}, 10).status());
}

// ---- the binary -------------------------------------------------------------

std::string TrainBin() {
  return ::sweep::testing::Env("SWEEP_TRAIN_BIN", SWEEP_TRAIN_BIN_DEFAULT);
}

struct Result {
  int exit_code = -1;
  std::string out, err;
  Json json;  // --estimate-memory's stdout, parsed
};

class TrainerEstimateBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_ / "data";
    std::filesystem::create_directories(data_);
    // 400 training images (360 train + 40 validation), 100 test, 4 classes.
    ::sweep::testing::WriteIdxDataset(data_, 400, 100, 4);
  }

  Result Run(const std::vector<std::string>& args,
             const std::vector<std::string>& env = {}) {
    static int n = 0;
    SpawnOptions o;
    o.argv = {TrainBin()};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    // A trial's environment: no parameters, metrics or GPU unless `env`
    // gives them.
    std::vector<std::string> e = env;
    for (std::string unset : {"SWEEP_PARAMS=", "CUDA_VISIBLE_DEVICES=",
                              "SWEEP_METRICS_FILE=", "SWEEP_CHECKPOINT_DIR="}) {
      bool given = false;
      for (const std::string& kv : env) given |= kv.rfind(unset, 0) == 0;
      if (!given) e.push_back(unset);
    }
    o.env = ::sweep::testing::EnvWith(e);
    o.stdout_path = dir_ / ("run" + std::to_string(++n) + ".out");
    o.stderr_path = dir_ / ("run" + std::to_string(n) + ".err");
    Result r;
    auto child = ChildProcess::Spawn(o);
    if (!child.ok()) {
      ADD_FAILURE() << child.status();
      return r;
    }
    std::optional<ExitStatus> st = child->Wait(absl::Seconds(60));
    if (!st) st = child->Stop(absl::Seconds(1));
    r.exit_code = st->signal ? 128 + st->signal : st->exit_code;
    r.out = ReadFile(o.stdout_path);
    r.err = ReadFile(o.stderr_path);
    bool estimate =
        std::find(args.begin(), args.end(), "--estimate-memory") != args.end();
    if (estimate && r.exit_code == 0) {
      std::vector<std::string> lines =
          absl::StrSplit(r.out, '\n', absl::SkipEmpty());
      EXPECT_EQ(lines.size(), 1u) << r.out;
      r.json = Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
      EXPECT_TRUE(r.json.is_object()) << r.out;
    }
    return r;
  }

  Result Estimate(std::vector<std::string> more) {
    std::vector<std::string> args = {"--estimate-memory", "--dataset=idx",
                                     "--data_dir=" + data_};
    args.insert(args.end(), more.begin(), more.end());
    return Run(args);
  }

  TempDir dir_;
  std::string data_;
};

int64_t Get(const Json& j, const char* key) {
  EXPECT_TRUE(j.contains(key)) << key << " missing from " << j.dump();
  return j.contains(key) ? j[key].get<int64_t>() : -1;
}

TEST_F(TrainerEstimateBinaryTest, PrintsOneJsonLineWithTheContractsKeys) {
  Result r = Estimate({"--hidden=[32]", "--momentum=0.9"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const int64_t params = 784 * 32 + 32 + 32 * 4 + 4;
  EXPECT_EQ(Get(r.json, "parameters"), params);
  EXPECT_EQ(Get(r.json, "bytes_per_parameter"), 4);
  EXPECT_EQ(Get(r.json, "parameter_bytes"), 4 * params);
  EXPECT_EQ(Get(r.json, "gradient_bytes"), 4 * params);
  EXPECT_EQ(Get(r.json, "optimizer_bytes"), 4 * params);  // momentum: 1 slot
  EXPECT_GT(Get(r.json, "activation_bytes"), 0);
  EXPECT_EQ(Get(r.json, "data_bytes"), 500 * (784 * 4 + 8));
  EXPECT_EQ(Get(r.json, "total_bytes"),
            Get(r.json, "parameter_bytes") + Get(r.json, "gradient_bytes") +
                Get(r.json, "optimizer_bytes") +
                Get(r.json, "activation_bytes") + Get(r.json, "data_bytes"));
}

TEST_F(TrainerEstimateBinaryTest, GrowsWithHiddenWidthAsTheParameterCountSays) {
  Result narrow = Estimate({"--hidden=[32]", "--optimizer=adam"});
  Result wide = Estimate({"--hidden=[64]", "--optimizer=adam"});
  ASSERT_EQ(narrow.exit_code, 0) << narrow.err;
  ASSERT_EQ(wide.exit_code, 0) << wide.err;
  // 784 -> h -> 4 classes: (784 + 1 + 4) * h + 4 parameters.
  const int64_t grown = (784 + 1 + 4) * (64 - 32);
  EXPECT_EQ(Get(wide.json, "parameters") - Get(narrow.json, "parameters"),
            grown);
  // Weights, gradients and Adam's two moments: 4 copies of 4 bytes each.
  EXPECT_EQ(Get(wide.json, "parameter_bytes") +
                Get(wide.json, "gradient_bytes") +
                Get(wide.json, "optimizer_bytes") -
                Get(narrow.json, "parameter_bytes") -
                Get(narrow.json, "gradient_bytes") -
                Get(narrow.json, "optimizer_bytes"),
            16 * grown);
  EXPECT_GT(Get(wide.json, "activation_bytes"),
            Get(narrow.json, "activation_bytes"));
  EXPECT_GT(Get(wide.json, "total_bytes"), Get(narrow.json, "total_bytes"));
  EXPECT_EQ(Get(wide.json, "data_bytes"), Get(narrow.json, "data_bytes"));
}

TEST_F(TrainerEstimateBinaryTest,
       TrainingActivationsGrowLinearlyWithBatchSize) {
  Result small = Estimate({"--hidden=[256,128]", "--batch_size=32"});
  Result large = Estimate({"--hidden=[256,128]", "--batch_size=128"});
  ASSERT_EQ(small.exit_code, 0) << small.err;
  ASSERT_EQ(large.exit_code, 0) << large.err;
  EXPECT_EQ(Get(large.json, "train_activation_bytes"),
            4 * Get(small.json, "train_activation_bytes"));
  EXPECT_GE(Get(large.json, "activation_bytes"),
            Get(large.json, "train_activation_bytes"));
  EXPECT_GT(Get(large.json, "total_bytes"), Get(small.json, "total_bytes"));
  EXPECT_EQ(Get(large.json, "parameters"), Get(small.json, "parameters"));
}

TEST_F(TrainerEstimateBinaryTest, ReadsHeadersNotSamples) {
  // Cut the training images after their header: a training run reports the
  // file as truncated, the estimate never reads that far.
  std::string images = data_ + "/train-images-idx3-ubyte.gz";
  std::string header = ::sweep::testing::IdxBytes({400, 28, 28}, {});
  std::filesystem::remove(images);
  ::sweep::testing::WriteBytes(images, header, /*gzip=*/true);
  Result r = Estimate({"--hidden=[32]"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Get(r.json["samples"], "train"), 360);
  EXPECT_EQ(Get(r.json["samples"], "val"), 40);
  EXPECT_EQ(Get(r.json["samples"], "test"), 100);
  Result train = Run(
      {"--dataset=idx", "--data_dir=" + data_, "--hidden=[32]", "--epochs=1"});
  EXPECT_EQ(train.exit_code, 2);
  EXPECT_THAT(train.err, HasSubstr("train-images-idx3-ubyte.gz"));
}

TEST_F(TrainerEstimateBinaryTest, CsvShapeComesFromTheFiles) {
  std::string csv = dir_ / "csv";
  std::filesystem::create_directories(csv);
  ::sweep::testing::WriteCsvDataset(csv, 200, 50);
  Result r = Run({"--estimate-memory", "--dataset=csv", "--data_dir=" + csv,
                  "--hidden=[8]", "--train_limit=100"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Get(r.json, "parameters"), 2 * 8 + 8 + 8 * 2 + 2);
  EXPECT_EQ(Get(r.json["samples"], "train"), 100);  // train_limit
  EXPECT_EQ(Get(r.json["samples"], "val"), 20);
  EXPECT_EQ(Get(r.json["samples"], "test"), 50);
  EXPECT_EQ(Get(r.json, "data_bytes"), 170 * (2 * 4 + 8));
}

TEST_F(TrainerEstimateBinaryTest,
       KnownDatasetWithoutFilesUsesItsPublishedShape) {
  Result r = Run({"--estimate-memory", "--dataset=fashion-mnist",
                  "--data_dir=" + dir_ / "nothing-here"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.json["data_shape_from"], "known");
  EXPECT_EQ(Get(r.json["samples"], "train"), 54000);
  EXPECT_EQ(Get(r.json["samples"], "test"), 10000);
  EXPECT_EQ(Get(r.json, "parameters"),
            784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
}

TEST_F(TrainerEstimateBinaryTest, AgreesWithTheRunsStartMetrics) {
  std::string metrics = dir_ / "metrics.jsonl";
  std::vector<std::string> args = {"--dataset=idx", "--data_dir=" + data_,
                                   "--model=cnn",   "--conv_channels=[4]",
                                   "--hidden=[16]", "--optimizer=adam",
                                   "--epochs=1"};
  Result train = Run(args, {"SWEEP_METRICS_FILE=" + metrics});
  ASSERT_EQ(train.exit_code, 0) << train.err;
  std::vector<std::string> lines =
      absl::StrSplit(ReadFile(metrics), '\n', absl::SkipEmpty());
  ASSERT_FALSE(lines.empty());
  Json start = Json::parse(lines[0]);
  args.insert(args.begin(), "--estimate-memory");
  Result r = Run(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The run counts the parameters of the model it built.
  EXPECT_EQ(Get(r.json, "parameters"), Get(start, "parameters"));
  EXPECT_EQ(Get(r.json, "data_bytes"), Get(start, "data_bytes"));
  EXPECT_EQ(Get(r.json, "total_bytes"),
            Get(start, "memory_estimate_bytes") + Get(start, "data_bytes"));
}

TEST_F(TrainerEstimateBinaryTest, BadParametersExit2WithNothingOnStdout) {
  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{
           {"--lr=-1"},
           {"--hidden=[0]"},
           {"--no_such_parameter=3"},
           {"--freeze=fc9", "--init_from=" + dir_ / "x.pt"},
           {"--model=cnn", "--conv_channels=[4,4,4,4,4,4]"}}) {
    Result r = Estimate(bad);
    EXPECT_EQ(r.exit_code, 2) << bad[0] << ": " << r.err;
    EXPECT_EQ(r.out, "") << bad[0];
    EXPECT_THAT(r.err, HasSubstr("parameter")) << bad[0];
  }
  Result missing = Run({"--estimate-memory", "--dataset=idx",
                        "--data_dir=" + dir_ / "nothing-here"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("not found"));
  Result from_env =
      Run({"--estimate-memory"}, {"SWEEP_PARAMS={\"batch_size\": 0}"});
  EXPECT_EQ(from_env.exit_code, 2);
  EXPECT_THAT(from_env.err, HasSubstr("batch_size"));
}

}  // namespace
}  // namespace sweep::trainer
