// sweep-train's loop: the loss, augmentation, determinism per (seed, epoch),
// and that training lowers the loss on a learnable problem.
#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing.h"
#include "tests/trainer_testdata.h"
#include "trainer/internal/loop.h"

namespace sweep::trainer::internal {
namespace {

using ::testing::ElementsAre;

TEST(TrainerLoopTest, SmoothedCrossEntropyMatchesPyTorchsDefinition) {
  torch::manual_seed(0);
  torch::Tensor logits = torch::randn({6, 4});
  torch::Tensor labels = torch::tensor({0, 1, 2, 3, 1, 0}, torch::kInt64);
  torch::Tensor plain = torch::nn::functional::cross_entropy(logits, labels);
  EXPECT_TRUE(torch::allclose(SmoothedCrossEntropy(logits, labels, 0), plain));
  // (1 - eps) * nll + eps * mean over classes of -log p.
  torch::Tensor logp = torch::log_softmax(logits, 1);
  torch::Tensor expected = 0.9 * plain + 0.1 * (-logp.mean(1)).mean();
  EXPECT_TRUE(
      torch::allclose(SmoothedCrossEntropy(logits, labels, 0.1), expected));
}

TEST(TrainerLoopTest, AugmentKeepsShapeAndFlipMirrors) {
  torch::manual_seed(0);
  torch::Tensor x = torch::randn({16, 1, 28, 28});
  EXPECT_THAT(Augment(x, true, true, 2, -1.0).sizes(),
              ElementsAre(16, 1, 28, 28));
  torch::Tensor flipped = Augment(x, false, true, 2, 0);
  int mirrored = 0;
  for (int i = 0; i < 16; ++i) {
    bool same = torch::equal(flipped[i], x[i]);
    bool mirror = torch::equal(flipped[i], x[i].flip({2}));
    EXPECT_TRUE(same || mirror) << i;
    mirrored += mirror;
  }
  EXPECT_GT(mirrored, 0);
  EXPECT_LT(mirrored, 16);
}

TEST(TrainerLoopTest, CropShiftsContentByAtMostThePadding) {
  torch::Tensor x = torch::zeros({8, 1, 28, 28});
  x.select(2, 14).select(2, 14).fill_(1.0);  // one bright pixel at (14, 14)
  torch::manual_seed(1);
  torch::Tensor y = Augment(x, true, false, 2, 0.0);
  for (int i = 0; i < 8; ++i) {
    torch::Tensor pos = y[i][0].nonzero();
    ASSERT_EQ(pos.size(0), 1) << i;
    EXPECT_LE(std::abs(pos[0][0].item<int64_t>() - 14), 2);
    EXPECT_LE(std::abs(pos[0][1].item<int64_t>() - 14), 2);
  }
}

TEST(TrainerLoopTest, EpochSeedsDifferByEpochAndBySeed) {
  EXPECT_NE(EpochSeed(0, 0), EpochSeed(0, 1));
  EXPECT_NE(EpochSeed(0, 0), EpochSeed(1, 0));
  EXPECT_EQ(EpochSeed(3, 4), EpochSeed(3, 4));
  EXPECT_EQ(StepsPerEpoch(100, 32), 4);
}

class TrainerLoopTrainingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteIdxDataset(dir_.path().string(), 300, 50, 4);
    auto d = LoadData({.dataset = "idx",
                       .data_dir = dir_.path().string(),
                       .val_fraction = 0.2});
    ASSERT_TRUE(d.ok()) << d.status();
    data_ = ToDevice(*d, torch::kCPU);
    params_.hidden = {32};
    params_.dropout = 0.2;
  }
  Model Fresh(int64_t seed) {
    torch::manual_seed(seed);
    auto m = BuildModel(params_, {1, 28, 28}, 4);
    EXPECT_TRUE(m.ok());
    return *m;
  }
  EpochOptions Options(int64_t epoch) {
    EpochOptions o;
    o.epoch = epoch;
    o.seed = 11;
    o.batch_size = 16;
    o.augment_crop = o.augment_flip = true;
    o.schedule.lr = 0.05;
    o.schedule.epochs = 3;
    o.schedule.steps_per_epoch = StepsPerEpoch(data_.train.size(), 16);
    return o;
  }
  testing::TempDir dir_;
  DeviceData data_;
  TrainerParams params_;
};

TEST_F(TrainerLoopTrainingTest, TrainingLowersLossAndRaisesAccuracy) {
  Model m = Fresh(0);
  torch::optim::SGD opt(m.net->parameters(),
                        torch::optim::SGDOptions(0.05).momentum(0.9));
  EvalResult before = Evaluate(m, data_.val, 100);
  int64_t step = 0;
  EpochOptions o0 = Options(0), o1 = Options(1);
  o0.augment_crop = o0.augment_flip = o1.augment_crop = o1.augment_flip = false;
  EpochResult first = TrainEpoch(m, opt, data_, o0, &step);
  EpochResult second = TrainEpoch(m, opt, data_, o1, &step);
  EvalResult after = Evaluate(m, data_.val, 100);
  EXPECT_EQ(step, 2 * StepsPerEpoch(240, 16));
  EXPECT_EQ(first.samples, 240);
  EXPECT_LT(second.train_loss, first.train_loss);
  EXPECT_LT(after.loss, before.loss);
  EXPECT_GT(after.accuracy, 0.9) << "the bright square gives the class away";
}

TEST_F(TrainerLoopTrainingTest,
       AnEpochIsAFunctionOfWeightsOptimizerStateAndEpochOnly) {
  Model a = Fresh(0), b = Fresh(0);
  torch::optim::SGD opt_a(a.net->parameters(), torch::optim::SGDOptions(0.05));
  torch::optim::SGD opt_b(b.net->parameters(), torch::optim::SGDOptions(0.05));
  int64_t step_a = 0, step_b = 0;
  torch::manual_seed(12345);  // whatever state torch's generator was left in
  EpochResult ra = TrainEpoch(a, opt_a, data_, Options(1), &step_a);
  torch::randn({1000});
  EpochResult rb = TrainEpoch(b, opt_b, data_, Options(1), &step_b);
  EXPECT_EQ(ra.train_loss, rb.train_loss);
  EXPECT_TRUE(torch::equal(a.net->parameters()[0], b.net->parameters()[0]));
}

TEST_F(TrainerLoopTrainingTest, StopFlagEndsTheEpochBeforeTheNextStep) {
  Model m = Fresh(0);
  torch::optim::SGD opt(m.net->parameters(), torch::optim::SGDOptions(0.05));
  std::atomic<bool> stop{true};
  EpochOptions o = Options(0);
  o.stop = &stop;
  int64_t step = 0;
  EpochResult r = TrainEpoch(m, opt, data_, o, &step);
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(step, 0);
}

}  // namespace
}  // namespace sweep::trainer::internal
