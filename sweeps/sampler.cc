#include "sweeps/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>
#include <utility>
#include <vector>

#include "sweeps/internal/sampling.h"
#include "sweeps/internal/sobol.h"

namespace sweep::spec {
namespace {

using internal::TrialRandom;
using nlohmann::json;

// Optuna's TPESampler defaults.
constexpr int kCandidates = 24;       // n_ei_candidates
constexpr double kPriorWeight = 1.0;  // prior_weight
constexpr int64_t kMaxGood = 25;      // gamma(n) = min(ceil(0.1 n), 25)
constexpr size_t kFlatWeights = 25;   // weights: the newest 25 weigh 1

// Random streams of one trial: parameter j of TPE draws from stream j; sobol
// draws the dimensions beyond its table from stream kExtraStream.
constexpr uint64_t kExtraStream = uint64_t{1} << 32;

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Returns how many of `n` trials form the good group.
int64_t GoodCount(size_t n) {
  return std::min<int64_t>(
      static_cast<int64_t>(std::ceil(0.1 * static_cast<double>(n))), kMaxGood);
}

// Optuna's default_weights: equal weights for up to 25 observations; beyond
// that the newest 25 weigh 1 and older ones ramp linearly from 1/n.
std::vector<double> RecencyWeights(size_t n) {
  std::vector<double> weights(n, 1.0);
  if (n <= kFlatWeights) return weights;
  const size_t ramp = n - kFlatWeights;
  const double lo = 1.0 / static_cast<double>(n);
  for (size_t i = 0; i < ramp; ++i) {
    weights[i] = ramp == 1 ? lo
                           : lo + (1.0 - lo) * static_cast<double>(i) /
                                      static_cast<double>(ramp - 1);
  }
  return weights;
}

// A univariate Parzen estimator on [0, 1] (the unit space of sampling.h): one
// normal kernel per observation, truncated to [0, 1], plus the prior kernel
// N(1/2, 1). Bandwidths follow Optuna's univariate rule: the larger distance to
// a neighbour (the outermost kernels use their inner neighbour only), clipped
// to [1 / min(100, 1 + kernels), 1] ("magic clip").
class UnitParzen {
 public:
  UnitParzen(const std::vector<double>& mus,
             const std::vector<double>& weights) {
    const size_t n = mus.size();
    std::vector<double> sigmas(n, 1.0);
    if (n > 0) {
      std::vector<size_t> order(n);
      for (size_t i = 0; i < n; ++i) order[i] = i;
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t a, size_t b) { return mus[a] < mus[b]; });
      // Neighbours with the endpoints 0 and 1 around them.
      auto at = [&](size_t k) {  // k in 0..n+1
        if (k == 0) return 0.0;
        if (k == n + 1) return 1.0;
        return mus[order[k - 1]];
      };
      for (size_t k = 1; k <= n; ++k) {
        double sigma = std::max(at(k) - at(k - 1), at(k + 1) - at(k));
        if (n >= 2 && k == 1) sigma = at(2) - at(1);
        if (n >= 2 && k == n) sigma = at(n) - at(n - 1);
        sigmas[order[k - 1]] = sigma;
      }
    }
    const double min_sigma =
        1.0 / std::min(100.0, 1.0 + static_cast<double>(n + 1));
    double total = kPriorWeight;
    for (double w : weights) total += w;
    auto add = [&](double mu, double sigma, double weight) {
      sigma = std::clamp(sigma, min_sigma, 1.0);
      const double lo = internal::NormalCdf((0 - mu) / sigma);
      const double hi = internal::NormalCdf((1 - mu) / sigma);
      kernels_.push_back(Kernel{
          .mu = mu,
          .sigma = sigma,
          .inv_sigma = 1 / sigma,
          .cdf_lo = lo,
          .mass = hi - lo,
          .log_scale =
              std::log(weight / total) -
              std::log(sigma * (hi - lo) * std::sqrt(2 * std::numbers::pi))});
      cumulative_.push_back((cumulative_.empty() ? 0 : cumulative_.back()) +
                            weight / total);
    };
    for (size_t i = 0; i < n; ++i) add(mus[i], sigmas[i], weights[i]);
    add(0.5, 1.0, kPriorWeight);
  }

  // Returns a draw from the mixture.
  double Sample(TrialRandom& random) const {
    const double pick = random.Uniform() * cumulative_.back();
    size_t i = std::upper_bound(cumulative_.begin(), cumulative_.end(), pick) -
               cumulative_.begin();
    i = std::min(i, kernels_.size() - 1);
    const Kernel& k = kernels_[i];
    const double p = k.cdf_lo + random.Uniform() * k.mass;
    return std::clamp(k.mu + k.sigma * internal::NormalQuantile(p), 0.0, 1.0);
  }

