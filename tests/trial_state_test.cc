#include "scheduler/trial_state.h"

#include "gtest/gtest.h"

namespace sweep {
namespace {

constexpr TrialState kAll[] = {TrialState::kQueued,    TrialState::kRunning,
                               TrialState::kCompleted, TrialState::kFailed,
                               TrialState::kStopped,   TrialState::kCancelled};

TEST(TrialStateTest, EveryStateNameRoundTrips) {
  for (TrialState s : kAll) EXPECT_EQ(ParseTrialState(TrialStateName(s)), s);
  EXPECT_EQ(ParseTrialState("done"), std::nullopt);
}

TEST(TrialStateTest, OnlyTheDiagramsEdgesAreAllowed) {
  auto ok = [](TrialState a, TrialState b) { return CheckTransition(a, b).ok(); };
  EXPECT_TRUE(ok(TrialState::kQueued, TrialState::kRunning));
  EXPECT_TRUE(ok(TrialState::kQueued, TrialState::kCancelled));
  EXPECT_FALSE(ok(TrialState::kQueued, TrialState::kCompleted));
  for (TrialState to : {TrialState::kQueued, TrialState::kCompleted, TrialState::kFailed,
                        TrialState::kStopped, TrialState::kCancelled}) {
    EXPECT_TRUE(ok(TrialState::kRunning, to));
  }
  EXPECT_FALSE(ok(TrialState::kRunning, TrialState::kRunning));
}

TEST(TrialStateTest, TerminalStatesHaveNoWayOut) {
  for (TrialState from : kAll) {
    if (!IsTerminal(from)) continue;
    for (TrialState to : kAll) {
      absl::Status st = CheckTransition(from, to);
      EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
    }
  }
  EXPECT_EQ(std::string(CheckTransition(TrialState::kCompleted, TrialState::kQueued).message()),
            "a trial cannot go from completed to queued");
}

}  // namespace
}  // namespace sweep
