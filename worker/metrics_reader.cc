#include "worker/metrics_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace sweep {
namespace {

// Python's json.dumps writes NaN, Infinity and -Infinity, which JSON does not
// have. Returns `line` with each of them that stands outside a string replaced
// by null (a key such as "NaN_count" keeps its name).
std::string ReplacePythonSpecials(const std::string& line) {
  static constexpr std::string_view kSpecials[] = {"-Infinity", "Infinity", "NaN"};
  std::string out;
  out.reserve(line.size());
  bool in_string = false;
  for (size_t i = 0; i < line.size();) {
    const char c = line[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && i + 1 < line.size()) {
        out.push_back(line[i + 1]);
        i += 2;
        continue;
      }
      if (c == '"') in_string = false;
      ++i;
      continue;
    }
    if (c == '"') {
      in_string = true;
      out.push_back(c);
      ++i;
      continue;
    }
    bool replaced = false;
    for (std::string_view special : kSpecials) {
      if (std::string_view(line).substr(i, special.size()) == special) {
        out.append("null");
        i += special.size();
        replaced = true;
        break;
      }
    }
    if (!replaced) out.push_back(line[i++]);
  }
  return out;
}

// Reads `step` as an int64: a JSON integer, or a float with an integral value
// in range (3.0, as some loggers write it). False otherwise.
bool ReadStep(const nlohmann::json& v, int64_t* step) {
  if (v.is_number_unsigned()) {  // before is_number_integer, which includes it
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return false;
    *step = static_cast<int64_t>(u);
    return true;
  }
  if (v.is_number_integer()) {
    *step = v.get<int64_t>();
    return true;
  }
  const double d = v.get<double>();
  // [-2^63, 2^63): every double in it converts exactly.
  if (!(d >= -0x1.0p63 && d < 0x1.0p63) || d != std::trunc(d)) return false;
  *step = static_cast<int64_t>(d);
  return true;
}

}  // namespace

void MetricsReader::EndLine(double now, std::vector<MetricPointData>* out) {
  if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
  if (overlong_) {
    ++bad_lines_;
    last_error_ = absl::StrCat("line ", lines_ + 1, " is longer than ", kMaxLineBytes,
                               " bytes: ", partial_.substr(0, 200));
    ++lines_;
  } else if (!partial_.empty()) {
    std::string error;
    if (!ParseLine(partial_, lines_, now, out, &error)) {
      ++bad_lines_;
      last_error_ = absl::StrCat("line ", lines_ + 1, " ", error, ": ",
                                 partial_.substr(0, 200));
    }
    ++lines_;
  }
  partial_.clear();
  overlong_ = false;
}

void MetricsReader::AppendPartial(const char* data, size_t size) {
  if (overlong_) return;  // its first bytes are kept for the message
  if (partial_.size() + size > kMaxLineBytes) {
    partial_.append(data, std::min(size, size_t{200}));
    overlong_ = true;
    return;
  }
  partial_.append(data, size);
}

std::vector<MetricPointData> MetricsReader::ReadNew(double now) {
  std::vector<MetricPointData> out;
  int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[65536];
  while (true) {
    ssize_t n = pread(fd, buf, sizeof(buf), offset_);
    if (n <= 0) break;
    offset_ += n;
    size_t start = 0;
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] != '\n') continue;
      AppendPartial(buf + start, i - start);
      start = i + 1;
      EndLine(now, &out);
    }
    AppendPartial(buf + start, n - start);
  }
  close(fd);
  return out;
}

bool MetricsReader::ParseLine(const std::string& line, int64_t line_number, double now,
                              std::vector<MetricPointData>* out, std::string* error) {
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Such values carry no comparable result: drop them and keep the rest of the line.
    j = nlohmann::json::parse(ReplacePythonSpecials(line), nullptr, false);
  }
  if (!j.is_object()) {
    if (error) *error = "is not a JSON object";
    return false;
  }
  int64_t step = line_number;
  if (auto it = j.find("step"); it != j.end() && it->is_number()) {
    if (!ReadStep(*it, &step)) {
      if (error) *error = "has a step that is not an integer within int64";
      return false;
    }
  }
  double time = now;
  if (auto it = j.find("time"); it != j.end() && it->is_number()) {
    const double t = it->get<double>();
    if (std::isfinite(t)) time = t;
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "step" || it.key() == "time") continue;
    if (!it->is_number()) continue;
    double v = it->get<double>();
    if (!std::isfinite(v)) continue;
    out->push_back(MetricPointData{.step = step, .name = it.key(), .value = v, .time = time});
  }
  return true;
}

}  // namespace sweep
