// How the spec library words its errors and warnings, in one place so that
// every message has the same shape:
//
//   FILE:LINE:COL: KEY.PATH: what was expected
//
// The position is left out when unknown (line 0), the key path when empty.
//
// Thread safety: pure functions.
#ifndef SWEEP_SWEEPS_INTERNAL_ERRORS_H_
#define SWEEP_SWEEPS_INTERNAL_ERRORS_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "sweeps/spec.h"

namespace sweep::spec::internal {

// Returns the message "FILE:LINE:COL: PATH: what", as one printable line:
// control characters and bytes that are not UTF-8 (from keys, values or
// yaml-cpp's messages) are written as escapes (\n, \t, \xNN).
std::string FormatMessage(absl::string_view file, Position position,
                          absl::string_view path, absl::string_view what);

// Returns InvalidArgument with FormatMessage(file, position, path, what).
absl::Status SpecError(absl::string_view file, Position position,
                       absl::string_view path, absl::string_view what);

// Returns `s` as an absl::string_view. Debian's abseil keeps a string_view type
// of its own, which absl::StrCat and friends take and std::string_view does not
// turn into by itself; this bridges the public API's std::string_view values.
inline absl::string_view AbslView(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

// Returns `path` extended by `key` ("metric" + "goal" -> "metric.goal"; an
// empty path gives "goal").
std::string JoinPath(absl::string_view path, absl::string_view key);

}  // namespace sweep::spec::internal

#endif  // SWEEP_SWEEPS_INTERNAL_ERRORS_H_
