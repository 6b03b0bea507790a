// Lifecycle: how far a worker process is from stopping, shared by its slots and
// moved forward by signals.
//
//   kRunning --signal--> kDraining --signal--> kStopNow
//
// Draining: no new trials; running ones may finish for --drain-timeout, then go back
// to the queue. Stop now: running trials are stopped and given back at once. The
// phase only moves forward (Advance() is the one edge).
//
// Thread-safe. Sleep() waits on the injected clock, so a test with a FakeClock
// releases it by advancing the clock.
#ifndef SWEEP_WORKER_LIFECYCLE_H_
#define SWEEP_WORKER_LIFECYCLE_H_

#include <atomic>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace sweep {

enum Phase { kRunning = 0, kDraining = 1, kStopNow = 2 };

class Lifecycle {
 public:
  // `clock` (not owned) must outlive the lifecycle.
  explicit Lifecycle(Clock* clock) : clock_(clock) {}

  Phase phase() const { return static_cast<Phase>(phase_.load()); }
  // Moves to the next phase (none after kStopNow) and wakes every Sleep().
  void Advance() {
    absl::MutexLock lock(&mu_);
    if (phase_ < kStopNow) ++phase_;
  }
  // Sleeps for `d` of the clock or until the phase changes. Returns the phase.
  Phase Sleep(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    const int start = phase_;
    auto changed = [this, start] { return phase_.load() != start; };
    clock_->AwaitWithDeadline(&mu_, absl::Condition(&changed), clock_->Now() + d);
    return phase();
  }

 private:
  Clock* const clock_;
  std::atomic<int> phase_{kRunning};
  absl::Mutex mu_;  // Sleep() sees Advance() when it releases mu_
};

}  // namespace sweep

#endif  // SWEEP_WORKER_LIFECYCLE_H_
