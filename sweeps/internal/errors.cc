#include "sweeps/internal/errors.h"

#include "absl/strings/str_cat.h"
#include "sweeps/internal/values.h"

namespace sweep::spec::internal {
namespace {

// Returns `text` with control characters and bytes that are not valid UTF-8
// written as escapes (\n, \t, \r, \xNN), so that a message is one printable
// line whatever keys, values or yaml-cpp's words it quotes.
std::string Printable(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const size_t bad = FirstInvalidUtf8(text);
    const absl::string_view valid = text.substr(0, bad);
    for (char c : valid) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '\n') {
        out += "\\n";
      } else if (c == '\t') {
        out += "\\t";
      } else if (c == '\r') {
        out += "\\r";
      } else if (u < 0x20 || u == 0x7f) {
        absl::StrAppend(&out, "\\x", absl::Hex(u, absl::kZeroPad2));
      } else {
        out.push_back(c);
      }
    }
    if (bad == absl::string_view::npos) break;
    absl::StrAppend(&out, "\\x",
                    absl::Hex(static_cast<unsigned char>(text[bad]), absl::kZeroPad2));
    text.remove_prefix(bad + 1);
  }
  return out;
}

// "FILE:LINE:COL: PATH: what", unescaped.
std::string FormatRaw(absl::string_view file, Position position,
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

}  // namespace

std::string FormatMessage(absl::string_view file, Position position,
                          absl::string_view path, absl::string_view what) {
  return Printable(FormatRaw(file, position, path, what));
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