  // Returns the log density of the mixture at `u`. Kernels whose term is below
  // e^-40 of the largest are skipped: they change the sum by less than its last
  // bit, and skipping their exp() keeps a suggestion fast with many trials.
  double LogPdf(double u) const {
    double peak = kNegInf;
    for (const Kernel& k : kernels_) peak = std::max(peak, Term(k, u));
    double sum = 0;
    for (const Kernel& k : kernels_) {
      const double t = Term(k, u) - peak;
      if (t > -40) sum += std::exp(t);
    }
    return peak + std::log(sum);
  }

 private:
  struct Kernel {
    double mu;
    double sigma;
    double inv_sigma;
    double cdf_lo;     // Phi((0 - mu) / sigma)
    double mass;       // of the normal within [0, 1]
    double log_scale;  // log(weight / (sigma * mass * sqrt(2 pi)))
  };
  static double Term(const Kernel& k, double u) {
    const double z = (u - k.mu) * k.inv_sigma;
    return k.log_scale - 0.5 * z * z;
  }

  std::vector<Kernel> kernels_;
  std::vector<double> cumulative_;  // of the normalized weights
};

// Optuna's categorical Parzen estimator: each observation is a kernel that
// puts 1 on its category plus kPriorWeight spread by the prior, and the prior
// is one more kernel. The prior is `probabilities`, or uniform.
std::vector<double> CategoricalDensity(const Parameter& param,
                                       const std::vector<size_t>& observed,
                                       const std::vector<double>& weights) {
  const size_t n = param.values.size();
  std::vector<double> base(n, 1.0 / static_cast<double>(n));
  if (!param.probabilities.empty()) base = param.probabilities;
  double total = kPriorWeight;
  for (double w : weights) total += w;
  std::vector<double> density(n, 0.0);
  double observed_weight = 0;
  for (size_t i = 0; i < observed.size(); ++i) {
    density[observed[i]] += weights[i] / total / (kPriorWeight + 1);
    observed_weight += weights[i];
  }
  // Every kernel's share of the prior, summed.
  const double prior_share =
      observed_weight / total * kPriorWeight / (kPriorWeight + 1) +
      kPriorWeight / total;
  for (size_t c = 0; c < n; ++c) density[c] += prior_share * base[c];
  return density;
}

// The trials TPE learns from, split as the good and the bad group; each group
// in the order the trials ended (running ones last).
struct Split {
  std::vector<const json*> good;
  std::vector<const json*> bad;
};

Split SplitTrials(const SweepSpec& spec,
                  const std::vector<Observation>& finished,
                  const std::vector<json>& running) {
  const bool maximize = spec.metric && spec.metric->goal == Goal::kMaximize;
  std::vector<std::pair<double, size_t>> ranked;  // (loss, position)
  for (size_t i = 0; i < finished.size(); ++i) {
    const std::optional<double>& value = finished[i].value;
    if (!value || std::isnan(*value)) continue;  // failed: imputed as worst
    ranked.emplace_back(maximize ? -*value : *value, i);
  }
  std::sort(ranked.begin(), ranked.end());
  const size_t good_count = std::min<size_t>(
      ranked.size(),
      static_cast<size_t>(GoodCount(finished.size() + running.size())));
  std::vector<bool> is_good(finished.size(), false);
  for (size_t k = 0; k < good_count; ++k) is_good[ranked[k].second] = true;
  Split split;
  for (size_t i = 0; i < finished.size(); ++i) {
    (is_good[i] ? split.good : split.bad).push_back(&finished[i].params);
  }
  for (const json& params : running) split.bad.push_back(&params);
  return split;
}

// Returns the position of `value` among `param`'s values, or nullopt.
std::optional<size_t> CategoryOf(const Parameter& param, const json& value) {
  for (size_t c = 0; c < param.values.size(); ++c) {
    if (param.values[c] == value) return c;
  }
  return std::nullopt;
}

// Snaps u to the centre of its int_uniform cell (the value FromUnit gives).
double SnapToCell(const Parameter& param, double u) {
  if (!internal::IsIntegerCells(param)) return u;
  const double n = static_cast<double>(internal::CellCount(param));
  const double k = std::min(n - 1, std::floor(u * n));
  return (k + 0.5) / n;
}

