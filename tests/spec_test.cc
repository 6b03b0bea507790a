// Tests of the sweep spec library (sweeps/spec.h): parsing and validation with
// exact messages and positions, grid enumeration, sampling and command
// building.
#include "sweeps/spec.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sweep::spec {
namespace {

using ::nlohmann::json;
using ::testing::ElementsAre;

// Parses `yaml` as "x.yaml", which must succeed.
SweepSpec Parse(const std::string& yaml) {
  absl::StatusOr<SweepSpec> spec = ParseSpec(yaml, "x.yaml");
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *std::move(spec) : SweepSpec{};
}

// Parses `yaml` as "x.yaml", which must fail with InvalidArgument; returns the
// message.
std::string ErrorOf(const std::string& yaml) {
  absl::StatusOr<SweepSpec> spec = ParseSpec(yaml, "x.yaml");
  if (spec.ok()) {
    ADD_FAILURE() << "parsed, but an error was expected";
    return "";
  }
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument)
      << spec.status();
  return std::string(spec.status().message());
}

// Returns the value that `yaml_value` types to, read as `value: <yaml_value>`.
json ConstantValue(const std::string& yaml_value) {
  const SweepSpec spec = Parse(
      "method: random\nparameters:\n  p:\n    value: " + yaml_value + "\n");
  if (spec.parameters.size() != 1) return "<parse failed>";
  return spec.parameters[0].values[0];
}

// A spec with one parameter whose settings are `settings` (indented by four).
std::string OneParameter(const std::string& settings,
                         const std::string& method = "random") {
  return "method: " + method + "\nparameters:\n  p:\n" + settings;
}

std::vector<std::string> Command(const SweepSpec& spec, const json& params) {
  absl::StatusOr<std::vector<std::string>> argv = BuildCommand(spec, params);
  EXPECT_TRUE(argv.ok()) << argv.status();
  return argv.ok() ? *argv : std::vector<std::string>{};
}

// ---------------------------------------------------------------------------
// Parsing: good specs

TEST(ParseSpecTest, MinimalSpecGetsTheDocumentedDefaults) {
  const SweepSpec spec = Parse(R"(method: random
program: train.py
parameters:
  lr:
    values: [0.1, 0.01]
)");
  EXPECT_EQ(spec.file_name, "x.yaml");
  EXPECT_EQ(spec.method, Method::kRandom);
  EXPECT_EQ(spec.program, "train.py");
  EXPECT_TRUE(spec.command.empty());
  EXPECT_FALSE(spec.metric.has_value());
  EXPECT_FALSE(spec.run_cap.has_value());
  EXPECT_EQ(spec.max_concurrent, 0);
  EXPECT_EQ(spec.max_retries, 2);
  EXPECT_FALSE(spec.seed.has_value());
  EXPECT_EQ(spec.resources.gpus_per_trial, 0);
  EXPECT_TRUE(spec.early_terminate.is_null());
  EXPECT_TRUE(spec.warnings.empty());
  ASSERT_EQ(spec.parameters.size(), 1u);
  EXPECT_EQ(spec.parameters[0].path, std::vector<std::string>{"lr"});
  EXPECT_EQ(spec.parameters[0].position.line, 4);
  EXPECT_EQ(spec.parameters[0].position.column, 3);
}

TEST(ParseSpecTest, ReadsEveryTopLevelKeyIncludingSweepsOwn) {
  const SweepSpec spec = Parse(R"(name: lr-sweep
description: learning rates for the small CNN
program: train.py
command:
  - ${env}
  - ${interpreter}
  - ${program}
  - ${args}
method: grid
metric:
  name: val_loss
  goal: maximize
  target: 0.95
parameters:
  lr:
    values: [0.1, 0.01]
run_cap: 10
max_concurrent: 4
max_retries: 0
max_failed_trials: 3
max_duration: 12h
timeout: 5400
seed: 1234
resources:
  gpus_per_trial: 2
)");
  EXPECT_EQ(spec.name, "lr-sweep");
  EXPECT_EQ(spec.description, "learning rates for the small CNN");
  EXPECT_THAT(spec.command,
              ElementsAre("${env}", "${interpreter}", "${program}", "${args}"));
  EXPECT_EQ(spec.method, Method::kGrid);
  ASSERT_TRUE(spec.metric.has_value());
  EXPECT_EQ(spec.metric->name, "val_loss");
  EXPECT_EQ(spec.metric->goal, Goal::kMaximize);
  EXPECT_EQ(spec.metric->target, 0.95);
  EXPECT_EQ(spec.run_cap, 10);
  EXPECT_EQ(spec.max_concurrent, 4);
  EXPECT_EQ(spec.max_retries, 0);
  EXPECT_EQ(spec.max_failed_trials, 3);
  EXPECT_EQ(spec.max_duration_seconds, 12 * 3600.0);
  EXPECT_EQ(spec.trial_timeout_seconds, 5400.0);
  EXPECT_EQ(spec.seed, 1234u);
  EXPECT_EQ(spec.resources.gpus_per_trial, 2);
}

TEST(ParseSpecTest, MetricGoalDefaultsToMinimize) {
  const SweepSpec spec = Parse(R"(method: random
metric:
  name: loss
parameters:
  lr:
    value: 1
)");
  EXPECT_EQ(spec.metric->goal, Goal::kMinimize);
  EXPECT_FALSE(spec.metric->target.has_value());
}

TEST(ParseSpecTest, MaxTrialsIsAnAliasOfRunCap) {
  const SweepSpec spec = Parse(
      "method: random\nmax_trials: 7\nparameters:\n"
      "  a:\n    value: 1\n");
  EXPECT_EQ(spec.run_cap, 7);
}

TEST(ParseSpecTest, EachDistributionKeepsItsSettings) {
  const SweepSpec spec = Parse(R"(method: random
parameters:
  constant: {distribution: constant, value: 5}
  categorical: {distribution: categorical, values: [a, b], probabilities: [0.25, 0.75]}
  int_uniform: {distribution: int_uniform, min: -2, max: 3}
  uniform: {distribution: uniform, min: 0.5, max: 1.5}
  q_uniform: {distribution: q_uniform, min: 0, max: 1, q: 0.25}
  log_uniform: {distribution: log_uniform, min: -11, max: -2}
  log_uniform_values: {distribution: log_uniform_values, min: 1e-5, max: 1e-1}
  q_log_uniform_values: {distribution: q_log_uniform_values, min: 8, max: 1024, q: 8}
  inv_log_uniform: {distribution: inv_log_uniform, min: 1, max: 3}
  inv_log_uniform_values: {distribution: inv_log_uniform_values, min: 0.5, max: 2}
  normal: {distribution: normal, mu: 1, sigma: 0.5}
  q_normal: {distribution: q_normal, mu: 10, sigma: 3, q: 2}
  log_normal: {distribution: log_normal}
  q_log_normal: {distribution: q_log_normal, mu: 2, sigma: 1, q: 0.5}
)");
  ASSERT_EQ(spec.parameters.size(), 14u);
  for (const Parameter& p : spec.parameters) {
    EXPECT_EQ(DistributionName(p.distribution), p.Name());
  }
  const std::vector<Parameter>& p = spec.parameters;
  EXPECT_EQ(p[0].values, std::vector<json>{5});
  EXPECT_EQ(p[1].values, (std::vector<json>{"a", "b"}));
  EXPECT_EQ(p[1].probabilities, (std::vector<double>{0.25, 0.75}));
  EXPECT_EQ(p[2].min, -2);
  EXPECT_EQ(p[2].max, 3);
  EXPECT_TRUE(p[2].integer);
  EXPECT_EQ(p[3].min, 0.5);
  EXPECT_EQ(p[3].max, 1.5);
  EXPECT_EQ(p[4].q, 0.25);
  EXPECT_FALSE(p[4].integer);
  EXPECT_EQ(p[5].min, -11);
  EXPECT_EQ(p[6].min, 1e-5);
  EXPECT_EQ(p[6].max, 0.1);
  EXPECT_EQ(p[7].q, 8);
  EXPECT_TRUE(p[7].integer);
  EXPECT_EQ(p[10].mu, 1);
  EXPECT_EQ(p[10].sigma, 0.5);
  EXPECT_EQ(p[11].q, 2);
  EXPECT_TRUE(p[11].integer);
  EXPECT_EQ(p[12].mu, 0);     // default
  EXPECT_EQ(p[12].sigma, 1);  // default
  EXPECT_FALSE(p[13].integer);
}

TEST(ParseSpecTest, InfersDistributionsTheWayWandbDoes) {
  const SweepSpec spec = Parse(R"(method: random
parameters:
  constant: {value: [accuracy]}
  categorical: {values: [1, 2]}
  int_bounds: {min: 1, max: 64}
  float_bounds: {min: 0.0, max: 2.0}
  mixed_bounds: {min: 0, max: 0.5}
  q_without_q: {distribution: q_uniform, min: 100, max: 500}
)");
  ASSERT_EQ(spec.parameters.size(), 6u);
  EXPECT_EQ(spec.parameters[0].distribution, Distribution::kConstant);
  EXPECT_EQ(spec.parameters[0].values[0], json::parse(R"(["accuracy"])"));
  EXPECT_EQ(spec.parameters[1].distribution, Distribution::kCategorical);
  EXPECT_EQ(spec.parameters[2].distribution, Distribution::kIntUniform);
  EXPECT_EQ(spec.parameters[3].distribution, Distribution::kUniform);
  EXPECT_EQ(spec.parameters[4].distribution, Distribution::kUniform);
  EXPECT_EQ(spec.parameters[5].q, 1);
  EXPECT_TRUE(spec.parameters[5].integer);
}

TEST(ParseSpecTest, NestedParameterBlocksBecomePathComponents) {
  const SweepSpec spec = Parse(R"(method: random
parameters:
  optimizer:
    parameters:
      lr:
        values: [0.1]
      betas:
        parameters:
          beta1: {value: 0.9}
  epochs:
    value: 3
)");
  ASSERT_EQ(spec.parameters.size(), 3u);
  EXPECT_THAT(spec.parameters[0].path, ElementsAre("optimizer", "lr"));
  EXPECT_EQ(spec.parameters[0].Name(), "optimizer.lr");
  EXPECT_THAT(spec.parameters[1].path,
              ElementsAre("optimizer", "betas", "beta1"));
  EXPECT_EQ(spec.parameters[1].position.line, 9);
  EXPECT_EQ(spec.parameters[1].position.column, 11);
  EXPECT_THAT(spec.parameters[2].path, ElementsAre("epochs"));
  EXPECT_EQ(SamplePoint(spec, 1, 0),
            json::parse(R"({"optimizer": {"lr": 0.1, "betas": {"beta1": 0.9}},
                            "epochs": 3})"));
}

