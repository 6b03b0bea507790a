// How YAML values become typed JSON values. yaml-cpp leaves scalars untyped;
// this module types them the way PyYAML (which the `wandb` CLI uses) does under
// YAML 1.1, with one deliberate leniency: a plain `1e-5` is the float the user
// meant, not the string YAML 1.1 makes of it. docs/spec.md lists the rules:
//
//   quoted, block literal, `!!str`       string, always
//   `~`, `null`, `Null`, `NULL`, empty   null
//   true/false, yes/no, on/off           bool (each also Capitalized and UPPER)
//   [-+]?(0|[1-9][0-9]*)                 integer (a float when beyond int64)
//   1.5, .5, 6., 6.e-5, 1e-5, 1E+3       float
//   .inf, -.inf, .nan (any case form)    float
//   `!!float`, `!!int`, `!!bool`         that type, or an error
//   anything else (`None`, `0x1F`, `007`, `1_000`)   string
//
// Sequences become JSON arrays and mappings JSON objects, recursively.
//
// Thread safety: pure functions.
#ifndef SWEEP_SWEEPS_INTERNAL_VALUES_H_
#define SWEEP_SWEEPS_INTERNAL_VALUES_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "sweeps/internal/yaml_adapter.h"
#include "common/utf8.h"

namespace sweep::spec::internal {

// Returns the typed value of `node`. Returns InvalidArgument naming `file`, the
// offending node's position and `path` for a scalar whose explicit tag does not
// fit its text (`!!float abc`) and for tags other than YAML's standard ones
// (`!python/tuple`).
absl::StatusOr<nlohmann::json> ToJson(const YamlNode& node,
                                      absl::string_view file,
                                      absl::string_view path);

// Returns `text` JSON-quoted for a message ("abc" with its quotes); invalid
// UTF-8 is replaced by U+FFFD.
std::string Quoted(absl::string_view text);

// Returns the offset of the first byte of `text` that is not part of valid
// UTF-8 (overlong forms, surrogates and code points beyond U+10FFFF count as
// invalid), or npos when all of it is valid.
inline size_t FirstInvalidUtf8(absl::string_view text) {
  return sweep::FirstInvalidUtf8(std::string_view(text.data(), text.size()));
}

// Returns how `node` reads in a message after "got ": a string JSON-quoted
// (`"abc"`), another scalar as written (`1.5`, `True`), `null`, `a list` or
// `a mapping`.
std::string Describe(const YamlNode& node);

}  // namespace sweep::spec::internal

#endif  // SWEEP_SWEEPS_INTERNAL_VALUES_H_
