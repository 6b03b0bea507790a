// Tests of common/ids.h: the forms of sweep, trial and worker ids.
#include "common/ids.h"

#include <set>
#include <string>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace sweep {
namespace {

bool IsLowerHex(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

TEST(IdsTest, ASweepIdIsEightLowercaseHexDigits) {
  absl::BitGen gen;
  for (int i = 0; i < 100; ++i) {
    const std::string id = NewSweepId(gen);
    EXPECT_EQ(id.size(), 8u) << id;
    EXPECT_TRUE(IsLowerHex(id)) << id;
  }
}

TEST(IdsTest, IdsAreDrawnFromTheGivenGenerator) {
  absl::InsecureBitGen a(std::seed_seq{7}), b(std::seed_seq{7});
  EXPECT_EQ(NewSweepId(a), NewSweepId(b));
  EXPECT_EQ(NewWorkerId(a, "node1", "gpu0"), NewWorkerId(b, "node1", "gpu0"));
}

TEST(IdsTest, ATrialIdIsItsSweepIdAndItsIndexPaddedToFourDigits) {
  EXPECT_EQ(TrialId("3f9a2c1b", 7), "3f9a2c1b-0007");
  EXPECT_EQ(TrialId("3f9a2c1b", 0), "3f9a2c1b-0000");
  EXPECT_EQ(TrialId("3f9a2c1b", 12345), "3f9a2c1b-12345");  // wider, never cut
  // Trial ids of one sweep sort in creation order up to 10,000 trials.
  EXPECT_LT(TrialId("3f9a2c1b", 9), TrialId("3f9a2c1b", 10));
  EXPECT_LT(TrialId("3f9a2c1b", 999), TrialId("3f9a2c1b", 1000));
}

TEST(IdsTest, ATrialIdNamesItsSweep) {
  EXPECT_EQ(SweepIdOfTrial(TrialId("3f9a2c1b", 7)), "3f9a2c1b");
  EXPECT_EQ(SweepIdOfTrial("3f9a2c1b-0007"), "3f9a2c1b");
  EXPECT_EQ(SweepIdOfTrial("3f9a2c1b"), "");  // a sweep id, not a trial id
  EXPECT_EQ(SweepIdOfTrial("-0007"), "");
  EXPECT_EQ(SweepIdOfTrial(""), "");
}

TEST(IdsTest, AWorkerIdIsHostSlotAndSixtyFourRandomBits) {
  absl::BitGen gen;
  const std::string id = NewWorkerId(gen, "node1", "gpu0");
  ASSERT_TRUE(absl::StartsWith(id, "node1/gpu0-")) << id;
  const std::string bits = id.substr(std::string("node1/gpu0-").size());
  EXPECT_EQ(bits.size(), 16u) << id;
  EXPECT_TRUE(IsLowerHex(bits)) << id;
}

TEST(IdsTest, WorkerIdsOfOneHostDoNotCollideByChance) {
  // 16 random bits collided about 60 times in 3,000; 64 bits must not once.
  absl::BitGen gen;
  std::set<std::string> ids;
  for (int i = 0; i < 3000; ++i) ids.insert(NewWorkerId(gen, "node1", "cpu0"));
  EXPECT_EQ(ids.size(), 3000u);
}

}  // namespace
}  // namespace sweep
