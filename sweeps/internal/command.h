// The pieces of a trial's command line: W&B's command macros and how parameter
// values are written into arguments. spec.cc's BuildCommand puts them together;
// the spec parser uses FindMacros to reject unknown macros at parse time.
//
// Thread safety: pure functions.
#ifndef SWEEP_SWEEPS_INTERNAL_COMMAND_H_
#define SWEEP_SWEEPS_INTERNAL_COMMAND_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace sweep::spec::internal {

enum class Macro {
  kEnv,            // ${env}: /usr/bin/env
  kInterpreter,    // ${interpreter}: python3 for a .py program, else nothing
  kProgram,        // ${program}
  kArgs,           // ${args}: --key=value
  kArgsNoHyphens,  // ${args_no_hyphens}: key=value
  kArgsNoBooleanFlags,  // ${args_no_boolean_flags}: --key=value, true: --key
  kArgsJson,            // ${args_json}: the parameters as one JSON object
};

// W&B's command when `command:` is absent.
inline constexpr absl::string_view kDefaultCommand[] = {
    "${env}", "${interpreter}", "${program}", "${args}"};

inline constexpr absl::string_view kEnvPath = "/usr/bin/env";
inline constexpr absl::string_view kPythonInterpreter = "python3";

// One `${name}` in a command item: bytes [begin, begin + size) of the item.
struct MacroRef {
  Macro macro;
  size_t begin;
  size_t size;
};

// Returns the macros in `item`, in order ("${" with no closing "}" is plain
// text). Returns InvalidArgument, with a message that names the macro and lists
// the known ones but no file position, for a `${name}` that is not a known
// macro.
absl::StatusOr<std::vector<MacroRef>> FindMacros(absl::string_view item);

// Returns `value` as W&B's agent writes it into `--key=value` (Python's str()):
// strings raw, True/False, None, integers plain, floats as Python's repr
// (0.001, 1e-05, 3.0, inf), arrays and objects as compact JSON.
std::string PythonStr(const nlohmann::json& value);

// Returns `value` as compact JSON; invalid UTF-8 in strings is replaced
// (U+FFFD) rather than thrown on.
std::string JsonDump(const nlohmann::json& value);

}  // namespace sweep::spec::internal

#endif  // SWEEP_SWEEPS_INTERNAL_COMMAND_H_
