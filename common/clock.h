// Clock: the one source of "now", and of waiting for a time, for the scheduler and
// the worker.
//
// Injected everywhere time matters (leases, heartbeats, drain and retry deadlines,
// timestamps) so tests can advance a FakeClock instead of sleeping: a thread that
// waits on a FakeClock (SleepFor, AwaitWithDeadline) wakes when the test advances
// the clock past its deadline, or when its condition comes true.
// Thread-safe: both implementations may be called from any thread.
#ifndef SWEEP_COMMON_CLOCK_H_
#define SWEEP_COMMON_CLOCK_H_

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace sweep {

class Clock {
 public:
  virtual ~Clock() = default;
  // Returns the current wall-clock time.
  virtual absl::Time Now() const = 0;

  // As absl::Mutex::AwaitWithDeadline, on this clock: with `*mu` held, waits until
  // `cond` holds (it is evaluated with `*mu` held) or until Now() reaches
  // `deadline`. Returns whether `cond` holds on return; `*mu` is held again then.
  virtual bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                                 absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) = 0;

  // Returns once Now() has reached `deadline` (at once when it has).
  void SleepUntil(absl::Time deadline) {
    static const bool kNever = false;
    absl::Mutex mu;
    absl::MutexLock lock(&mu);
    AwaitWithDeadline(&mu, absl::Condition(&kNever), deadline);
  }
  // Returns once `d` has passed on this clock.
  void SleepFor(absl::Duration d) { SleepUntil(Now() + d); }
};

// The real wall clock.
class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) override {
    return mu->AwaitWithDeadline(cond, deadline);
  }
  // Returns a process-wide instance; never null.
  static SystemClock* Get() {
    static SystemClock clock;
    return &clock;
  }
};

// A clock that moves only when told to. Starts at a fixed, arbitrary instant.
// A thread waiting on it wakes when Advance() reaches its deadline or its condition
// comes true; AwaitWaiters() lets a test see that a thread is waiting before it
// advances the clock (so the wait's deadline is counted from before the advance).
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000))
      : nanos_(absl::ToUnixNanos(start)) {}
  absl::Time Now() const override { return absl::FromUnixNanos(nanos_.load()); }
  void Advance(absl::Duration d) { nanos_ += absl::ToInt64Nanoseconds(d); }

  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) override {
    AddWaiter(+1);
    auto done = [&] { return cond.Eval() || Now() >= deadline; };
    // Advance() does not know the waiters' mutexes, so each waiter looks at the
    // clock again every millisecond of real time (its condition is seen at once,
    // as with any absl::Mutex::Await, whenever `*mu` is released).
    while (!mu->AwaitWithTimeout(absl::Condition(&done), absl::Milliseconds(1))) {
    }
    AddWaiter(-1);
    return cond.Eval();
  }

  // How many threads wait on this clock now.
  int waiters() const {
    absl::MutexLock lock(&waiters_mu_);
    return waiters_;
  }
  // Waits (in real time, at most `timeout`) until at least `n` threads wait on this
  // clock. Returns whether they do.
  bool AwaitWaiters(int n, absl::Duration timeout = absl::Seconds(30)) const {
    absl::MutexLock lock(&waiters_mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(waiters_mu_) {
      return waiters_ >= n;
    };
    return waiters_mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }

 private:
  void AddWaiter(int delta) {
    absl::MutexLock lock(&waiters_mu_);
    waiters_ += delta;
  }

  std::atomic<int64_t> nanos_;
  mutable absl::Mutex waiters_mu_;
  int waiters_ ABSL_GUARDED_BY(waiters_mu_) = 0;
};

// Seconds since the Unix epoch as a double, the unit stored in SQLite.
inline double ToUnixSecondsDouble(absl::Time t) {
  return absl::ToDoubleSeconds(t - absl::UnixEpoch());
}

}  // namespace sweep

#endif  // SWEEP_COMMON_CLOCK_H_