TEST(ParseSpecTest, TypesPlainScalarsLikeYaml11WithFloatLeniency) {
  const std::vector<std::pair<std::string, json>> cases = {
      {"1", 1},
      {"-3", -3},
      {"+3", 3},
      {"0", 0},
      {"1.5", 1.5},
      {"1e-5", 1e-5},
      {"1E+3", 1000.0},
      {"6.e-5", 6e-5},
      {"2.0e-5", 2e-5},
      {".5", 0.5},
      {"1.", 1.0},
      {".inf", INFINITY},
      {"-.Inf", -INFINITY},
      {"true", true},
      {"True", true},
      {"TRUE", true},
      {"yes", true},
      {"On", true},
      {"false", false},
      {"False", false},
      {"no", false},
      {"OFF", false},
      {"null", nullptr},
      {"~", nullptr},
      {"", nullptr},
      {"None", "None"},
      {"0x1F", "0x1F"},
      {"007", "007"},
      {"1_000", "1_000"},
      {"1e", "1e"},
      {"70,80,90", "70,80,90"},
      {"99999999999999999999", 1e20},
  };
  for (const auto& [text, expected] : cases) {
    SCOPED_TRACE("value: " + text);
    const json value = ConstantValue(text);
    EXPECT_EQ(value, expected);
    EXPECT_EQ(value.type(), expected.type());
  }
  EXPECT_TRUE(std::isnan(ConstantValue(".nan").get<double>()));
}

TEST(ParseSpecTest, QuotedScalarsAndStrTagsAreAlwaysStrings) {
  EXPECT_EQ(ConstantValue("\"1\""), "1");
  EXPECT_EQ(ConstantValue("'true'"), "true");
  EXPECT_EQ(ConstantValue("\"null\""), "null");
  EXPECT_EQ(ConstantValue("\"\""), "");
  EXPECT_EQ(ConstantValue("!!str 5"), "5");
}

TEST(ParseSpecTest, ExplicitTagsForceTheirType) {
  const json one = ConstantValue("!!float 1");
  EXPECT_TRUE(one.is_number_float());
  EXPECT_EQ(one, 1.0);
  EXPECT_EQ(ConstantValue("!!float 1e-5"), 1e-5);
  EXPECT_EQ(ConstantValue("!!int 7"), 7);
  EXPECT_EQ(ConstantValue("!!bool yes"), true);
  EXPECT_EQ(ConstantValue("!!null x"), nullptr);
}

TEST(ParseSpecTest, ListsAndMappingsAsValuesBecomeJson) {
  const SweepSpec spec = Parse(R"(method: random
parameters:
  net_arch:
    values: [[32,32], [400,300]]
  optim:
    value: {name: adam, betas: [0.9, 0.999], amsgrad: false}
)");
  EXPECT_EQ(spec.parameters[0].values[1], json::parse("[400, 300]"));
  EXPECT_EQ(
      spec.parameters[1].values[0],
      json::parse(
          R"({"name": "adam", "betas": [0.9, 0.999], "amsgrad": false})"));
}

TEST(ParseSpecTest, CrlfLineEndingsUtf8AndNoFinalNewlineParse) {
  const SweepSpec spec = Parse(
      "# r\xc3\xa9glage \xe2\x80\x93 sweep\r\nmethod: grid\r\nparameters:\r\n"
      "  opt:\r\n    values: [adam, \"sgd \xe2\x9c\x93\"]");
  ASSERT_EQ(spec.parameters.size(), 1u);
  EXPECT_EQ(spec.parameters[0].values,
            (std::vector<json>{"adam", "sgd \xe2\x9c\x93"}));
  EXPECT_EQ(spec.parameters[0].position.line, 4);
}

TEST(ParseSpecTest, ByteOrderMarkIsSkipped) {
  const SweepSpec spec =
      Parse("\xef\xbb\xbfmethod: random\nparameters:\n  a: {value: 1}\n");
  EXPECT_EQ(spec.method, Method::kRandom);
}

TEST(ParseSpecTest, AnchorsAndAliasesAreExpanded) {
  const SweepSpec spec = Parse(R"(method: random
parameters:
  a: &shared
    values: [1, 2]
  b: *shared
)");
  ASSERT_EQ(spec.parameters.size(), 2u);
  EXPECT_EQ(spec.parameters[1].values, (std::vector<json>{1, 2}));
}

TEST(ParseSpecTest, EarlyTerminateIsKeptAsTypedJson) {
  const SweepSpec spec = Parse(R"(method: random
parameters:
  a: {value: 1}
early_terminate:
  type: hyperband
  min_iter: 3
  eta: 2
  strict: true
)");
  EXPECT_EQ(spec.early_terminate,
            json::parse(R"({"type": "hyperband", "min_iter": 3, "eta": 2,
                            "strict": true})"));
  EXPECT_EQ(spec.early_stop.type, EarlyTerminate::Type::kHyperband);
  EXPECT_EQ(spec.early_stop.min_iter, 3);
  EXPECT_EQ(spec.early_stop.max_iter, 0);
  EXPECT_EQ(spec.early_stop.eta, 2);
  EXPECT_EQ(spec.early_stop.s, 0);
  EXPECT_TRUE(spec.early_stop.strict);
}

TEST(ParseSpecTest, WithoutEarlyTerminateNothingIsStopped) {
  const SweepSpec spec =
      Parse("method: random\nparameters:\n  a: {value: 1}\n");
  EXPECT_EQ(spec.early_stop.type, EarlyTerminate::Type::kNone);
  EXPECT_TRUE(spec.early_terminate.is_null());
}

TEST(ParseSpecTest, HyperbandWithMaxIterKeepsItsBracketsAndEtaDefaultsToThree) {
  const SweepSpec spec = Parse(R"(method: grid
program: train.py
parameters:
  a: {values: [1, 2]}
early_terminate: {type: hyperband, max_iter: 27, s: 2}
)");
  EXPECT_EQ(spec.early_stop.type, EarlyTerminate::Type::kHyperband);
  EXPECT_EQ(spec.early_stop.min_iter, 0);
  EXPECT_EQ(spec.early_stop.max_iter, 27);
  EXPECT_EQ(spec.early_stop.s, 2);
  EXPECT_EQ(spec.early_stop.eta, 3);
  EXPECT_FALSE(spec.early_stop.strict);
  EXPECT_TRUE(spec.warnings.empty());
}

TEST(ParseSpecTest, AshaTakesMinIterOrGraceMaxIterAndEta) {
  const SweepSpec spec = Parse(R"(method: random
parameters:
  a: {value: 1}
early_terminate:
  type: asha
  min_iter: 1
  max_iter: 27
  eta: 3
)");
  EXPECT_EQ(spec.early_stop.type, EarlyTerminate::Type::kAsha);
  EXPECT_EQ(spec.early_stop.min_iter, 1);
  EXPECT_EQ(spec.early_stop.max_iter, 27);
  EXPECT_EQ(spec.early_stop.eta, 3);
  EXPECT_EQ(spec.early_terminate,
            json::parse(R"({"type": "asha", "min_iter": 1, "max_iter": 27,
                            "eta": 3})"));

  const SweepSpec grace = Parse(
      "method: random\nparameters:\n  a: {value: 1}\n"
      "early_terminate: {type: asha, grace: 2}\n");
  EXPECT_EQ(grace.early_stop.type, EarlyTerminate::Type::kAsha);
  EXPECT_EQ(grace.early_stop.min_iter, 2);
  EXPECT_EQ(grace.early_stop.max_iter, 0);
  EXPECT_EQ(grace.early_stop.eta, 3);
}

TEST(ParseSpecTest, MedianDefaultsToStepOneAndThreeOtherTrials) {
  const SweepSpec defaults = Parse(
      "method: random\nparameters:\n  a: {value: 1}\n"
      "early_terminate: {type: median}\n");
  EXPECT_EQ(defaults.early_stop.type, EarlyTerminate::Type::kMedian);
  EXPECT_EQ(defaults.early_stop.min_iter, 1);
  EXPECT_EQ(defaults.early_stop.min_trials, 3);
  EXPECT_EQ(defaults.early_terminate, json::parse(R"({"type": "median"})"));

  const SweepSpec set = Parse(
      "method: random\nparameters:\n  a: {value: 1}\n"
      "early_terminate: {type: median, min_iter: 5, min_trials: 10}\n");
  EXPECT_EQ(set.early_stop.min_iter, 5);
  EXPECT_EQ(set.early_stop.min_trials, 10);
}

TEST(ParseSpecTest, SobolIsAMethodAndNeedsNoMetric) {
  const SweepSpec spec = Parse(
      "method: sobol\nprogram: t.py\nparameters:\n  a: {min: 0.0, max: 1.0}\n");
  EXPECT_EQ(spec.method, Method::kSobol);
  EXPECT_TRUE(spec.warnings.empty());
  EXPECT_EQ(TrialBudget(spec), std::nullopt);
}

TEST(ParseSpecTest, BayesAndEarlyTerminateNoLongerWarn) {
  const SweepSpec spec = Parse(R"(method: bayes
program: train.py
metric: {name: loss}
early_terminate: {type: hyperband, min_iter: 3}
parameters:
  a: {min: 0.0, max: 1.0}
)");
  EXPECT_TRUE(spec.warnings.empty()) << spec.warnings[0];
}

TEST(ParseSpecTest, DurationsAreSecondsOrNumbersWithUnits) {
  auto seconds = [](const std::string& text) {
    const SweepSpec spec = Parse(
        "method: random\nparameters:\n  a: {value: 1}\nmax_duration: " + text +
        "\n");
    return spec.max_duration_seconds.value_or(-1);
  };
  EXPECT_EQ(seconds("90"), 90);
  EXPECT_EQ(seconds("2.5"), 2.5);
  EXPECT_EQ(seconds("90s"), 90);
  EXPECT_EQ(seconds("30m"), 1800);
  EXPECT_EQ(seconds("2h"), 7200);
  EXPECT_EQ(seconds("1h30m"), 5400);
  EXPECT_EQ(seconds("1d2h3m4s"), 86400 + 7200 + 180 + 4);
  EXPECT_EQ(seconds("1.5h"), 5400);
  EXPECT_EQ(seconds("\"45m\""), 2700);
  const SweepSpec timeout =
      Parse("method: random\nparameters:\n  a: {value: 1}\ntimeout: 20m\n");
  EXPECT_EQ(timeout.trial_timeout_seconds, 1200);
  EXPECT_EQ(timeout.max_duration_seconds, std::nullopt);
  EXPECT_EQ(timeout.max_failed_trials, std::nullopt);
}

