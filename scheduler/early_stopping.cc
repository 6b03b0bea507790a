#include "scheduler/early_stopping.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sweep {
namespace {

using Type = spec::EarlyTerminate::Type;

// The q-quantile (0 <= q <= 1) of `v` with linear interpolation (numpy's default).
double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  double pos = q * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

std::string Num(double v) { return absl::StrFormat("%.6g", v); }

}  // namespace

EarlyStopper::EarlyStopper(const spec::EarlyTerminate& config, bool maximize)
    : config_(config), maximize_(maximize) {
  double eta = config.eta > 1 ? config.eta : 3;
  if (config.type == Type::kAsha ||
      (config.type == Type::kHyperband && config.min_iter > 0)) {
    int64_t min_iter = std::max<int64_t>(1, config.min_iter);
    int64_t cap = config.max_iter > 0 ? config.max_iter : INT64_MAX / 4;
    for (double r = static_cast<double>(min_iter); r <= static_cast<double>(cap) && r < 1e15;
         r *= eta) {
      int64_t rung = static_cast<int64_t>(std::llround(r));
      if (rungs_.empty() || rung > rungs_.back()) rungs_.push_back(rung);
      if (config.max_iter <= 0 && rungs_.size() >= 64) break;
    }
  } else if (config.type == Type::kHyperband && config.max_iter > 0) {
    int64_t s = config.s > 0 ? config.s : 1;
    for (int64_t k = s; k >= 1; --k) {
      int64_t rung = static_cast<int64_t>(
          std::floor(static_cast<double>(config.max_iter) / std::pow(eta, k)));
      if (rung >= 1 && (rungs_.empty() || rung > rungs_.back())) rungs_.push_back(rung);
    }
  }
  recorded_.resize(rungs_.size());
}

EarlyStopper::Decision EarlyStopper::Report(const std::string& trial, int64_t step,
                                            double value) {
  TrialHistory& h = trials_[trial];
  if (h.stopped) return h.decision;
  if (!h.has_best || Better(value, h.best)) {
    h.best = value;
    h.has_best = true;
  }
  Decision d;
  switch (config_.type) {
    case Type::kAsha:
    case Type::kHyperband:
      d = ReportAtRungs(h, step, value);
      break;
    case Type::kMedian: {
      // Keep the running sums ordered by step; a report for an earlier step (a
      // resumed attempt) is folded in where it belongs.
      auto it = std::upper_bound(
          h.sums.begin(), h.sums.end(), step,
          [](int64_t s, const auto& e) { return s < e.first; });
      double sum = value;
      int64_t n = 1;
      if (it != h.sums.begin()) {
        sum += std::prev(it)->second.first;
        n += std::prev(it)->second.second;
      }
      it = h.sums.insert(it, {step, {sum, n}});
      for (++it; it != h.sums.end(); ++it) {
        it->second.first += value;
        it->second.second += 1;
      }
      d = ReportMedian(trial, h, step);
      break;
    }
    case Type::kNone:
      break;
  }
  if (d.stop) {
    h.stopped = true;
    h.decision = d;
  }
  return d;
}

EarlyStopper::Decision EarlyStopper::ReportAtRungs(TrialHistory& h, int64_t step,
                                                   double value) {
  Decision d;
  double eta = config_.eta > 1 ? config_.eta : 3;
  while (h.next_rung < rungs_.size() && rungs_[h.next_rung] <= step) {
    size_t k = h.next_rung++;
    std::vector<double>& rec = recorded_[k];
    if (!d.stop && !rec.empty()) {
      // The cutoff that keeps the top 1/eta of what was recorded before.
      double cutoff = Quantile(rec, maximize_ ? 1 - 1 / eta : 1 / eta);
      if (Better(cutoff, value)) {
        d.stop = true;
        d.step = rungs_[k];
        d.reason = absl::StrCat(
            "early stopped at rung ", k + 1, " (step ", rungs_[k], "): ", Num(value),
            " is not in the top 1/", Num(eta), " of the ", rec.size(),
            " trials that reached it before (cutoff ", Num(cutoff), ")");
      }
    }
    rec.push_back(value);
  }
  return d;
}

EarlyStopper::Decision EarlyStopper::ReportMedian(const std::string& trial,
                                                  TrialHistory& h, int64_t step) {
  Decision d;
  if (step < config_.min_iter) return d;
  std::vector<double> means;
  for (const auto& [id, other] : trials_) {
    if (id == trial || other.sums.empty() || other.sums.back().first < step) continue;
    // Its running mean over the reports at steps <= step.
    auto it = std::upper_bound(
        other.sums.begin(), other.sums.end(), step,
        [](int64_t s, const auto& e) { return s < e.first; });
    if (it == other.sums.begin()) continue;
    const auto& [sum, n] = std::prev(it)->second;
    means.push_back(sum / static_cast<double>(n));
  }
  if (static_cast<int64_t>(means.size()) < std::max<int64_t>(1, config_.min_trials)) {
    return d;
  }
  double median = Quantile(means, 0.5);
  if (Better(median, h.best)) {
    d.stop = true;
    d.step = step;
    d.reason = absl::StrCat("early stopped at step ", step, ": best value ", Num(h.best),
                            " is worse than the median ", Num(median),
                            " of the running means of ", means.size(), " other trials");
  }
  return d;
}

}  // namespace sweep
