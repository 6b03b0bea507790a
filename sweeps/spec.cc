#include "sweeps/spec.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_util.h"
#include "sweeps/internal/command.h"
#include "sweeps/internal/errors.h"
#include "sweeps/internal/parser.h"
#include "sweeps/internal/sampling.h"
#include "sweeps/internal/values.h"
#include "sweeps/internal/yaml_adapter.h"

namespace sweep::spec {
namespace {

using internal::Number;
using internal::Quantize;
using internal::SetPath;
using internal::TrialRandom;
using nlohmann::json;

// The key path of `param` in the YAML file: "parameters.a.parameters.b".
std::string KeyPath(const Parameter& param) {
  return absl::StrCat("parameters.", absl::StrJoin(param.path, ".parameters."));
}

// Returns how many grid points `param` contributes.
absl::StatusOr<int64_t> GridCount(const SweepSpec& spec,
                                  const Parameter& param) {
  switch (param.distribution) {
    case Distribution::kConstant:
      return 1;
    case Distribution::kCategorical:
      return static_cast<int64_t>(param.values.size());
    case Distribution::kIntUniform:
      return static_cast<int64_t>(param.max - param.min) + 1;
    case Distribution::kQUniform: {
      // numpy.arange(min, max, q): max excluded.
      const double count = std::ceil((param.max - param.min) / param.q);
      if (count < 1) {
        return internal::SpecError(
            spec.file_name, param.position, KeyPath(param),
            "q_uniform has no grid points: the grid takes min + k*q below max, "
            "and min equals max");
      }
      if (count >= 0x1.0p63) {
        return internal::SpecError(spec.file_name, param.position,
                                   KeyPath(param),
                                   "has more grid points than an int64 holds");
      }
      return static_cast<int64_t>(count);
    }
    default:
      return internal::SpecError(
          spec.file_name, param.position, KeyPath(param),
          absl::StrCat("grid search cannot enumerate distribution ",
                       internal::AbslView(DistributionName(param.distribution)),
                       "; it needs values, value, int_uniform or q_uniform"));
  }
}

json GridValue(const Parameter& param, int64_t k) {
  switch (param.distribution) {
    case Distribution::kCategorical:
      return param.values[k];
    case Distribution::kIntUniform:
      return static_cast<int64_t>(param.min) + k;
    case Distribution::kQUniform:
      return Number(param.min + static_cast<double>(k) * param.q,
                    param.integer);
    default:
      return param.values[0];
  }
}

json Draw(const Parameter& p, TrialRandom& random) {
  switch (p.distribution) {
    case Distribution::kConstant:
      return p.values[0];
    case Distribution::kCategorical:
      return p.values[random.Choose(p.probabilities, p.values.size())];
    case Distribution::kIntUniform:
      return random.UniformInt(static_cast<int64_t>(p.min),
                               static_cast<int64_t>(p.max));
    case Distribution::kUniform:
      return random.Uniform(p.min, p.max);
    case Distribution::kQUniform:
      return Quantize(random.Uniform(p.min, p.max), p);
    case Distribution::kLogUniform:
      return std::clamp(std::exp(random.Uniform(p.min, p.max)), std::exp(p.min),
                        std::exp(p.max));
    case Distribution::kLogUniformValues:
      return std::clamp(
          std::exp(random.Uniform(std::log(p.min), std::log(p.max))), p.min,
          p.max);
    case Distribution::kQLogUniformValues:
      return Quantize(
          std::exp(random.Uniform(std::log(p.min), std::log(p.max))), p);
    case Distribution::kInvLogUniform:
      return std::clamp(1.0 / std::exp(random.Uniform(p.min, p.max)),
                        std::exp(-p.max), std::exp(-p.min));
    case Distribution::kInvLogUniformValues:
      return std::clamp(1.0 / std::exp(random.Uniform(std::log(1 / p.max),
                                                      std::log(1 / p.min))),
                        p.min, p.max);
    case Distribution::kNormal:
      return p.mu + p.sigma * random.Normal();
    case Distribution::kQNormal:
      return Quantize(p.mu + p.sigma * random.Normal(), p);
    case Distribution::kLogNormal:
      return std::exp(p.mu + p.sigma * random.Normal());
    case Distribution::kQLogNormal:
      return Quantize(std::exp(p.mu + p.sigma * random.Normal()), p);
  }
  return nullptr;
}

// The items that ${args}-style macros expand to.
struct ArgLists {
  std::vector<std::string> args;
  std::vector<std::string> no_hyphens;
  std::vector<std::string> no_boolean_flags;
  std::string json;
};

ArgLists MakeArgLists(const SweepSpec& spec, const json& params) {
  // The spec's parameter order, then keys the spec does not name (std::map
  // iteration: sorted).
  std::vector<std::string> keys;
  auto add = [&](const std::string& key) {
    if (params.contains(key) &&
        std::find(keys.begin(), keys.end(), key) == keys.end()) {
      keys.push_back(key);
    }
  };
  for (const Parameter& param : spec.parameters) add(param.path.front());
  for (const auto& item : params.items()) add(item.key());

  ArgLists lists;
  for (const std::string& key : keys) {
    const json& value = params.at(key);
    const std::string text = internal::PythonStr(value);
    lists.args.push_back(absl::StrCat("--", key, "=", text));
    lists.no_hyphens.push_back(absl::StrCat(key, "=", text));
    if (!value.is_boolean()) {
      lists.no_boolean_flags.push_back(lists.args.back());
    } else if (value.get<bool>()) {
      lists.no_boolean_flags.push_back(absl::StrCat("--", key));
    }
  }
  lists.json = internal::JsonDump(params);
  return lists;
}

}  // namespace

std::string_view DistributionName(Distribution d) {
  switch (d) {
    case Distribution::kConstant:
      return "constant";
    case Distribution::kCategorical:
      return "categorical";
    case Distribution::kIntUniform:
      return "int_uniform";
    case Distribution::kUniform:
      return "uniform";
    case Distribution::kQUniform:
      return "q_uniform";
    case Distribution::kLogUniform:
      return "log_uniform";
    case Distribution::kLogUniformValues:
      return "log_uniform_values";
    case Distribution::kQLogUniformValues:
      return "q_log_uniform_values";
    case Distribution::kInvLogUniform:
      return "inv_log_uniform";
    case Distribution::kInvLogUniformValues:
      return "inv_log_uniform_values";
    case Distribution::kNormal:
      return "normal";
    case Distribution::kQNormal:
      return "q_normal";
    case Distribution::kLogNormal:
      return "log_normal";
    case Distribution::kQLogNormal:
      return "q_log_normal";
  }
  return "unknown";
}

std::optional<Method> MethodNamed(std::string_view name) {
  for (Method m : kMethods) {
    if (MethodName(m) == name) return m;
  }
  return std::nullopt;
}

std::string MethodNames() {
  std::string out;
  for (Method m : kMethods) {
    if (!out.empty()) out += ", ";
    out += MethodName(m);
  }
  return out;
}

bool IsBetter(Goal goal, double a, double b) {
  return goal == Goal::kMaximize ? a > b : a < b;
}

bool ReachedTarget(const Metric& m, double value) {
  if (!m.target) return false;
  return m.goal == Goal::kMaximize ? value >= *m.target : value <= *m.target;
}

double GpuShare(const Resources& r) {
  return std::max(1, r.gpus_per_trial) / static_cast<double>(std::max(1, r.trials_per_gpu));
}

std::string_view MethodName(Method m) {
  switch (m) {
    case Method::kGrid:
      return "grid";
    case Method::kRandom:
      return "random";
    case Method::kBayes:
      return "bayes";
    case Method::kSobol:
      return "sobol";
  }
  return "unknown";
}

std::string_view GoalName(Goal g) {
  switch (g) {
    case Goal::kMinimize:
      return "minimize";
    case Goal::kMaximize:
      return "maximize";
  }
  return "unknown";
}

std::string Parameter::Name() const { return absl::StrJoin(path, "."); }

absl::StatusOr<SweepSpec> ParseSpec(std::string_view yaml_text,
                                    std::string_view file_name) {
  SWEEP_ASSIGN_OR_RETURN(const internal::YamlNode root,
                         internal::ParseYaml(internal::AbslView(yaml_text),
                                             internal::AbslView(file_name)));
  SWEEP_ASSIGN_OR_RETURN(
      SweepSpec spec, internal::BuildSpec(root, internal::AbslView(file_name)));
  if (spec.method == Method::kGrid) {
    SWEEP_RETURN_IF_ERROR(GridSize(spec).status());
  }
  return spec;
}

absl::StatusOr<SweepSpec> LoadSpecFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("cannot read sweep spec ", path, ": ", std::strerror(errno)));
  }
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) {
    return absl::NotFoundError(
        absl::StrCat("cannot read sweep spec ", path, ": ", std::strerror(err)));
  }
  return ParseSpec(text, path);
}

