// Tests of the search methods (sweeps/sampler.h): the scrambled Sobol' sequence
// and TPE, with fixed seeds so that every run sees the same numbers. The
// benchmark tests run whole sequential sweeps on standard test functions and
// compare TPE with random search.
#include "sweeps/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <numbers>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sweeps/internal/sobol.h"
#include "sweeps/spec.h"

namespace sweep::spec {
namespace {

using ::nlohmann::json;

SweepSpec Parse(const std::string& yaml) {
  absl::StatusOr<SweepSpec> spec = ParseSpec(yaml, "x.yaml");
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *std::move(spec) : SweepSpec{};
}

// Every distribution, a nested block and a constant.
constexpr char kEveryDistribution[] = R"(
metric: {name: loss, goal: minimize}
parameters:
  constant: {value: x}
  categorical: {values: [a, b, c]}
  int_uniform: {min: -2, max: 3}
  uniform: {min: 0.5, max: 1.5}
  q_uniform: {distribution: q_uniform, min: 0, max: 1, q: 0.25}
  log_uniform: {distribution: log_uniform, min: -11, max: -2}
  log_uniform_values: {distribution: log_uniform_values, min: 1e-5, max: 1e-1}
  q_log_uniform_values: {distribution: q_log_uniform_values, min: 8, max: 1024, q: 8}
  inv_log_uniform: {distribution: inv_log_uniform, min: 1, max: 3}
  inv_log_uniform_values: {distribution: inv_log_uniform_values, min: 0.5, max: 2}
  normal: {distribution: normal, mu: 1, sigma: 0.5}
  q_normal: {distribution: q_normal, mu: 10, sigma: 3, q: 2}
  log_normal: {distribution: log_normal, mu: 0, sigma: 0.5}
  q_log_normal: {distribution: q_log_normal, mu: 2, sigma: 1, q: 0.5}
  nested:
    parameters:
      depth: {values: [1, 2]}
      rate: {min: 0.0, max: 1.0}
      fixed: {value: 7}
)";

SweepSpec EveryDistribution(const std::string& method) {
  return Parse("method: " + method + kEveryDistribution);
}

// Checks that `p` holds every parameter of kEveryDistribution within its range.
void ExpectWithinBounds(const json& p) {
  SCOPED_TRACE(p.dump());
  EXPECT_EQ(p["constant"], "x");
  const std::string c = p["categorical"].get<std::string>();
  EXPECT_TRUE(c == "a" || c == "b" || c == "c");
  ASSERT_TRUE(p["int_uniform"].is_number_integer());
  EXPECT_GE(p["int_uniform"].get<int64_t>(), -2);
  EXPECT_LE(p["int_uniform"].get<int64_t>(), 3);
  EXPECT_GE(p["uniform"].get<double>(), 0.5);
  EXPECT_LE(p["uniform"].get<double>(), 1.5);
  const double qu = p["q_uniform"].get<double>();
  EXPECT_GE(qu, 0);
  EXPECT_LE(qu, 1);
  EXPECT_DOUBLE_EQ(std::round(qu / 0.25) * 0.25, qu);
  EXPECT_GE(p["log_uniform"].get<double>(), std::exp(-11));
  EXPECT_LE(p["log_uniform"].get<double>(), std::exp(-2));
  EXPECT_GE(p["log_uniform_values"].get<double>(), 1e-5);
  EXPECT_LE(p["log_uniform_values"].get<double>(), 1e-1);
  ASSERT_TRUE(p["q_log_uniform_values"].is_number_integer());
  EXPECT_EQ(p["q_log_uniform_values"].get<int64_t>() % 8, 0);
  EXPECT_GE(p["q_log_uniform_values"].get<int64_t>(), 8);
  EXPECT_LE(p["q_log_uniform_values"].get<int64_t>(), 1024);
  EXPECT_GE(p["inv_log_uniform"].get<double>(), std::exp(-3));
  EXPECT_LE(p["inv_log_uniform"].get<double>(), std::exp(-1));
  EXPECT_GE(p["inv_log_uniform_values"].get<double>(), 0.5);
  EXPECT_LE(p["inv_log_uniform_values"].get<double>(), 2);
  EXPECT_TRUE(std::isfinite(p["normal"].get<double>()));
  ASSERT_TRUE(p["q_normal"].is_number_integer());
  EXPECT_EQ(p["q_normal"].get<int64_t>() % 2, 0);
  EXPECT_GT(p["log_normal"].get<double>(), 0);
  const double qln = p["q_log_normal"].get<double>();
  EXPECT_GE(qln, 0);
  EXPECT_DOUBLE_EQ(std::round(qln / 0.5) * 0.5, qln);
  const int depth = p["nested"]["depth"].get<int>();
  EXPECT_TRUE(depth == 1 || depth == 2);
  EXPECT_GE(p["nested"]["rate"].get<double>(), 0);
  EXPECT_LE(p["nested"]["rate"].get<double>(), 1);
  EXPECT_EQ(p["nested"]["fixed"], 7);
}

// Returns the sorted key paths of the objects in `j` ("nested.depth").
std::set<std::string> Shape(const json& j, const std::string& prefix = "") {
  std::set<std::string> keys;
  for (const auto& item : j.items()) {
    const std::string key = prefix + item.key();
    if (item.value().is_object()) {
      const std::set<std::string> inner = Shape(item.value(), key + ".");
      keys.insert(inner.begin(), inner.end());
    } else {
      keys.insert(key);
    }
  }
  return keys;
}

// ---------------------------------------------------------------------------
// Sobol'

TEST(SobolTest, UnscrambledPointsAreJoeAndKuosSequenceInGrayCodeOrder) {
  const std::vector<std::vector<double>> expected = {{0, 0, 0},
                                                     {0.5, 0.5, 0.5},
                                                     {0.75, 0.25, 0.25},
                                                     {0.25, 0.75, 0.75},
                                                     {0.375, 0.375, 0.625},
                                                     {0.875, 0.875, 0.125},
                                                     {0.625, 0.125, 0.875},
                                                     {0.125, 0.625, 0.375},
                                                     {0.1875, 0.3125, 0.9375},
                                                     {0.6875, 0.8125, 0.4375}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(internal::SobolPoint(i, 3, std::nullopt), expected[i])
        << "point " << i;
  }
}

TEST(SobolTest, EveryTableDimensionPutsOnePointInEachStratum) {
  // Each coordinate of the first 2^m points of a Sobol' sequence is a
  // (0, m, 1)-net: one point in each [k/2^m, (k+1)/2^m). A direction number
  // typed wrong in the table breaks this.
  constexpr int kM = 9;
  for (std::optional<uint64_t> seed :
       {std::optional<uint64_t>(), std::optional<uint64_t>(77)}) {
    std::vector<std::vector<int>> hits(internal::kSobolDimensions,
                                       std::vector<int>(1 << kM, 0));
    for (uint64_t i = 0; i < (1u << kM); ++i) {
      const std::vector<double> point =
          internal::SobolPoint(i, internal::kSobolDimensions, seed);
      for (int d = 0; d < internal::kSobolDimensions; ++d) {
        ++hits[d][static_cast<int>(point[d] * (1 << kM))];
      }
    }
    for (int d = 0; d < internal::kSobolDimensions; ++d) {
      EXPECT_THAT(hits[d], ::testing::Each(1)) << "dimension " << d + 1;
    }
  }
}

TEST(SobolTest, FirstSixtyFourSuggestionsFillEveryElementaryBoxOnce) {
  // Scrambling keeps the net property: for every box shape 2^-i x 2^-j with
  // i + j = 6, each of the 64 boxes holds exactly one of the first 64 points.
  // 64 random points leave boxes empty.
  const SweepSpec sobol = Parse(
      "method: sobol\nparameters:\n  x: {min: 0.0, max: 1.0}\n"
      "  y: {min: 0.0, max: 1.0}\n");
  SweepSpec random = sobol;
  random.method = Method::kRandom;
  auto empty_boxes = [](const SweepSpec& spec, uint64_t seed) {
    int empty = 0;
    for (int i = 0; i <= 6; ++i) {
      std::vector<int> count(64, 0);
      for (int64_t t = 0; t < 64; ++t) {
        const json p = Suggest(spec, seed, t, {}, {});
        const int bx = static_cast<int>(p["x"].get<double>() * (1 << i));
        const int by = static_cast<int>(p["y"].get<double>() * (1 << (6 - i)));
        ++count[(bx << (6 - i)) | by];
      }
      empty += static_cast<int>(std::count(count.begin(), count.end(), 0));
    }
    return empty;
  };
  for (uint64_t seed : {1, 2, 3, 99}) {
    EXPECT_EQ(empty_boxes(sobol, seed), 0) << "seed " << seed;
    EXPECT_GT(empty_boxes(random, seed), 20) << "seed " << seed;
  }
}

// L2-star discrepancy of points in [0,1]^d (Warnock's formula): how far the
// share of points in boxes anchored at the origin is from the boxes' volume.
double L2StarDiscrepancy(const std::vector<std::vector<double>>& points) {
  const double n = static_cast<double>(points.size());
  const size_t d = points[0].size();
  double single = 0;
  for (const auto& x : points) {
    double prod = 1;
    for (size_t k = 0; k < d; ++k) prod *= (1 - x[k] * x[k]) / 2;
    single += prod;
  }
  double pairs = 0;
  for (const auto& x : points) {
    for (const auto& y : points) {
      double prod = 1;
      for (size_t k = 0; k < d; ++k) prod *= 1 - std::max(x[k], y[k]);
      pairs += prod;
    }
  }
  return std::sqrt(std::pow(3.0, -static_cast<double>(d)) - 2 * single / n +
                   pairs / (n * n));
}

TEST(SobolTest, CoversASixDimensionalCubeMoreEvenlyThanRandomSearch) {
  std::string yaml = "method: sobol\nparameters:\n";
  for (int k = 0; k < 6; ++k) {
    yaml += "  x" + std::to_string(k) + ": {min: 0.0, max: 1.0}\n";
  }
  const SweepSpec sobol = Parse(yaml);
  SweepSpec random = sobol;
  random.method = Method::kRandom;
  auto discrepancy = [](const SweepSpec& spec, uint64_t seed) {
    std::vector<std::vector<double>> points;
    for (int64_t t = 0; t < 128; ++t) {
      const json p = Suggest(spec, seed, t, {}, {});
      std::vector<double> x;
      for (int k = 0; k < 6; ++k) {
        x.push_back(p["x" + std::to_string(k)].get<double>());
      }
      points.push_back(x);
    }
    return L2StarDiscrepancy(points);
  };
  double worst_sobol = 0, best_random = 1;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    worst_sobol = std::max(worst_sobol, discrepancy(sobol, seed));
    best_random = std::min(best_random, discrepancy(random, seed));
  }
  std::cout << "L2-star discrepancy of 128 points in 6-D over 10 seeds: sobol "
               "worst "
            << worst_sobol << ", random best " << best_random << "\n";
  EXPECT_LT(worst_sobol, best_random);
}

