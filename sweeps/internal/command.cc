#include "sweeps/internal/command.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sweep::spec::internal {
namespace {

constexpr std::pair<absl::string_view, Macro> kMacros[] = {
    {"env", Macro::kEnv},
    {"interpreter", Macro::kInterpreter},
    {"program", Macro::kProgram},
    {"args", Macro::kArgs},
    {"args_no_hyphens", Macro::kArgsNoHyphens},
    {"args_no_boolean_flags", Macro::kArgsNoBooleanFlags},
    {"args_json", Macro::kArgsJson},
};

std::string KnownMacros() {
  return absl::StrJoin(kMacros, ", ", [](std::string* out, const auto& macro) {
    absl::StrAppend(out, "${", macro.first, "}");
  });
}

// Python's repr() of a float: the shortest text that reads back to the same
// double, in fixed notation when the decimal exponent is in [-4, 16), else in
// exponent notation with at least two exponent digits; a fixed number always
// has a fractional part ("3.0").
std::string PythonFloatRepr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  // Shortest round-trip digits, as "d.ddde[+-]XX".
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value,
                                    std::chars_format::scientific);
  absl::string_view text(buffer, result.ptr - buffer);
  std::string sign;
  if (text.front() == '-') {
    sign = "-";
    text.remove_prefix(1);
  }
  const size_t e = text.find('e');
  std::string digits;
  for (char c : text.substr(0, e)) {
    if (c != '.') digits.push_back(c);
  }
  const int exponent = std::atoi(std::string(text.substr(e + 1)).c_str());
  // Python's decpt: the value is 0.DIGITS times 10^decpt.
  const int decpt = exponent + 1;
  const int n = static_cast<int>(digits.size());
  if (decpt <= -4 || decpt > 16) {
    std::string mantissa = digits.substr(0, 1);
    if (n > 1) absl::StrAppend(&mantissa, ".", digits.substr(1));
    const int shown = decpt - 1;
    return absl::StrCat(sign, mantissa, "e", shown < 0 ? "-" : "+",
                        std::abs(shown) < 10 ? "0" : "", std::abs(shown));
  }
  if (decpt <= 0) {
    return absl::StrCat(sign, "0.", std::string(-decpt, '0'), digits);
  }
  if (decpt >= n) {
    return absl::StrCat(sign, digits, std::string(decpt - n, '0'), ".0");
  }
  return absl::StrCat(sign, digits.substr(0, decpt), ".", digits.substr(decpt));
}

}  // namespace

absl::StatusOr<std::vector<MacroRef>> FindMacros(absl::string_view item) {
  std::vector<MacroRef> refs;
  size_t from = 0;
  while (true) {
    const size_t begin = item.find("${", from);
    if (begin == absl::string_view::npos) break;
    const size_t end = item.find('}', begin + 2);
    if (end == absl::string_view::npos) break;
    const absl::string_view name = item.substr(begin + 2, end - begin - 2);
    bool known = false;
    for (const auto& [macro_name, macro] : kMacros) {
      if (name == macro_name) {
        refs.push_back(MacroRef{macro, begin, end + 1 - begin});
        known = true;
        break;
      }
    }
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown macro ${", name, "}; expected one of ", KnownMacros()));
    }
    from = end + 1;
  }
  return refs;
}

std::string PythonStr(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return "None";
    case nlohmann::json::value_t::boolean:
      return value.get<bool>() ? "True" : "False";
    case nlohmann::json::value_t::string:
      return value.get<std::string>();
    case nlohmann::json::value_t::number_integer:
      return absl::StrCat(value.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      return absl::StrCat(value.get<uint64_t>());
    case nlohmann::json::value_t::number_float:
      return PythonFloatRepr(value.get<double>());
    default:
      return JsonDump(value);
  }
}

std::string JsonDump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace sweep::spec::internal