TEST(ParseSpecTest, WarningsComeInFileOrderWithPositions) {
  const SweepSpec spec = Parse(R"(project: p
entity: e
method: bayes
metric: {name: loss}
early_terminate: {type: hyperband, max_iter: 27, s: 2}
command: [python3, run.py]
parameters:
  a: {min: 0.0, max: 1.0}
)");
  EXPECT_THAT(
      spec.warnings,
      ElementsAre(
          "x.yaml:1:1: project: W&B's project; accepted for compatibility and "
          "ignored",
          "x.yaml:2:1: entity: W&B's entity; accepted for compatibility and "
          "ignored",
          "x.yaml:6:1: command: has no ${args}, ${args_no_hyphens}, "
          "${args_no_boolean_flags} or ${args_json}; trials get their "
          "parameters only from the SWEEP_PARAMS environment variable"));
}

TEST(ParseSpecTest, SpecWithNeitherProgramNorCommandParsesWithAWarning) {
  const SweepSpec spec =
      Parse("\nmethod: random\nparameters:\n  a: {value: 1}\n");
  EXPECT_THAT(spec.warnings,
              ElementsAre("x.yaml:2:1: neither program nor command is set, so "
                          "trials have nothing to run; add program: (W&B's "
                          "default command runs it) or command:"));
  const absl::StatusOr<std::vector<std::string>> argv =
      BuildCommand(spec, json{{"a", 1}});
  EXPECT_EQ(argv.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(argv.status().message()),
            "x.yaml: command: the default command (${env} ${interpreter} "
            "${program} ${args}) needs program, which is not set");
}

TEST(ParseSpecTest, NamesEnumsTheWayTheSpecSpellsThem) {
  EXPECT_EQ(MethodName(Method::kGrid), "grid");
  EXPECT_EQ(MethodName(Method::kRandom), "random");
  EXPECT_EQ(MethodName(Method::kBayes), "bayes");
  EXPECT_EQ(MethodName(Method::kSobol), "sobol");
  EXPECT_EQ(GoalName(Goal::kMinimize), "minimize");
  EXPECT_EQ(GoalName(Goal::kMaximize), "maximize");
  EXPECT_EQ(DistributionName(Distribution::kQLogUniformValues),
            "q_log_uniform_values");
}

TEST(ParseSpecTest, EveryMethodIsReadBackFromItsOwnName) {
  for (Method m : kMethods) {
    EXPECT_EQ(MethodNamed(MethodName(m)), m) << MethodName(m);
    const SweepSpec spec = Parse(absl::StrCat(
        "method: ", std::string(MethodName(m)),
        "\nprogram: t.py\nmetric: {name: loss}\nparameters:\n  a: {values: [1, 2]}\n"));
    EXPECT_EQ(spec.method, m) << MethodName(m);
  }
  EXPECT_EQ(MethodNamed("Grid"), std::nullopt);
  EXPECT_EQ(MethodNamed("hyperopt"), std::nullopt);
  EXPECT_EQ(MethodNamed(""), std::nullopt);
  EXPECT_EQ(MethodNames(), "grid, random, bayes, sobol");
}

TEST(MetricRuleTest, TargetIsReachedAtOrBeyondItInTheGoalsDirection) {
  Metric max{.name = "acc", .goal = Goal::kMaximize, .target = 0.9};
  EXPECT_TRUE(ReachedTarget(max, 0.9));
  EXPECT_TRUE(ReachedTarget(max, 0.95));
  EXPECT_FALSE(ReachedTarget(max, 0.89));
  Metric min{.name = "loss", .goal = Goal::kMinimize, .target = 0.1};
  EXPECT_TRUE(ReachedTarget(min, 0.1));
  EXPECT_TRUE(ReachedTarget(min, -3));
  EXPECT_FALSE(ReachedTarget(min, 0.11));
  EXPECT_FALSE(ReachedTarget(min, std::nan("")));
  EXPECT_FALSE(ReachedTarget(max, std::nan("")));
  Metric none{.name = "loss", .goal = Goal::kMinimize, .target = std::nullopt};
  EXPECT_FALSE(ReachedTarget(none, -1e300));
}

TEST(MetricRuleTest, BetterMeansLargerWhenMaximizingAndSmallerWhenMinimizing) {
  EXPECT_TRUE(IsBetter(Goal::kMaximize, 2, 1));
  EXPECT_FALSE(IsBetter(Goal::kMaximize, 1, 2));
  EXPECT_FALSE(IsBetter(Goal::kMaximize, 1, 1));
  EXPECT_TRUE(IsBetter(Goal::kMinimize, 1, 2));
  EXPECT_FALSE(IsBetter(Goal::kMinimize, 2, 1));
  EXPECT_FALSE(IsBetter(Goal::kMinimize, 1, 1));
  EXPECT_FALSE(IsBetter(Goal::kMinimize, std::nan(""), 1));
  EXPECT_FALSE(IsBetter(Goal::kMaximize, 1, std::nan("")));
}

TEST(ResourcesTest, GpuShareIsTheTrialsGpusDividedAmongTheTrialsSharingOne) {
  Resources r;
  EXPECT_EQ(GpuShare(r), 1);  // nothing asked: a whole GPU when on a GPU slot
  r.gpus_per_trial = 1;
  r.trials_per_gpu = 4;
  EXPECT_EQ(GpuShare(r), 0.25);
  r.trials_per_gpu = 0;
  r.gpu_memory_mib = 4096;  // packed by memory: how many share is not known
  EXPECT_EQ(GpuShare(r), 1);
  r.gpus_per_trial = 3;
  EXPECT_EQ(GpuShare(r), 3);
  const SweepSpec spec = Parse(
      "method: random\nprogram: t.py\nparameters:\n  a: {values: [1]}\n"
      "resources: {gpus_per_trial: 1, trials_per_gpu: 2}\n");
  EXPECT_EQ(GpuShare(spec.resources), 0.5);
}

// ---------------------------------------------------------------------------
// Parsing: bad specs, each with its exact message

TEST(ParseSpecErrorTest, MalformedYamlGivesYamlCppsMessageAndPosition) {
  EXPECT_EQ(ErrorOf("method: random\nparameters: [1\nprogram: x\n"),
            "x.yaml:3:8: invalid YAML: end of sequence flow not found");
  EXPECT_EQ(
      ErrorOf("method: random\n\tparameters: 1\n"),
      "x.yaml:2:1: invalid YAML: illegal tab when looking for indentation");
}

TEST(ParseSpecErrorTest, EmptyFileOrCommentsOnlyIsAnErrorAtTheStart) {
  const std::string expected =
      "x.yaml:1:1: the file holds no sweep spec; expected a mapping with at "
      "least method and parameters";
  EXPECT_EQ(ErrorOf(""), expected);
  EXPECT_EQ(ErrorOf("# nothing here\n\n"), expected);
}

TEST(ParseSpecErrorTest, TopLevelThatIsNotAMappingIsAnErrorAtTheStart) {
  EXPECT_EQ(ErrorOf("- method\n- grid\n"),
            "x.yaml:1:1: expected a mapping of sweep keys (method, parameters, "
            "...) at the top level, got a list");
  EXPECT_EQ(ErrorOf("hello"),
            "x.yaml:1:1: expected a mapping of sweep keys (method, parameters, "
            "...) at the top level, got \"hello\"");
}

TEST(ParseSpecErrorTest, AFileThatIsNotUtf8IsRefusedAtItsFirstBadByte) {
  EXPECT_EQ(ErrorOf("method: gr\xffid\nparameters:\n  a: {value: 1}\n"),
            "x.yaml:1:11: the file is not UTF-8 text (byte 0xff); save it as UTF-8");
}

TEST(ParseSpecErrorTest, MoreThanOneDocumentIsAnError) {
  EXPECT_EQ(
      ErrorOf("method: random\n---\nmethod: grid\n"),
      "x.yaml:3:1: expected one YAML document, found 2 (separated by ---)");
}

TEST(ParseSpecErrorTest, UnknownMethodListsTheMethods) {
  absl::StatusOr<SweepSpec> spec = ParseSpec(R"(program: train.py
name: lr
method: grd
parameters:
  lr: {value: 1}
)",
                                             "lr.yaml");
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      std::string(spec.status().message()),
      "lr.yaml:3:9: method: unknown method \"grd\"; expected one of grid, "
      "random, bayes, sobol");
}

TEST(ParseSpecErrorTest, MissingMethodPointsAtTheTopLevelMapping) {
  EXPECT_EQ(
      ErrorOf("# sweep\nparameters:\n  a: {value: 1}\n"),
      "x.yaml:2:1: method: required key is missing; expected one of grid, "
      "random, bayes, sobol");
}

TEST(ParseSpecErrorTest, UnknownTopLevelKeyListsTheAcceptedOnes) {
  EXPECT_EQ(ErrorOf("method: grid\narguments:\n  --lr: ${lr}\n"),
            "x.yaml:2:1: arguments: unknown key; expected one of command, cost, "
            "description, early_terminate, entity, max_concurrent, "
            "max_duration, max_failed_trials, max_retries, max_trials, "
            "method, metric, name, parameters, program, project, resources, "
            "run_cap, seed, timeout");
}

TEST(ParseSpecErrorTest, UnknownParameterKeyListsTheAcceptedOnes) {
  EXPECT_EQ(ErrorOf(OneParameter("    mni: 0.1\n    max: 1\n")),
            "x.yaml:4:5: parameters.p.mni: unknown key; expected one of "
            "distribution, max, min, mu, parameters, probabilities, q, sigma, "
            "value, values");
}

