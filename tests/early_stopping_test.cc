// EarlyStopper on scripted metric streams.
#include "scheduler/early_stopping.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Type = spec::EarlyTerminate::Type;

spec::EarlyTerminate Asha(int64_t min_iter, int64_t max_iter, double eta) {
  spec::EarlyTerminate c;
  c.type = Type::kAsha;
  c.min_iter = min_iter;
  c.max_iter = max_iter;
  c.eta = eta;
  return c;
}

TEST(EarlyStopperTest, AshaRungsGrowByEtaUpToMaxIter) {
  EXPECT_THAT(EarlyStopper(Asha(1, 9, 3), false).rungs(), ElementsAre(1, 3, 9));
  EXPECT_THAT(EarlyStopper(Asha(2, 20, 2), false).rungs(), ElementsAre(2, 4, 8, 16));
}

TEST(EarlyStopperTest, HyperbandUsesWandbBands) {
  spec::EarlyTerminate c;
  c.type = Type::kHyperband;
  c.max_iter = 27;
  c.s = 2;
  c.eta = 3;
  EXPECT_THAT(EarlyStopper(c, false).rungs(), ElementsAre(3, 9));
  spec::EarlyTerminate m;
  m.type = Type::kHyperband;
  m.min_iter = 3;
  m.eta = 2;
  m.max_iter = 30;
  EXPECT_THAT(EarlyStopper(m, false).rungs(), ElementsAre(3, 6, 12, 24));
}

TEST(EarlyStopperTest, AshaKeepsOnlyTrialsInTheTopThirdOfThoseBeforeThem) {
  EarlyStopper s(Asha(1, 9, 3), /*maximize=*/false);
  EXPECT_FALSE(s.Report("a", 1, 0.5).stop);  // first at the rung
  EarlyStopper::Decision b = s.Report("b", 1, 0.6);
  EXPECT_TRUE(b.stop);
  EXPECT_EQ(b.step, 1);
  EXPECT_EQ(b.reason,
            "early stopped at rung 1 (step 1): 0.6 is not in the top 1/3 of the 1 trials "
            "that reached it before (cutoff 0.5)");
  EXPECT_FALSE(s.Report("c", 1, 0.4).stop);   // cutoff 0.533
  EXPECT_TRUE(s.Report("d", 1, 0.55).stop);   // cutoff 0.467
  // Steps between rungs decide nothing.
  EXPECT_FALSE(s.Report("a", 2, 0.9).stop);
  EXPECT_FALSE(s.Report("a", 3, 0.3).stop);   // first at rung 2
}

TEST(EarlyStopperTest, AshaJudgesALateTrialAtEveryRungItPassesInOneReport) {
  EarlyStopper s(Asha(1, 9, 3), false);
  s.Report("a", 1, 0.5);
  s.Report("b", 1, 0.6);
  s.Report("c", 1, 0.4);
  s.Report("a", 3, 0.3);
  // "e" reports first at step 3: rung 1 (cutoff 0.467 of 0.5, 0.6, 0.4) lets 0.45
  // through, rung 2 (cutoff 0.3) stops it.
  EarlyStopper::Decision e = s.Report("e", 3, 0.45);
  EXPECT_TRUE(e.stop);
  EXPECT_EQ(e.step, 3);
  EXPECT_THAT(e.reason, HasSubstr("rung 2 (step 3)"));
}

TEST(EarlyStopperTest, AshaMaximizingKeepsTheLargest) {
  EarlyStopper s(Asha(1, 9, 2), /*maximize=*/true);
  EXPECT_FALSE(s.Report("a", 1, 0.80).stop);
  EXPECT_TRUE(s.Report("b", 1, 0.70).stop);
  EXPECT_FALSE(s.Report("c", 1, 0.90).stop);
}

TEST(EarlyStopperTest, StoppedTrialIsToldAgainWithTheSameReason) {
  EarlyStopper s(Asha(1, 9, 3), false);
  s.Report("a", 1, 0.5);
  EarlyStopper::Decision first = s.Report("b", 1, 0.6);
  EarlyStopper::Decision again = s.Report("b", 2, 0.1);
  EXPECT_TRUE(again.stop);
  EXPECT_EQ(again.reason, first.reason);
}

TEST(EarlyStopperTest, MedianRuleStopsTrialsWorseThanTheMedianOfRunningMeans) {
  spec::EarlyTerminate c;
  c.type = Type::kMedian;
  c.min_iter = 2;
  c.min_trials = 2;
  EarlyStopper s(c, /*maximize=*/false);
  for (auto [step, v] : {std::pair{1, 1.0}, {2, 0.8}, {3, 0.6}, {4, 0.4}}) {
    EXPECT_FALSE(s.Report("a", step, v).stop);
  }
  EXPECT_FALSE(s.Report("b", 1, 1.0).stop);
  EXPECT_FALSE(s.Report("b", 2, 0.9).stop);  // only one other trial reached step 2
  EXPECT_FALSE(s.Report("c", 1, 2.0).stop);  // before min_iter
  // Running means at step 2: a 0.9, b 0.95; median 0.925.
  EarlyStopper::Decision d = s.Report("c", 2, 1.9);
  EXPECT_TRUE(d.stop);
  EXPECT_EQ(d.reason,
            "early stopped at step 2: best value 1.9 is worse than the median 0.925 of the "
            "running means of 2 other trials");
  EXPECT_FALSE(s.Report("d", 2, 0.5).stop);
}

TEST(EarlyStopperTest, NoEarlyTerminationNeverStops) {
  EarlyStopper s(spec::EarlyTerminate{}, false);
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(s.Report("t" + std::to_string(i), 5, i).stop);
}

}  // namespace
}  // namespace sweep
