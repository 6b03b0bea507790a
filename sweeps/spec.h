// The sweep spec: parse and validate a sweep YAML file, and turn its search space
// into trial parameters and trial command lines.
//
// The format is a superset of the W&B sweep format (docs/spec.md), so W&B sweep files
// run unchanged. Every error is an InvalidArgument status whose message names the
// file, line and column (1-based), the key path and what was expected:
//
//   lr_grid.yaml:12:7: parameters.lr.min: expected a number, got "abc"
//
// Lifecycle: ParseSpec / LoadSpecFile build a SweepSpec once, at submit (or
// when the scheduler reloads a sweep); everything else only reads it. GridPoint
// and SamplePoint are pure functions of their arguments, so a restarted
// scheduler regenerates exactly the trials it had.
//
// Thread safety: all functions are pure; a SweepSpec is an immutable value.
#ifndef SWEEP_SWEEPS_SPEC_H_
#define SWEEP_SWEEPS_SPEC_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace sweep::spec {

struct Position {
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based; 0 when unknown
};

enum class Method { kGrid, kRandom, kBayes, kSobol };
enum class Goal { kMinimize, kMaximize };

// Every method, in the order messages list them. With MethodName and MethodNamed,
// the one table of method names: the parser, the scheduler (the stored `method`
// column) and the CLI all spell methods through it.
inline constexpr Method kMethods[] = {Method::kGrid, Method::kRandom, Method::kBayes,
                                      Method::kSobol};

// Returns the spec's spelling of `m` ("grid", "random", "bayes", "sobol").
std::string_view MethodName(Method m);

// Returns the method spelled `name` (exactly, as MethodName spells it), or nullopt.
std::optional<Method> MethodNamed(std::string_view name);

// Returns the method names of kMethods joined for a message: "grid, random, bayes,
// sobol".
std::string MethodNames();

// Returns the spec's spelling of `g` ("minimize", "maximize").
std::string_view GoalName(Goal g);

// Returns whether `a` is strictly better than `b` under `goal` (larger when
// maximizing, smaller when minimizing); false when either is NaN.
bool IsBetter(Goal goal, double a, double b);

// W&B's distribution names; see docs/spec.md for each one's meaning.
enum class Distribution {
  kConstant,            // value:
  kCategorical,         // values: (optionally probabilities:)
  kIntUniform,          // integers min..max inclusive
  kUniform,             // real min..max
  kQUniform,            // round(uniform(min, max) / q) * q
  kLogUniform,          // exp(uniform(min, max)): min and max are natural-log exponents
  kLogUniformValues,    // log-uniform between the values min and max
  kQLogUniformValues,   // round(log_uniform_values / q) * q
  kInvLogUniform,       // 1 / exp(uniform(min, max))
  kInvLogUniformValues, // 1 / log_uniform_values(1/max, 1/min)
  kNormal,              // normal(mu, sigma)
  kQNormal,             // round(normal / q) * q
  kLogNormal,           // exp(normal(mu, sigma))
  kQLogNormal,          // round(log_normal / q) * q
};

// Returns W&B's name for `d` ("int_uniform", ...).
std::string_view DistributionName(Distribution d);

// One leaf of the search space.
struct Parameter {
  // Key path from `parameters:`; more than one element for nested `parameters:`
  // blocks. The trial's parameters are a JSON object nested the same way.
  std::vector<std::string> path;
  Distribution distribution = Distribution::kConstant;
  std::vector<nlohmann::json> values;  // kConstant (one value), kCategorical
  std::vector<double> probabilities;   // kCategorical; empty means equal weights
  double min = 0, max = 0;             // uniform families
  double mu = 0, sigma = 1;            // normal families
  double q = 1;                        // q_ families
  // Draws and grid points are JSON integers: always for kIntUniform; for the
  // q_ families when q and the bounds (min and max, or mu) are written as
  // integers (q absent counts as the integer 1).
  bool integer = false;
  Position position;                   // where the parameter's key is

  // Returns the dotted key path ("optimizer.lr").
  std::string Name() const;
};

struct Metric {
  std::string name;
  Goal goal = Goal::kMinimize;
  std::optional<double> target;  // stop launching once a trial reaches it
};

// Returns whether `value` of the metric reached `m.target`: at least the target when
// maximizing, at most it when minimizing. False when there is no target or `value`
// is NaN.
bool ReachedTarget(const Metric& m, double value);

