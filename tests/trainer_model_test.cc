// sweep-train's models: layer names, parameter counts, output shapes, the
// memory estimate, and freezing.
#include <torch/types.h>
#include <torch/utils.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "trainer/internal/model.h"

namespace sweep::trainer::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TrainerParams Mlp(std::vector<int64_t> hidden) {
  TrainerParams p;
  p.hidden = std::move(hidden);
  return p;
}

TrainerParams Cnn() {
  TrainerParams p;
  p.model = "cnn";
  p.conv_channels = {8, 16};
  p.hidden = {32};
  p.batch_norm = true;
  p.dropout = 0.1;
  return p;
}

TEST(TrainerModelTest, MlpHasNamedLayersAndTheExactParameterCount) {
  auto m = BuildModel(Mlp({256, 128}), {1, 28, 28}, 10);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->parameters, 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
  EXPECT_THAT(m->weight_layers, ElementsAre("fc1", "fc2", "out"));
  torch::Tensor y = m->net->forward(torch::randn({5, 1, 28, 28}));
  EXPECT_THAT(y.sizes(), ElementsAre(5, 10));
}

TEST(TrainerModelTest, MlpOnCsvFeaturesTakesFlatRows) {
  auto m = BuildModel(Mlp({16}), {3}, 2);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->parameters, 3 * 16 + 16 + 16 * 2 + 2);
  EXPECT_THAT(m->net->forward(torch::randn({4, 3})).sizes(), ElementsAre(4, 2));
}

TEST(TrainerModelTest, CnnBlocksKeepSizeThenPoolAndFeedTheFullyConnectedHead) {
  auto m = BuildModel(Cnn(), {1, 28, 28}, 10);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(m->weight_layers, ElementsAre("conv1", "convbn1", "conv2",
                                            "convbn2", "fc1", "bn1", "out"));
  // conv without bias (batch norm follows): 8*1*9, bn 2*8; 16*8*9, bn 2*16;
  // fc1 after two poolings: 16*7*7 -> 32 without bias, bn 2*32; out 32*10+10.
  EXPECT_EQ(m->parameters, 72 + 16 + 1152 + 32 + 784 * 32 + 64 + 330);
  m->SetTraining(false);
  EXPECT_THAT(m->net->forward(torch::randn({3, 1, 28, 28})).sizes(),
              ElementsAre(3, 10));
}

TEST(TrainerModelTest, CnnOnFlatFeaturesIsInvalidArgument) {
  TrainerParams p = Cnn();
  EXPECT_EQ(BuildModel(p, {20}, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TrainerModelTest, SameSeedBuildsTheSameWeights) {
  torch::manual_seed(7);
  auto a = BuildModel(Mlp({32}), {1, 28, 28}, 10);
  torch::manual_seed(7);
  auto b = BuildModel(Mlp({32}), {1, 28, 28}, 10);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(torch::equal(a->net->parameters()[0], b->net->parameters()[0]));
}

// What estimate.h's memory estimate is built on.
TEST(TrainerModelTest, CountsParametersAndActivationsPerSample) {
  auto m = BuildModel(Mlp({100}), {10}, 5);
  ASSERT_TRUE(m.ok());
  int64_t params = 10 * 100 + 100 + 100 * 5 + 5;
  int64_t acts = 100 + 100 + 5;  // fc1, act1, out
  EXPECT_EQ(m->parameters, params);
  EXPECT_EQ(m->activations_per_sample, acts);
}

TEST(TrainerModelTest, FreezeBackboneLeavesOnlyTheOutputLayerTrainable) {
  auto m = BuildModel(Cnn(), {1, 28, 28}, 10);
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(Freeze(&*m, {"backbone"}).ok());
  for (const auto& item : m->net->named_parameters()) {
    EXPECT_EQ(item.value().requires_grad(), item.key().rfind("out.", 0) == 0)
        << item.key();
  }
  // Frozen batch norm keeps its statistics while the rest trains.
  m->SetTraining(true);
  for (const auto& item : m->net->named_children()) {
    if (item.key() == "convbn1") {
      EXPECT_FALSE(item.value()->is_training());
    }
    if (item.key() == "out") {
      EXPECT_TRUE(item.value()->is_training());
    }
  }
}

TEST(TrainerModelTest, FreezeOfAnUnknownLayerListsTheLayers) {
  auto m = BuildModel(Mlp({8}), {4}, 2);
  ASSERT_TRUE(m.ok());
  absl::Status st = Freeze(&*m, {"conv1"});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(),
              HasSubstr("no layer with weights named conv1; layers: fc1, out"));
}

}  // namespace
}  // namespace sweep::trainer::internal
