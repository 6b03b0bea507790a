// Learning-rate schedules: warm-up, constant, step and cosine, by global step.
#include "gtest/gtest.h"
#include "trainer/schedule.h"

namespace sweep::trainer {
namespace {

ScheduleOptions Options(const std::string& kind, double warmup = 0) {
  ScheduleOptions o;
  o.kind = kind;
  o.lr = 0.1;
  o.warmup_epochs = warmup;
  o.step_epochs = 2;
  o.step_gamma = 0.5;
  o.epochs = 6;
  o.steps_per_epoch = 10;
  return o;
}

TEST(TrainerScheduleTest, ConstantKeepsThePeakRate) {
  for (int64_t s : {0, 13, 59})
    EXPECT_DOUBLE_EQ(LearningRate(Options("constant"), s), 0.1);
}

TEST(TrainerScheduleTest, WarmupRisesLinearlyToThePeakAtItsLastStep) {
  ScheduleOptions o = Options("constant", /*warmup=*/1);
  EXPECT_DOUBLE_EQ(LearningRate(o, 0), 0.01);
  EXPECT_DOUBLE_EQ(LearningRate(o, 4), 0.05);
  EXPECT_DOUBLE_EQ(LearningRate(o, 9), 0.1);
  EXPECT_DOUBLE_EQ(LearningRate(o, 10), 0.1);
}

TEST(TrainerScheduleTest, StepDecaysAtEveryStepEpochsBoundary) {
  ScheduleOptions o = Options("step");
  EXPECT_DOUBLE_EQ(LearningRate(o, 19), 0.1);
  EXPECT_DOUBLE_EQ(LearningRate(o, 20), 0.05);
  EXPECT_DOUBLE_EQ(LearningRate(o, 39), 0.05);
  EXPECT_DOUBLE_EQ(LearningRate(o, 40), 0.025);
}

TEST(TrainerScheduleTest,
     CosineStartsAtThePeakAfterWarmupHalvesMidwayAndEndsNearZero) {
  ScheduleOptions o = Options("cosine", /*warmup=*/1);
  EXPECT_DOUBLE_EQ(LearningRate(o, 10), 0.1);
  EXPECT_NEAR(LearningRate(o, 35), 0.05, 1e-12);
  EXPECT_LT(LearningRate(o, 59), 0.001);
  EXPECT_GT(LearningRate(o, 59), 0);
  EXPECT_LT(LearningRate(o, 30), LearningRate(o, 20));
}

TEST(TrainerScheduleTest, StepsPastTheEndKeepTheLastRate) {
  ScheduleOptions o = Options("cosine");
  EXPECT_DOUBLE_EQ(LearningRate(o, 1000), LearningRate(o, 59));
  EXPECT_DOUBLE_EQ(LearningRate(o, -5), LearningRate(o, 0));
}

}  // namespace
}  // namespace sweep::trainer