TEST(SobolTest, SuggestionsStayWithinBoundsAndArePureFunctionsOfSeedAndIndex) {
  const SweepSpec spec = EveryDistribution("sobol");
  for (int64_t t = 0; t < 512; ++t) {
    const json p = Suggest(spec, 5, t, {}, {});
    ExpectWithinBounds(p);
    EXPECT_EQ(p, Suggest(spec, 5, t, {}, {}));
    EXPECT_EQ(Shape(p), Shape(SamplePoint(spec, 5, t)));
  }
  EXPECT_NE(Suggest(spec, 5, 0, {}, {}), Suggest(spec, 6, 0, {}, {}));
  EXPECT_NE(Suggest(spec, 5, 0, {}, {}), Suggest(spec, 5, 1, {}, {}));
}

TEST(SobolTest, CategoricalAndIntegerParametersGetTheirExactShares) {
  // One dimension of 64 Sobol' points is stratified into 64 equal intervals,
  // so the shares of the categories and integers are exact.
  const SweepSpec spec = Parse(R"(method: sobol
parameters:
  c: {values: [a, b, c], probabilities: [0.5, 0.25, 0.25]}
  n: {min: 1, max: 4}
)");
  std::map<std::string, int> categories;
  std::map<int64_t, int> integers;
  for (int64_t t = 0; t < 64; ++t) {
    const json p = Suggest(spec, 11, t, {}, {});
    ++categories[p["c"].get<std::string>()];
    ++integers[p["n"].get<int64_t>()];
  }
  EXPECT_EQ(categories,
            (std::map<std::string, int>{{"a", 32}, {"b", 16}, {"c", 16}}));
  EXPECT_EQ(integers,
            (std::map<int64_t, int>{{1, 16}, {2, 16}, {3, 16}, {4, 16}}));
}