absl::StatusOr<int64_t> GridSize(const SweepSpec& spec) {
  int64_t size = 1;
  for (const Parameter& param : spec.parameters) {
    SWEEP_ASSIGN_OR_RETURN(const int64_t count, GridCount(spec, param));
    if (__builtin_mul_overflow(size, count, &size)) {
      return internal::SpecError(
          spec.file_name, param.position, KeyPath(param),
          "the grid has more points than an int64 holds");
    }
  }
  return size;
}

std::optional<int64_t> TrialBudget(const SweepSpec& spec) {
  if (spec.method != Method::kGrid) return spec.run_cap;
  const absl::StatusOr<int64_t> size = GridSize(spec);
  if (!size.ok()) return spec.run_cap;
  return spec.run_cap ? std::min(*size, *spec.run_cap) : *size;
}

json GridPoint(const SweepSpec& spec, int64_t index) {
  std::vector<int64_t> digits(spec.parameters.size());
  for (size_t i = spec.parameters.size(); i-- > 0;) {
    const int64_t count = GridCount(spec, spec.parameters[i]).value_or(1);
    digits[i] = index % count;
    index /= count;
  }
  json point = json::object();
  for (size_t i = 0; i < spec.parameters.size(); ++i) {
    SetPath(point, spec.parameters[i].path,
            GridValue(spec.parameters[i], digits[i]));
  }
  return point;
}