TEST(ParseSpecErrorTest, UnknownKeysInNestedMappingsAreErrorsToo) {
  EXPECT_EQ(ErrorOf("method: random\nmetric: {name: a, goal: minimize, "
                    "impute: 0}\nparameters:\n  a: {value: 1}\n"),
            "x.yaml:2:35: metric.impute: unknown key; expected one of goal, "
            "name, target");
  EXPECT_EQ(ErrorOf("method: random\nresources: {gpus: 1}\nparameters:\n"
                    "  a: {value: 1}\n"),
            "x.yaml:2:13: resources.gpus: unknown key; expected one of "
            "gpu_check, gpu_memory, gpus_per_trial, trials_per_gpu");
  EXPECT_EQ(ErrorOf("method: random\nearly_terminate: {type: hyperband, "
                    "min_iter: 3, bands: 2}\nparameters:\n  a: {value: 1}\n"),
            "x.yaml:2:49: early_terminate.bands: unknown key; expected one of "
            "eta, grace, max_iter, min_iter, min_trials, s, strict, type");
}

TEST(ParseSpecErrorTest, DuplicateKeyNamesTheFirstOne) {
  EXPECT_EQ(ErrorOf("method: random\nparameters:\n  a: {value: 1}\n"
                    "  a: {value: 2}\n"),
            "x.yaml:4:3: parameters.a: duplicate key; the first \"a\" is at "
            "line 3");
}

TEST(ParseSpecErrorTest, MissingOrEmptyParametersIsAnError) {
  EXPECT_EQ(ErrorOf("method: random\nprogram: a.py\n"),
            "x.yaml:1:1: parameters: required key is missing; a sweep needs at "
            "least one parameter");
  EXPECT_EQ(ErrorOf("method: random\nparameters:\n"),
            "x.yaml:2:1: parameters: must not be empty; give at least one "
            "parameter");
  EXPECT_EQ(ErrorOf("method: random\nparameters: {}\n"),
            "x.yaml:2:13: parameters: must not be empty; give at least one "
            "parameter");
  EXPECT_EQ(ErrorOf("method: random\nparameters: [lr]\n"),
            "x.yaml:2:13: parameters: expected a mapping of parameter names to "
            "their settings, got a list");
}

TEST(ParseSpecErrorTest, ParameterThatIsNotAMappingIsAnError) {
  EXPECT_EQ(ErrorOf("method: random\nparameters:\n  lr: 0.1\n"),
            "x.yaml:3:7: parameters.lr: expected a mapping with value, values, "
            "min and max, or distribution, got 0.1");
  EXPECT_EQ(ErrorOf("method: random\nparameters:\n  lr:\n"),
            "x.yaml:3:3: parameters.lr: expected a mapping with value, values, "
            "min and max, or distribution, got null");
  EXPECT_EQ(
      ErrorOf("method: random\nparameters:\n  lr: {mu: 1}\n"),
      "x.yaml:3:7: parameters.lr: expected value, values, min and max, or "
      "distribution");
}

TEST(ParseSpecErrorTest, NonNumericBoundSaysWhatItGot) {
  absl::StatusOr<SweepSpec> spec = ParseSpec(R"(program: train.py
method: random
metric:
  name: loss
parameters:
  lr:
    min: abc
    max: 0.1
)",
                                             "lr.yaml");
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(spec.status().message()),
            "lr.yaml:7:10: parameters.lr.min: expected a number, got \"abc\"");
}

TEST(ParseSpecErrorTest, QuotedNumbersAndBooleansAreNotNumbers) {
  EXPECT_EQ(ErrorOf(OneParameter("    min: \"0.1\"\n    max: 1.0\n")),
            "x.yaml:4:10: parameters.p.min: expected a number, got \"0.1\"");
  EXPECT_EQ(ErrorOf(OneParameter("    min: 0.1\n    max: true\n")),
            "x.yaml:5:10: parameters.p.max: expected a number, got true");
  EXPECT_EQ(ErrorOf(OneParameter("    min: 0.1\n    max: [1]\n")),
            "x.yaml:5:10: parameters.p.max: expected a number, got a list");
  EXPECT_EQ(
      ErrorOf(OneParameter("    min: 0.1\n    max: .inf\n")),
      "x.yaml:5:10: parameters.p.max: expected a finite number, got .inf");
}

TEST(ParseSpecErrorTest, MinGreaterThanMaxPointsAtTheParameter) {
  EXPECT_EQ(ErrorOf(R"(program: train.py
method: random
metric:
  name: loss
  goal: minimize
parameters:
  lr:
    min: 0.1
    max: 0.01
)"),
            "x.yaml:8:5: parameters.lr: min (0.1) is greater than max (0.01)");
}

TEST(ParseSpecErrorTest, EmptyValuesIsAnError) {
  EXPECT_EQ(ErrorOf(OneParameter("    values: []\n")),
            "x.yaml:4:13: parameters.p.values: must not be empty");
  EXPECT_EQ(ErrorOf(OneParameter("    values:\n")),
            "x.yaml:4:5: parameters.p.values: expected a list, got null");
  EXPECT_EQ(ErrorOf(OneParameter("    values: 5\n")),
            "x.yaml:4:13: parameters.p.values: expected a list, got 5");
}

TEST(ParseSpecErrorTest, IntUniformBoundsMustBeIntegers) {
  EXPECT_EQ(ErrorOf(OneParameter(
                "    distribution: int_uniform\n    min: 1.5\n    max: 4\n")),
            "x.yaml:5:10: parameters.p.min: expected an integer, got 1.5");
}

TEST(ParseSpecErrorTest, DistributionSettingsAreChecked) {
  EXPECT_EQ(ErrorOf(OneParameter("    distribution: normal\n    sigma: 0\n")),
            "x.yaml:5:12: parameters.p.sigma: must be greater than 0, got 0");
  EXPECT_EQ(
      ErrorOf(OneParameter(
          "    distribution: q_uniform\n    min: 0\n    max: 1\n    q: -1\n")),
      "x.yaml:7:8: parameters.p.q: must be greater than 0, got -1");
  EXPECT_EQ(ErrorOf(OneParameter("    distribution: log_uniform_values\n"
                                 "    min: 0\n    max: 1\n")),
            "x.yaml:5:10: parameters.p.min: must be greater than 0 for "
            "log_uniform_values, got 0");
  EXPECT_EQ(ErrorOf(OneParameter("    distribution: q_log_uniform_values\n"
                                 "    min: -1\n    max: 1\n")),
            "x.yaml:5:10: parameters.p.min: must be greater than 0 for "
            "q_log_uniform_values, got -1");
}

TEST(ParseSpecErrorTest, UnknownDistributionListsTheKnownOnes) {
  EXPECT_EQ(ErrorOf(OneParameter("    distribution: loguniform\n")),
            "x.yaml:4:19: parameters.p.distribution: unknown distribution "
            "\"loguniform\"; expected one of constant, categorical, "
            "int_uniform, uniform, q_uniform, log_uniform, log_uniform_values, "
            "q_log_uniform_values, inv_log_uniform, inv_log_uniform_values, "
            "normal, q_normal, log_normal, q_log_normal");
}

TEST(ParseSpecErrorTest, SettingsThatADistributionDoesNotTakeAreErrors) {
  EXPECT_EQ(ErrorOf(OneParameter(
                "    distribution: uniform\n    values: [1]\n    min: 0\n")),
            "x.yaml:5:5: parameters.p.values: does not apply to distribution "
            "uniform, which takes min and max");
  EXPECT_EQ(ErrorOf(OneParameter("    min: 0\n    max: 1\n    q: 2\n")),
            "x.yaml:6:5: parameters.p.q: does not apply to distribution "
            "int_uniform (inferred from min and max), which takes min and max");
  EXPECT_EQ(ErrorOf(OneParameter("    value: 1\n    values: [1, 2]\n")),
            "x.yaml:5:5: parameters.p.values: cannot be combined with value; "
            "give either value or values");
  EXPECT_EQ(ErrorOf(OneParameter("    parameters: {a: {value: 1}}\n"
                                 "    value: 2\n")),
            "x.yaml:5:5: parameters.p.value: cannot be combined with a nested "
            "parameters block");
}

TEST(ParseSpecErrorTest, MissingSettingPointsAtTheParameter) {
  EXPECT_EQ(ErrorOf(OneParameter("    distribution: uniform\n    min: 0\n")),
            "x.yaml:4:5: parameters.p.max: required key is missing; uniform "
            "takes min and max");
  EXPECT_EQ(ErrorOf(OneParameter("    min: 0\n")),
            "x.yaml:4:5: parameters.p.max: required key is missing; "
            "uniform takes min and max");
  EXPECT_EQ(ErrorOf(OneParameter("    distribution: constant\n")),
            "x.yaml:4:5: parameters.p.value: required key is missing; constant "
            "takes value");
  EXPECT_EQ(ErrorOf(OneParameter("    distribution: categorical\n")),
            "x.yaml:4:5: parameters.p.values: required key is missing; "
            "categorical takes a list of values");
}

TEST(ParseSpecErrorTest, ProbabilitiesMustMatchValuesAndSumToOne) {
  EXPECT_EQ(ErrorOf(OneParameter(
                "    values: [a, b, c]\n    probabilities: [0.5, 0.5]\n")),
            "x.yaml:5:20: parameters.p.probabilities: has 2 entries but values "
            "has 3");
  EXPECT_EQ(ErrorOf(OneParameter(
                "    values: [a, b]\n    probabilities: [0.5, 0.4]\n")),
            "x.yaml:5:20: parameters.p.probabilities: must sum to 1, got 0.9");
  EXPECT_EQ(ErrorOf(OneParameter(
                "    values: [a, b]\n    probabilities: [1.5, -0.5]\n")),
            "x.yaml:5:21: parameters.p.probabilities[0]: must be between 0 and "
            "1, got 1.5");
  EXPECT_EQ(ErrorOf(OneParameter("    value: 1\n    probabilities: [1]\n")),
            "x.yaml:5:5: parameters.p.probabilities: does not apply to "
            "distribution constant (inferred from value), which takes value");
}

TEST(ParseSpecErrorTest, GridOverAContinuousParameterNamesItsDistribution) {
  EXPECT_EQ(ErrorOf(R"(method: grid
parameters:
  layers:
    values: [1, 2]
  lr:
    distribution: uniform
    min: 0.0
    max: 1.0
)"),
            "x.yaml:5:3: parameters.lr: grid search cannot enumerate "
            "distribution uniform; it needs values, value, int_uniform or "
            "q_uniform");
  EXPECT_EQ(ErrorOf(OneParameter("    min: 0.1\n    max: 0.2\n", "grid")),
            "x.yaml:3:3: parameters.p: grid search cannot enumerate "
            "distribution uniform; it needs values, value, int_uniform or "
            "q_uniform");
}

