#include "tests/fuzz/metrics_check.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "worker/metrics_reader.h"

namespace sweep::fuzz {
namespace {

constexpr double kNow = 1700000000.25;

// Bounds that never bite, for the checks that compare ways of reading.
MetricsLimits Unbounded() {
  MetricsLimits l;
  l.max_bytes_per_read = int64_t{1} << 40;
  l.max_lines_per_read = INT64_MAX;
  l.max_points_per_second = 1e300;
  l.max_names = INT64_MAX;
  l.max_backlog_bytes = INT64_MAX;
  return l;
}

// Reads until the reader is caught up (each call within its bounds).
std::vector<MetricPointData> ReadAll(MetricsReader& r) {
  std::vector<MetricPointData> out;
  for (int i = 0; i < 1000000; ++i) {
    std::vector<MetricPointData> got = r.ReadNew(kNow + i);
    out.insert(out.end(), got.begin(), got.end());
    if (r.caught_up()) break;
  }
  return out;
}

// Name and value of each point: what survives a file read again from its start
// (a line without a step is numbered on from the lines before).
std::vector<std::pair<std::string, double>> Values(const std::vector<MetricPointData>& points) {
  std::vector<std::pair<std::string, double>> out;
  for (const MetricPointData& p : points) out.emplace_back(p.name, p.value);
  return out;
}

bool ValidUtf8(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

std::string CheckPoints(const std::vector<MetricPointData>& points, const char* what) {
  for (const MetricPointData& p : points) {
    if (!std::isfinite(p.value) || !std::isfinite(p.time)) {
      return absl::StrCat(what, ": a point with a value or time that is not finite: ",
                          p.name, "=", p.value, " at ", p.time);
    }
    if (p.name == "step" || p.name == "time") {
      return absl::StrCat(what, ": a point named ", p.name);
    }
    if (!ValidUtf8(p.name)) return absl::StrCat(what, ": a name that is not valid UTF-8");
  }
  return "";
}

bool SamePoints(const std::vector<MetricPointData>& a, const std::vector<MetricPointData>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].step != b[i].step || a[i].name != b[i].name ||
        std::memcmp(&a[i].value, &b[i].value, sizeof(double)) != 0 ||
        std::memcmp(&a[i].time, &b[i].time, sizeof(double)) != 0) {
      return false;
    }
  }
  return true;
}