// early_terminate, typed. Rungs are steps of the sweep's metric (the `step` a trial
// writes with it, normally its epoch). ParseSpec fills in the defaults below and
// checks eta > 1, 1 <= min_iter <= max_iter (where given), s >= 1, min_trials >= 1.
struct EarlyTerminate {
  enum class Type { kNone, kHyperband, kAsha, kMedian };
  Type type = Type::kNone;
  // hyperband (W&B's meaning): rungs at min_iter * eta^k, or, with max_iter and s,
  // at max_iter / eta^k for k = s..1. asha: rungs at min_iter * eta^k up to max_iter
  // (min_iter, also spelled `grace`, is the grace period; required). median: no
  // decision before step min_iter (default 1).
  int64_t min_iter = 0;  // 0 when not given (median: 1)
  int64_t max_iter = 0;  // 0 when not given
  double eta = 3;
  int64_t s = 0;         // 0 when not given
  bool strict = false;   // hyperband: also stop at rungs other than the first
  // median: how many other trials must have reached a step before it is judged.
  int64_t min_trials = 3;
};

// What GPU time and energy cost, for the sweep's estimates (docs/spec.md, cost).
struct Cost {
  double gpu_hour = 0;        // money per GPU-hour
  double kwh = 0;             // money per kWh
  std::string currency = "";  // shown next to amounts
};

struct Resources {
  // 0: the trial runs on any slot, GPU or CPU. N >= 1: needs N GPUs, never lands on
  // a CPU slot. Giving trials_per_gpu or gpu_memory without it means 1.
  int gpus_per_trial = 0;
  // How many trials of this sweep may share one GPU; 0 when not given (then 1, or
  // no count limit when gpu_memory is given). Only with gpus_per_trial <= 1.
  int trials_per_gpu = 0;
  // GPU memory one trial needs (MiB, per GPU); 0 when not given. Trials sharing a
  // GPU are packed so that their sum plus headroom fits its memory.
  int64_t gpu_memory_mib = 0;
  // No-silent-CPU check: a process of the trial must hold memory on its GPU within
  // this many seconds (0: no check). Default 120 for trials that ask for a GPU.
  double gpu_check_seconds = 120;
  enum class GpuCheckAction { kFlag, kStop };
  GpuCheckAction gpu_check_action = GpuCheckAction::kFlag;
};

// Returns the GPUs one trial holds while it runs on a GPU slot, for GPU-hours and
// estimates: gpus_per_trial (at least 1) divided by trials_per_gpu (at least 1), so
// 0.25 for four trials that share a GPU. (A trial with only gpu_memory and no
// trials_per_gpu counts a whole GPU: how many share it is not known in advance.)
double GpuShare(const Resources& r);

struct SweepSpec {
  std::string file_name;  // as given to ParseSpec, used in messages
  std::string name;
  std::string description;
  std::string program;
  // The `command:` list as written, macros unexpanded. Empty means W&B's default
  // ["${env}", "${interpreter}", "${program}", "${args}"].
  std::vector<std::string> command;
  Method method = Method::kRandom;
  std::optional<Metric> metric;
  std::vector<Parameter> parameters;  // in file order, nested blocks depth-first
  std::optional<int64_t> run_cap;     // `run_cap` or its alias `max_trials`
  int max_concurrent = 0;             // 0: no limit beyond the free slots
  int max_retries = 2;                // re-queues after a lost worker
  std::optional<uint64_t> seed;       // absent: the scheduler picks one at submit
  Resources resources;
  std::optional<Cost> cost;
  nlohmann::json early_terminate;     // null when absent; validated shape
  EarlyTerminate early_stop;          // the same, typed
  // Budgets beyond run_cap (docs/spec.md): the sweep stops launching trials once
  // this many failed, once it ran this long (wall clock, seconds), and a trial that
  // runs longer than `trial_timeout_seconds` is stopped.
  std::optional<int64_t> max_failed_trials;
  std::optional<double> max_duration_seconds;
  std::optional<double> trial_timeout_seconds;
  // Things that are valid but worth telling the user (e.g. a key accepted for W&B
  // compatibility that sweep ignores). Each names file:line:column.
  std::vector<std::string> warnings;
};