TEST(ParseSpecErrorTest, GridOverAnEmptyQUniformIsAnError) {
  EXPECT_EQ(
      ErrorOf(OneParameter(
          "    distribution: q_uniform\n    min: 1\n    max: 1\n", "grid")),
      "x.yaml:3:3: parameters.p: q_uniform has no grid points: the grid "
      "takes min + k*q below max, and min equals max");
}

TEST(ParseSpecErrorTest, MetricNeedsANameAndAKnownGoal) {
  EXPECT_EQ(ErrorOf("method: random\nmetric:\n  goal: minimize\nparameters:\n"
                    "  a: {value: 1}\n"),
            "x.yaml:3:3: metric.name: required key is missing; name the metric "
            "to optimize");
  EXPECT_EQ(
      ErrorOf("method: random\nmetric:\n  name: loss\n  goal: lower\n"
              "parameters:\n  a: {value: 1}\n"),
      "x.yaml:4:9: metric.goal: unknown goal \"lower\"; expected minimize "
      "or maximize");
  EXPECT_EQ(
      ErrorOf("method: random\nmetric: loss\nparameters:\n  a: {value: 1}\n"),
      "x.yaml:2:9: metric: expected a mapping with name and goal, got "
      "\"loss\"");
}

TEST(ParseSpecErrorTest, BayesNeedsAMetric) {
  EXPECT_EQ(ErrorOf("method: bayes\nparameters:\n  a: {min: 0.0, max: 1.0}\n"),
            "x.yaml:1:9: method: bayes needs a metric to optimize; add metric: "
            "with a name and a goal");
}

TEST(ParseSpecErrorTest, CommandMustBeANonEmptyListOfStringsWithKnownMacros) {
  const std::string params = "parameters:\n  a: {value: 1}\n";
  EXPECT_EQ(ErrorOf("method: random\ncommand: python3 train.py\n" + params),
            "x.yaml:2:10: command: expected a list of strings, got \"python3 "
            "train.py\"");
  EXPECT_EQ(ErrorOf("method: random\ncommand: []\n" + params),
            "x.yaml:2:10: command: must not be empty");
  EXPECT_EQ(
      ErrorOf("method: random\ncommand:\n  - python3\n  - [a]\n" + params),
      "x.yaml:4:5: command[1]: expected a string, got a list");
  EXPECT_EQ(ErrorOf("method: random\nprogram: t.py\ncommand:\n  - ${env}\n"
                    "  - --lr=${lr}\n" +
                    params),
            "x.yaml:5:5: command[1]: unknown macro ${lr}; expected one of "
            "${env}, ${interpreter}, ${program}, ${args}, ${args_no_hyphens}, "
            "${args_no_boolean_flags}, ${args_json}");
  EXPECT_EQ(ErrorOf("method: random\ncommand: [\"${env}\", \"${program}\"]\n" +
                    params),
            "x.yaml:2:21: command[1]: uses ${program} but program is not set");
}

TEST(ParseSpecErrorTest, EarlyTerminateShapeIsChecked) {
  const std::string params = "parameters:\n  a: {value: 1}\n";
  EXPECT_EQ(ErrorOf("method: random\nearly_terminate:\n  type: bohb\n"
                    "  min_iter: 3\n" +
                    params),
            "x.yaml:3:9: early_terminate.type: unknown type \"bohb\"; "
            "expected one of hyperband, asha, median");
  EXPECT_EQ(
      ErrorOf("method: random\nearly_terminate:\n  type: hyperband\n"
              "  eta: 3\n" +
              params),
      "x.yaml:3:3: early_terminate: hyperband needs min_iter or max_iter");
  EXPECT_EQ(ErrorOf("method: random\nearly_terminate:\n  type: hyperband\n"
                    "  min_iter: 0\n" +
                    params),
            "x.yaml:4:13: early_terminate.min_iter: must be at least 1, got 0");
  EXPECT_EQ(ErrorOf("method: random\nearly_terminate:\n  type: hyperband\n"
                    "  min_iter: 3\n  eta: 1\n" +
                    params),
            "x.yaml:5:8: early_terminate.eta: must be greater than 1, got 1");
  EXPECT_EQ(
      ErrorOf("method: random\nearly_terminate:\n  min_iter: 3\n" + params),
      "x.yaml:3:3: early_terminate.type: required key is missing; "
      "expected one of hyperband, asha, median");
  EXPECT_EQ(ErrorOf("method: random\nearly_terminate: hyperband\n" + params),
            "x.yaml:2:18: early_terminate: expected a mapping with type: "
            "hyperband, asha or median, got \"hyperband\"");
}

TEST(ParseSpecErrorTest, AshaAndMedianSettingsAreChecked) {
  const std::string params = "parameters:\n  a: {value: 1}\n";
  const std::string asha = "method: random\nearly_terminate:\n  type: asha\n";
  EXPECT_EQ(ErrorOf(asha + "  max_iter: 9\n" + params),
            "x.yaml:3:3: early_terminate.min_iter: required key is missing; "
            "asha needs min_iter (or grace), the step of its first rung");
  EXPECT_EQ(ErrorOf(asha + "  min_iter: 0\n" + params),
            "x.yaml:4:13: early_terminate.min_iter: must be at least 1, got 0");
  EXPECT_EQ(ErrorOf(asha + "  grace: 0\n" + params),
            "x.yaml:4:10: early_terminate.grace: must be at least 1, got 0");
  EXPECT_EQ(ErrorOf(asha + "  min_iter: 2\n  grace: 2\n" + params),
            "x.yaml:5:3: early_terminate.grace: is another name for min_iter; "
            "give only one of them");
  EXPECT_EQ(ErrorOf(asha + "  min_iter: 10\n  max_iter: 9\n" + params),
            "x.yaml:3:3: early_terminate: min_iter (10) is greater than "
            "max_iter (9)");
  EXPECT_EQ(ErrorOf(asha + "  min_iter: 1\n  eta: 0.5\n" + params),
            "x.yaml:5:8: early_terminate.eta: must be greater than 1, got 0.5");
  EXPECT_EQ(ErrorOf(asha + "  min_iter: 1\n  eta: fast\n" + params),
            "x.yaml:5:8: early_terminate.eta: expected a number, got \"fast\"");
  EXPECT_EQ(ErrorOf(asha + "  min_iter: 1\n  s: 2\n" + params),
            "x.yaml:5:3: early_terminate.s: does not apply to type asha, which "
            "takes min_iter, grace, max_iter and eta");
  EXPECT_EQ(ErrorOf(asha + "  min_iter: 1\n  min_trials: 2\n" + params),
            "x.yaml:5:3: early_terminate.min_trials: does not apply to type "
            "asha, which takes min_iter, grace, max_iter and eta");

  const std::string median =
      "method: random\nearly_terminate:\n  type: median\n";
  EXPECT_EQ(
      ErrorOf(median + "  min_trials: 0\n" + params),
      "x.yaml:4:15: early_terminate.min_trials: must be at least 1, got 0");
  EXPECT_EQ(ErrorOf(median + "  min_iter: 1.5\n" + params),
            "x.yaml:4:13: early_terminate.min_iter: expected an integer, got "
            "1.5");
  EXPECT_EQ(ErrorOf(median + "  eta: 3\n" + params),
            "x.yaml:4:3: early_terminate.eta: does not apply to type median, "
            "which takes min_iter and min_trials");
  EXPECT_EQ(ErrorOf(median + "  max_iter: 3\n" + params),
            "x.yaml:4:3: early_terminate.max_iter: does not apply to type "
            "median, which takes min_iter and min_trials");

  EXPECT_EQ(ErrorOf("method: random\nearly_terminate:\n  type: hyperband\n"
                    "  min_iter: 3\n  min_trials: 2\n" +
                    params),
            "x.yaml:5:3: early_terminate.min_trials: does not apply to type "
            "hyperband, which takes min_iter, max_iter, s, eta and strict");
  EXPECT_EQ(ErrorOf("method: random\nearly_terminate:\n  type: hyperband\n"
                    "  min_iter: 3\n  s: 0\n" +
                    params),
            "x.yaml:5:6: early_terminate.s: must be at least 1, got 0");
}

TEST(ParseSpecErrorTest, BudgetsAreChecked) {
  const std::string head = "method: random\nparameters:\n  a: {value: 1}\n";
  EXPECT_EQ(ErrorOf(head + "max_failed_trials: 0\n"),
            "x.yaml:4:20: max_failed_trials: must be at least 1, got 0");
  EXPECT_EQ(ErrorOf(head + "max_failed_trials: many\n"),
            "x.yaml:4:20: max_failed_trials: expected an integer, got "
            "\"many\"");
  const std::string expected =
      "expected a duration: a number of seconds or a string such as 90s, "
      "30m, 2h or 1h30m, got ";
  EXPECT_EQ(ErrorOf(head + "max_duration: 2 hours\n"),
            "x.yaml:4:15: max_duration: " + expected + "\"2 hours\"");
  EXPECT_EQ(ErrorOf(head + "max_duration: 30m1h\n"),
            "x.yaml:4:15: max_duration: " + expected + "\"30m1h\"");
  EXPECT_EQ(ErrorOf(head + "max_duration: 1h1h\n"),
            "x.yaml:4:15: max_duration: " + expected + "\"1h1h\"");
  EXPECT_EQ(ErrorOf(head + "max_duration: h\n"),
            "x.yaml:4:15: max_duration: " + expected + "\"h\"");
  EXPECT_EQ(ErrorOf(head + "max_duration: 10\n"
                           "timeout: 5ms\n"),
            "x.yaml:5:10: timeout: " + expected + "\"5ms\"");
  EXPECT_EQ(ErrorOf(head + "timeout: [1, h]\n"),
            "x.yaml:4:10: timeout: " + expected + "a list");
  EXPECT_EQ(ErrorOf(head + "timeout: true\n"),
            "x.yaml:4:10: timeout: " + expected + "true");
  EXPECT_EQ(ErrorOf(head + "timeout: .inf\n"),
            "x.yaml:4:10: timeout: " + expected + ".inf");
  EXPECT_EQ(ErrorOf(head + "timeout: 0\n"),
            "x.yaml:4:10: timeout: must be longer than 0 seconds, got 0");
  EXPECT_EQ(ErrorOf(head + "max_duration: 0s\n"),
            "x.yaml:4:15: max_duration: must be longer than 0 seconds, got "
            "\"0s\"");
  EXPECT_EQ(ErrorOf(head + "timeout: -5\n"),
            "x.yaml:4:10: timeout: must be longer than 0 seconds, got -5");
}

