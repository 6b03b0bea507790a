#include "sweeps/internal/errors.h"

#include "absl/strings/str_cat.h"

namespace sweep::spec::internal {

std::string FormatMessage(absl::string_view file, Position position,
                          absl::string_view path, absl::string_view what) {
  std::string message(file);
  if (position.line > 0) {
    absl::StrAppend(&message, ":", position.line, ":", position.column);
  }
  absl::StrAppend(&message, ": ");
  if (!path.empty()) absl::StrAppend(&message, path, ": ");
  absl::StrAppend(&message, what);
  return message;
}

absl::Status SpecError(absl::string_view file, Position position,
                       absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(FormatMessage(file, position, path, what));
}

std::string JoinPath(absl::string_view path, absl::string_view key) {
  if (path.empty()) return std::string(key);
  return absl::StrCat(path, ".", key);
}

}  // namespace sweep::spec::internal