TEST(SobolTest, ParametersBeyondTheTableAreDrawnAtRandomWithAWarning) {
  std::string yaml =
      "method: sobol\nprogram: train.py\nparameters:\n  k: {value: 1}\n";
  for (int k = 0; k < internal::kSobolDimensions + 2; ++k) {
    yaml += "  p" + std::to_string(k) + ": {min: 0.0, max: 1.0}\n";
  }
  const SweepSpec spec = Parse(yaml);
  EXPECT_THAT(spec.warnings,
              ::testing::ElementsAre(
                  "x.yaml:1:9: method: sobol covers the first 128 parameters "
                  "that are not constants; p128 and the ones after it are "
                  "drawn at random"));
  std::set<double> last;
  for (int64_t t = 0; t < 20; ++t) {
    const json p = Suggest(spec, 3, t, {}, {});
    ASSERT_EQ(p.size(), static_cast<size_t>(internal::kSobolDimensions + 3));
    const double x = p["p129"].get<double>();
    EXPECT_GE(x, 0);
    EXPECT_LE(x, 1);
    last.insert(x);
  }
  EXPECT_EQ(last.size(), 20u);
}

// ---------------------------------------------------------------------------
// Methods other than TPE ignore the history

TEST(SuggestTest, RandomIsSamplePointAndGridIsGridPoint) {
  const SweepSpec random = EveryDistribution("random");
  const std::vector<Observation> history = {{SamplePoint(random, 1, 0), 1.0}};
  for (int64_t t = 0; t < 5; ++t) {
    EXPECT_EQ(Suggest(random, 1, t, history, {}), SamplePoint(random, 1, t));
  }
  const SweepSpec grid = Parse(
      "method: grid\nparameters:\n  a: {values: [1, 2]}\n  b: {values: [x, "
      "y, z]}\n");
  for (int64_t t = 0; t < 6; ++t) {
    EXPECT_EQ(Suggest(grid, 1, t, {}, {}), GridPoint(grid, t));
  }
}

