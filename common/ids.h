// Identifiers for sweeps, trials and workers.
//
// A sweep id is 8 lowercase hex digits ("3f9a2c1b"). A trial id is its sweep id, a
// dash and the trial's index in the sweep, zero-padded to 4 digits ("3f9a2c1b-0007"),
// so ids sort in creation order and a trial id names its sweep. Thread-safe.
#ifndef SWEEP_COMMON_IDS_H_
#define SWEEP_COMMON_IDS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/random/bit_gen_ref.h"
#include "absl/random/random.h"

namespace sweep {

// Returns a fresh random sweep id drawn from `gen`.
std::string NewSweepId(absl::BitGenRef gen);

// Returns the id of trial number `index` of sweep `sweep_id`.
std::string TrialId(std::string_view sweep_id, int64_t index);

// Returns the sweep id that `trial_id` names, or "" if it is not a trial id.
std::string SweepIdOfTrial(std::string_view trial_id);

}  // namespace sweep

#endif  // SWEEP_COMMON_IDS_H_
