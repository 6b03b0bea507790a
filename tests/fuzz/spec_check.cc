#include "tests/fuzz/spec_check.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "sweeps/sampler.h"
#include "sweeps/spec.h"

namespace sweep::fuzz {
namespace {

using nlohmann::json;
using spec::SweepSpec;

// Whether `message` starts "FILE:LINE:COL: " with LINE, COL >= 1.
bool HasPosition(const std::string& message) {
  const std::string prefix = absl::StrCat(kSpecFileName, ":");
  if (!absl::StartsWith(message, prefix)) return false;
  size_t i = prefix.size();
  for (int field = 0; field < 2; ++field) {
    const size_t start = i;
    while (i < message.size() && std::isdigit(static_cast<unsigned char>(message[i]))) ++i;
    if (i == start || message[start] == '0' || i >= message.size() || message[i] != ':') {
      return false;
    }
    ++i;
  }
  return i < message.size() && message[i] == ' ';
}

// Serializes strictly, as the scheduler does; "" or what went wrong.
std::string DumpError(const json& value, const char* what) {
  try {
    (void)value.dump();
    return "";
  } catch (const std::exception& e) {
    return absl::StrCat(what, " does not serialize as JSON: ", e.what());
  }
}

// Checks the argv of `params` against the command's macros.
std::string CheckCommand(const SweepSpec& s, const json& params) {
  absl::StatusOr<std::vector<std::string>> argv = spec::BuildCommand(s, params);
  if (!argv.ok()) {
    if (argv.status().code() != absl::StatusCode::kInvalidArgument) {
      return absl::StrCat("BuildCommand failed with a code other than InvalidArgument: ",
                          argv.status().ToString());
    }
    // The one way a parsed spec fails: the default command without program.
    if (!(s.command.empty() && s.program.empty())) {
      return absl::StrCat("BuildCommand refused a parsed spec: ", argv.status().ToString());
    }
    return "";
  }
  if (std::string e = DumpError(json(*argv), "the argv"); !e.empty()) return e;
  std::vector<std::string> command = s.command;
  if (command.empty()) command = {"${env}", "${interpreter}", "${program}", "${args}"};
  const size_t keys = params.size();
  size_t false_flags = 0;
  for (const auto& item : params.items()) {
    if (item.value().is_boolean() && !item.value().get<bool>()) ++false_flags;
  }
  size_t expected = 0;
  std::vector<size_t> args_starts;  // where each whole ${args} item's expansion begins
  for (const std::string& item : command) {
    if (item == "${args}") {
      args_starts.push_back(expected);
      expected += keys;
    } else if (item == "${args_no_hyphens}") {
      expected += keys;
    } else if (item == "${args_no_boolean_flags}") {
      expected += keys - false_flags;
    } else if (item == "${interpreter}") {
      expected += absl::EndsWith(s.program, ".py") ? 1 : 0;
    } else {
      ++expected;  // a literal, ${env}, ${program}, ${args_json}, or a macro inside text
    }
  }
  if (argv->size() != expected) {
    return absl::StrCat("argv has ", argv->size(), " items where the command calls for ",
                        expected, " (", keys, " parameters): ", json(*argv).dump());
  }
  // ${args}: the spec's parameter order, then other keys sorted; here every key is
  // the spec's, so the order is the spec's first path elements, deduplicated.
  std::vector<std::string> order;
  for (const spec::Parameter& p : s.parameters) {
    if (std::find(order.begin(), order.end(), p.path.front()) == order.end()) {
      order.push_back(p.path.front());
    }
  }
  for (size_t start : args_starts) {
    for (size_t k = 0; k < order.size() && k < keys; ++k) {
      const std::string& item = (*argv)[start + k];
      if (!absl::StartsWith(item, absl::StrCat("--", order[k], "="))) {
        return absl::StrCat("${args} item ", k, " is \"", item, "\", not --", order[k], "=...");
      }
    }
  }
  return "";
}

std::string CheckPoint(const SweepSpec& s, const json& point, const char* what) {
  if (!point.is_object()) return absl::StrCat(what, " is not a JSON object: ", point.dump());
  if (std::string e = DumpError(point, what); !e.empty()) return e;
  return CheckCommand(s, point);
}

std::string CheckAccepted(const SweepSpec& s) {
  for (const std::string& w : s.warnings) {
    if (!HasPosition(w)) return absl::StrCat("a warning without a position: ", w);
  }
  if (s.parameters.empty()) return "an accepted spec without parameters";
  (void)spec::TrialBudget(s);
  absl::StatusOr<int64_t> size = spec::GridSize(s);
  if (s.method == spec::Method::kGrid && !size.ok()) {
    return absl::StrCat("ParseSpec accepted a grid that GridSize refuses: ",
                        size.status().ToString());
  }
  if (!size.ok() && !HasPosition(std::string(size.status().message()))) {
    return absl::StrCat("a GridSize error without a position: ", size.status().ToString());
  }
  if (size.ok()) {
    if (*size < 1) return absl::StrCat("GridSize is ", *size);
    for (int64_t index : {int64_t{0}, *size / 2, *size - 1}) {
      if (std::string e = CheckPoint(s, spec::GridPoint(s, index), "a grid point");
          !e.empty()) {
        return e;
      }
    }
  }
  for (int64_t index : {int64_t{0}, int64_t{1}, int64_t{1} << 40}) {
    if (std::string e = CheckPoint(s, spec::SamplePoint(s, 7, index), "a random sample");
        !e.empty()) {
      return e;
    }
  }
  // Sobol' and TPE cost more per parameter; keep each input fast.
  if (s.parameters.size() > 64) return "";
  SweepSpec sobol = s;
  sobol.method = spec::Method::kSobol;
  for (int64_t index : {int64_t{0}, int64_t{5}}) {
    if (std::string e = CheckPoint(sobol, spec::Suggest(sobol, 3, index, {}, {}),
                                   "a sobol point");
        !e.empty()) {
      return e;
    }
  }
  // TPE past its start-up trials, with values, failures and a running trial.
  SweepSpec bayes = s;
  bayes.method = spec::Method::kBayes;
  std::vector<spec::Observation> finished;
  for (int64_t i = 0; i < spec::kTpeStartupTrials + 2; ++i) {
    std::optional<double> value;
    if (i % 4 != 3) value = static_cast<double>((i * 7) % 5) - 1.5;
    finished.push_back({spec::SamplePoint(s, 11, i), value});
  }
  const std::vector<json> running = {spec::SamplePoint(s, 11, 99), json::object()};
  if (std::string e = CheckPoint(bayes, spec::Suggest(bayes, 5, 20, finished, running),
                                 "a TPE suggestion");
      !e.empty()) {
    return e;
  }
  return "";
}

}  // namespace

std::string CheckSpecInput(std::string_view data) {
  try {
    absl::StatusOr<SweepSpec> parsed = spec::ParseSpec(data, kSpecFileName);
    if (!parsed.ok()) {
      const absl::Status& st = parsed.status();
      if (st.code() != absl::StatusCode::kInvalidArgument) {
        return absl::StrCat("rejected with a code other than InvalidArgument: ", st.ToString());
      }
      if (!HasPosition(std::string(st.message()))) {
        return absl::StrCat("rejected without FILE:LINE:COL: ", st.ToString());
      }
      if (std::string(st.message()).find('\n') != std::string::npos) {
        return absl::StrCat("a message of more than one line: ", st.ToString());
      }
      return "";
    }
    return CheckAccepted(*parsed);
  } catch (const std::exception& e) {
    return absl::StrCat("threw ", e.what());
  } catch (...) {
    return "threw something that is not a std::exception";
  }
}

}  // namespace sweep::fuzz