// ---------------------------------------------------------------------------
// TPE

// One sweep run trial by trial, each suggestion seeing every earlier result.
struct Run {
  std::vector<Observation> history;
  double best = INFINITY;
};

// Runs `trials` sequential trials of `spec`, scoring each with `objective` (to
// be minimized; a maximize spec gets its negation reported).
Run RunSweep(const SweepSpec& spec, uint64_t seed, int trials,
             const std::function<double(const json&, int64_t)>& objective) {
  const bool maximize = spec.metric && spec.metric->goal == Goal::kMaximize;
  Run run;
  for (int64_t t = 0; t < trials; ++t) {
    json params = Suggest(spec, seed, t, run.history, {});
    const double loss = objective(params, t);
    run.best = std::min(run.best, loss);
    run.history.push_back({std::move(params), maximize ? -loss : loss});
  }
  return run;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// Median over 20 seeds of the best value after 50 trials, for TPE and random.
std::pair<double, double> CompareWithRandom(
    const SweepSpec& bayes,
    const std::function<double(const json&, int64_t)>& objective) {
  SweepSpec random = bayes;
  random.method = Method::kRandom;
  std::vector<double> tpe_best, random_best;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    tpe_best.push_back(RunSweep(bayes, seed, 50, objective).best);
    random_best.push_back(RunSweep(random, seed, 50, objective).best);
  }
  return {Median(tpe_best), Median(random_best)};
}

