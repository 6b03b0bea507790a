#include "sweeps/internal/sampling.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <numbers>

namespace sweep::spec::internal {
namespace {

using nlohmann::json;

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;

uint64_t TrialSeed(uint64_t seed, int64_t index) {
  return SplitMix64(SplitMix64(seed) ^ static_cast<uint64_t>(index) * kGolden);
}

// Keeps u inside [0, 1]; NaN becomes the centre.
double ClampUnit(double u) {
  if (std::isnan(u)) return 0.5;
  return std::clamp(u, 0.0, 1.0);
}

// (x - lo) / (hi - lo), clamped; the centre for an empty range.
double Fraction(double x, double lo, double hi) {
  if (!(hi > lo)) return 0.5;
  return ClampUnit((x - lo) / (hi - lo));
}

double Lerp(double lo, double hi, double u) {
  return std::clamp(lo + u * (hi - lo), std::min(lo, hi), std::max(lo, hi));
}

// ln(x) for a positive x; -inf otherwise (ToUnit clamps it to 0).
double SafeLog(double x) {
  return x > 0 ? std::log(x) : -std::numeric_limits<double>::infinity();
}

}  // namespace

uint64_t SplitMix64(uint64_t x) {
  x += kGolden;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

TrialRandom::TrialRandom(uint64_t seed, int64_t index)
    : engine_(TrialSeed(seed, index)) {}

TrialRandom::TrialRandom(uint64_t seed, int64_t index, uint64_t stream)
    : engine_(SplitMix64(TrialSeed(seed, index) ^
                         SplitMix64((stream + 1) * 0xD1B54A32D192ED03ULL))) {}

double TrialRandom::Uniform(double lo, double hi) {
  const double u = Uniform();
  return std::clamp(lo * (1 - u) + hi * u, lo, hi);
}

double TrialRandom::Normal() {
  const double u1 = 1.0 - Uniform();  // (0, 1]: log(u1) is finite
  const double u2 = Uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

int64_t TrialRandom::UniformInt(int64_t lo, int64_t hi) {
  const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  if (span == UINT64_MAX) return static_cast<int64_t>(engine_());
  const uint64_t range = span + 1;
  const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  uint64_t draw;
  do {
    draw = engine_();
  } while (draw >= limit);
  return static_cast<int64_t>(static_cast<uint64_t>(lo) + draw % range);
}

size_t TrialRandom::Choose(const std::vector<double>& weights, size_t n) {
  if (weights.empty()) return static_cast<size_t>(UniformInt(0, n - 1));
  const double u = Uniform();
  double cumulative = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    cumulative += weights[i];
    if (u < cumulative) return i;
  }
  return weights.size() - 1;
}

double RoundSignificant(double value) {
  char buffer[64];
  const auto end = std::to_chars(buffer, buffer + sizeof(buffer), value,
                                 std::chars_format::general, 12);
  double rounded = value;
  std::from_chars(buffer, end.ptr, rounded);
  return rounded;
}

json Number(double value, bool integer) {
  constexpr double kInt64Limit = 9223372036854775808.0;  // 2^63
  if (integer && std::abs(value) < kInt64Limit) {
    return static_cast<int64_t>(std::llround(value));
  }
  return RoundSignificant(value);
}

json Quantize(double x, const Parameter& param) {
  return Number(std::nearbyint(x / param.q) * param.q, param.integer);
}

void SetPath(json& root, const std::vector<std::string>& path, json value) {
  json* node = &root;
  for (const std::string& key : path) node = &(*node)[key];
  *node = std::move(value);
}

const json* GetPath(const json& root, const std::vector<std::string>& path) {
  const json* node = &root;
  for (const std::string& key : path) {
    if (!node->is_object()) return nullptr;
    const auto it = node->find(key);
    if (it == node->end()) return nullptr;
    node = &*it;
  }
  return node;
}

double NormalCdf(double x) { return 0.5 * std::erfc(-x / std::numbers::sqrt2); }

double NormalQuantile(double p) {
  // Acklam's rational approximation (relative error < 1.2e-9), then one step of
  // Halley's method, which brings it to full double precision.
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  constexpr double kLow = 0.02425;
  p = std::clamp(std::isnan(p) ? 0.5 : p, 0x1.0p-53, 1 - 0x1.0p-53);
  double x;
  if (p < kLow) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - kLow) {
    const double q = p - 0.5;
    const double r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) *
        q / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log1p(-p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  // Halley's step; above the median, Phi(x) - p is computed from the upper
  // tail, where both terms are exact enough.
  const double err = x < 0 ? NormalCdf(x) - p : (1 - p) - NormalCdf(-x);
  const double u = err * std::sqrt(2 * std::numbers::pi) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

bool IsIntegerCells(const Parameter& param) {
  return param.distribution == Distribution::kIntUniform;
}

int64_t CellCount(const Parameter& param) {
  return static_cast<int64_t>(param.max - param.min) + 1;
}

json FromUnit(const Parameter& p, double u) {
  u = ClampUnit(u);
  switch (p.distribution) {
    case Distribution::kConstant:
      return p.values[0];
    case Distribution::kCategorical: {
      const size_t n = p.values.size();
      if (p.probabilities.empty()) {
        return p.values[std::min(n - 1, static_cast<size_t>(u * n))];
      }
      double cumulative = 0;
      for (size_t i = 0; i < n; ++i) {
        cumulative += p.probabilities[i];
        if (u < cumulative) return p.values[i];
      }
      // Past the last positive weight (rounding): the last value with one.
      for (size_t i = n; i-- > 0;) {
        if (p.probabilities[i] > 0) return p.values[i];
      }
      return p.values[n - 1];
    }
    case Distribution::kIntUniform: {
      const int64_t n = CellCount(p);
      const int64_t k = std::min<int64_t>(
          n - 1, static_cast<int64_t>(u * static_cast<double>(n)));
      return static_cast<int64_t>(p.min) + k;
    }
    case Distribution::kUniform:
      return Lerp(p.min, p.max, u);
    case Distribution::kQUniform:
      return Quantize(Lerp(p.min, p.max, u), p);
    case Distribution::kLogUniform:
      return std::clamp(std::exp(Lerp(p.min, p.max, u)), std::exp(p.min),
                        std::exp(p.max));
    case Distribution::kLogUniformValues:
      return std::clamp(std::exp(Lerp(std::log(p.min), std::log(p.max), u)),
                        p.min, p.max);
    case Distribution::kQLogUniformValues:
      return Quantize(std::exp(Lerp(std::log(p.min), std::log(p.max), u)), p);
    case Distribution::kInvLogUniform:
      return std::clamp(std::exp(-Lerp(p.min, p.max, u)), std::exp(-p.max),
                        std::exp(-p.min));
    case Distribution::kInvLogUniformValues:
      // 1/x is log-uniform, so is x: u = 0 is max, u = 1 is min (as the
      // draws of SamplePoint run).
      return std::clamp(std::exp(Lerp(std::log(p.max), std::log(p.min), u)),
                        p.min, p.max);
    case Distribution::kNormal:
      return p.mu + p.sigma * NormalQuantile(u);
    case Distribution::kQNormal:
      return Quantize(p.mu + p.sigma * NormalQuantile(u), p);
    case Distribution::kLogNormal:
      return std::exp(p.mu + p.sigma * NormalQuantile(u));
    case Distribution::kQLogNormal:
      return Quantize(std::exp(p.mu + p.sigma * NormalQuantile(u)), p);
  }
  return nullptr;
}

std::optional<double> ToUnit(const Parameter& p, const json& value) {
  if (!value.is_number()) return std::nullopt;
  const double x = value.get<double>();
  if (std::isnan(x)) return std::nullopt;
  switch (p.distribution) {
    case Distribution::kConstant:
    case Distribution::kCategorical:
      return std::nullopt;
    case Distribution::kIntUniform: {
      const double n = static_cast<double>(CellCount(p));
      const double k = std::clamp(std::round(x) - p.min, 0.0, n - 1);
      return (k + 0.5) / n;
    }
    case Distribution::kUniform:
    case Distribution::kQUniform:
      return Fraction(x, p.min, p.max);
    case Distribution::kLogUniform:
      return Fraction(SafeLog(x), p.min, p.max);
    case Distribution::kLogUniformValues:
    case Distribution::kQLogUniformValues:
      return Fraction(SafeLog(x), std::log(p.min), std::log(p.max));
    case Distribution::kInvLogUniform:
      return Fraction(-SafeLog(x), p.min, p.max);
    case Distribution::kInvLogUniformValues:
      return 1 - Fraction(SafeLog(x), std::log(p.min), std::log(p.max));
    case Distribution::kNormal:
    case Distribution::kQNormal:
      return NormalCdf((x - p.mu) / p.sigma);
    case Distribution::kLogNormal:
    case Distribution::kQLogNormal:
      return x > 0 ? NormalCdf((std::log(x) - p.mu) / p.sigma) : 0.0;
  }
  return std::nullopt;
}

}  // namespace sweep::spec::internal
