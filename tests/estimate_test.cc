#include "scheduler/estimate.h"

#include "gtest/gtest.h"

namespace sweep {
namespace {

TEST(EstimateTest, NothingToGoByBeforeAnyTrialEndsOrReportsProgress) {
  EstimateInput in;
  in.unstarted = 10;
  in.running = {{.elapsed = 30, .gpus = 1}};
  Estimate e = EstimateSweep(in);
  EXPECT_FALSE(e.known);
  EXPECT_DOUBLE_EQ(e.gpu_hours_so_far, 30.0 / 3600);
}

TEST(EstimateTest, RunningTrialsProgressGivesAnEarlyEstimate) {
  EstimateInput in;
  in.unstarted = 6;
  in.slots = 2;
  // 2 of 10 epochs in 60 s: a trial takes about 300 s.
  in.running = {{.elapsed = 60, .gpus = 1, .last_step = 2, .total_steps = 10},
                {.elapsed = 60, .gpus = 1, .last_step = 2, .total_steps = 10}};
  in.gpus_per_trial = 1;
  Estimate e = EstimateSweep(in);
  ASSERT_TRUE(e.known);
  EXPECT_EQ(e.basis, "progress of 2 running trials");
  // (2 * 240 + 6 * 300) / 2 slots.
  EXPECT_DOUBLE_EQ(e.seconds_left, 1140);
  EXPECT_LT(e.seconds_left_low, e.seconds_left);
  EXPECT_GT(e.seconds_left_high, e.seconds_left);
  EXPECT_DOUBLE_EQ(e.gpu_hours_total, (120 + 480 + 1800) / 3600.0);
}

TEST(EstimateTest, EndedTrialsSetTheMeanAndTheRangeNarrowsAsMoreEnd) {
  auto run = [](int n) {
    EstimateInput in;
    for (int i = 0; i < n; ++i) in.ended.Add(i % 2 ? 90 : 110, 1);
    in.unstarted = 20;
    in.slots = 4;
    in.gpus_per_trial = 1;
    in.cost = spec::Cost{.gpu_hour = 3.6, .kwh = 0, .currency = "EUR"};
    return EstimateSweep(in);
  };
  Estimate few = run(4), many = run(40);
  EXPECT_DOUBLE_EQ(few.seconds_left, 20 * 100 / 4.0);
  EXPECT_DOUBLE_EQ(many.seconds_left, 20 * 100 / 4.0);
  EXPECT_LT(many.seconds_left_high - many.seconds_left_low,
            few.seconds_left_high - few.seconds_left_low);
  EXPECT_EQ(many.basis, "40 ended trials");
  // 40 * 100 s so far + 20 * 100 s to go = 6000 s = 1.667 GPU-hours at 3.6 EUR.
  EXPECT_NEAR(many.gpu_hours_total, 6000 / 3600.0, 1e-9);
  ASSERT_TRUE(many.money_total);
  EXPECT_NEAR(*many.money_total, 6.0, 1e-9);
}

TEST(EstimateTest, FinishIsNoSoonerThanTheLongestRunningTrial) {
  EstimateInput in;
  in.ended.Add(100, 0);
  in.running = {{.elapsed = 10}};
  in.slots = 8;
  Estimate e = EstimateSweep(in);
  EXPECT_DOUBLE_EQ(e.seconds_left, 90);
}

TEST(EstimateTest, UnboundedSweepHasNoFinish) {
  EstimateInput in;
  in.ended.Add(100, 1);
  in.unbounded = true;
  Estimate e = EstimateSweep(in);
  EXPECT_FALSE(e.known);
  EXPECT_EQ(e.basis, "1 ended trial; unbounded sweep: no finish time");
}

TEST(EstimateTest, ExpectedStepsComeFromEpochsOrMaxIter) {
  spec::SweepSpec s;
  EXPECT_EQ(ExpectedSteps(s, R"({"epochs": 12, "lr": 0.1})"), 12);
  EXPECT_EQ(ExpectedSteps(s, R"({"lr": 0.1})"), std::nullopt);
  s.early_stop.max_iter = 27;
  EXPECT_EQ(ExpectedSteps(s, R"({"lr": 0.1})"), 27);
}

// ---- energy ----------------------------------------------------------------------

TEST(EstimateTest, EnergyIsWhatWasMeasuredPlusTheMeanForWhatIsLeftAndCostsPerKwh) {
  EstimateInput in;
  in.ended.Add(100, 1);
  in.ended.Add(100, 1);
  in.energy.Add(3.6e6 * 0.2);  // 0.2 kWh each
  in.energy.Add(3.6e6 * 0.2);
  in.running = {{.elapsed = 50, .gpus = 1, .energy_joules = 3.6e6 * 0.1}};
  in.unstarted = 3;
  in.slots = 1;
  in.gpus_per_trial = 1;
  in.cost = spec::Cost{.gpu_hour = 0, .kwh = 2, .currency = "EUR"};
  Estimate e = EstimateSweep(in);
  EXPECT_NEAR(e.energy_kwh_so_far, 0.5, 1e-9);
  // 3 trials to run at 0.2 kWh, and half of one for the running trial.
  EXPECT_NEAR(e.energy_kwh_total, 0.5 + 0.6 + 0.1, 1e-9);
  ASSERT_TRUE(e.money_total);
  EXPECT_NEAR(*e.money_total, 2 * 1.2, 1e-9);
}

TEST(EstimateTest, SharedGpusCountAShareOfAGpuHour) {
  EstimateInput in;
  in.ended.Add(3600, 0.25);  // a trial of trials_per_gpu: 4
  Estimate e = EstimateSweep(in);
  EXPECT_NEAR(e.gpu_hours_so_far, 0.25, 1e-9);
}
}  // namespace
}  // namespace sweep