double Branin(const json& p) {
  const double x1 = p["x1"].get<double>();
  const double x2 = p["x2"].get<double>();
  constexpr double kPi = std::numbers::pi;
  const double b = 5.1 / (4 * kPi * kPi), c = 5 / kPi, t = 1 / (8 * kPi);
  const double r = x2 - b * x1 * x1 + c * x1 - 6;
  return r * r + 10 * (1 - t) * std::cos(x1) + 10;
}

double Hartmann6(const json& p) {
  static constexpr double kAlpha[4] = {1.0, 1.2, 3.0, 3.2};
  static constexpr double kA[4][6] = {{10, 3, 17, 3.5, 1.7, 8},
                                      {0.05, 10, 17, 0.1, 8, 14},
                                      {3, 3.5, 1.7, 10, 17, 8},
                                      {17, 8, 0.05, 10, 0.1, 14}};
  static constexpr double kP[4][6] = {
      {0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886},
      {0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991},
      {0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650},
      {0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381}};
  double sum = 0;
  for (int i = 0; i < 4; ++i) {
    double inner = 0;
    for (int j = 0; j < 6; ++j) {
      const double x = p["x" + std::to_string(j)].get<double>();
      inner += kA[i][j] * (x - kP[i][j]) * (x - kP[i][j]);
    }
    sum += kAlpha[i] * std::exp(-inner);
  }
  return -sum;
}

TEST(TpeTest, BeatsRandomSearchOnBranin) {
  const SweepSpec spec = Parse(R"(method: bayes
metric: {name: branin, goal: minimize}
parameters:
  x1: {min: -5.0, max: 10.0}
  x2: {min: 0.0, max: 15.0}
)");
  const auto [tpe, random] =
      CompareWithRandom(spec, [](const json& p, int64_t) { return Branin(p); });
  std::cout << "Branin (minimum 0.397887), median best of 50 trials over 20 "
               "seeds: TPE "
            << tpe << ", random " << random << "\n";
  EXPECT_LT(tpe, random);
}

TEST(TpeTest, BeatsRandomSearchOnHartmann6WhenMaximizing) {
  // Reported as the positive sum, with goal: maximize.
  std::string yaml =
      "method: bayes\nmetric: {name: h6, goal: maximize}\n"
      "parameters:\n";
  for (int j = 0; j < 6; ++j) {
    yaml += "  x" + std::to_string(j) + ": {min: 0.0, max: 1.0}\n";
  }
  const auto [tpe, random] = CompareWithRandom(
      Parse(yaml), [](const json& p, int64_t) { return Hartmann6(p); });
  std::cout << "Hartmann-6 (minimum -3.32237), median best of 50 trials over "
               "20 seeds: TPE "
            << tpe << ", random " << random << "\n";
  EXPECT_LT(tpe, random);
}

