// Search methods: the parameters of a sweep's next trial, given what the sweep
// has seen so far (docs/spec.md, Methods).
//
// - random: SamplePoint (spec.h), independent of the history.
// - sobol: point `index` of a scrambled Sobol' low-discrepancy sequence
// (Joe-Kuo
//   direction numbers, scrambled from the seed), one dimension per parameter
//   that is not a constant, mapped through each distribution's inverse CDF;
//   independent of the history. Parameters beyond the 128th such one, and every
//   parameter of trials from index 2^32 on, are drawn at random.
// - bayes: a Tree-structured Parzen Estimator (univariate, as Optuna's
// default).
//   While fewer than `kTpeStartupTrials` trials have finished (running ones do
//   not count), or none of them has a value, it is SamplePoint. After that each
//   parameter is drawn from the density of the good trials (the best
//   min(ceil(0.1 n), 25) of n finished and running ones) over that of the bad
//   ones. Failed trials (no value, or NaN) count as worse than any value (W&B's
//   impute). Running trials count as bad ones too ("constant liar"), so
//   parallel workers do not all get the same suggestion.
//
// Every result is a pure function of its arguments: a restarted scheduler that
// rebuilds the history from SQLite suggests the same next trial. The result has
// the nested shape of SamplePoint's. A history entry whose parameters do not
// fit the spec (missing keys, other types) is left out where it does not fit.
// Cost: O(n log n) in the number of trials n, about 80 ms for 5000 trials of 30
// parameters.
// Thread safety: pure functions.
#ifndef SWEEP_SWEEPS_SAMPLER_H_
#define SWEEP_SWEEPS_SAMPLER_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "nlohmann/json.hpp"
#include "sweeps/spec.h"

namespace sweep::spec {

inline constexpr int kTpeStartupTrials = 10;

struct Observation {
  nlohmann::json params;        // as the trial ran with
  std::optional<double> value;  // the metric's final value; nullopt: failed
};

// Returns the parameters of trial `index` of a random, sobol or bayes sweep.
// `finished`: the sweep's ended trials, in the order they ended (TPE weighs
// recent ones more once a group holds more than 25); `running`: the parameters
// of its running trials. `seed` is the sweep's seed, as for SamplePoint. For a
// grid sweep this is GridPoint(spec, index) while index < GridSize, else
// SamplePoint; the history is used by bayes only.
nlohmann::json Suggest(const SweepSpec& spec, uint64_t seed, int64_t index,
                       const std::vector<Observation>& finished,
                       const std::vector<nlohmann::json>& running);

}  // namespace sweep::spec

#endif  // SWEEP_SWEEPS_SAMPLER_H_
