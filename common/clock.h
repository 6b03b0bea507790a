// Clock: the one source of "now" for the scheduler and the worker.
//
// Injected everywhere time matters (leases, heartbeats, timestamps) so tests can
// advance a FakeClock instead of sleeping. Thread-safe: both implementations may be
// called from any thread.
#ifndef SWEEP_COMMON_CLOCK_H_
#define SWEEP_COMMON_CLOCK_H_

#include <atomic>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace sweep {

class Clock {
 public:
  virtual ~Clock() = default;
  // Returns the current wall-clock time.
  virtual absl::Time Now() const = 0;
};

// The real wall clock.
class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  // Returns a process-wide instance; never null.
  static SystemClock* Get() {
    static SystemClock clock;
    return &clock;
  }
};

// A clock that moves only when told to. Starts at a fixed, arbitrary instant.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000))
      : nanos_(absl::ToUnixNanos(start)) {}
  absl::Time Now() const override { return absl::FromUnixNanos(nanos_.load()); }
  void Advance(absl::Duration d) { nanos_ += absl::ToInt64Nanoseconds(d); }

 private:
  std::atomic<int64_t> nanos_;
};

// Seconds since the Unix epoch as a double, the unit stored in SQLite.
inline double ToUnixSecondsDouble(absl::Time t) {
  return absl::ToDoubleSeconds(t - absl::UnixEpoch());
}

}  // namespace sweep

#endif  // SWEEP_COMMON_CLOCK_H_