// Parses and validates a spec from `yaml_text`. `file_name` is used in messages only.
// Returns InvalidArgument (message as in the file comment) for malformed YAML,
// unknown keys or methods, wrong types, empty `values`, min > max, a grid over a
// continuous distribution, text that is not UTF-8 (the file, or a string whose
// escapes make it invalid), a NUL character in a key or value, and every other
// violation of docs/spec.md. Every such message has a position. On success
// `warnings` lists, in file order, what is accepted but not acted on
// (project/entity, a command without an args macro, a spec with neither program
// nor command, sobol parameters beyond the Sobol' table).
absl::StatusOr<SweepSpec> ParseSpec(std::string_view yaml_text,
                                    std::string_view file_name);

// Reads `path` and parses it. Returns NotFound if the file cannot be read, else as
// ParseSpec.
absl::StatusOr<SweepSpec> LoadSpecFile(const std::string& path);

// Returns the number of points in the grid (product over parameters; duplicates
// are not removed). Returns InvalidArgument when a parameter is not discrete,
// whatever the spec's method.
//
// Counts as W&B does: values: its length, value: 1, int_uniform: max - min + 1,
// q_uniform: ceil((max - min) / q), as numpy.arange(min, max, q) (max excluded).
// The error names the parameter's file position; a q_uniform with no point
// (min == max) and a product beyond int64 are errors too.
absl::StatusOr<int64_t> GridSize(const SweepSpec& spec);

// Returns how many trials the sweep runs in all: the grid size (capped by run_cap)
// for grid, run_cap for the other methods, or nullopt when unbounded (random,
// sobol or bayes without run_cap: runs until cancelled). A grid whose GridSize fails
// (only possible for a spec not built by ParseSpec) counts as run_cap.
std::optional<int64_t> TrialBudget(const SweepSpec& spec);

// Returns grid point `index` (0 <= index < GridSize) as a nested JSON object. The
// last parameter varies fastest. A q_uniform point is min + k * q, a JSON
// integer when `integer`, else rounded to 12 significant digits (0.3, not
// 0.30000000000000004). Precondition: GridSize(spec) is OK.
nlohmann::json GridPoint(const SweepSpec& spec, int64_t index);

// Returns a random sample of the search space as a nested JSON object. The result is
// a pure function of (spec, seed, index): a restarted scheduler draws the same
// trials again.
//
// Parameters are drawn in order from a std::mt19937_64 seeded from (seed,
// index). int_uniform includes both bounds; continuous draws stay within their
// range ([min, max]; log_uniform: [e^min, e^max]); q_ draws are
// round(x / q) * q with numpy's half-to-even rounding (JSON integers when
// `integer`, else rounded to 12 significant digits), so they can lie up to q/2
// outside bounds that are not multiples of q.
nlohmann::json SamplePoint(const SweepSpec& spec, uint64_t seed, int64_t index);

// Returns the argv of a trial: `command` (or the default) with its macros expanded
// for `params`. A list item that is exactly one of ${args}, ${args_no_hyphens},
// ${args_no_boolean_flags}, ${args_json}, ${env}, ${interpreter}, ${program} becomes
// zero or more items; a macro inside a longer item is substituted in place.
// Returns InvalidArgument for an unknown macro or an empty result.
//
// ${env} is /usr/bin/env; ${interpreter} is python3 when program ends in ".py",
// else nothing. The args macros hold one item per top-level key of `params` (a
// nested block is one key whose value is an object), in the spec's parameter
// order, then any other keys sorted: ${args} `--key=value`, ${args_no_hyphens}
// `key=value`, ${args_no_boolean_flags} `--key=value` but `--key` for true and
// nothing for false; ${args_json} is one item, the JSON object. Inside a longer
// item, the args macros' items are joined by spaces. Values are written as W&B's
// agent (Python's str()) writes them: strings raw, True, False, None, 3, 0.001,
// 1e-05, 3.0, and lists and objects as compact JSON. Also InvalidArgument:
// ${program} when the spec has no program, `params` not a JSON object, an
// argument that would hold a NUL character or invalid UTF-8 (never for params
// drawn from a spec that ParseSpec accepted). Each parameter value is exactly
// one argument (or part of one): no value adds, splits or removes arguments.
absl::StatusOr<std::vector<std::string>> BuildCommand(
    const SweepSpec& spec, const nlohmann::json& params);

}  // namespace sweep::spec

#endif  // SWEEP_SWEEPS_SPEC_H_