// A temporary file for this process, emptied before each use.
class Scratch {
 public:
  Scratch() {
    const char* dir = getenv("TMPDIR");
    path_ = absl::StrCat(dir && *dir ? dir : "/tmp", "/sweep-metrics-fuzz-XXXXXX");
    fd_ = mkstemp(path_.data());
  }
  ~Scratch() {
    if (fd_ >= 0) {
      close(fd_);
      unlink(path_.c_str());
    }
  }
  bool ok() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }
  bool Reset() { return ftruncate(fd_, 0) == 0; }
  // Puts a new file with `bytes` at path() (renamed over the old one).
  bool Replace(absl::string_view bytes) {
    const std::string other = path_ + ".new";
    const int fd = open(other.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    close(fd_);
    fd_ = fd;
    return Append(bytes) && rename(other.c_str(), path_.c_str()) == 0;
  }
  bool Append(absl::string_view bytes) {
    // O_APPEND is not set: write at the end by hand.
    const off_t end = lseek(fd_, 0, SEEK_END);
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = pwrite(fd_, bytes.data() + done, bytes.size() - done, end + done);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

std::string CheckFile(absl::string_view data) {
  static Scratch scratch;
  if (!scratch.ok()) return "cannot create a temporary file";
  // The whole file at once.
  if (!scratch.Reset() || !scratch.Append(data)) return "cannot write the temporary file";
  MetricsReader whole(scratch.path(), Unbounded());
  const std::vector<MetricPointData> all = whole.ReadNew(kNow);
  if (std::string e = CheckPoints(all, "ReadNew"); !e.empty()) return e;
  if (!whole.ReadNew(kNow).empty()) return "a second ReadNew of an unchanged file found points";

  // Lines by hand: a line ends at '\n' (a trailing '\r' dropped); the text after the
  // last newline is not a line yet.
  int64_t complete_lines = 0;
  size_t from = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] != '\n') continue;
    size_t len = i - from;
    if (len > 0 && data[from + len - 1] == '\r') --len;
    if (len > 0) ++complete_lines;
    from = i + 1;
  }
  if (whole.lines_read() != complete_lines) {
    return absl::StrCat("ReadNew counted ", whole.lines_read(), " lines, the file has ",
                        complete_lines, " non-empty complete ones");
  }

  // The same bytes appended in pieces whose sizes come from the data itself.
  if (!scratch.Reset()) return "cannot truncate the temporary file";
  MetricsReader follow(scratch.path(), Unbounded());
  std::vector<MetricPointData> pieces;
  size_t at = 0;
  uint32_t h = 2166136261u;
  while (at < data.size()) {
    h = (h ^ static_cast<unsigned char>(data[at])) * 16777619u;
    // Pieces of 1 to 97 bytes; larger ones in a large file (about 32 pieces),
    // which keeps each input fast.
    const size_t spread = std::max<size_t>(97, data.size() / 16);
    const size_t n = std::min(data.size() - at, size_t{1} + h % spread);
    if (!scratch.Append(data.substr(at, n))) return "cannot write the temporary file";
    at += n;
    std::vector<MetricPointData> got = follow.ReadNew(kNow);
    pieces.insert(pieces.end(), got.begin(), got.end());
  }
  if (!SamePoints(all, pieces)) {
    return absl::StrCat("reading the file in pieces gave ", pieces.size(),
                        " points, reading it whole ", all.size());
  }
  if (follow.lines_read() != whole.lines_read() || follow.bad_lines() != whole.bad_lines()) {
    return absl::StrCat("reading in pieces counted ", follow.lines_read(), " lines (",
                        follow.bad_lines(), " bad), whole ", whole.lines_read(), " (",
                        whole.bad_lines(), " bad)");
  }

  // Small bounds per read: the same points in the end, but only those of the first
  // names within max_names.
  MetricsLimits small;
  small.max_bytes_per_read = 1 + static_cast<int64_t>(h % 700);
  small.max_lines_per_read = 1 + static_cast<int64_t>(h % 7);
  small.max_points_per_second = 1e300;
  small.max_names = 5;
  small.max_backlog_bytes = INT64_MAX;
  MetricsReader bounded(scratch.path(), small);
  std::vector<MetricPointData> admitted;
  std::set<std::string> names;
  for (const MetricPointData& p : all) {
    if (names.count(p.name) || (names.size() < 5 && names.insert(p.name).second)) {
      admitted.push_back(p);
    }
  }
  const std::vector<MetricPointData> got = ReadAll(bounded);
  if (Values(got) != Values(admitted)) {
    return absl::StrCat("reading with small bounds gave ", got.size(), " points, expected ",
                        admitted.size());
  }

  // Under the reader, the file is truncated and written again (shorter than what
  // was read, so that it can be told from a file that grew), or replaced by a new
  // file: everything read before, then the new content from its start, as a reader
  // of that content alone sees it.
  const size_t cut = data.size() / 2;
  const absl::string_view second = data.substr(cut, cut > 0 ? cut - 1 : 0);
  for (bool replace : {false, true}) {
    const absl::string_view now = replace ? data : second;
    if (!scratch.Reset() || !scratch.Append(now)) return "cannot write the temporary file";
    MetricsReader alone(scratch.path(), Unbounded());
    const std::vector<MetricPointData> fresh = ReadAll(alone);

    if (!scratch.Reset() || !scratch.Append(data.substr(0, cut))) return "cannot write";
    MetricsReader changing(scratch.path(), Unbounded());
    std::vector<MetricPointData> seen = ReadAll(changing);
    std::vector<MetricPointData> expected = seen;
    expected.insert(expected.end(), fresh.begin(), fresh.end());
    if (replace) {
      if (!scratch.Replace(now)) return "cannot replace the temporary file";
    } else if (!scratch.Reset() || !scratch.Append(now)) {
      return "cannot write the temporary file";
    }
    const std::vector<MetricPointData> after = ReadAll(changing);
    seen.insert(seen.end(), after.begin(), after.end());
    if (cut > 0 && Values(seen) != Values(expected)) {
      return absl::StrCat("after the file was ", replace ? "replaced" : "truncated", ": ",
                          seen.size(), " points, expected ", expected.size());
    }
  }
  return "";
}

}  // namespace

std::string CheckMetricsInput(std::string_view data) {
  try {
    // The input as one line.
    std::vector<MetricPointData> out;
    std::string error;
    const bool ok = MetricsReader::ParseLine(std::string(data), 3, kNow, &out, &error);
    if (!ok && !out.empty()) return "ParseLine returned false but appended points";
    if (!ok && error.empty()) return "ParseLine returned false without saying why";
    if (std::string e = CheckPoints(out, "ParseLine"); !e.empty()) return e;
    return CheckFile(absl::string_view(data.data(), data.size()));
  } catch (const std::exception& e) {
    return absl::StrCat("threw ", e.what());
  } catch (...) {
    return "threw something that is not a std::exception";
  }
}

}  // namespace sweep::fuzz