json SamplePoint(const SweepSpec& spec, uint64_t seed, int64_t index) {
  TrialRandom random(seed, index);
  json point = json::object();
  for (const Parameter& param : spec.parameters) {
    SetPath(point, param.path, Draw(param, random));
  }
  return point;
}

absl::StatusOr<std::vector<std::string>> BuildCommand(const SweepSpec& spec,
                                                      const json& params) {
  if (!params.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("trial parameters must be a JSON object, got ",
                     internal::JsonDump(params)));
  }
  std::vector<std::string> command(spec.command.begin(), spec.command.end());
  const bool default_command = command.empty();
  if (default_command) {
    for (absl::string_view item : internal::kDefaultCommand) {
      command.emplace_back(item);
    }
  }
  const ArgLists lists = MakeArgLists(spec, params);
  const std::vector<std::string> interpreter =
      absl::EndsWith(spec.program, ".py")
          ? std::vector<std::string>{std::string(internal::kPythonInterpreter)}
          : std::vector<std::string>{};

  std::vector<std::string> argv;
  for (size_t i = 0; i < command.size(); ++i) {
    const std::string& item = command[i];
    const std::string item_path =
        default_command ? "command" : absl::StrCat("command[", i, "]");
    absl::StatusOr<std::vector<internal::MacroRef>> refs =
        internal::FindMacros(item);
    if (!refs.ok()) {
      return internal::SpecError(spec.file_name, Position{}, item_path,
                                 refs.status().message());
    }
    // Each macro's items.
    std::vector<std::vector<std::string>> expansions;
    for (const internal::MacroRef& ref : *refs) {
      switch (ref.macro) {
        case internal::Macro::kEnv:
          expansions.push_back({std::string(internal::kEnvPath)});
          break;
        case internal::Macro::kInterpreter:
          expansions.push_back(interpreter);
          break;
        case internal::Macro::kProgram:
          if (spec.program.empty()) {
            return internal::SpecError(
                spec.file_name, Position{}, item_path,
                default_command
                    ? "the default command (${env} ${interpreter} ${program} "
                      "${args}) needs program, which is not set"
                    : "uses ${program} but program is not set");
          }
          expansions.push_back({spec.program});
          break;
        case internal::Macro::kArgs:
          expansions.push_back(lists.args);
          break;
        case internal::Macro::kArgsNoHyphens:
          expansions.push_back(lists.no_hyphens);
          break;
        case internal::Macro::kArgsNoBooleanFlags:
          expansions.push_back(lists.no_boolean_flags);
          break;
        case internal::Macro::kArgsJson:
          expansions.push_back({lists.json});
          break;
      }
    }
    if (refs->size() == 1 && (*refs)[0].begin == 0 &&
        (*refs)[0].size == item.size()) {
      argv.insert(argv.end(), expansions[0].begin(), expansions[0].end());
      continue;
    }
    std::string expanded;
    size_t from = 0;
    for (size_t k = 0; k < refs->size(); ++k) {
      const internal::MacroRef& ref = (*refs)[k];
      absl::StrAppend(&expanded, item.substr(from, ref.begin - from),
                      absl::StrJoin(expansions[k], " "));
      from = ref.begin + ref.size;
    }
    absl::StrAppend(&expanded, item.substr(from));
    argv.push_back(std::move(expanded));
  }
  if (argv.empty()) {
    return internal::SpecError(spec.file_name, Position{}, "command",
                               "is empty once its macros are expanded");
  }
  // A spec from ParseSpec holds neither; `params` from elsewhere might. argv
  // goes to execve (which would cut an item at a NUL) and into JSON.
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i].find('\0') != std::string::npos ||
        internal::FirstInvalidUtf8(argv[i]) != absl::string_view::npos) {
      return internal::SpecError(
          spec.file_name, Position{}, "command",
          absl::StrCat("argument ", i, " of the expanded command, ",
                       internal::Quoted(argv[i]),
                       ", holds a NUL character or invalid UTF-8"));
    }
  }
  return argv;
}

}  // namespace sweep::spec