json SuggestCategorical(const Parameter& param, const Split& split,
                        TrialRandom& random) {
  auto density = [&](const std::vector<const json*>& group) {
    std::vector<size_t> observed;
    for (const json* params : group) {
      const json* value = internal::GetPath(*params, param.path);
      if (value == nullptr) continue;
      if (std::optional<size_t> c = CategoryOf(param, *value)) {
        observed.push_back(*c);
      }
    }
    return CategoricalDensity(param, observed, RecencyWeights(observed.size()));
  };
  const std::vector<double> good = density(split.good);
  const std::vector<double> bad = density(split.bad);
  double good_total = 0;
  for (double p : good) good_total += p;
  std::vector<double> normalized(good.size());
  for (size_t c = 0; c < good.size(); ++c) normalized[c] = good[c] / good_total;

  size_t best = 0;
  double best_score = kNegInf;
  for (int i = 0; i < kCandidates; ++i) {
    const size_t c = random.Choose(normalized, good.size());
    const double score =
        std::log(good[c]) - (bad[c] > 0 ? std::log(bad[c]) : kNegInf);
    if (i == 0 || score > best_score) {
      best_score = score;
      best = c;
    }
  }
  return param.values[best];
}

json SuggestNumeric(const Parameter& param, const Split& split,
                    TrialRandom& random) {
  auto estimator = [&](const std::vector<const json*>& group) {
    std::vector<double> mus;
    for (const json* params : group) {
      const json* value = internal::GetPath(*params, param.path);
      if (value == nullptr) continue;
      if (std::optional<double> u = internal::ToUnit(param, *value)) {
        mus.push_back(*u);
      }
    }
    return UnitParzen(mus, RecencyWeights(mus.size()));
  };
  const UnitParzen good = estimator(split.good);
  const UnitParzen bad = estimator(split.bad);
  double best = 0.5;
  double best_score = kNegInf;
  for (int i = 0; i < kCandidates; ++i) {
    const double u = SnapToCell(param, good.Sample(random));
    const double score = good.LogPdf(u) - bad.LogPdf(u);
    if (i == 0 || score > best_score) {
      best_score = score;
      best = u;
    }
  }
  return internal::FromUnit(param, best);
}

json SuggestTpe(const SweepSpec& spec, uint64_t seed, int64_t index,
                const std::vector<Observation>& finished,
                const std::vector<json>& running) {
  const bool any_value = std::any_of(
      finished.begin(), finished.end(),
      [](const Observation& o) { return o.value && !std::isnan(*o.value); });
  if (finished.size() < static_cast<size_t>(kTpeStartupTrials) || !any_value) {
    return SamplePoint(spec, seed, index);
  }
  const Split split = SplitTrials(spec, finished, running);
  json point = json::object();
  for (size_t j = 0; j < spec.parameters.size(); ++j) {
    const Parameter& param = spec.parameters[j];
    TrialRandom random(seed, index, /*stream=*/j);
    json value;
    switch (param.distribution) {
      case Distribution::kConstant:
        value = param.values[0];
        break;
      case Distribution::kCategorical:
        value = SuggestCategorical(param, split, random);
        break;
      default:
        value = SuggestNumeric(param, split, random);
        break;
    }
    internal::SetPath(point, param.path, std::move(value));
  }
  return point;
}

json SuggestSobol(const SweepSpec& spec, uint64_t seed, int64_t index) {
  int dimensions = 0;
  for (const Parameter& param : spec.parameters) {
    if (param.distribution != Distribution::kConstant) ++dimensions;
  }
  const bool in_sequence =
      index >= 0 && static_cast<uint64_t>(index) < internal::kSobolPoints;
  const int table_dimensions =
      in_sequence ? std::min(dimensions, internal::kSobolDimensions) : 0;
  std::vector<double> unit;
  if (table_dimensions > 0) {
    unit = internal::SobolPoint(static_cast<uint64_t>(index), table_dimensions,
                                seed);
  }
  TrialRandom extra(seed, index, kExtraStream);
  while (static_cast<int>(unit.size()) < dimensions) {
    unit.push_back(extra.Uniform());
  }
  json point = json::object();
  size_t dim = 0;
  for (const Parameter& param : spec.parameters) {
    const double u =
        param.distribution == Distribution::kConstant ? 0.5 : unit[dim++];
    internal::SetPath(point, param.path, internal::FromUnit(param, u));
  }
  return point;
}

}  // namespace

json Suggest(const SweepSpec& spec, uint64_t seed, int64_t index,
             const std::vector<Observation>& finished,
             const std::vector<json>& running) {
  switch (spec.method) {
    case Method::kGrid: {
      const absl::StatusOr<int64_t> size = GridSize(spec);
      if (size.ok() && index >= 0 && index < *size) {
        return GridPoint(spec, index);
      }
      return SamplePoint(spec, seed, index);
    }
    case Method::kRandom:
      return SamplePoint(spec, seed, index);
    case Method::kSobol:
      return SuggestSobol(spec, seed, index);
    case Method::kBayes:
      return SuggestTpe(spec, seed, index, finished, running);
  }
  return SamplePoint(spec, seed, index);
}

}  // namespace sweep::spec
