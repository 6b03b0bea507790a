// The trial state machine. Every change of a trial's state goes through
// CheckTransition(), the one place its edges are enforced.
//
//                    lease                     exit 0
//   (created) ───────────────┐          ┌──────────────▶ completed
//                            ▼          │   non-zero exit, signal,
//   queued ──── lease ───▶ running ─────┼──────────────▶ failed
//     ▲  │                   │  │       │   lost, no retries left
//     │  │ cancel            │  │       │   stopped on order
//     │  ▼                   │  │       └──────────────▶ stopped
//     │ cancelled ◀── cancel ┘  │
//     └──── lease lost or released, retries left
//
// A trial is created directly in `running` when it is first leased (sweep creates
// trials lazily, so a search method can use the results seen so far). Terminal states:
// completed, failed, stopped, cancelled. Thread-compatible (plain values).
#ifndef SWEEP_SCHEDULER_TRIAL_STATE_H_
#define SWEEP_SCHEDULER_TRIAL_STATE_H_

#include <optional>
#include <string_view>

#include "absl/status/status.h"

namespace sweep {

enum class TrialState { kQueued, kRunning, kCompleted, kFailed, kStopped, kCancelled };

// Returns the name stored in SQLite and shown to users ("queued", ...).
const char* TrialStateName(TrialState s);

// Returns the state named `name`, or nullopt.
std::optional<TrialState> ParseTrialState(std::string_view name);

// Returns true for completed, failed, stopped and cancelled.
bool IsTerminal(TrialState s);

// Returns OK when `from -> to` is an edge of the diagram above, FailedPrecondition
// naming both states otherwise.
absl::Status CheckTransition(TrialState from, TrialState to);

}  // namespace sweep

#endif  // SWEEP_SCHEDULER_TRIAL_STATE_H_
