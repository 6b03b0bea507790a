// EarlyStopper: decides, as metric reports arrive, which trials of a sweep to stop
// early (docs/spec.md, early_terminate).
//
// - asha (asynchronous successive halving, the stopping variant): rungs at
//   min_iter * eta^k up to max_iter. A trial that reaches a rung continues only if
//   its value there is at least as good as the (1 - 1/eta) quantile of the values
//   that earlier trials recorded at that rung (so it must be in their top 1/eta);
//   the first trial at a rung always continues. Trials that arrive late are judged
//   against everything recorded before them.
// - hyperband: W&B's bands (min_iter * eta^k, or max_iter / eta^k for k = s..1),
//   each judged with the rule above.
// - median: from step min_iter on, a trial is stopped when its best value so far is
//   worse than the median of the other trials' running means at the same step,
//   once at least min_trials other trials reached that step.
//
// A trial's value at a rung is the first value it reports at a step >= the rung.
// Feeding the same reports in the same order gives the same decisions, so the
// scheduler rebuilds a stopper after a restart by replaying the stored metrics.
// Thread-compatible: the scheduler calls it under its lock.
#ifndef SWEEP_SCHEDULER_EARLY_STOPPING_H_
#define SWEEP_SCHEDULER_EARLY_STOPPING_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sweeps/spec.h"

namespace sweep {

class EarlyStopper {
 public:
  struct Decision {
    bool stop = false;
    int64_t step = -1;   // the rung (or step) the decision was made at
    std::string reason;  // why it was stopped, in words
  };

  EarlyStopper(const spec::EarlyTerminate& config, bool maximize);

  // Records that `trial` reported `value` of the sweep's metric at `step` and returns
  // whether it should stop now. A trial already told to stop is told again.
  Decision Report(const std::string& trial, int64_t step, double value);

  // The rungs (empty for median and none).
  const std::vector<int64_t>& rungs() const { return rungs_; }

 private:
  struct TrialHistory {
    size_t next_rung = 0;  // index of the first rung it has not reached
    // For the median rule: (step, running sum, count) after each report, by step.
    std::vector<std::pair<int64_t, std::pair<double, int64_t>>> sums;
    double best = 0;
    bool has_best = false;
    bool stopped = false;
    Decision decision;
  };

  Decision ReportAtRungs(TrialHistory& h, int64_t step, double value);
  Decision ReportMedian(const std::string& trial, TrialHistory& h, int64_t step);
  bool Better(double a, double b) const { return maximize_ ? a > b : a < b; }

  spec::EarlyTerminate config_;
  bool maximize_;
  std::vector<int64_t> rungs_;
  std::vector<std::vector<double>> recorded_;  // per rung, values in arrival order
  std::map<std::string, TrialHistory> trials_;
};

}  // namespace sweep

#endif  // SWEEP_SCHEDULER_EARLY_STOPPING_H_