TEST(TpeTest, BeatsRandomSearchOnANoisyQuadraticOverMixedTypes) {
  // A log-scaled learning rate, a float, an integer and a categorical, two of
  // them in a nested block; Gaussian noise (sd 0.1) on every evaluation.
  const SweepSpec spec = Parse(R"(method: bayes
metric: {name: loss, goal: minimize}
parameters:
  width: {min: 0.0, max: 10.0}
  layers: {min: 1, max: 16}
  optimizer:
    parameters:
      name: {values: [sgd, adam, rmsprop]}
      lr: {distribution: log_uniform_values, min: 1e-5, max: 1.0}
  epochs: {value: 3}
)");
  auto noisy_quadratic = [](const json& p, int64_t trial) {
    const double lr = std::log10(p["optimizer"]["lr"].get<double>()) + 2;
    const double width = (p["width"].get<double>() - 3.7) / 2;
    const double layers = (p["layers"].get<int64_t>() - 5) / 3.0;
    const std::string name = p["optimizer"]["name"].get<std::string>();
    const double penalty = name == "adam" ? 0 : name == "sgd" ? 1 : 0.5;
    // Deterministic noise from the trial's parameters and number.
    const uint64_t h = std::hash<std::string>{}(p.dump()) ^
                       static_cast<uint64_t>(trial) * 0x9E3779B97F4A7C15ULL;
    const double u1 = ((h >> 11) + 0.5) * 0x1.0p-53;
    const double u2 = ((h * 0xBF58476D1CE4E5B9ULL) >> 11) * 0x1.0p-53;
    const double noise =
        std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
    return lr * lr + width * width + layers * layers + penalty + 0.1 * noise;
  };
  const auto [tpe, random] = CompareWithRandom(spec, noisy_quadratic);
  std::cout << "Noisy quadratic (minimum 0 + noise), median best of 50 trials "
               "over 20 seeds: TPE "
            << tpe << ", random " << random << "\n";
  EXPECT_LT(tpe, random);
}

// A finished history of `n` trials of `spec` (random points) scored by the
// distance of `uniform` from 1.2.
std::vector<Observation> History(const SweepSpec& spec, int n) {
  std::vector<Observation> history;
  for (int64_t t = 0; t < n; ++t) {
    json p = SamplePoint(spec, 99, t);
    const double value = std::abs(p["uniform"].get<double>() - 1.2);
    history.push_back({std::move(p), value});
  }
  return history;
}

TEST(TpeTest, FirstTrialsAreRandomUntilTheStartupTrialsFinished) {
  const SweepSpec spec = EveryDistribution("bayes");
  const std::vector<Observation> history = History(spec, kTpeStartupTrials + 5);
  for (int n = 0; n < kTpeStartupTrials; ++n) {
    const std::vector<Observation> partial(history.begin(),
                                           history.begin() + n);
    // Running trials do not count towards the start-up phase.
    const std::vector<json> running(5, history[0].params);
    EXPECT_EQ(Suggest(spec, 4, n + 5, partial, running),
              SamplePoint(spec, 4, n + 5))
        << n << " finished";
  }
  const std::vector<Observation> enough(history.begin(),
                                        history.begin() + kTpeStartupTrials);
  EXPECT_NE(Suggest(spec, 4, kTpeStartupTrials, enough, {}),
            SamplePoint(spec, 4, kTpeStartupTrials));
}

TEST(TpeTest, StaysRandomWhileEveryFinishedTrialFailed) {
  const SweepSpec spec = EveryDistribution("bayes");
  std::vector<Observation> failed;
  for (int64_t t = 0; t < 20; ++t) {
    failed.push_back({SamplePoint(spec, 1, t), std::nullopt});
  }
  EXPECT_EQ(Suggest(spec, 1, 20, failed, {}), SamplePoint(spec, 1, 20));
}