TEST(ParseSpecErrorTest, SweepsOwnKeysAreRangeChecked) {
  const std::string head = "method: random\nparameters:\n  a: {value: 1}\n";
  EXPECT_EQ(ErrorOf(head + "max_concurrent: 0\n"),
            "x.yaml:4:17: max_concurrent: must be at least 1, got 0");
  EXPECT_EQ(ErrorOf(head + "max_retries: -1\n"),
            "x.yaml:4:14: max_retries: must be at least 0, got -1");
  EXPECT_EQ(ErrorOf(head + "seed: -5\n"),
            "x.yaml:4:7: seed: must be at least 0, got -5");
  EXPECT_EQ(ErrorOf(head + "seed: 1.5\n"),
            "x.yaml:4:7: seed: expected an integer, got 1.5");
  EXPECT_EQ(ErrorOf(head + "run_cap: 0\n"),
            "x.yaml:4:10: run_cap: must be at least 1, got 0");
  EXPECT_EQ(
      ErrorOf(head + "resources:\n  gpus_per_trial: -1\n"),
      "x.yaml:5:19: resources.gpus_per_trial: must be at least 0, got -1");
  EXPECT_EQ(
      ErrorOf(head + "run_cap: 5\nmax_trials: 5\n"),
      "x.yaml:5:1: max_trials: is another name for run_cap; give only one "
      "of them");
}

TEST(ParseSpecErrorTest, TagsThatDoNotFitOrAreUnknownAreErrors) {
  EXPECT_EQ(ErrorOf(OneParameter("    value: !!float abc\n")),
            "x.yaml:4:12: parameters.p.value: expected a number after !!float, "
            "got \"abc\"");
  EXPECT_EQ(ErrorOf(OneParameter("    value: !!python/tuple [1, 2]\n")),
            "x.yaml:4:12: parameters.p.value: unsupported tag "
            "!!python/tuple on a list");
  EXPECT_EQ(ErrorOf(OneParameter("    values: [1, !custom 2]\n")),
            "x.yaml:4:17: parameters.p.values[1]: unsupported tag !custom on a "
            "scalar; use !!str, !!int, !!float, !!bool or !!null, or no tag");
}

TEST(ParseSpecErrorTest, AnAliasThatContainsItselfIsAnErrorNotACrash) {
  EXPECT_EQ(ErrorOf(OneParameter("    value: &loop [1, *loop]\n")),
            "x.yaml:4:12: parameters.p.value[1]: an alias that refers to a "
            "node containing it");
}

// The limits on a spec: each bounds the work of a parse before it is done.

// `path` and one more level of key "a".
std::string JoinKeys(const std::string& path) {
  return path.empty() ? "a" : path + ".a";
}

TEST(ParseSpecErrorTest, ATextBeyondSixteenMibIsRefusedBeforeItIsParsed) {
  // Text that yaml-cpp could not even scan: were it parsed, the message would
  // be a syntax error.
  const std::string text = "method: [" + std::string((16 << 20) + 1, '[');
  EXPECT_EQ(ErrorOf(text),
            absl::StrCat("x.yaml: the spec is ", text.size(),
                         " bytes, more than the 16777216 a spec may have"));
}

TEST(ParseSpecErrorTest, TheNodeLimitEndsTheParseAtTheFirstNodeTooMany) {
  // 100,000 items and a syntax error after them: the parse stops at the node
  // limit and never reaches the error.
  std::string values;
  for (int i = 0; i < 100000; ++i) values += "0, ";
  const std::string message = ErrorOf(OneParameter(
      "    values: [" + values + "]] this is no YAML {\n", "grid"));
  // Nodes 1-5 are the root, method's value, parameters, p and values; items
  // count from 6, so item 99995 is node 100,001. Items start at column 14, 3
  // bytes apart.
  EXPECT_EQ(message,
            absl::StrCat("x.yaml:4:", 14 + 3 * 99995,
                         ": parameters.p.values[99995]: the spec has more than "
                         "100000 YAML nodes (counting alias expansions)"));
}

TEST(ParseSpecErrorTest, AliasExpansionsCountTowardsTheNodeLimitWhileParsing) {
  // A billion laughs, then a syntax error that a full parse would report.
  std::string text =
      "method: grid\nprogram: p\nparameters:\n  a: &a [0,0,0,0,0,0,0,0,0,0]\n";
  for (char c = 'b'; c <= 'f'; ++c) {
    const char prev = static_cast<char>(c - 1);
    absl::StrAppend(&text, "  ", std::string(1, c), ": &", std::string(1, c),
                    " [");
    for (int i = 0; i < 10; ++i) {
      absl::StrAppend(&text, i ? "," : "", "*", std::string(1, prev));
    }
    absl::StrAppend(&text, "]\n");
  }
  text += "  g: ]] this is no YAML\n";
  const std::string message = ErrorOf(text);
  EXPECT_THAT(message, ::testing::StartsWith("x.yaml:8:"));
  EXPECT_THAT(
      message,
      ::testing::HasSubstr(
          ": parameters.e[7]: the spec has more than 100000 YAML nodes"));
}

TEST(ParseSpecErrorTest, TheDepthLimitEndsTheParseAtTheFirstLevelTooDeep) {
  // x is depth 1, so its 65th bracket opens depth 65; its column is 4 + 64.
  std::string path = "x";
  for (int i = 0; i < 64; ++i) path += "[0]";
  EXPECT_EQ(ErrorOf("method: grid\nx: " + std::string(100, '[') +
                    std::string(100, ']') + "\n"),
            absl::StrCat("x.yaml:2:", 4 + 64, ": ", path,
                         ": nested deeper than 64 levels"));
  // In block style, with a syntax error after the deep part that is never
  // reached.
  std::string text = "method: grid\n";
  path = "";
  for (int i = 0; i < 70; ++i) {
    absl::StrAppend(&text, std::string(2 * i, ' '), "a:\n");
    if (i < 65) path = JoinKeys(path);
  }
  absl::StrAppend(&text, "b: ]] this is no YAML\n");
  EXPECT_EQ(ErrorOf(text), absl::StrCat("x.yaml:67:", 2 * 65 + 1, ": ", path,
                                        ": nested deeper than 64 levels"));
}

TEST(ParseSpecErrorTest,
     ALongFlowListInsideAnotherFlowCollectionIsRefusedAsItIsRead) {
  // yaml-cpp would hold every token of the inner list in memory until it ends
  // (a 1 MiB spec of this shape took 100 MB, a 15 MB one 1.4 GB).
  std::string values;
  for (int i = 0; i < 40000; ++i) values += "0, ";
  const std::string message = ErrorOf(OneParameter(
      "    values: [[" + values + "]]] this is no YAML\n", "grid"));
  EXPECT_THAT(message, ::testing::StartsWith(
                           "x.yaml:4:13: parameters.p.values[0]: more than "
                           "32768 of [ ] { } , : follow here"));
  EXPECT_THAT(message, ::testing::HasSubstr("write long lists in block style"));
  // The same list, not nested in another flow collection, is read as it goes.
  values.resize(values.size() - 2);
  Parse("method: grid\nprogram: p\nparameters:\n  p:\n    values: [" + values +
        "]\n");
}

// ---------------------------------------------------------------------------
// LoadSpecFile

class LoadSpecFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("spec_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::filesystem::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }

  std::filesystem::path dir_;
};

TEST_F(LoadSpecFileTest, MissingFileIsNotFoundAndNamesThePath) {
  const std::string path = (dir_ / "nope.yaml").string();
  const absl::StatusOr<SweepSpec> spec = LoadSpecFile(path);
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(spec.status().message()),
            "cannot read sweep spec " + path + ": No such file or directory");
}

TEST_F(LoadSpecFileTest, ReadsTheFileAndNamesItInMessages) {
  const std::string good = Write(
      "good.yaml", "method: grid\r\nparameters:\r\n  a: {values: [1, 2]}");
  const absl::StatusOr<SweepSpec> spec = LoadSpecFile(good);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->file_name, good);
  EXPECT_EQ(GridSize(*spec).value(), 2);

  const std::string empty = Write("empty.yaml", "");
  EXPECT_EQ(std::string(LoadSpecFile(empty).status().message()),
            empty +
                ":1:1: the file holds no sweep spec; expected a mapping "
                "with at least method and parameters");

  const std::string bad = Write("bad.yaml", "method: grd\nparameters: {}\n");
  EXPECT_EQ(std::string(LoadSpecFile(bad).status().message()),
            bad +
                ":1:9: method: unknown method \"grd\"; expected one of grid, "
                "random, bayes, sobol");
}

// ---------------------------------------------------------------------------
// Grid

constexpr char kMixedGrid[] = R"(method: grid
parameters:
  opt: {values: [sgd, adam, lion]}
  epochs: {value: 10}
  layers: {min: 1, max: 4}
  dropout: {distribution: q_uniform, min: 0, max: 0.3, q: 0.1}
)";

TEST(GridTest, GridSizeMultipliesTheCountOfEachKind) {
  const SweepSpec spec = Parse(kMixedGrid);
  // 3 values x 1 value x 4 (int_uniform 1..4) x 3 (arange(0, 0.3, 0.1)).
  EXPECT_EQ(GridSize(spec).value(), 36);
}

TEST(GridTest, QUniformCountsLikeNumpyArangeWithMaxExcluded) {
  auto size = [](const std::string& settings) {
    return GridSize(Parse(OneParameter(settings, "grid"))).value();
  };
  EXPECT_EQ(size("    distribution: q_uniform\n    min: 0\n    max: 1\n"
                 "    q: 0.25\n"),
            4);
  EXPECT_EQ(size("    distribution: q_uniform\n    min: 0\n    max: 1\n"
                 "    q: 0.3\n"),
            4);
  EXPECT_EQ(size("    distribution: q_uniform\n    min: 100\n    max: 500\n"),
            400);
}

TEST(GridTest, GridPointEnumeratesEveryCombinationExactlyOnce) {
  const SweepSpec spec = Parse(kMixedGrid);
  const int64_t size = GridSize(spec).value();
  std::set<std::string> seen;
  for (int64_t i = 0; i < size; ++i) seen.insert(GridPoint(spec, i).dump());
  EXPECT_EQ(static_cast<int64_t>(seen.size()), size);
}

