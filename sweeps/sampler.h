// Search methods: the parameters of a sweep's next trial, given what the sweep has
// seen so far.
//
// - random: SamplePoint (spec.h), independent of the history.
// - sobol: a scrambled Sobol' low-discrepancy sequence over the search space,
//   point `index` of the sequence; independent of the history.
// - bayes: a Tree-structured Parzen Estimator (univariate, as Optuna's default).
//   The first `kTpeStartupTrials` trials are random; after that each parameter is
//   drawn from the density of the good trials (the best gamma fraction) over that of
//   the bad ones. Failed trials count as worse than any value (W&B's impute). Running
//   trials count as bad ones too ("constant liar"), so parallel workers do not all
//   get the same suggestion.
//
// Every result is a pure function of its arguments: a restarted scheduler that
// rebuilds the history from SQLite suggests the same next trial.
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
// `finished`: the sweep's ended trials, in the order they ended; `running`: the
// parameters of its running trials. For grid sweeps use GridPoint.
nlohmann::json Suggest(const SweepSpec& spec, uint64_t seed, int64_t index,
                       const std::vector<Observation>& finished,
                       const std::vector<nlohmann::json>& running);

}  // namespace sweep::spec

#endif  // SWEEP_SWEEPS_SAMPLER_H_