TEST(TpeTest, SuggestionsStayWithinBoundsAndKeepTheNestedShape) {
  const SweepSpec spec = EveryDistribution("bayes");
  std::vector<Observation> history = History(spec, kTpeStartupTrials);
  for (int64_t t = kTpeStartupTrials; t < 80; ++t) {
    json p = Suggest(spec, 8, t, history, {});
    ExpectWithinBounds(p);
    EXPECT_EQ(Shape(p), Shape(SamplePoint(spec, 8, t)));
    const double value = std::abs(p["uniform"].get<double>() - 1.2) +
                         (p["categorical"] == "b" ? 0 : 0.5);
    history.push_back({std::move(p), value});
  }
  // It learned: the last 20 suggestions are mostly near the optimum.
  int near = 0, b = 0;
  for (size_t i = history.size() - 20; i < history.size(); ++i) {
    near += std::abs(history[i].params["uniform"].get<double>() - 1.2) < 0.15;
    b += history[i].params["categorical"] == "b";
  }
  EXPECT_GE(near, 12);
  EXPECT_GE(b, 12);
}

TEST(TpeTest, SameHistoryGivesTheSameSuggestionAfterARestart) {
  const SweepSpec spec = EveryDistribution("bayes");
  const std::vector<Observation> history = History(spec, 30);
  const std::vector<json> running = {history[3].params, history[7].params};
  const json before = Suggest(spec, 12, 32, history, running);
  // A restarted scheduler reads the parameters back from SQLite as text.
  std::vector<Observation> reloaded;
  for (const Observation& o : history) {
    reloaded.push_back({json::parse(o.params.dump()), o.value});
  }
  std::vector<json> reloaded_running;
  for (const json& r : running)
    reloaded_running.push_back(json::parse(r.dump()));
  EXPECT_EQ(Suggest(spec, 12, 32, reloaded, reloaded_running), before);
  EXPECT_NE(Suggest(spec, 12, 33, history, running), before);
}

TEST(TpeTest, RunningTrialsPushTheNextSuggestionElsewhere) {
  const SweepSpec spec = Parse(R"(method: bayes
metric: {name: loss, goal: minimize}
parameters:
  x: {min: 0.0, max: 1.0}
)");
  std::vector<Observation> history;
  for (int64_t t = 0; t < 30; ++t) {
    const double x = (t + 0.5) / 30;
    history.push_back({{{"x", x}}, std::abs(x - 0.3)});
  }
  // The same trial index (so the same random draws), with and without the
  // point it would suggest already running: a running trial counts as a bad
  // one, so the suggestion moves away from it.
  const json alone = Suggest(spec, 5, 30, history, {});
  const std::vector<json> running(3, alone);
  const json with_running = Suggest(spec, 5, 30, history, running);
  EXPECT_NE(with_running, alone);

  // Eight workers asking one after another, each seeing the others running,
  // get eight different points.
  std::vector<json> parallel;
  std::set<double> xs;
  for (int64_t t = 30; t < 38; ++t) {
    json p = Suggest(spec, 5, t, history, parallel);
    xs.insert(p["x"].get<double>());
    parallel.push_back(std::move(p));
  }
  EXPECT_EQ(xs.size(), 8u);
}

TEST(TpeTest, FailedTrialsCountAsTheWorstValue) {
  const SweepSpec spec = Parse(R"(method: bayes
metric: {name: acc, goal: maximize}
parameters:
  x: {min: 0.0, max: 1.0}
  c: {values: [a, b]}
)");
  std::vector<Observation> failed, worst, dropped;
  for (int64_t t = 0; t < 20; ++t) {
    const double x = (t + 0.5) / 20;
    const json p = {{"x", x}, {"c", t % 2 ? "a" : "b"}};
    const bool fails = x > 0.6;  // trials high in x crash
    const double acc = 1 - std::abs(x - 0.5);
    failed.push_back({p, fails ? std::nullopt : std::optional<double>(acc)});
    worst.push_back({p, fails ? -1e9 : acc});
    if (!fails) dropped.push_back({p, acc});
  }
  for (int64_t index = 20; index < 30; ++index) {
    // Imputed as worst: the same suggestion as reporting the worst value.
    EXPECT_EQ(Suggest(spec, 2, index, failed, {}),
              Suggest(spec, 2, index, worst, {}));
  }
  // Not the same as forgetting them.
  int differ = 0;
  for (int64_t index = 20; index < 30; ++index) {
    differ += Suggest(spec, 2, index, failed, {}) !=
              Suggest(spec, 2, index, dropped, {});
  }
  EXPECT_GT(differ, 0);
}

