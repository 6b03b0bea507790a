// Estimates of a sweep's time to finish, GPU-hours, energy and money, from what it
// has run so far. Pure functions of their input; thread-safe.
//
// The model: a trial takes the mean duration of the trials that ended (early-stopped
// ones included, so early stopping shortens the estimate as it happens). Before any
// trial ended, a running trial that reported step s of an expected S steps (the
// trial's `epochs`/`steps` parameter, or early_terminate's max_iter) after e seconds
// is projected to take e * S / s. The work left (queued trials times the mean, plus
// what the running ones still need) is shared by the slots the sweep can use. The
// range is the mean plus or minus two standard errors, so it narrows as trials end.
// Energy: what the workers measured so far (ended and running trials), plus the mean
// energy of an ended trial for each trial still to run and the part of it a running
// trial has not used yet. Money: GPU-hours times cost.gpu_hour plus kWh times
// cost.kwh.
#ifndef SWEEP_SCHEDULER_ESTIMATE_H_
#define SWEEP_SCHEDULER_ESTIMATE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sweeps/spec.h"

namespace sweep {

inline constexpr double kJoulesPerKwh = 3.6e6;

// Running sums over the durations of a sweep's ended trials.
struct DurationStats {
  int64_t n = 0;
  double sum = 0, sum_sq = 0;
  double min = 0, max = 0;
  double gpu_seconds = 0;  // duration times GPUs, over ended trials
  void Add(double seconds, double gpus);
};

// GPU energy the workers measured for a sweep's ended trials.
struct EnergyStats {
  int64_t n = 0;        // trials with a measurement
  double joules = 0;
  void Add(double j) {
    ++n;
    joules += j;
  }
};

struct RunningTrial {
  double elapsed = 0;                  // seconds since it started
  double gpus = 0;                     // GPUs it holds (0 on a CPU slot; a share
                                       // of one when trials share a GPU)
  double energy_joules = 0;            // measured so far, 0 when unknown
  int64_t last_step = 0;               // highest step reported, 0 if none
  std::optional<int64_t> total_steps;  // expected steps, when known
};

struct EstimateInput {
  DurationStats ended;
  std::vector<RunningTrial> running;
  int64_t unstarted = 0;  // trials still to run (queued and not yet created)
  bool unbounded = false; // no run_cap: the sweep runs until cancelled
  int slots = 1;          // trials the sweep can run at once now (>= 1)
  double gpus_per_trial = 0; // GPUs each future trial will hold (0: CPU slots)
  EnergyStats energy;     // of ended trials
  std::optional<spec::Cost> cost;
};

struct Estimate {
  bool known = false;      // false until there is a duration to go by
  std::string basis;       // "12 ended trials", "progress of 3 running trials"
  double seconds_left = 0; // expected; the range is [low, high]
  double seconds_left_low = 0;
  double seconds_left_high = 0;
  double gpu_hours_so_far = 0;
  double gpu_hours_total = 0;  // expected, for the whole sweep
  double energy_kwh_so_far = 0;  // measured, ended and running trials
  double energy_kwh_total = 0;   // expected, for the whole sweep (so far when unknown)
  // gpu_hours_total * cost.gpu_hour + energy_kwh_total * cost.kwh
  std::optional<double> money_total;
};

Estimate EstimateSweep(const EstimateInput& in);

// The expected number of steps of a trial with `params`, from its `epochs`,
// `num_epochs`, `steps`, `max_steps` or `iterations` parameter, else from
// early_terminate's max_iter; nullopt when none says.
std::optional<int64_t> ExpectedSteps(const spec::SweepSpec& spec, const std::string& params_json);

}  // namespace sweep

#endif  // SWEEP_SCHEDULER_ESTIMATE_H_
