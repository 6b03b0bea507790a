#include "trainer/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace sweep::trainer {

double LearningRate(const ScheduleOptions& o, int64_t step) {
  int64_t spe = std::max<int64_t>(1, o.steps_per_epoch);
  int64_t total = std::max<int64_t>(1, o.epochs * spe);
  step = std::clamp<int64_t>(step, 0, total - 1);
  int64_t warmup =
      std::min<int64_t>(total, std::llround(o.warmup_epochs * spe));
  if (step < warmup)
    return o.lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  if (o.kind == "step") {
    int64_t decays = (step / spe) / std::max<int64_t>(1, o.step_epochs);
    return o.lr * std::pow(o.step_gamma, static_cast<double>(decays));
  }
  if (o.kind == "cosine") {
    // Progress runs from 0 at the first step after warm-up to 1 after the last
    // step.
    double progress = static_cast<double>(step - warmup) /
                      static_cast<double>(std::max<int64_t>(1, total - warmup));
    return o.lr * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  }
  return o.lr;
}

}  // namespace sweep::trainer
