// sweep-train's checkpoints: a round trip restores weights and optimizer state
// exactly, writes are atomic, and mismatched or corrupt files are clear errors.
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing.h"
#include "trainer/internal/checkpoint.h"

namespace sweep::trainer::internal {
namespace {

using ::sweep::testing::TempDir;
using ::testing::HasSubstr;

Model Build(std::vector<int64_t> hidden, bool batch_norm = false) {
  TrainerParams p;
  p.hidden = std::move(hidden);
  p.batch_norm = batch_norm;
  auto m = BuildModel(p, {6}, 3);
  EXPECT_TRUE(m.ok()) << m.status();
  return *m;
}

void TrainSteps(Model& m, torch::optim::Optimizer& opt, int steps) {
  m.SetTraining(true);
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    torch::Tensor loss = m.net->forward(torch::randn({8, 6})).pow(2).mean();
    loss.backward();
    opt.step();
  }
}

CheckpointState State(int64_t epoch) {
  CheckpointState s;
  s.epoch = epoch;
  return s;
}

std::vector<torch::Tensor> Params(const Model& m) {
  std::vector<torch::Tensor> out;
  for (const auto& t : m.net->parameters()) out.push_back(t.detach().clone());
  for (const auto& t : m.net->buffers()) out.push_back(t.detach().clone());
  return out;
}

TEST(TrainerCheckpointTest, RoundTripRestoresWeightsOptimizerStateAndPosition) {
  TempDir dir;
  std::string path = dir / "last.pt";
  torch::manual_seed(1);
  Model a = Build({16}, /*batch_norm=*/true);
  torch::optim::Adam opt_a(a.net->parameters(),
                           torch::optim::AdamOptions(0.01));
  TrainSteps(a, opt_a, 3);
  ASSERT_TRUE(
      SaveCheckpoint(path, a, opt_a,
                     {.epoch = 2, .global_step = 3, .params_json = "{}"})
          .ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  torch::manual_seed(2);  // different initial weights
  Model b = Build({16}, /*batch_norm=*/true);
  torch::optim::Adam opt_b(b.net->parameters(),
                           torch::optim::AdamOptions(0.01));
  auto state = LoadCheckpoint(path, b, opt_b);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->epoch, 2);
  EXPECT_EQ(state->global_step, 3);
  auto pa = Params(a), pb = Params(b);
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i)
    EXPECT_TRUE(torch::equal(pa[i], pb[i])) << i;

  // The same further steps from both give the same weights: optimizer state
  // came along.
  torch::manual_seed(3);
  TrainSteps(a, opt_a, 2);
  torch::manual_seed(3);
  TrainSteps(b, opt_b, 2);
  pa = Params(a);
  pb = Params(b);
  for (size_t i = 0; i < pa.size(); ++i)
    EXPECT_TRUE(torch::equal(pa[i], pb[i])) << i;
}

TEST(TrainerCheckpointTest, SgdMomentumBuffersSurviveTheRoundTrip) {
  TempDir dir;
  std::string path = dir / "last.pt";
  Model a = Build({8});
  torch::optim::SGD opt_a(a.net->parameters(),
                          torch::optim::SGDOptions(0.1).momentum(0.9));
  TrainSteps(a, opt_a, 2);
  ASSERT_TRUE(SaveCheckpoint(path, a, opt_a, State(1)).ok());
  Model b = Build({8});
  torch::optim::SGD opt_b(b.net->parameters(),
                          torch::optim::SGDOptions(0.1).momentum(0.9));
  ASSERT_TRUE(LoadCheckpoint(path, b, opt_b).ok());
  torch::manual_seed(5);
  TrainSteps(a, opt_a, 1);
  torch::manual_seed(5);
  TrainSteps(b, opt_b, 1);
  EXPECT_TRUE(torch::equal(a.net->parameters()[0], b.net->parameters()[0]));
}

TEST(TrainerCheckpointTest, ShapeMismatchNamesTheTensorAndBothShapes) {
  TempDir dir;
  std::string path = dir / "last.pt";
  Model a = Build({16});
  torch::optim::SGD opt_a(a.net->parameters(), torch::optim::SGDOptions(0.1));
  ASSERT_TRUE(SaveCheckpoint(path, a, opt_a, {}).ok());
  Model b = Build({32});
  std::vector<torch::Tensor> before = Params(b);
  absl::Status st = LoadWeights(path, b);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(),
              HasSubstr("fc1.weight has shape [16, 6] there but [32, 6] here"));
  EXPECT_TRUE(torch::equal(before[0], Params(b)[0]))
      << "nothing copied from a mismatched file";
}

TEST(TrainerCheckpointTest, ExtraOrMissingLayersAreFailedPrecondition) {
  TempDir dir;
  Model deep = Build({8, 8});
  torch::optim::SGD opt_deep(deep.net->parameters(),
                             torch::optim::SGDOptions(0.1));
  ASSERT_TRUE(SaveCheckpoint(dir / "deep.pt", deep, opt_deep, {}).ok());
  Model shallow = Build({8});
  torch::optim::SGD opt_shallow(shallow.net->parameters(),
                                torch::optim::SGDOptions(0.1));
  ASSERT_TRUE(
      SaveCheckpoint(dir / "shallow.pt", shallow, opt_shallow, {}).ok());

  absl::Status extra = LoadWeights(dir / "deep.pt", shallow);
  EXPECT_EQ(extra.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(extra.message(),
              HasSubstr("it has fc2.weight, which this model does not"));
  absl::Status missing = LoadWeights(dir / "shallow.pt", deep);
  EXPECT_EQ(missing.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(missing.message(),
              HasSubstr("it has no fc2.weight (shape [8, 8] here)"));
  auto resumed = LoadCheckpoint(dir / "shallow.pt", deep, opt_deep);
  EXPECT_EQ(resumed.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(TrainerCheckpointTest, InitFromADirectoryReadsItsLastCheckpoint) {
  TempDir dir;
  Model a = Build({8});
  torch::optim::SGD opt(a.net->parameters(), torch::optim::SGDOptions(0.1));
  ASSERT_TRUE(SaveCheckpoint(dir / "last.pt", a, opt, State(4)).ok());
  Model b = Build({8});
  ASSERT_TRUE(LoadWeights(dir.path().string(), b).ok());
  EXPECT_TRUE(torch::equal(a.net->parameters()[0], b.net->parameters()[0]));
}

TEST(TrainerCheckpointTest, MissingAndCorruptFilesAreNotFoundAndDataLoss) {
  TempDir dir;
  Model m = Build({8});
  absl::Status missing = LoadWeights(dir / "nope.pt", m);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("parameter init_from: checkpoint"));
  testing::WriteFile(dir / "junk.pt", "this is not a zip archive");
  absl::Status junk = LoadWeights(dir / "junk.pt", m);
  EXPECT_EQ(junk.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(junk.message(), HasSubstr("is not readable"));
}

}  // namespace
}  // namespace sweep::trainer::internal
