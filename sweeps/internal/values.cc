#include "sweeps/internal/values.h"

#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "sweeps/internal/errors.h"

namespace sweep::spec::internal {
namespace {

using nlohmann::json;

constexpr absl::string_view kYamlTagPrefix = "tag:yaml.org,2002:";

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Returns `text` without one leading sign, and whether the sign was '-'.
absl::string_view StripSign(absl::string_view text, bool& negative) {
  negative = !text.empty() && text.front() == '-';
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    text.remove_prefix(1);
  }
  return text;
}

// [-+]?(0|[1-9][0-9]*)
bool IsDecimalInteger(absl::string_view text) {
  bool negative;
  text = StripSign(text, negative);
  if (text.empty()) return false;
  if (text.size() > 1 && text.front() == '0') return false;
  for (char c : text) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

// [-+]?(\.[0-9]+|[0-9]+\.[0-9]*|[0-9]+)([eE][-+]?[0-9]+)?, with a dot or an
// exponent (else it is an integer or a string).
bool IsDecimalFloat(absl::string_view text) {
  bool negative;
  text = StripSign(text, negative);
  size_t i = 0;
  size_t int_digits = 0, frac_digits = 0;
  while (i < text.size() && IsDigit(text[i])) ++i, ++int_digits;
  bool dot = false;
  if (i < text.size() && text[i] == '.') {
    dot = true;
    ++i;
    while (i < text.size() && IsDigit(text[i])) ++i, ++frac_digits;
  }
  if (int_digits == 0 && frac_digits == 0) return false;
  bool exponent = false;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    exponent = true;
    ++i;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
    size_t exp_digits = 0;
    while (i < text.size() && IsDigit(text[i])) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == text.size() && (dot || exponent);
}

std::optional<double> ParseSpecialFloat(absl::string_view text) {
  bool negative;
  const absl::string_view body = StripSign(text, negative);
  if (body == ".inf" || body == ".Inf" || body == ".INF") {
    const double inf = std::numeric_limits<double>::infinity();
    return negative ? -inf : inf;
  }
  if (text == ".nan" || text == ".NaN" || text == ".NAN") {
    return std::numeric_limits<double>::quiet_NaN();
  }
  return std::nullopt;
}

// Parses text known to match IsDecimalInteger or IsDecimalFloat. Out of range
// values become +-inf or 0, as in PyYAML.
double ParseDouble(absl::string_view text) {
  bool negative;
  text = StripSign(text, negative);
  double value = 0;
  const auto [ptr, ec] =
      std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) {
    // from_chars leaves `value` untouched; tell overflow from underflow by the
    // exponent's sign.
    const size_t e = text.find_first_of("eE");
    const bool underflow = e != absl::string_view::npos &&
                           e + 1 < text.size() && text[e + 1] == '-';
    value = underflow ? 0.0 : std::numeric_limits<double>::infinity();
  }
  return negative ? -value : value;
}

json ParseInteger(absl::string_view text) {
  bool negative;
  absl::string_view digits = StripSign(text, negative);
  // Parse with the sign so that INT64_MIN fits.
  const std::string signed_digits = absl::StrCat(negative ? "-" : "", digits);
  int64_t value = 0;
  const auto [ptr, ec] = std::from_chars(
      signed_digits.data(), signed_digits.data() + signed_digits.size(), value);
  if (ec == std::errc::result_out_of_range) return ParseDouble(text);
  return value;
}

// YAML 1.1's booleans, as PyYAML resolves them.
constexpr absl::string_view kTrueWords[] = {
    "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
constexpr absl::string_view kFalseWords[] = {
    "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};

std::optional<bool> ParseBool(absl::string_view text) {
  for (absl::string_view word : kTrueWords) {
    if (text == word) return true;
  }
  for (absl::string_view word : kFalseWords) {
    if (text == word) return false;
  }
  return std::nullopt;
}

bool IsNullWord(absl::string_view text) {
  return text.empty() || text == "~" || text == "null" || text == "Null" ||
         text == "NULL";
}

// A plain (unquoted, untagged) scalar, typed as the file comment says.
json ResolvePlain(absl::string_view text) {
  if (IsNullWord(text)) return nullptr;
  if (std::optional<bool> b = ParseBool(text)) return *b;
  if (IsDecimalInteger(text)) return ParseInteger(text);
  if (IsDecimalFloat(text)) return ParseDouble(text);
  if (std::optional<double> special = ParseSpecialFloat(text)) return *special;
  return std::string(text);
}

// "tag:yaml.org,2002:float" -> "!!float"; other tags as they are.
std::string ShortTag(absl::string_view tag) {
  if (tag.substr(0, kYamlTagPrefix.size()) == kYamlTagPrefix) {
    return absl::StrCat("!!", tag.substr(kYamlTagPrefix.size()));
  }
  return std::string(tag);
}

absl::StatusOr<json> ScalarToJson(const YamlNode& node, absl::string_view file,
                                  absl::string_view path) {
  const absl::string_view text = node.text;
  if (node.tag == "?") return ResolvePlain(text);
  if (node.tag == "!") return std::string(text);
  const std::string tag = ShortTag(node.tag);
  auto mismatch = [&](absl::string_view expected) {
    return SpecError(file, node.position, path,
                     absl::StrCat("expected ", expected, " after ", tag,
                                  ", got \"", text, "\""));
  };
  if (tag == "!!str") return std::string(text);
  if (tag == "!!null") return nullptr;
  if (tag == "!!bool") {
    if (std::optional<bool> b = ParseBool(text)) return *b;
    return mismatch("true or false");
  }
  if (tag == "!!int") {
    if (IsDecimalInteger(text)) return ParseInteger(text);
    return mismatch("a decimal integer");
  }
  if (tag == "!!float") {
    if (IsDecimalInteger(text) || IsDecimalFloat(text)) {
      return ParseDouble(text);
    }
    if (std::optional<double> special = ParseSpecialFloat(text)) {
      return *special;
    }
    return mismatch("a number");
  }
  return SpecError(file, node.position, path,
                   absl::StrCat("unsupported tag ", tag,
                                " on a scalar; use !!str, !!int, !!float, "
                                "!!bool or !!null, or no tag"));
}

}  // namespace

absl::StatusOr<json> ToJson(const YamlNode& node, absl::string_view file,
                            absl::string_view path) {
  switch (node.kind) {
    case YamlNode::Kind::kNull:
      return nullptr;
    case YamlNode::Kind::kScalar:
      return ScalarToJson(node, file, path);
    case YamlNode::Kind::kSequence:
    case YamlNode::Kind::kMap:
      break;
  }
  const bool is_map = node.kind == YamlNode::Kind::kMap;
  const std::string expected_tag = is_map ? "!!map" : "!!seq";
  if (node.tag != "?" && node.tag != "!" &&
      ShortTag(node.tag) != expected_tag) {
    return SpecError(file, node.position, path,
                     absl::StrCat("unsupported tag ", ShortTag(node.tag),
                                  " on a ", is_map ? "mapping" : "list"));
  }
  if (!is_map) {
    json array = json::array();
    for (size_t i = 0; i < node.items.size(); ++i) {
      absl::StatusOr<json> item =
          ToJson(node.items[i], file, absl::StrCat(path, "[", i, "]"));
      if (!item.ok()) return item.status();
      array.push_back(*std::move(item));
    }
    return array;
  }
  json object = json::object();
  for (const YamlEntry& entry : node.entries) {
    absl::StatusOr<json> value =
        ToJson(entry.value, file, JoinPath(path, entry.key));
    if (!value.ok()) return value.status();
    object[entry.key] = *std::move(value);
  }
  return object;
}

std::string Describe(const YamlNode& node) {
  switch (node.kind) {
    case YamlNode::Kind::kNull:
      return "null";
    case YamlNode::Kind::kSequence:
      return "a list";
    case YamlNode::Kind::kMap:
      return "a mapping";
    case YamlNode::Kind::kScalar:
      break;
  }
  const bool is_string =
      node.tag == "!" || ShortTag(node.tag) == "!!str" ||
      (node.tag == "?" && ResolvePlain(node.text).is_string());
  return is_string ? Quoted(node.text) : node.text;
}


std::string Quoted(absl::string_view text) {
  return json(std::string(text))
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace sweep::spec::internal