TEST(GridTest, LastParameterVariesFastest) {
  const SweepSpec spec = Parse(kMixedGrid);
  EXPECT_EQ(GridPoint(spec, 0),
            json::parse(
                R"({"opt": "sgd", "epochs": 10, "layers": 1, "dropout": 0})"));
  EXPECT_EQ(
      GridPoint(spec, 1),
      json::parse(
          R"({"opt": "sgd", "epochs": 10, "layers": 1, "dropout": 0.1})"));
  EXPECT_EQ(GridPoint(spec, 3),
            json::parse(
                R"({"opt": "sgd", "epochs": 10, "layers": 2, "dropout": 0})"));
  EXPECT_EQ(
      GridPoint(spec, 35),
      json::parse(
          R"({"opt": "lion", "epochs": 10, "layers": 4, "dropout": 0.2})"));
}

TEST(GridTest, QUniformPointsAreRoundedMultiplesOfQ) {
  const SweepSpec spec = Parse(OneParameter(
      "    distribution: q_uniform\n    min: 0\n    max: 1\n    q: 0.1\n",
      "grid"));
  ASSERT_EQ(GridSize(spec).value(), 10);
  EXPECT_EQ(GridPoint(spec, 3)["p"], 0.3);  // not 0.30000000000000004
  EXPECT_EQ(GridPoint(spec, 7)["p"], 0.7);
  const json integer =
      GridPoint(Parse(OneParameter("    distribution: q_uniform\n    min: 10\n"
                                   "    max: 20\n    q: 5\n",
                                   "grid")),
                1)["p"];
  EXPECT_TRUE(integer.is_number_integer());
  EXPECT_EQ(integer, 15);
}

TEST(GridTest, GridSizeRejectsContinuousParametersWhateverTheMethod) {
  const SweepSpec spec = Parse(R"(method: random
parameters:
  lr: {distribution: log_uniform_values, min: 1e-5, max: 1e-1}
)");
  const absl::StatusOr<int64_t> size = GridSize(spec);
  EXPECT_EQ(size.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(size.status().message()),
            "x.yaml:3:3: parameters.lr: grid search cannot enumerate "
            "distribution log_uniform_values; it needs values, value, "
            "int_uniform or q_uniform");
}

TEST(GridTest, GridLargerThanInt64IsAnError) {
  // 4000000001^2 already exceeds 2^63.
  EXPECT_EQ(ErrorOf(R"(method: grid
parameters:
  a: {min: 0, max: 4000000000}
  b: {min: 0, max: 4000000000}
)"),
            "x.yaml:4:3: parameters.b: the grid has more points than an int64 "
            "holds");
}

TEST(TrialBudgetTest, GridRunsItsSizeCappedByRunCap) {
  SweepSpec spec = Parse(kMixedGrid);
  EXPECT_EQ(TrialBudget(spec), 36);
  spec.run_cap = 10;
  EXPECT_EQ(TrialBudget(spec), 10);
  spec.run_cap = 100;
  EXPECT_EQ(TrialBudget(spec), 36);
}

TEST(TrialBudgetTest, RandomSobolAndBayesRunRunCapOrUntilCancelled) {
  SweepSpec spec = Parse(OneParameter("    min: 0.0\n    max: 1.0\n"));
  EXPECT_EQ(TrialBudget(spec), std::nullopt);
  spec.run_cap = 25;
  EXPECT_EQ(TrialBudget(spec), 25);
  spec.method = Method::kBayes;
  EXPECT_EQ(TrialBudget(spec), 25);
  spec.method = Method::kSobol;
  EXPECT_EQ(TrialBudget(spec), 25);
}

// ---------------------------------------------------------------------------
// Sampling

constexpr char kEveryDistribution[] = R"(method: random
parameters:
  constant: {value: x}
  categorical: {values: [a, b, c]}
  int_uniform: {min: -2, max: 3}
  uniform: {min: 0.5, max: 1.5}
  q_uniform: {distribution: q_uniform, min: 0, max: 1, q: 0.25}
  q_uniform_int: {distribution: q_uniform, min: 10, max: 100, q: 10}
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
)";

TEST(SamplePointTest, SameSeedAndIndexGiveTheSamePoint) {
  const SweepSpec spec = Parse(kEveryDistribution);
  for (int64_t index : {0, 1, 17, 1000000}) {
    EXPECT_EQ(SamplePoint(spec, 42, index), SamplePoint(spec, 42, index));
  }
}

TEST(SamplePointTest, DifferentIndexOrSeedGivesADifferentPoint) {
  const SweepSpec spec = Parse(kEveryDistribution);
  EXPECT_NE(SamplePoint(spec, 42, 0), SamplePoint(spec, 42, 1));
  EXPECT_NE(SamplePoint(spec, 42, 0), SamplePoint(spec, 43, 0));
  std::set<double> uniforms;
  for (int64_t i = 0; i < 100; ++i) {
    uniforms.insert(SamplePoint(spec, 7, i)["uniform"].get<double>());
  }
  EXPECT_EQ(uniforms.size(), 100u);
}

TEST(SamplePointTest, EveryDistributionStaysWithinItsBounds) {
  const SweepSpec spec = Parse(kEveryDistribution);
  std::set<int64_t> int_uniform_seen;
  std::set<std::string> categorical_seen;
  for (int64_t i = 0; i < 5000; ++i) {
    const json p = SamplePoint(spec, 2024, i);
    SCOPED_TRACE(p.dump());
    EXPECT_EQ(p["constant"], "x");
    categorical_seen.insert(p["categorical"].get<std::string>());
    ASSERT_TRUE(p["int_uniform"].is_number_integer());
    const int64_t iu = p["int_uniform"].get<int64_t>();
    EXPECT_GE(iu, -2);
    EXPECT_LE(iu, 3);
    int_uniform_seen.insert(iu);
    EXPECT_GE(p["uniform"].get<double>(), 0.5);
    EXPECT_LE(p["uniform"].get<double>(), 1.5);
    const double qu = p["q_uniform"].get<double>();
    EXPECT_GE(qu, 0);
    EXPECT_LE(qu, 1);
    EXPECT_DOUBLE_EQ(std::round(qu / 0.25) * 0.25, qu);
    ASSERT_TRUE(p["q_uniform_int"].is_number_integer());
    EXPECT_EQ(p["q_uniform_int"].get<int64_t>() % 10, 0);
    EXPECT_GE(p["q_uniform_int"].get<int64_t>(), 10);
    EXPECT_LE(p["q_uniform_int"].get<int64_t>(), 100);
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
  }
  EXPECT_EQ(int_uniform_seen, (std::set<int64_t>{-2, -1, 0, 1, 2, 3}));
  EXPECT_EQ(categorical_seen, (std::set<std::string>{"a", "b", "c"}));
}

TEST(SamplePointTest, NormalDrawsHaveTheirMeanAndSpread) {
  const SweepSpec spec = Parse(kEveryDistribution);
  constexpr int kDraws = 20000;
  double sum = 0, sum_sq = 0;
  for (int64_t i = 0; i < kDraws; ++i) {
    const double x = SamplePoint(spec, 5, i)["normal"].get<double>();
    sum += x;
    sum_sq += x * x;
  }
  const double mean = sum / kDraws;
  const double sd = std::sqrt(sum_sq / kDraws - mean * mean);
  EXPECT_NEAR(mean, 1.0, 0.02);
  EXPECT_NEAR(sd, 0.5, 0.02);
}

TEST(SamplePointTest, CategoricalFollowsItsProbabilities) {
  const SweepSpec spec = Parse(OneParameter(
      "    values: [a, b, c]\n    probabilities: [0.8, 0.2, 0.0]\n"));
  std::map<std::string, int> counts;
  for (int64_t i = 0; i < 10000; ++i) {
    ++counts[SamplePoint(spec, 9, i)["p"].get<std::string>()];
  }
  EXPECT_NEAR(counts["a"], 8000, 300);
  EXPECT_NEAR(counts["b"], 2000, 300);
  EXPECT_EQ(counts["c"], 0);
}

// ---------------------------------------------------------------------------
// BuildCommand

TEST(BuildCommandTest, DefaultCommandRunsAPythonProgramWithArgs) {
  const SweepSpec spec = Parse(
      "method: random\nprogram: train.py\nparameters:\n  lr: {value: 0.001}\n"
      "  epochs: {value: 3}\n");
  EXPECT_THAT(Command(spec, SamplePoint(spec, 1, 0)),
              ElementsAre("/usr/bin/env", "python3", "train.py", "--lr=0.001",
                          "--epochs=3"));
}

TEST(BuildCommandTest, InterpreterIsDroppedForAProgramThatIsNotPython) {
  const SweepSpec spec = Parse(
      "method: random\nprogram: ./train.sh\nparameters:\n  lr: {value: 0.1}\n");
  EXPECT_THAT(Command(spec, SamplePoint(spec, 1, 0)),
              ElementsAre("/usr/bin/env", "./train.sh", "--lr=0.1"));
}

constexpr char kMacroSpec[] = R"(method: random
program: train.py
command:
  - ${env}
  - ${interpreter}
  - ${program}
  - MACRO
parameters:
  lr: {value: 1e-5}
  amp: {value: true}
  compile: {value: false}
  opt: {value: adam w}
)";

std::vector<std::string> WithMacro(const std::string& macro) {
  std::string yaml = kMacroSpec;
  yaml.replace(yaml.find("MACRO"), 5, macro);
  const SweepSpec spec = Parse(yaml);
  std::vector<std::string> argv = Command(spec, SamplePoint(spec, 1, 0));
  argv.erase(argv.begin(), argv.begin() + 3);  // env, interpreter, program
  return argv;
}

TEST(BuildCommandTest, ArgsMacroWritesDashDashKeyEqualsValue) {
  EXPECT_THAT(WithMacro("${args}"),
              ElementsAre("--lr=1e-05", "--amp=True", "--compile=False",
                          "--opt=adam w"));
}

TEST(BuildCommandTest, ArgsNoHyphensMacroWritesKeyEqualsValue) {
  EXPECT_THAT(
      WithMacro("${args_no_hyphens}"),
      ElementsAre("lr=1e-05", "amp=True", "compile=False", "opt=adam w"));
}

