#include "worker/metrics_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"

namespace sweep {

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
      partial_.append(buf + start, i - start);
      start = i + 1;
      if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
      if (!partial_.empty()) {
        if (!ParseLine(partial_, lines_, now, &out)) {
          ++bad_lines_;
          last_error_ = absl::StrCat("line ", lines_ + 1, " is not a JSON object: ",
                                     partial_.substr(0, 200));
        }
        ++lines_;
      }
      partial_.clear();
    }
    partial_.append(buf + start, n - start);
  }
  close(fd);
  return out;
}

bool MetricsReader::ParseLine(const std::string& line, int64_t line_number, double now,
                              std::vector<MetricPointData>* out) {
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Python's json.dumps writes NaN and Infinity, which JSON does not have. Such
    // values carry no comparable result: drop them and keep the rest of the line.
    std::string fixed = absl::StrReplaceAll(
        line, {{"-Infinity", "null"}, {"Infinity", "null"}, {"NaN", "null"}});
    j = nlohmann::json::parse(fixed, nullptr, false);
  }
  if (!j.is_object()) return false;
  int64_t step = line_number;
  if (auto it = j.find("step"); it != j.end() && it->is_number()) {
    step = it->get<int64_t>();
  }
  double time = now;
  if (auto it = j.find("time"); it != j.end() && it->is_number()) {
    time = it->get<double>();
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
