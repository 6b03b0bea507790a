// The pieces that SamplePoint (spec.cc) and the search methods (sampler.cc)
// share: a portable random stream, the rounding rules of trial values, nested
// JSON paths, and each distribution's map from the unit interval onto its
// values (its inverse CDF) and back.
//
// Every search method draws a parameter as a point u of [0, 1] and turns it
// into a value with FromUnit; TPE models observations in that "unit space"
// (ToUnit), where every distribution's prior is uniform: linear for uniform,
// the log scale for the log families, the normal CDF for the normal families.
//
// Thread safety: pure functions; a TrialRandom is a value owned by one caller.
#ifndef SWEEP_SWEEPS_INTERNAL_SAMPLING_H_
#define SWEEP_SWEEPS_INTERNAL_SAMPLING_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "sweeps/spec.h"

namespace sweep::spec::internal {

// SplitMix64's output function: a well-mixed 64-bit hash of `x`.
uint64_t SplitMix64(uint64_t x);

// The draws of one trial. Built on std::mt19937_64, whose output the standard
// fixes, and on arithmetic of our own rather than the standard distributions,
// whose algorithms differ between standard libraries.
class TrialRandom {
 public:
  // The stream of trial `index` of a sweep seeded with `seed` (SamplePoint's).
  TrialRandom(uint64_t seed, int64_t index);
  // Another independent stream of the same trial, told apart by `stream`.
  TrialRandom(uint64_t seed, int64_t index, uint64_t stream);

  // Returns the next 64 random bits.
  uint64_t Bits() { return engine_(); }

  // In [0, 1).
  double Uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

  // In [lo, hi].
  double Uniform(double lo, double hi);

  // Standard normal (Box-Muller).
  double Normal();

  // In [lo, hi], unbiased (rejection sampling).
  int64_t UniformInt(int64_t lo, int64_t hi);

  // An index into `weights` (which sum to 1), or uniform over n when empty.
  size_t Choose(const std::vector<double>& weights, size_t n);

 private:
  std::mt19937_64 engine_;
};

// Returns `value` rounded to 12 significant digits (0.3, not
// 0.30000000000000004).
double RoundSignificant(double value);

// Returns `value` as a JSON integer when `integer` and it fits an int64, else
// as a double rounded by RoundSignificant.
nlohmann::json Number(double value, bool integer);

// Returns round(x / q) * q (numpy's half-to-even rounding) as Number does.
nlohmann::json Quantize(double x, const Parameter& param);

// Sets `root` at the nested key `path` to `value`, creating objects on the way.
void SetPath(nlohmann::json& root, const std::vector<std::string>& path,
             nlohmann::json value);

// Returns the value at the nested key `path` of `root`, or nullptr when absent.
const nlohmann::json* GetPath(const nlohmann::json& root,
                              const std::vector<std::string>& path);

// Returns the standard normal CDF at `x`.
double NormalCdf(double x);

// Returns the standard normal quantile at `p` (0 < p < 1; clamped to
// [2^-53, 1 - 2^-53], so the result is finite).
double NormalQuantile(double p);

// Returns whether `param` takes integer cells (int_uniform): FromUnit maps each
// of CellCount(param) equal sub-intervals of [0, 1] to one integer.
bool IsIntegerCells(const Parameter& param);
int64_t CellCount(const Parameter& param);

// Returns the value of `param` at `u` of [0, 1] through its inverse CDF:
// uniform families min + u (max - min), log families on the log scale, normal
// families mu + sigma NormalQuantile(u) (then exp for the log-normal ones), q_
// families quantized as SamplePoint quantizes, int_uniform min + floor(u n).
// Results stay within the ranges SamplePoint documents. Categorical picks the
// value whose cumulative probability interval holds u; constant its value.
nlohmann::json FromUnit(const Parameter& param, double u);

// Returns where `value` lies in [0, 1] under `param`'s CDF: the inverse of
// FromUnit, clamped to [0, 1] (an int_uniform integer maps to the centre of its
// cell). Returns nullopt for a value that is not a number, and for
// categorical and constant parameters.
std::optional<double> ToUnit(const Parameter& param,
                             const nlohmann::json& value);

}  // namespace sweep::spec::internal

#endif  // SWEEP_SWEEPS_INTERNAL_SAMPLING_H_
