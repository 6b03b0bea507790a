// Identifiers for sweeps, trials and workers.
//
// A sweep id is 8 lowercase hex digits ("3f9a2c1b"). A trial id is its sweep id, a
// dash and the trial's index in the sweep, zero-padded to 4 digits ("3f9a2c1b-0007"),
// so ids sort in creation order and a trial id names its sweep. A worker id is its
// host, its slot and 64 random bits ("node1/gpu0-9c1e5f03a7b2d468"): ids drawn for
// the slots of one host do not collide by chance (16 bits did: about 60 of 3,000),
// and the scheduler still refuses an id that is taken. Thread-safe.
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

// Returns a fresh worker id for slot `slot` ("gpu0", "cpu3") of `host`, its 64
// random bits drawn from `gen`.
std::string NewWorkerId(absl::BitGenRef gen, std::string_view host, std::string_view slot);

// Returns the id of trial number `index` of sweep `sweep_id`.
std::string TrialId(std::string_view sweep_id, int64_t index);

// Returns the sweep id that `trial_id` names, or "" if it is not a trial id.
std::string SweepIdOfTrial(std::string_view trial_id);

}  // namespace sweep

#endif  // SWEEP_COMMON_IDS_H_
