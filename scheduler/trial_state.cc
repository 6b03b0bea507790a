#include "scheduler/trial_state.h"

#include "absl/strings/str_cat.h"

namespace sweep {

const char* TrialStateName(TrialState s) {
  switch (s) {
    case TrialState::kQueued: return "queued";
    case TrialState::kRunning: return "running";
    case TrialState::kCompleted: return "completed";
    case TrialState::kFailed: return "failed";
    case TrialState::kStopped: return "stopped";
    case TrialState::kCancelled: return "cancelled";
  }
  return "unknown";
}

std::optional<TrialState> ParseTrialState(std::string_view name) {
  for (TrialState s : {TrialState::kQueued, TrialState::kRunning, TrialState::kCompleted,
                       TrialState::kFailed, TrialState::kStopped, TrialState::kCancelled}) {
    if (TrialStateName(s) == name) return s;
  }
  return std::nullopt;
}

bool IsTerminal(TrialState s) {
  return s != TrialState::kQueued && s != TrialState::kRunning;
}

absl::Status CheckTransition(TrialState from, TrialState to) {
  bool ok = false;
  switch (from) {
    case TrialState::kQueued:
      ok = to == TrialState::kRunning || to == TrialState::kCancelled;
      break;
    case TrialState::kRunning:
      ok = to == TrialState::kQueued || to == TrialState::kCompleted ||
           to == TrialState::kFailed || to == TrialState::kStopped ||
           to == TrialState::kCancelled;
      break;
    default:
      ok = false;  // terminal states have no way out
  }
  if (ok) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "a trial cannot go from ", TrialStateName(from), " to ", TrialStateName(to)));
}

}  // namespace sweep
