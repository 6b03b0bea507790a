#include "scheduler/estimate.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace sweep {

void DurationStats::Add(double seconds, double gpus) {
  seconds = std::max(0.0, seconds);
  min = n == 0 ? seconds : std::min(min, seconds);
  max = n == 0 ? seconds : std::max(max, seconds);
  ++n;
  sum += seconds;
  sum_sq += seconds * seconds;
  gpu_seconds += seconds * gpus;
}

Estimate EstimateSweep(const EstimateInput& in) {
  Estimate e;
  double running_gpu_seconds = 0;
  for (const RunningTrial& r : in.running) running_gpu_seconds += r.elapsed * r.gpus;
  e.gpu_hours_so_far = (in.ended.gpu_seconds + running_gpu_seconds) / 3600;
  double running_joules = 0;
  for (const RunningTrial& r : in.running) running_joules += r.energy_joules;
  e.energy_kwh_so_far = (in.energy.joules + running_joules) / kJoulesPerKwh;
  e.energy_kwh_total = e.energy_kwh_so_far;

  // The mean duration and its standard error.
  double mean = 0, se = 0, floor = 0;
  if (in.ended.n > 0) {
    double n = static_cast<double>(in.ended.n);
    mean = in.ended.sum / n;
    double var = n > 1 ? std::max(0.0, (in.ended.sum_sq - n * mean * mean) / (n - 1)) : 0;
    // One trial says little about the spread: assume half its duration.
    se = n > 1 ? std::sqrt(var / n) : mean / 2;
    floor = in.ended.min;
    e.basis = absl::StrCat(in.ended.n, " ended trial", in.ended.n == 1 ? "" : "s");
  } else {
    std::vector<double> projected;
    for (const RunningTrial& r : in.running) {
      if (r.total_steps && r.last_step > 0 && r.elapsed > 0) {
        projected.push_back(r.elapsed * static_cast<double>(*r.total_steps) /
                            static_cast<double>(std::min(r.last_step, *r.total_steps)));
      }
    }
    if (projected.empty()) {
      e.gpu_hours_total = e.gpu_hours_so_far;
      return e;
    }
    double n = static_cast<double>(projected.size());
    for (double p : projected) mean += p / n;
    se = mean / 2 / std::sqrt(n);  // a projection is rough: a wide range
    e.basis = absl::StrCat("progress of ", projected.size(), " running trial",
                           projected.size() == 1 ? "" : "s");
  }
  if (in.unbounded) {
    e.basis += "; unbounded sweep: no finish time";
    e.gpu_hours_total = e.gpu_hours_so_far;
    return e;
  }
  e.known = true;
  double slots = std::max(1, in.slots);
  auto seconds_left = [&](double m) {
    double running_left = 0, longest = 0;
    for (const RunningTrial& r : in.running) {
      double left = std::max(0.0, m - r.elapsed);
      running_left += left;
      longest = std::max(longest, left);
    }
    double work = running_left + static_cast<double>(in.unstarted) * m;
    // No faster than the longest running trial, nor than one trial when any remain.
    return std::max({work / slots, longest, in.unstarted > 0 ? m : 0.0});
  };
  double low = std::max(floor, mean - 2 * se);
  double high = mean + 2 * se;
  e.seconds_left = seconds_left(mean);
  e.seconds_left_low = seconds_left(low);
  e.seconds_left_high = seconds_left(high);
  double running_gpu_left = 0;
  for (const RunningTrial& r : in.running) {
    running_gpu_left += std::max(0.0, mean - r.elapsed) * r.gpus;
  }
  e.gpu_hours_total = e.gpu_hours_so_far +
                      (running_gpu_left + static_cast<double>(in.unstarted) * mean *
                                              in.gpus_per_trial) /
                          3600;
  if (in.energy.n > 0) {
    // Each trial still to run uses what an ended one did on average; a running one,
    // the part of that average its elapsed time has not reached yet.
    double per_trial = in.energy.joules / static_cast<double>(in.energy.n);
    double left = static_cast<double>(in.unstarted) * per_trial;
    for (const RunningTrial& r : in.running) {
      if (mean > 0) left += per_trial * std::max(0.0, mean - r.elapsed) / mean;
    }
    e.energy_kwh_total += left / kJoulesPerKwh;
  }
  if (in.cost) {
    e.money_total = e.gpu_hours_total * in.cost->gpu_hour + e.energy_kwh_total * in.cost->kwh;
  }
  return e;
}

std::optional<int64_t> ExpectedSteps(const spec::SweepSpec& spec,
                                     const std::string& params_json) {
  nlohmann::json p = nlohmann::json::parse(params_json, nullptr, false);
  if (p.is_object()) {
    for (const char* key : {"epochs", "num_epochs", "steps", "max_steps", "iterations"}) {
      auto it = p.find(key);
      if (it != p.end() && it->is_number_integer() && it->get<int64_t>() > 0) {
        return it->get<int64_t>();
      }
    }
  }
  if (spec.early_stop.max_iter > 0) return spec.early_stop.max_iter;
  return std::nullopt;
}

}  // namespace sweep