TEST(TpeTest, MaximizingAMetricIsMinimizingItsNegation) {
  const SweepSpec minimize = Parse(R"(method: bayes
metric: {name: m, goal: minimize}
parameters:
  x: {distribution: log_uniform_values, min: 0.001, max: 10}
  n: {min: 1, max: 8}
)");
  SweepSpec maximize = minimize;
  maximize.metric->goal = Goal::kMaximize;
  std::vector<Observation> low, high;
  for (int64_t t = 0; t < 25; ++t) {
    const json p = SamplePoint(minimize, 3, t);
    const double loss =
        std::abs(std::log(p["x"].get<double>())) + p["n"].get<int64_t>() * 0.1;
    low.push_back({p, loss});
    high.push_back({p, -loss});
  }
  const json suggestion = Suggest(minimize, 3, 25, low, {});
  EXPECT_EQ(Suggest(maximize, 3, 25, high, {}), suggestion);
  EXPECT_NE(Suggest(maximize, 3, 25, low, {}), suggestion);
}

TEST(TpeTest, ObservationsThatDoNotFitTheSpaceAreSkippedNotFatal) {
  // Parameters edited, missing, or of the wrong type (a spec changed between
  // restarts) are left out of the estimates.
  const SweepSpec spec = EveryDistribution("bayes");
  std::vector<Observation> history = History(spec, 20);
  history[0].params.erase("uniform");
  history[1].params["categorical"] = "zzz";
  history[2].params["int_uniform"] = "three";
  history[3].params = json::object();
  history[4].params["nested"] = 5;
  history[5].value = std::nan("");
  ExpectWithinBounds(Suggest(spec, 1, 20, history, {json::object()}));
}

// ---------------------------------------------------------------------------
// Real W&B sweep files

TEST(RealSweepFilesTest,
     EveryValidFileGetsSuggestionsOfItsShapeFromEachMethod) {
  // $SWEEP_SHARED_DIR/wandb-sweeps (see wandb_compat_test.cc): nested blocks,
  // 29 parameters, every distribution that real files use.
  const char* env = std::getenv("SWEEP_SHARED_DIR");
  const std::filesystem::path dir =
      std::filesystem::path(env && *env ? env : SWEEP_SHARED_DIR_DEFAULT) /
      "wandb-sweeps";
  if (!std::filesystem::is_directory(dir)) {
    GTEST_SKIP() << "no W&B sweep files at " << dir;
  }
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    absl::StatusOr<SweepSpec> loaded = LoadSpecFile(entry.path().string());
    if (!loaded.ok()) continue;  // the files invalid for W&B too
    ++files;
    SCOPED_TRACE(entry.path().filename().string());
    SweepSpec spec = *loaded;
    if (!spec.metric) {
      spec.metric = Metric();
      spec.metric->name = "loss";
    }
    for (Method method : {Method::kSobol, Method::kBayes}) {
      spec.method = method;
      std::vector<Observation> history;
      for (int64_t t = 0; t < 15; ++t) {
        json p = Suggest(spec, 21, t, history, {});
        EXPECT_EQ(Shape(p), Shape(SamplePoint(spec, 21, t)));
        if (!spec.program.empty() || !spec.command.empty()) {
          EXPECT_TRUE(BuildCommand(spec, p).ok()) << p.dump();
        }
        const std::optional<double> value =
            t % 4 == 3 ? std::nullopt : std::optional<double>(t % 5);
        history.push_back({std::move(p), value});
      }
    }
  }
  EXPECT_EQ(files, 28);
}

}  // namespace
}  // namespace sweep::spec
