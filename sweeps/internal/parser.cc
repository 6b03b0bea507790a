#include "sweeps/internal/parser.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/types/span.h"
#include "common/status_util.h"
#include "nlohmann/json.hpp"
#include "sweeps/internal/command.h"
#include "sweeps/internal/errors.h"
#include "sweeps/internal/sobol.h"
#include "sweeps/internal/values.h"

namespace sweep::spec::internal {
namespace {

using nlohmann::json;
using Kind = YamlNode::Kind;

// Accepted keys, sorted, as error messages list them.
constexpr absl::string_view kTopLevelKeys[] = {"command",
                                               "cost",
                                               "description",
                                               "early_terminate",
                                               "entity",
                                               "max_concurrent",
                                               "max_duration",
                                               "max_failed_trials",
                                               "max_retries",
                                               "max_trials",
                                               "method",
                                               "metric",
                                               "name",
                                               "parameters",
                                               "program",
                                               "project",
                                               "resources",
                                               "run_cap",
                                               "seed",
                                               "timeout"};
constexpr absl::string_view kMetricKeys[] = {"goal", "name", "target"};
constexpr absl::string_view kCostKeys[] = {"currency", "gpu_hour", "kwh"};
constexpr absl::string_view kParameterKeys[] = {
    "distribution",  "max", "min",   "mu",    "parameters",
    "probabilities", "q",   "sigma", "value", "values"};
constexpr absl::string_view kEarlyTerminateKeys[] = {
    "eta",        "grace", "max_iter", "min_iter",
    "min_trials", "s",     "strict",   "type"};
// The keys each early_terminate type takes besides `type`, as messages list
// them.
constexpr absl::string_view kHyperbandKeys[] = {"min_iter", "max_iter", "s",
                                                "eta", "strict"};
constexpr absl::string_view kAshaKeys[] = {"min_iter", "grace", "max_iter",
                                           "eta"};
constexpr absl::string_view kMedianKeys[] = {"min_iter", "min_trials"};
constexpr absl::string_view kResourcesKeys[] = {"gpu_check", "gpu_memory", "gpus_per_trial",
                                                "trials_per_gpu"};
constexpr absl::string_view kGpuCheckKeys[] = {"action", "within"};

constexpr Distribution kDistributions[] = {
    Distribution::kConstant,         Distribution::kCategorical,
    Distribution::kIntUniform,       Distribution::kUniform,
    Distribution::kQUniform,         Distribution::kLogUniform,
    Distribution::kLogUniformValues, Distribution::kQLogUniformValues,
    Distribution::kInvLogUniform,    Distribution::kInvLogUniformValues,
    Distribution::kNormal,           Distribution::kQNormal,
    Distribution::kLogNormal,        Distribution::kQLogNormal,
};

// int_uniform bounds are held in doubles: integers up to 2^53 are exact.
constexpr int64_t kMaxExactInteger = int64_t{1} << 53;

// The largest early_terminate step: far beyond any real run, small enough that
// rung arithmetic (min_iter * eta^k) stays exact in a double.
constexpr int64_t kMaxSteps = int64_t{1} << 50;
// Hyperband brackets beyond this many are pointless (eta^64 steps).
constexpr int64_t kMaxBands = 64;

// Which settings a distribution takes.
enum class Shape { kValue, kValues, kRange, kQRange, kNormal, kQNormal };

Shape ShapeOf(Distribution d) {
  switch (d) {
    case Distribution::kConstant:
      return Shape::kValue;
    case Distribution::kCategorical:
      return Shape::kValues;
    case Distribution::kIntUniform:
    case Distribution::kUniform:
    case Distribution::kLogUniform:
    case Distribution::kLogUniformValues:
    case Distribution::kInvLogUniform:
    case Distribution::kInvLogUniformValues:
      return Shape::kRange;
    case Distribution::kQUniform:
    case Distribution::kQLogUniformValues:
      return Shape::kQRange;
    case Distribution::kNormal:
    case Distribution::kLogNormal:
      return Shape::kNormal;
    case Distribution::kQNormal:
    case Distribution::kQLogNormal:
      return Shape::kQNormal;
  }
  return Shape::kValue;
}

std::vector<absl::string_view> KeysOf(Shape shape) {
  switch (shape) {
    case Shape::kValue:
      return {"value"};
    case Shape::kValues:
      return {"values", "probabilities"};
    case Shape::kRange:
      return {"min", "max"};
    case Shape::kQRange:
      return {"min", "max", "q"};
    case Shape::kNormal:
      return {"mu", "sigma"};
    case Shape::kQNormal:
      return {"mu", "sigma", "q"};
  }
  return {};
}

// "min and max", "min, max and q".
std::string ListWithAnd(absl::Span<const absl::string_view> words) {
  if (words.size() <= 1) return absl::StrJoin(words, "");
  return absl::StrCat(absl::StrJoin(words.first(words.size() - 1), ", "),
                      " and ", words.back());
}

bool NeedsPositiveMin(Distribution d) {
  return d == Distribution::kLogUniformValues ||
         d == Distribution::kQLogUniformValues ||
         d == Distribution::kInvLogUniformValues;
}

class Parser {
 public:
  explicit Parser(absl::string_view file_name) : file_(file_name) {
    spec_.file_name = std::string(file_name);
  }

