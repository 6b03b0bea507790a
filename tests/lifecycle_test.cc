// Lifecycle (worker/lifecycle.h) and the waits of the clock it sleeps on
// (common/clock.h), with a FakeClock: nothing here sleeps in real time.
#include "worker/lifecycle.h"

#include <thread>

#include "common/clock.h"
#include "gtest/gtest.h"

namespace sweep {
namespace {

TEST(LifecycleTest, SignalsMoveItFromRunningToDrainingToStopNowAndNoFurther) {
  FakeClock clock;
  Lifecycle life(&clock);
  EXPECT_EQ(life.phase(), kRunning);
  life.Advance();
  EXPECT_EQ(life.phase(), kDraining);
  life.Advance();
  EXPECT_EQ(life.phase(), kStopNow);
  life.Advance();
  EXPECT_EQ(life.phase(), kStopNow);
}

TEST(LifecycleTest, SleepEndsWhenTheFakeClockReachesItsEnd) {
  FakeClock clock;
  Lifecycle life(&clock);
  Phase woke_in = kStopNow;
  std::thread sleeper([&] { woke_in = life.Sleep(absl::Seconds(5)); });
  ASSERT_TRUE(clock.AwaitWaiters(1));
  clock.Advance(absl::Seconds(4));
  EXPECT_EQ(clock.waiters(), 1) << "still asleep before its end (a second of it is left)";
  clock.Advance(absl::Seconds(1));
  sleeper.join();
  EXPECT_EQ(woke_in, kRunning);
  EXPECT_EQ(clock.waiters(), 0);
}

TEST(LifecycleTest, SleepEndsWhenThePhaseChanges) {
  FakeClock clock;
  Lifecycle life(&clock);
  Phase woke_in = kRunning;
  std::thread sleeper([&] { woke_in = life.Sleep(absl::Hours(1)); });
  ASSERT_TRUE(clock.AwaitWaiters(1));
  life.Advance();
  sleeper.join();
  EXPECT_EQ(woke_in, kDraining);
}

TEST(LifecycleTest, SleepOnTheSystemClockReturnsAtOnceForNoTime) {
  Lifecycle life(SystemClock::Get());
  EXPECT_EQ(life.Sleep(absl::ZeroDuration()), kRunning);
}

}  // namespace
}  // namespace sweep