TEST(BuildCommandTest, ArgsNoBooleanFlagsMacroTurnsTrueIntoAFlagAndDropsFalse) {
  EXPECT_THAT(WithMacro("${args_no_boolean_flags}"),
              ElementsAre("--lr=1e-05", "--amp", "--opt=adam w"));
}

TEST(BuildCommandTest, ArgsJsonMacroIsOneItemHoldingTheJsonObject) {
  EXPECT_THAT(
      WithMacro("${args_json}"),
      ElementsAre(R"({"amp":true,"compile":false,"lr":1e-05,"opt":"adam w"})"));
}

TEST(BuildCommandTest, MacrosInsideLongerItemsAreSubstitutedInPlace) {
  EXPECT_THAT(
      WithMacro("--config=${args_json}"),
      ElementsAre(
          R"(--config={"amp":true,"compile":false,"lr":1e-05,"opt":"adam w"})"));
  EXPECT_THAT(WithMacro("\"${program}:${interpreter}|${env}\""),
              ElementsAre("train.py:python3|/usr/bin/env"));
  EXPECT_THAT(WithMacro("\"all: ${args_no_hyphens}\""),
              ElementsAre("all: lr=1e-05 amp=True compile=False opt=adam w"));
  EXPECT_THAT(WithMacro("\"${not closed\""), ElementsAre("${not closed"));
}

TEST(BuildCommandTest, ValuesAreWrittenAsPythonsStrWouldWriteThem) {
  const SweepSpec spec = Parse(
      "method: random\nprogram: t\ncommand: "
      "[\"${args_no_hyphens}\"]\nparameters:\n  a: {value: 1}\n");
  const std::vector<std::pair<json, std::string>> cases = {
      {0.001, "0.001"},
      {0.0001, "0.0001"},
      {1e-5, "1e-05"},
      {1.5e-7, "1.5e-07"},
      {3.0, "3.0"},
      {-2.5, "-2.5"},
      {100.0, "100.0"},
      {1e15, "1000000000000000.0"},
      {1e16, "1e+16"},
      {123456789012345678.0, "1.2345678901234568e+17"},
      {0.1 + 0.2, "0.30000000000000004"},
      {INFINITY, "inf"},
      {-INFINITY, "-inf"},
      {7, "7"},
      {-7, "-7"},
      {true, "True"},
      {false, "False"},
      {nullptr, "None"},
      {"with space", "with space"},
      {"", ""},
      {json::parse("[32, 32]"), "[32,32]"},
      {json::parse(R"(["accuracy"])"), R"(["accuracy"])"},
      {json::parse(R"({"b": 1, "a": [true]})"), R"({"a":[true],"b":1})"},
  };
  for (const auto& [value, text] : cases) {
    SCOPED_TRACE(value.dump());
    EXPECT_THAT(Command(spec, json{{"a", value}}), ElementsAre("a=" + text));
  }
}

TEST(BuildCommandTest, NestedParametersAreOneArgumentHoldingAnObject) {
  const SweepSpec spec = Parse(R"(method: random
program: train.py
parameters:
  optimizer:
    parameters:
      lr: {value: 0.1}
      name: {value: sgd}
  epochs: {value: 2}
)");
  EXPECT_THAT(
      Command(spec, SamplePoint(spec, 1, 0)),
      ElementsAre("/usr/bin/env", "python3", "train.py",
                  R"(--optimizer={"lr":0.1,"name":"sgd"})", "--epochs=2"));
}

TEST(BuildCommandTest, ArgumentsFollowTheSpecOrderThenOtherKeysSorted) {
  const SweepSpec spec = Parse(
      "method: random\nprogram: t\ncommand: [\"${args}\"]\nparameters:\n"
      "  zeta: {value: 1}\n  alpha: {value: 2}\n");
  EXPECT_THAT(
      Command(spec,
              json{{"extra_b", 4}, {"alpha", 2}, {"extra_a", 3}, {"zeta", 1}}),
      ElementsAre("--zeta=1", "--alpha=2", "--extra_a=3", "--extra_b=4"));
}

TEST(BuildCommandTest, UnknownMacroInAHandBuiltSpecIsAnError) {
  SweepSpec spec;
  spec.file_name = "hand.yaml";
  spec.program = "t.py";
  spec.command = {"${env}", "--x=${oops}"};
  const absl::StatusOr<std::vector<std::string>> argv =
      BuildCommand(spec, json::object());
  EXPECT_EQ(argv.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(argv.status().message()),
            "hand.yaml: command[1]: unknown macro ${oops}; expected one of "
            "${env}, ${interpreter}, ${program}, ${args}, ${args_no_hyphens}, "
            "${args_no_boolean_flags}, ${args_json}");
}

TEST(BuildCommandTest, EmptyResultAndNonObjectParamsAreErrors) {
  const SweepSpec spec = Parse(
      "method: random\nprogram: run.sh\ncommand: "
      "[\"${interpreter}\"]\nparameters:\n  a: {value: 1}\n");
  const absl::StatusOr<std::vector<std::string>> empty =
      BuildCommand(spec, json{{"a", 1}});
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(empty.status().message()),
            "x.yaml: command: is empty once its macros are expanded");
  const absl::StatusOr<std::vector<std::string>> not_object =
      BuildCommand(spec, json::array({1}));
  EXPECT_EQ(not_object.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(not_object.status().message()),
            "trial parameters must be a JSON object, got [1]");
}

// ---- GPU placement keys ----------------------------------------------------------

constexpr char kGpuHead[] = "method: random\nparameters:\n  a: {value: 1}\n";

TEST(GpuResourcesTest, SharingAndMemoryAreReadAndImplyOneGpu) {
  const SweepSpec spec = Parse(std::string(kGpuHead) +
                               "resources: {trials_per_gpu: 4, gpu_memory: 800MiB}\n");
  EXPECT_EQ(spec.resources.gpus_per_trial, 1);
  EXPECT_EQ(spec.resources.trials_per_gpu, 4);
  EXPECT_EQ(spec.resources.gpu_memory_mib, 800);
  EXPECT_EQ(spec.resources.gpu_check_seconds, 120);
  EXPECT_EQ(spec.resources.gpu_check_action, Resources::GpuCheckAction::kFlag);
}

TEST(GpuResourcesTest, MemoryTakesBinaryAndDecimalUnitsAndPlainGib) {
  auto mib = [](const std::string& v) {
    return Parse(std::string(kGpuHead) + "resources: {gpu_memory: " + v + "}\n")
        .resources.gpu_memory_mib;
  };
  EXPECT_EQ(mib("12GiB"), 12 * 1024);
  EXPECT_EQ(mib("1.5 gib"), 1536);
  EXPECT_EQ(mib("12GB"), 11445);  // 12e9 bytes, rounded up to whole MiB
  EXPECT_EQ(mib("100MB"), 96);
  EXPECT_EQ(mib("2"), 2048);
  EXPECT_EQ(mib("0.5"), 512);
}

TEST(GpuResourcesTest, GpuCheckTakesADurationAndAnActionOrOff) {
  SweepSpec spec = Parse(std::string(kGpuHead) +
                         "resources:\n  gpus_per_trial: 1\n  gpu_check: {within: 2m, "
                         "action: stop}\n");
  EXPECT_EQ(spec.resources.gpu_check_seconds, 120);
  EXPECT_EQ(spec.resources.gpu_check_action, Resources::GpuCheckAction::kStop);
  spec = Parse(std::string(kGpuHead) + "resources: {gpus_per_trial: 1, gpu_check: off}\n");
  EXPECT_EQ(spec.resources.gpu_check_seconds, 0);
  spec = Parse(std::string(kGpuHead) + "resources: {gpu_check: {within: 30}}\n");
  EXPECT_EQ(spec.resources.gpu_check_seconds, 30);
  EXPECT_EQ(spec.resources.gpus_per_trial, 1) << "checking the GPU asks for one";
  spec = Parse(std::string(kGpuHead) + "resources: {gpu_check: off}\n");
  EXPECT_EQ(spec.resources.gpus_per_trial, 0);
  EXPECT_EQ(ErrorOf(std::string(kGpuHead) +
                    "resources: {gpus_per_trial: 0, gpu_check: {within: 5}}\n"),
            "x.yaml:4:32: resources.gpu_check: needs a GPU, but gpus_per_trial is 0; "
            "drop one of them");
}

TEST(GpuResourcesTest, BadValuesNameTheirPlace) {
  const std::string head = kGpuHead;
  EXPECT_EQ(ErrorOf(head + "resources: {trials_per_gpu: 0}\n"),
            "x.yaml:4:29: resources.trials_per_gpu: must be at least 1, got 0");
  EXPECT_EQ(ErrorOf(head + "resources: {gpu_memory: 12 GBs}\n"),
            "x.yaml:4:25: resources.gpu_memory: expected an amount of memory: a number "
            "of GiB, or a string such as 800MiB, 12GB or 1.5GiB, got \"12 GBs\"");
  EXPECT_EQ(ErrorOf(head + "resources: {gpu_memory: -1}\n"),
            "x.yaml:4:25: resources.gpu_memory: must be more than 0, got -1");
  EXPECT_EQ(ErrorOf(head + "resources: {gpus_per_trial: 0, gpu_memory: 1}\n"),
            "x.yaml:4:32: resources.gpu_memory: needs a GPU, but gpus_per_trial is 0; "
            "drop one of them");
  EXPECT_EQ(ErrorOf(head + "resources: {gpus_per_trial: 2, trials_per_gpu: 2}\n"),
            "x.yaml:4:32: resources.trials_per_gpu: trials of 2 GPUs hold their GPUs "
            "alone; trials_per_gpu above 1 needs gpus_per_trial: 1");
  EXPECT_EQ(ErrorOf(head + "resources: {gpu_check: {action: kill}}\n"),
            "x.yaml:4:33: resources.gpu_check.action: expected flag or stop, got "
            "\"kill\"");
  EXPECT_EQ(ErrorOf(head + "resources: {gpu_check: {after: 3}}\n"),
            "x.yaml:4:25: resources.gpu_check.after: unknown key; expected one of "
            "action, within");
  EXPECT_EQ(ErrorOf(head + "resources: {gpu_check: 5}\n"),
            "x.yaml:4:24: resources.gpu_check: expected off, or a mapping with within "
            "(a duration) and action (flag or stop), got 5");
}

}  // namespace
}  // namespace sweep::spec