  absl::StatusOr<SweepSpec> Parse(const YamlNode& root) {
    if (root.kind == Kind::kNull) {
      return Error(Position{1, 1}, "",
                   "the file holds no sweep spec; expected a mapping with at "
                   "least method and parameters");
    }
    if (root.kind != Kind::kMap) {
      return Error(Position{1, 1}, "",
                   absl::StrCat("expected a mapping of sweep keys (method, "
                                "parameters, ...) at the top level, got ",
                                Describe(root)));
    }
    SWEEP_RETURN_IF_ERROR(CheckKeys(root, "", kTopLevelKeys));
    SWEEP_RETURN_IF_ERROR(ParseStrings(root));
    SWEEP_RETURN_IF_ERROR(ParseMethod(root));
    if (const YamlEntry* metric = root.Find("metric")) {
      SWEEP_RETURN_IF_ERROR(ParseMetric(*metric));
    }
    SWEEP_RETURN_IF_ERROR(ParseParameters(root));
    SWEEP_RETURN_IF_ERROR(ParseCommand(root));
    if (const YamlEntry* et = root.Find("early_terminate")) {
      SWEEP_RETURN_IF_ERROR(ParseEarlyTerminate(*et));
    }
    SWEEP_RETURN_IF_ERROR(ParseLimits(root));
    if (spec_.method == Method::kSobol) WarnSobolDimensions(root);
    // Warnings in file order.
    std::stable_sort(warnings_.begin(), warnings_.end(),
                     [](const auto& a, const auto& b) {
                       return std::pair(a.first.line, a.first.column) <
                              std::pair(b.first.line, b.first.column);
                     });
    for (auto& [position, message] : warnings_) {
      spec_.warnings.push_back(std::move(message));
    }
    return std::move(spec_);
  }

 private:
  absl::Status Error(Position position, absl::string_view path,
                     absl::string_view what) const {
    return SpecError(file_, position, path, what);
  }

  void Warn(Position position, absl::string_view path, absl::string_view what) {
    warnings_.emplace_back(position,
                           FormatMessage(file_, position, path, what));
  }

  // Unknown keys are errors: W&B's schema sets additionalProperties: false.
  absl::Status CheckKeys(const YamlNode& map, absl::string_view path,
                         absl::Span<const absl::string_view> allowed) const {
    for (const YamlEntry& entry : map.entries) {
      bool known = false;
      for (absl::string_view key : allowed) known = known || key == entry.key;
      if (!known) {
        return Error(entry.key_position, JoinPath(path, entry.key),
                     absl::StrCat("unknown key; expected one of ",
                                  absl::StrJoin(allowed, ", ")));
      }
    }
    return absl::OkStatus();
  }

  absl::Status ExpectMap(const YamlNode& node, absl::string_view path,
                         absl::string_view expected) const {
    if (node.kind == Kind::kMap) return absl::OkStatus();
    return Error(node.position, path,
                 absl::StrCat("expected ", expected, ", got ", Describe(node)));
  }

  // Any non-null scalar, as written.
  absl::StatusOr<std::string> ReadString(const YamlNode& node,
                                         absl::string_view path) const {
    if (node.kind != Kind::kScalar) {
      return Error(node.position, path,
                   absl::StrCat("expected a string, got ", Describe(node)));
    }
    return node.text;
  }

  absl::StatusOr<double> ReadNumber(const YamlNode& node,
                                    absl::string_view path) const {
    SWEEP_ASSIGN_OR_RETURN(const json value, ToJson(node, file_, path));
    if (!value.is_number()) {
      return Error(node.position, path,
                   absl::StrCat("expected a number, got ", Describe(node)));
    }
    const double number = value.get<double>();
    if (!std::isfinite(number)) {
      return Error(node.position, path,
                   absl::StrCat("expected a finite number, got ", node.text));
    }
    return number;
  }

  absl::StatusOr<int64_t> ReadInteger(
      const YamlNode& node, absl::string_view path, int64_t min,
      int64_t max = std::numeric_limits<int64_t>::max()) const {
    SWEEP_ASSIGN_OR_RETURN(const json value, ToJson(node, file_, path));
    if (!value.is_number_integer()) {
      return Error(node.position, path,
                   absl::StrCat("expected an integer, got ", Describe(node)));
    }
    const int64_t number = value.get<int64_t>();
    if (number < min) {
      return Error(node.position, path,
                   absl::StrCat("must be at least ", min, ", got ", number));
    }
    if (number > max) {
      return Error(node.position, path,
                   absl::StrCat("must be at most ", max, ", got ", number));
    }
    return number;
  }

