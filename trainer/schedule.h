// Learning-rate schedules for sweep-train: linear warm-up, then constant, step
// decay or cosine decay to zero. The rate is a pure function of the global
// step, so the schedule's position after a resume is just the step count in the
// checkpoint.
//
// Thread-safe: pure functions.
#ifndef SWEEP_TRAINER_SCHEDULE_H_
#define SWEEP_TRAINER_SCHEDULE_H_

#include <cstdint>
#include <string>

namespace sweep::trainer {

struct ScheduleOptions {
  std::string kind = "constant";  // constant | step | cosine
  double lr = 0.01;               // the peak rate
  double warmup_epochs = 0;       // linear ramp from lr / warmup_steps up to lr
  int64_t step_epochs = 1;        // step: decay every this many epochs
  double step_gamma = 0.1;        // step: factor per decay
  int64_t epochs = 1;
  int64_t steps_per_epoch = 1;
};

// Returns the learning rate for global step `step` (0-based, counted over all
// epochs). During warm-up it rises linearly to `lr` at the end of warm-up; then
// `constant` keeps `lr`; `step` multiplies it by `step_gamma` at every
// `step_epochs` epoch boundary; `cosine` follows half a cosine from `lr` at the
// end of warm-up to 0 after the last step. Steps past the end keep the last
// value.
double LearningRate(const ScheduleOptions& options, int64_t step);

}  // namespace sweep::trainer

#endif  // SWEEP_TRAINER_SCHEDULE_H_
