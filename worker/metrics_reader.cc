#include "worker/metrics_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace sweep {
namespace {

// Python's json.dumps writes NaN, Infinity and -Infinity, which JSON does not
// have, and nlohmann-json refuses a number beyond a double (1e400). Returns `line`
// with each of them that stands outside a string replaced by null (a key such as
// "NaN_count" keeps its name); the numbers beyond a double go to `*huge`.
std::string ReplaceUnrepresentable(const std::string& line, std::vector<std::string>* huge) {
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
    if (replaced) continue;
    if (c == '-' || (c >= '0' && c <= '9')) {
      size_t end = i + 1;
      while (end < line.size() && (std::isdigit(static_cast<unsigned char>(line[end])) ||
                                   line[end] == '.' || line[end] == 'e' || line[end] == 'E' ||
                                   line[end] == '+' || line[end] == '-')) {
        ++end;
      }
      std::string token = line.substr(i, end - i);
      double v = std::strtod(token.c_str(), nullptr);
      if (std::isinf(v)) {
        out.append("null");
        huge->push_back(token.substr(0, 40));
      } else {
        out.append(token);
      }
      i = end;
      continue;
    }
    out.push_back(line[i++]);
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
    std::string error, dropped;
    if (!ParseLine(partial_, lines_, now, out, &error, &dropped)) {
      ++bad_lines_;
      last_error_ = absl::StrCat("line ", lines_ + 1, " ", error, ": ",
                                 partial_.substr(0, 200));
    } else if (!dropped.empty()) {
      Notice("huge", absl::StrCat("line ", lines_ + 1, " of the metrics file has values ",
                                  dropped, "; they are dropped, the rest of each such line "
                                  "is kept"));
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

MetricsReader::MetricsReader(std::string path, MetricsLimits limits)
    : path_(std::move(path)), limits_(limits) {}

MetricsReader::~MetricsReader() {
  if (fd_ >= 0) close(fd_);
}

std::vector<std::string> MetricsReader::TakeNotices() {
  std::vector<std::string> out;
  out.swap(notices_);
  return out;
}

void MetricsReader::Notice(const std::string& key, std::string text) {
  if (said_.insert(key).second) notices_.push_back(std::move(text));
}

bool MetricsReader::Switch() {
  struct stat at {};
  if (lstat(path_.c_str(), &at) != 0) return false;
  if (fd_ >= 0 && at.st_dev == dev_ && at.st_ino == ino_) return false;
  if (!S_ISREG(at.st_mode)) {
    Notice(absl::StrCat("kind", at.st_mode & S_IFMT),
           absl::StrCat("the metrics file is ",
                        S_ISLNK(at.st_mode)    ? "a symbolic link"
                        : S_ISFIFO(at.st_mode) ? "a FIFO"
                        : S_ISDIR(at.st_mode)  ? "a directory"
                                               : "not a regular file",
                        "; sweep reads it only as a regular file that the trial writes"));
    return false;
  }
  // O_NOFOLLOW and O_NONBLOCK: whatever the path became since lstat (a link, a
  // FIFO), opening it neither follows nor waits.
  int fd = open(path_.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  if (ok && st.st_uid != geteuid()) {
    Notice("owner", "the metrics file belongs to another user; sweep does not read it");
    ok = false;
  }
  if (!ok) {
    close(fd);
    return false;
  }
  if (fd_ >= 0) {
    Notice("replaced", "the metrics file was replaced; the new one is read from its start");
    close(fd_);
  }
  fd_ = fd;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  offset_ = 0;
  partial_.clear();  // a half line at the end of the old file never ends
  overlong_ = false;
  return true;
}

std::vector<MetricPointData> MetricsReader::ReadNew(double now) {
  std::vector<MetricPointData> out;
  // Refill the points budget: at most one second's worth at once.
  if (!started_) {
    started_ = true;
    tokens_ = limits_.max_points_per_second;
  } else if (now > tokens_at_) {
    tokens_ = std::min(limits_.max_points_per_second,
                       tokens_ + (now - tokens_at_) * limits_.max_points_per_second);
  }
  tokens_at_ = std::max(tokens_at_, now);
  // The file followed so far to its end (its last lines count, even when it was
  // replaced since), then the one at the path now, when that is another.
  bool held = fd_ >= 0 && ReadOpen(now, &out);
  if (!held && Switch()) held = ReadOpen(now, &out);
  caught_up_ = !held;
  Admit(&out);
  return out;
}

bool MetricsReader::ReadOpen(double now, std::vector<MetricPointData>* out) {
  struct stat st {};
  if (fstat(fd_, &st) != 0) return false;
  if (st.st_size < offset_) {
    Notice("truncated", "the metrics file was truncated; it is read again from its start");
    offset_ = 0;
    partial_.clear();
    overlong_ = false;
  }
  int64_t budget = limits_.max_bytes_per_read;
  int64_t lines = 0;
  char buf[65536];
  while (budget > 0) {
    ssize_t n = pread(fd_, buf, std::min<int64_t>(sizeof(buf), budget), offset_);
    if (n <= 0) return false;
    size_t start = 0;
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] != '\n') continue;
      if (lines >= limits_.max_lines_per_read || tokens_ <= 0) {
        // A bound is reached: this line and the rest are read next time (partial_
        // holds what of this line lies before offset_).
        offset_ += start;
        if (tokens_ <= 0) {
          Notice("rate", absl::StrCat("the trial writes more than ",
                                      limits_.max_points_per_second,
                                      " metric points a second; reading them is throttled "
                                      "(worker flag --max-metric-points-per-second)"));
        }
        CheckBacklog(st.st_size);
        return true;
      }
      AppendPartial(buf + start, i - start);
      start = i + 1;
      size_t before = out->size();
      EndLine(now, out);
      tokens_ -= static_cast<double>(out->size() - before);
      ++lines;
    }
    AppendPartial(buf + start, n - start);
    offset_ += n;
    budget -= n;
  }
  CheckBacklog(st.st_size);
  return true;
}

void MetricsReader::CheckBacklog(int64_t size) {
  if (size - offset_ <= limits_.max_backlog_bytes || !flooded_.empty()) return;
  const int64_t bound = limits_.max_backlog_bytes;
  flooded_ = absl::StrCat("the trial wrote metrics faster than they can be taken: more than ",
                          bound >= (1 << 20) ? absl::StrCat(bound >> 20, " MiB")
                                             : absl::StrCat(bound, " bytes"),
                          " of its metrics file waited unread (worker flags "
                          "--max-metric-points-per-second, --max-metrics-backlog-mib)");
}

void MetricsReader::Admit(std::vector<MetricPointData>* points) {
  auto keep = [this](const MetricPointData& p) {
    if (p.name.size() > kMaxNameBytes) {
      Notice("long", absl::StrCat("metric names longer than ", kMaxNameBytes,
                                  " bytes are dropped (", p.name.substr(0, 40), "...)"));
      return false;
    }
    if (names_.count(p.name)) return true;
    if (static_cast<int64_t>(names_.size()) >= limits_.max_names) {
      Notice("names", absl::StrCat("the trial reported more than ", limits_.max_names,
                                   " metric names; points of further names (", p.name.substr(0, 40),
                                   ", ...) are dropped (worker flag --max-metric-names)"));
      return false;
    }
    names_.insert(p.name);
    return true;
  };
  points->erase(std::remove_if(points->begin(), points->end(),
                               [&](const MetricPointData& p) { return !keep(p); }),
                points->end());
}

bool MetricsReader::ParseLine(const std::string& line, int64_t line_number, double now,
                              std::vector<MetricPointData>* out, std::string* error,
                              std::string* dropped) {
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Such values carry no comparable result: drop them and keep the rest of the line.
    std::vector<std::string> huge;
    j = nlohmann::json::parse(ReplaceUnrepresentable(line, &huge), nullptr, false);
    if (!huge.empty() && dropped != nullptr && j.is_object()) {
      *dropped = absl::StrCat("beyond a double's range: ", absl::StrJoin(huge, ", "));
    }
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