  absl::Status ParseStrings(const YamlNode& root) {
    const std::pair<absl::string_view, std::string*> fields[] = {
        {"name", &spec_.name},
        {"description", &spec_.description},
        {"program", &spec_.program}};
    for (const auto& [key, field] : fields) {
      if (const YamlEntry* entry = root.Find(key)) {
        SWEEP_ASSIGN_OR_RETURN(*field, ReadString(entry->value, key));
      }
    }
    for (absl::string_view key : {"project", "entity"}) {
      if (const YamlEntry* entry = root.Find(key)) {
        SWEEP_RETURN_IF_ERROR(ReadString(entry->value, key).status());
        Warn(entry->key_position, key,
             absl::StrCat("W&B's ", key,
                          "; accepted for compatibility and ignored"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status ParseMethod(const YamlNode& root) {
    const YamlEntry* entry = root.Find("method");
    if (entry == nullptr) {
      return Error(
          root.position, "method",
          absl::StrCat("required key is missing; expected one of ", MethodNames()));
    }
    SWEEP_ASSIGN_OR_RETURN(const std::string method,
                           ReadString(entry->value, "method"));
    const std::optional<Method> named = MethodNamed(method);
    if (!named) {
      return Error(entry->value.position, "method",
                   absl::StrCat("unknown method ", Quoted(method),
                                "; expected one of ", MethodNames()));
    }
    spec_.method = *named;
    if (spec_.method == Method::kBayes && root.Find("metric") == nullptr) {
      return Error(entry->value.position, "method",
                   "bayes needs a metric to optimize; add metric: with a "
                   "name and a goal");
    }
    return absl::OkStatus();
  }

  // Sobol' points cover the first kSobolDimensions parameters that are not
  // constants; the others are drawn at random.
  void WarnSobolDimensions(const YamlNode& root) {
    int dimensions = 0;
    for (const Parameter& param : spec_.parameters) {
      if (param.distribution == Distribution::kConstant) continue;
      if (++dimensions == kSobolDimensions + 1) {
        Warn(root.Find("method")->value.position, "method",
             absl::StrCat("sobol covers the first ", kSobolDimensions,
                          " parameters that are not constants; ", param.Name(),
                          " and the ones after it are drawn at "
                          "random"));
      }
    }
  }

  absl::Status ParseMetric(const YamlEntry& entry) {
    const YamlNode& node = entry.value;
    SWEEP_RETURN_IF_ERROR(
        ExpectMap(node, "metric", "a mapping with name and goal"));
    SWEEP_RETURN_IF_ERROR(CheckKeys(node, "metric", kMetricKeys));
    Metric metric;
    const YamlEntry* name = node.Find("name");
    if (name == nullptr) {
      return Error(node.position, "metric.name",
                   "required key is missing; name the metric to optimize");
    }
    SWEEP_ASSIGN_OR_RETURN(metric.name, ReadString(name->value, "metric.name"));
    if (metric.name.empty()) {
      return Error(name->value.position, "metric.name", "must not be empty");
    }
    if (const YamlEntry* goal = node.Find("goal")) {
      SWEEP_ASSIGN_OR_RETURN(const std::string text,
                             ReadString(goal->value, "metric.goal"));
      std::optional<Goal> named;
      for (Goal g : {Goal::kMinimize, Goal::kMaximize}) {
        if (GoalName(g) == text) named = g;
      }
      if (!named) {
        return Error(goal->value.position, "metric.goal",
                     absl::StrCat("unknown goal ", Quoted(text),
                                  "; expected minimize or maximize"));
      }
      metric.goal = *named;
    }
    if (const YamlEntry* target = node.Find("target")) {
      SWEEP_ASSIGN_OR_RETURN(metric.target,
                             ReadNumber(target->value, "metric.target"));
    }
    spec_.metric = std::move(metric);
    return absl::OkStatus();
  }

  absl::Status ParseParameters(const YamlNode& root) {
    const YamlEntry* entry = root.Find("parameters");
    if (entry == nullptr) {
      return Error(root.position, "parameters",
                   "required key is missing; a sweep needs at least one "
                   "parameter");
    }
    return ParseParameterBlock(entry->value, {}, "parameters");
  }

  // A `parameters:` mapping: the top-level one or a nested one.
  absl::Status ParseParameterBlock(const YamlNode& node,
                                   const std::vector<std::string>& prefix,
                                   absl::string_view path) {
    if (node.kind == Kind::kNull ||
        (node.kind == Kind::kMap && node.entries.empty())) {
      return Error(node.position, path,
                   "must not be empty; give at least one parameter");
    }
    SWEEP_RETURN_IF_ERROR(ExpectMap(
        node, path, "a mapping of parameter names to their settings"));
    for (const YamlEntry& entry : node.entries) {
      std::vector<std::string> name = prefix;
      name.push_back(entry.key);
      SWEEP_RETURN_IF_ERROR(
          ParseParameter(entry, std::move(name), JoinPath(path, entry.key)));
    }
    return absl::OkStatus();
  }

  absl::Status ParseParameter(const YamlEntry& entry,
                              std::vector<std::string> name,
                              const std::string& path) {
    const YamlNode& node = entry.value;
    if (node.kind != Kind::kMap || node.entries.empty()) {
      return Error(node.position, path,
                   absl::StrCat("expected a mapping with value, values, "
                                "min and max, or distribution, got ",
                                node.kind == Kind::kMap ? "an empty mapping"
                                                        : Describe(node)));
    }
    SWEEP_RETURN_IF_ERROR(CheckKeys(node, path, kParameterKeys));
    if (const YamlEntry* nested = node.Find("parameters")) {
      for (const YamlEntry& other : node.entries) {
        if (&other == nested) continue;
        return Error(other.key_position, JoinPath(path, other.key),
                     "cannot be combined with a nested parameters block");
      }
      return ParseParameterBlock(nested->value, name,
                                 JoinPath(path, "parameters"));
    }

    Parameter param;
    param.path = std::move(name);
    param.position = entry.key_position;
    std::string inferred_from;
    SWEEP_ASSIGN_OR_RETURN(param.distribution,
                           ResolveDistribution(node, path, inferred_from));
    const Shape shape = ShapeOf(param.distribution);
    const absl::string_view dist_name =
        AbslView(DistributionName(param.distribution));
    const std::vector<absl::string_view> keys = KeysOf(shape);
    for (const YamlEntry& setting : node.entries) {
      if (setting.key == "distribution") continue;
      bool applies = false;
      for (absl::string_view key : keys)
        applies = applies || key == setting.key;
      if (!applies) {
        return Error(
            setting.key_position, JoinPath(path, setting.key),
            absl::StrCat("does not apply to distribution ", dist_name,
                         inferred_from, ", which takes ", ListWithAnd(keys)));
      }
    }

    switch (shape) {
      case Shape::kValue: {
        SWEEP_ASSIGN_OR_RETURN(
            const YamlEntry* value,
            Require(node, path, "value", param.distribution));
        SWEEP_ASSIGN_OR_RETURN(
            json v, ToJson(value->value, file_, JoinPath(path, "value")));
        param.values.push_back(std::move(v));
        break;
      }
      case Shape::kValues:
        SWEEP_RETURN_IF_ERROR(ParseValues(node, path, param));
        break;
      case Shape::kRange:
      case Shape::kQRange:
        SWEEP_RETURN_IF_ERROR(ParseRange(node, path, param));
        break;
      case Shape::kNormal:
      case Shape::kQNormal:
        SWEEP_RETURN_IF_ERROR(ParseNormal(node, path, param));
        break;
    }
    spec_.parameters.push_back(std::move(param));
    return absl::OkStatus();
  }

  // The explicit `distribution:`, or W&B's inference: value -> constant, values
  // -> categorical, min and max -> int_uniform when both are integers, else
  // uniform. Sets `inferred_from` to " (inferred from ...)" for messages.
  absl::StatusOr<Distribution> ResolveDistribution(
      const YamlNode& node, absl::string_view path,
      std::string& inferred_from) const {
    if (const YamlEntry* entry = node.Find("distribution")) {
      const std::string dist_path = JoinPath(path, "distribution");
      SWEEP_ASSIGN_OR_RETURN(const std::string name,
                             ReadString(entry->value, dist_path));
      for (Distribution d : kDistributions) {
        if (AbslView(DistributionName(d)) == name) return d;
      }
      std::vector<absl::string_view> names;
      for (Distribution d : kDistributions)
        names.push_back(AbslView(DistributionName(d)));
      return Error(
          entry->value.position, dist_path,
          absl::StrCat("unknown distribution ", Quoted(name),
                       "; expected one of ", absl::StrJoin(names, ", ")));
    }
    const YamlEntry* value = node.Find("value");
    const YamlEntry* values = node.Find("values");
    if (value != nullptr && values != nullptr) {
      const bool value_last =
          value->key_position.line > values->key_position.line;
      const YamlEntry* second = value_last ? value : values;
      return Error(second->key_position, JoinPath(path, second->key),
                   absl::StrCat("cannot be combined with ",
                                value_last ? "values" : "value",
                                "; give either value or values"));
    }
    if (value != nullptr) {
      inferred_from = " (inferred from value)";
      return Distribution::kConstant;
    }
    if (values != nullptr) {
      inferred_from = " (inferred from values)";
      return Distribution::kCategorical;
    }
    const YamlEntry* min = node.Find("min");
    const YamlEntry* max = node.Find("max");
    if (min != nullptr || max != nullptr) {
      inferred_from = " (inferred from min and max)";
      auto is_integer = [&](const YamlEntry* bound) {
        if (bound == nullptr) return false;
        absl::StatusOr<json> v = ToJson(bound->value, file_, "");
        return v.ok() && v->is_number_integer();
      };
      return is_integer(min) && is_integer(max) ? Distribution::kIntUniform
                                                : Distribution::kUniform;
    }
    return Error(node.position, path,
                 "expected value, values, min and max, or distribution");
  }

  absl::Status ParseValues(const YamlNode& node, absl::string_view path,
                           Parameter& param) const {
    const std::string values_path = JoinPath(path, "values");
    const YamlEntry* values = node.Find("values");
    if (values == nullptr) {
      return Error(node.position, values_path,
                   "required key is missing; categorical takes a list of "
                   "values");
    }
    if (values->value.kind != Kind::kSequence) {
      return Error(
          values->value.position, values_path,
          absl::StrCat("expected a list, got ", Describe(values->value)));
    }
    if (values->value.items.empty()) {
      return Error(values->value.position, values_path, "must not be empty");
    }
    SWEEP_ASSIGN_OR_RETURN(const json array,
                           ToJson(values->value, file_, values_path));
    param.values.assign(array.begin(), array.end());

    const YamlEntry* probabilities = node.Find("probabilities");
    if (probabilities == nullptr) return absl::OkStatus();
    const std::string prob_path = JoinPath(path, "probabilities");
    const YamlNode& list = probabilities->value;
    if (list.kind != Kind::kSequence) {
      return Error(
          list.position, prob_path,
          absl::StrCat("expected a list of numbers, got ", Describe(list)));
    }
    if (list.items.size() != param.values.size()) {
      return Error(
          list.position, prob_path,
          absl::StrCat("has ", list.items.size(), " entries but values has ",
                       param.values.size()));
    }
    double sum = 0;
    for (size_t i = 0; i < list.items.size(); ++i) {
      const std::string item_path = absl::StrCat(prob_path, "[", i, "]");
      SWEEP_ASSIGN_OR_RETURN(const double p,
                             ReadNumber(list.items[i], item_path));
      if (p < 0 || p > 1) {
        return Error(
            list.items[i].position, item_path,
            absl::StrCat("must be between 0 and 1, got ", list.items[i].text));
      }
      param.probabilities.push_back(p);
      sum += p;
    }
    if (std::abs(sum - 1) > 1e-6) {
      return Error(list.position, prob_path,
                   absl::StrCat("must sum to 1, got ", sum));
    }
    return absl::OkStatus();
  }

  // Returns required setting `key` of distribution `d`.
  absl::StatusOr<const YamlEntry*> Require(const YamlNode& node,
                                           absl::string_view path,
                                           absl::string_view key,
                                           Distribution d) const {
    if (const YamlEntry* entry = node.Find(key)) return entry;
    return Error(
        node.position, JoinPath(path, key),
        absl::StrCat("required key is missing; ", AbslView(DistributionName(d)),
                     " takes ", ListWithAnd(KeysOf(ShapeOf(d)))));
  }

  absl::StatusOr<bool> IsIntegerText(const YamlNode& node,
                                     absl::string_view path) const {
    SWEEP_ASSIGN_OR_RETURN(const json value, ToJson(node, file_, path));
    return value.is_number_integer();
  }

  // q defaults to 1, an integer.
  absl::StatusOr<bool> ParseQ(const YamlNode& node, absl::string_view path,
                              Parameter& param) const {
    const YamlEntry* q = node.Find("q");
    if (q == nullptr) return true;
    const std::string q_path = JoinPath(path, "q");
    SWEEP_ASSIGN_OR_RETURN(param.q, ReadNumber(q->value, q_path));
    if (param.q <= 0) {
      return Error(q->value.position, q_path,
                   absl::StrCat("must be greater than 0, got ", q->value.text));
    }
    return IsIntegerText(q->value, q_path);
  }

  absl::Status ParseRange(const YamlNode& node, absl::string_view path,
                          Parameter& param) const {
    const Distribution d = param.distribution;
    const std::string min_path = JoinPath(path, "min");
    const std::string max_path = JoinPath(path, "max");
    SWEEP_ASSIGN_OR_RETURN(const YamlEntry* min, Require(node, path, "min", d));
    SWEEP_ASSIGN_OR_RETURN(const YamlEntry* max, Require(node, path, "max", d));
    if (d == Distribution::kIntUniform) {
      SWEEP_ASSIGN_OR_RETURN(
          const int64_t lo, ReadInteger(min->value, min_path, -kMaxExactInteger,
                                        kMaxExactInteger));
      SWEEP_ASSIGN_OR_RETURN(
          const int64_t hi, ReadInteger(max->value, max_path, -kMaxExactInteger,
                                        kMaxExactInteger));
      param.min = static_cast<double>(lo);
      param.max = static_cast<double>(hi);
      param.integer = true;
    } else {
      SWEEP_ASSIGN_OR_RETURN(param.min, ReadNumber(min->value, min_path));
      SWEEP_ASSIGN_OR_RETURN(param.max, ReadNumber(max->value, max_path));
    }
    if (param.min > param.max) {
      return Error(
          node.position, path,
          absl::StrCat("min (", min->value.text, ") is greater than max (",
                       max->value.text, ")"));
    }
    if (NeedsPositiveMin(d) && param.min <= 0) {
      return Error(min->value.position, min_path,
                   absl::StrCat("must be greater than 0 for ",
                                AbslView(DistributionName(d)), ", got ",
                                min->value.text));
    }
    if (ShapeOf(d) == Shape::kQRange) {
      SWEEP_ASSIGN_OR_RETURN(const bool integer_q, ParseQ(node, path, param));
      SWEEP_ASSIGN_OR_RETURN(const bool integer_min,
                             IsIntegerText(min->value, min_path));
      SWEEP_ASSIGN_OR_RETURN(const bool integer_max,
                             IsIntegerText(max->value, max_path));
      param.integer = integer_q && integer_min && integer_max;
    }
    return absl::OkStatus();
  }

  // mu defaults to 0 and sigma to 1, as in W&B.
  absl::Status ParseNormal(const YamlNode& node, absl::string_view path,
                           Parameter& param) const {
    bool integer_mu = true;
    if (const YamlEntry* mu = node.Find("mu")) {
      const std::string mu_path = JoinPath(path, "mu");
      SWEEP_ASSIGN_OR_RETURN(param.mu, ReadNumber(mu->value, mu_path));
      SWEEP_ASSIGN_OR_RETURN(integer_mu, IsIntegerText(mu->value, mu_path));
    }
    if (const YamlEntry* sigma = node.Find("sigma")) {
      const std::string sigma_path = JoinPath(path, "sigma");
      SWEEP_ASSIGN_OR_RETURN(param.sigma, ReadNumber(sigma->value, sigma_path));
      if (param.sigma <= 0) {
        return Error(
            sigma->value.position, sigma_path,
            absl::StrCat("must be greater than 0, got ", sigma->value.text));
      }
    }
    if (ShapeOf(param.distribution) == Shape::kQNormal) {
      SWEEP_ASSIGN_OR_RETURN(const bool integer_q, ParseQ(node, path, param));
      param.integer = integer_q && integer_mu;
    }
    return absl::OkStatus();
  }

  absl::Status ParseCommand(const YamlNode& root) {
    const YamlEntry* entry = root.Find("command");
    if (entry == nullptr) {
      if (spec_.program.empty()) {
        Warn(root.position, "",
             "neither program nor command is set, so trials have nothing to "
             "run; add program: (W&B's default command runs it) or command:");
      }
      return absl::OkStatus();
    }
    const YamlNode& node = entry->value;
    if (node.kind != Kind::kSequence) {
      return Error(
          node.position, "command",
          absl::StrCat("expected a list of strings, got ", Describe(node)));
    }
    if (node.items.empty()) {
      return Error(node.position, "command", "must not be empty");
    }
    bool passes_params = false;
    for (size_t i = 0; i < node.items.size(); ++i) {
      const YamlNode& item = node.items[i];
      const std::string item_path = absl::StrCat("command[", i, "]");
      SWEEP_ASSIGN_OR_RETURN(std::string text, ReadString(item, item_path));
      absl::StatusOr<std::vector<MacroRef>> macros = FindMacros(text);
      if (!macros.ok()) {
        return Error(item.position, item_path, macros.status().message());
      }
      for (const MacroRef& ref : *macros) {
        if (ref.macro == Macro::kProgram && spec_.program.empty()) {
          return Error(item.position, item_path,
                       "uses ${program} but program is not set");
        }
        passes_params = passes_params || ref.macro == Macro::kArgs ||
                        ref.macro == Macro::kArgsNoHyphens ||
                        ref.macro == Macro::kArgsNoBooleanFlags ||
                        ref.macro == Macro::kArgsJson;
      }
      spec_.command.push_back(std::move(text));
    }
    if (!passes_params) {
      Warn(entry->key_position, "command",
           "has no ${args}, ${args_no_hyphens}, ${args_no_boolean_flags} or "
           "${args_json}; trials get their parameters only from the "
           "SWEEP_PARAMS environment variable");
    }
    return absl::OkStatus();
  }

  // early_terminate: W&B's hyperband, or sweep's asha and median; checked, kept
  // as written (JSON) and typed.
  absl::Status ParseEarlyTerminate(const YamlEntry& entry) {
    const absl::string_view path = "early_terminate";
    const YamlNode& node = entry.value;
    SWEEP_RETURN_IF_ERROR(ExpectMap(
        node, path, "a mapping with type: hyperband, asha or median"));
    SWEEP_RETURN_IF_ERROR(CheckKeys(node, path, kEarlyTerminateKeys));
    const YamlEntry* type = node.Find("type");
    if (type == nullptr) {
      return Error(node.position, "early_terminate.type",
                   "required key is missing; expected one of hyperband, asha, "
                   "median");
    }
    SWEEP_ASSIGN_OR_RETURN(const std::string type_name,
                           ReadString(type->value, "early_terminate.type"));
    EarlyTerminate et;
    absl::Span<const absl::string_view> keys;
    if (type_name == "hyperband") {
      et.type = EarlyTerminate::Type::kHyperband;
      keys = kHyperbandKeys;
    } else if (type_name == "asha") {
      et.type = EarlyTerminate::Type::kAsha;
      keys = kAshaKeys;
    } else if (type_name == "median") {
      et.type = EarlyTerminate::Type::kMedian;
      keys = kMedianKeys;
      et.min_iter = 1;
    } else {
      return Error(type->value.position, "early_terminate.type",
                   absl::StrCat("unknown type ", Quoted(type_name),
                                "; expected one of hyperband, asha, median"));
    }
    for (const YamlEntry& setting : node.entries) {
      if (setting.key == "type") continue;
      if (std::find(keys.begin(), keys.end(), setting.key) == keys.end()) {
        return Error(setting.key_position, JoinPath(path, setting.key),
                     absl::StrCat("does not apply to type ", type_name,
                                  ", which takes ", ListWithAnd(keys)));
      }
    }

    const YamlEntry* min_iter = node.Find("min_iter");
    const YamlEntry* grace = node.Find("grace");
    if (min_iter != nullptr && grace != nullptr) {
      return Error(grace->key_position, "early_terminate.grace",
                   "is another name for min_iter; give only one of them");
    }
    if (const YamlEntry* e = min_iter != nullptr ? min_iter : grace) {
      SWEEP_ASSIGN_OR_RETURN(
          et.min_iter,
          ReadInteger(e->value, JoinPath(path, e->key), 1, kMaxSteps));
    }
    if (const YamlEntry* e = node.Find("max_iter")) {
      SWEEP_ASSIGN_OR_RETURN(
          et.max_iter,
          ReadInteger(e->value, "early_terminate.max_iter", 1, kMaxSteps));
    }
    if (et.type == EarlyTerminate::Type::kHyperband && et.min_iter == 0 &&
        et.max_iter == 0) {
      return Error(node.position, path, "hyperband needs min_iter or max_iter");
    }
    if (et.type == EarlyTerminate::Type::kAsha && et.min_iter == 0) {
      return Error(node.position, "early_terminate.min_iter",
                   "required key is missing; asha needs min_iter (or grace), "
                   "the step of its first rung");
    }
    if (et.min_iter > 0 && et.max_iter > 0 && et.min_iter > et.max_iter) {
      return Error(
          node.position, path,
          absl::StrCat("min_iter (", et.min_iter,
                       ") is greater than max_iter (", et.max_iter, ")"));
    }
    if (const YamlEntry* e = node.Find("s")) {
      SWEEP_ASSIGN_OR_RETURN(
          et.s, ReadInteger(e->value, "early_terminate.s", 1, kMaxBands));
    }
    if (const YamlEntry* e = node.Find("eta")) {
      SWEEP_ASSIGN_OR_RETURN(et.eta,
                             ReadNumber(e->value, "early_terminate.eta"));
      if (et.eta <= 1) {
        return Error(
            e->value.position, "early_terminate.eta",
            absl::StrCat("must be greater than 1, got ", e->value.text));
      }
    }
    if (const YamlEntry* e = node.Find("strict")) {
      SWEEP_ASSIGN_OR_RETURN(const json strict,
                             ToJson(e->value, file_, "early_terminate.strict"));
      if (!strict.is_boolean()) {
        return Error(
            e->value.position, "early_terminate.strict",
            absl::StrCat("expected true or false, got ", Describe(e->value)));
      }
      et.strict = strict.get<bool>();
    }
    if (const YamlEntry* e = node.Find("min_trials")) {
      SWEEP_ASSIGN_OR_RETURN(
          et.min_trials,
          ReadInteger(e->value, "early_terminate.min_trials", 1));
    }
    SWEEP_ASSIGN_OR_RETURN(spec_.early_terminate, ToJson(node, file_, path));
    spec_.early_stop = et;
    return absl::OkStatus();
  }

  // A duration in seconds: a number, or a string of <number><unit> parts with
  // units d, h, m and s, each at most once and largest first ("90s", "1h30m",
  // "1.5h").
  absl::StatusOr<double> ReadDuration(const YamlNode& node,
                                      absl::string_view path) const {
    SWEEP_ASSIGN_OR_RETURN(const json value, ToJson(node, file_, path));
    constexpr absl::string_view kExpected =
        "expected a duration: a number of seconds or a string such as 90s, "
        "30m, 2h or 1h30m";
    std::optional<double> seconds;
    if (value.is_number()) {
      seconds = value.get<double>();
    } else if (value.is_string()) {
      seconds = ParseDurationText(node.text);
    }
    if (!seconds || !std::isfinite(*seconds)) {
      return Error(node.position, path,
                   absl::StrCat(kExpected, ", got ", Describe(node)));
    }
    if (*seconds <= 0) {
      return Error(
          node.position, path,
          absl::StrCat("must be longer than 0 seconds, got ", Describe(node)));
    }
    return *seconds;
  }

  // "1h30m" -> 5400; nullopt when `text` is not such a string.
  static std::optional<double> ParseDurationText(absl::string_view text) {
    constexpr std::pair<char, double> kUnits[] = {
        {'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
    if (text.empty()) return std::nullopt;
    size_t next_unit = 0;  // units come largest first, each at most once
    double total = 0;
    size_t i = 0;
    while (i < text.size()) {
      const size_t start = i;
      while (i < text.size() &&
             (absl::ascii_isdigit(text[i]) || text[i] == '.')) {
        ++i;
      }
      const absl::string_view number = text.substr(start, i - start);
      if (number.empty() || i == text.size() || number.front() == '.' ||
          number.back() == '.' ||
          std::count(number.begin(), number.end(), '.') > 1) {
        return std::nullopt;
      }
      size_t unit = next_unit;
      while (unit < std::size(kUnits) && kUnits[unit].first != text[i]) ++unit;
      if (unit == std::size(kUnits)) return std::nullopt;
      next_unit = unit + 1;
      ++i;
      double amount = 0;
      if (!absl::SimpleAtod(number, &amount)) return std::nullopt;
      total += amount * kUnits[unit].second;
    }
    return total;
  }

  absl::Status ParseLimits(const YamlNode& root) {
    const YamlEntry* run_cap = root.Find("run_cap");
    const YamlEntry* max_trials = root.Find("max_trials");
    if (run_cap != nullptr && max_trials != nullptr) {
      return Error(max_trials->key_position, "max_trials",
                   "is another name for run_cap; give only one of them");
    }
    if (const YamlEntry* cap = run_cap != nullptr ? run_cap : max_trials) {
      SWEEP_ASSIGN_OR_RETURN(spec_.run_cap,
                             ReadInteger(cap->value, cap->key, 1));
    }
    constexpr int64_t kIntMax = std::numeric_limits<int>::max();
    if (const YamlEntry* e = root.Find("max_concurrent")) {
      SWEEP_ASSIGN_OR_RETURN(
          spec_.max_concurrent,
          ReadInteger(e->value, "max_concurrent", 1, kIntMax));
    }
    if (const YamlEntry* e = root.Find("max_retries")) {
      SWEEP_ASSIGN_OR_RETURN(spec_.max_retries,
                             ReadInteger(e->value, "max_retries", 0, kIntMax));
    }
    if (const YamlEntry* e = root.Find("max_failed_trials")) {
      SWEEP_ASSIGN_OR_RETURN(spec_.max_failed_trials,
                             ReadInteger(e->value, "max_failed_trials", 1));
    }
    if (const YamlEntry* e = root.Find("max_duration")) {
      SWEEP_ASSIGN_OR_RETURN(spec_.max_duration_seconds,
                             ReadDuration(e->value, "max_duration"));
    }
    if (const YamlEntry* e = root.Find("timeout")) {
      SWEEP_ASSIGN_OR_RETURN(spec_.trial_timeout_seconds,
                             ReadDuration(e->value, "timeout"));
    }
    if (const YamlEntry* e = root.Find("seed")) {
      SWEEP_ASSIGN_OR_RETURN(spec_.seed, ReadInteger(e->value, "seed", 0));
    }
    if (const YamlEntry* e = root.Find("cost")) {
      SWEEP_RETURN_IF_ERROR(
          ExpectMap(e->value, "cost", "a mapping with gpu_hour, kwh and currency"));
      SWEEP_RETURN_IF_ERROR(CheckKeys(e->value, "cost", kCostKeys));
      Cost cost;
      for (auto [key, field] : {std::pair{"gpu_hour", &cost.gpu_hour},
                                std::pair{"kwh", &cost.kwh}}) {
        const YamlEntry* v = e->value.Find(key);
        if (v == nullptr) continue;
        std::string path = absl::StrCat("cost.", key);
        SWEEP_ASSIGN_OR_RETURN(*field, ReadNumber(v->value, path));
        if (*field < 0) {
          return Error(v->value.position, path, "must not be negative");
        }
      }
      if (const YamlEntry* v = e->value.Find("currency")) {
        SWEEP_ASSIGN_OR_RETURN(cost.currency, ReadString(v->value, "cost.currency"));
      }
      spec_.cost = cost;
    }
    if (const YamlEntry* e = root.Find("resources")) {
      SWEEP_RETURN_IF_ERROR(
          ExpectMap(e->value, "resources",
                    "a mapping with gpus_per_trial, trials_per_gpu, gpu_memory, gpu_check"));
      SWEEP_RETURN_IF_ERROR(CheckKeys(e->value, "resources", kResourcesKeys));
      SWEEP_RETURN_IF_ERROR(ParseResources(e->value));
    }
    return absl::OkStatus();
  }

  absl::Status ParseResources(const YamlNode& node) {
    constexpr int64_t kIntMax = std::numeric_limits<int>::max();
    Resources& r = spec_.resources;
    const YamlEntry* gpus = node.Find("gpus_per_trial");
    if (gpus != nullptr) {
      SWEEP_ASSIGN_OR_RETURN(r.gpus_per_trial,
                             ReadInteger(gpus->value, "resources.gpus_per_trial", 0, kIntMax));
    }
    const YamlEntry* share = node.Find("trials_per_gpu");
    if (share != nullptr) {
      SWEEP_ASSIGN_OR_RETURN(r.trials_per_gpu,
                             ReadInteger(share->value, "resources.trials_per_gpu", 1, kIntMax));
    }
    const YamlEntry* memory = node.Find("gpu_memory");
    if (memory != nullptr) {
      SWEEP_ASSIGN_OR_RETURN(r.gpu_memory_mib,
                             ReadMemory(memory->value, "resources.gpu_memory"));
    }
    for (const YamlEntry* e : {share, memory}) {
      if (e == nullptr) continue;
      if (gpus == nullptr) r.gpus_per_trial = 1;  // asking for GPU memory asks for a GPU
      if (r.gpus_per_trial == 0) {
        return Error(e->key_position, JoinPath("resources", e->key),
                     "needs a GPU, but gpus_per_trial is 0; drop one of them");
      }
    }
    if (share != nullptr && r.trials_per_gpu > 1 && r.gpus_per_trial > 1) {
      return Error(share->key_position, "resources.trials_per_gpu",
                   absl::StrCat("trials of ", r.gpus_per_trial,
                                " GPUs hold their GPUs alone; trials_per_gpu above 1 "
                                "needs gpus_per_trial: 1"));
    }
    if (const YamlEntry* check = node.Find("gpu_check")) {
      SWEEP_RETURN_IF_ERROR(ParseGpuCheck(check->value));
      if (r.gpu_check_seconds > 0) {  // a check of the GPU asks for a GPU
        if (gpus == nullptr && r.gpus_per_trial == 0) r.gpus_per_trial = 1;
        if (r.gpus_per_trial == 0) {
          return Error(check->key_position, "resources.gpu_check",
                       "needs a GPU, but gpus_per_trial is 0; drop one of them");
        }
      }
    }
    return absl::OkStatus();
  }

  // gpu_check: off | {within: DURATION, action: flag|stop}
  absl::Status ParseGpuCheck(const YamlNode& node) {
    constexpr absl::string_view kPath = "resources.gpu_check";
    Resources& r = spec_.resources;
    if (node.kind == Kind::kScalar) {
      SWEEP_ASSIGN_OR_RETURN(const json v, ToJson(node, file_, kPath));
      if ((v.is_boolean() && !v.get<bool>()) || (v.is_string() && v == "off")) {
        r.gpu_check_seconds = 0;
        return absl::OkStatus();
      }
    }
    SWEEP_RETURN_IF_ERROR(ExpectMap(
        node, kPath, "off, or a mapping with within (a duration) and action (flag or stop)"));
    SWEEP_RETURN_IF_ERROR(CheckKeys(node, kPath, kGpuCheckKeys));
    if (const YamlEntry* within = node.Find("within")) {
      SWEEP_ASSIGN_OR_RETURN(r.gpu_check_seconds,
                             ReadDuration(within->value, "resources.gpu_check.within"));
    }
    if (const YamlEntry* action = node.Find("action")) {
      SWEEP_ASSIGN_OR_RETURN(std::string a,
                             ReadString(action->value, "resources.gpu_check.action"));
      if (a == "flag") {
        r.gpu_check_action = Resources::GpuCheckAction::kFlag;
      } else if (a == "stop") {
        r.gpu_check_action = Resources::GpuCheckAction::kStop;
      } else {
        return Error(action->value.position, "resources.gpu_check.action",
                     absl::StrCat("expected flag or stop, got ", Describe(action->value)));
      }
    }
    return absl::OkStatus();
  }

  // An amount of memory in MiB, rounded up: a number of GiB, or a string of a
  // number and a unit: MiB, GiB, TiB (powers of 1024) or MB, GB, TB (of 1000).
  absl::StatusOr<int64_t> ReadMemory(const YamlNode& node, absl::string_view path) const {
    SWEEP_ASSIGN_OR_RETURN(const json value, ToJson(node, file_, path));
    constexpr absl::string_view kExpected =
        "expected an amount of memory: a number of GiB, or a string such as 800MiB, "
        "12GB or 1.5GiB";
    std::optional<double> mib;
    if (value.is_number()) {
      mib = value.get<double>() * 1024;
    } else if (value.is_string()) {
      mib = ParseMemoryText(node.text);
    }
    if (!mib || !std::isfinite(*mib) || *mib > 1e12) {
      return Error(node.position, path, absl::StrCat(kExpected, ", got ", Describe(node)));
    }
    if (*mib <= 0) {
      return Error(node.position, path,
                   absl::StrCat("must be more than 0, got ", Describe(node)));
    }
    return static_cast<int64_t>(std::ceil(*mib - 1e-9));
  }

  // "800MiB" -> 800, "12GB" -> 11444.09...; nullopt when not such a string.
  static std::optional<double> ParseMemoryText(absl::string_view text) {
    constexpr std::pair<absl::string_view, double> kUnits[] = {
        {"mib", 1.0},          {"gib", 1024.0},          {"tib", 1024.0 * 1024},
        {"mb", 1e6 / 1048576}, {"gb", 1e9 / 1048576},    {"tb", 1e12 / 1048576}};
    text = absl::StripAsciiWhitespace(text);
    size_t i = 0;
    while (i < text.size() && (absl::ascii_isdigit(text[i]) || text[i] == '.')) ++i;
    absl::string_view number = text.substr(0, i);
    std::string unit = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text.substr(i)));
    double amount = 0;
    if (number.empty() || !absl::SimpleAtod(number, &amount)) return std::nullopt;
    for (const auto& [name, factor] : kUnits) {
      if (unit == name) return amount * factor;
    }
    return std::nullopt;
  }

  absl::string_view file_;
  SweepSpec spec_;
  std::vector<std::pair<Position, std::string>> warnings_;
};

}  // namespace

absl::StatusOr<SweepSpec> BuildSpec(const YamlNode& root,
                                    absl::string_view file_name) {
  return Parser(file_name).Parse(root);
}

}  // namespace sweep::spec::internal
