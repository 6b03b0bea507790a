// Turns the YAML tree of a sweep file into a validated SweepSpec: the
// key-by-key rules of docs/spec.md (accepted keys, types, ranges, distribution
// shapes, macros). The grid rules need the whole parameter list and live with
// GridSize in spec.cc, which ParseSpec applies after this.
//
// Thread safety: pure function.
#ifndef SWEEP_SWEEPS_INTERNAL_PARSER_H_
#define SWEEP_SWEEPS_INTERNAL_PARSER_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sweeps/internal/yaml_adapter.h"
#include "sweeps/spec.h"

namespace sweep::spec::internal {

// Returns the spec that `root` describes, its warnings filled in. Returns
// InvalidArgument "FILE:LINE:COL: KEY.PATH: what was expected" for the first
// violation found.
absl::StatusOr<SweepSpec> BuildSpec(const YamlNode& root,
                                    absl::string_view file_name);

}  // namespace sweep::spec::internal

#endif  // SWEEP_SWEEPS_INTERNAL_PARSER_H_
