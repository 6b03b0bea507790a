// MetricsReader: follows a trial's SWEEP_METRICS_FILE and turns each complete JSON
// line into metric points.
//
// Line format (docs/trial-contract.md): one JSON object per line, e.g.
//   {"step": 3, "val_loss": 0.41, "val_acc": 0.87}
// Every numeric member other than `step` and `time` is a point named by its key.
// `step` (an integer) defaults to the line's number in the file, counting from 0;
// `time` (Unix seconds) defaults to when the line was read. Non-numeric members are
// ignored; a line that is not a JSON object is skipped and counted. A line is read
// only once it ends with a newline, so a half-written line is never lost or split.
//
// Hostile files: NaN and Infinity are dropped (a line with a number beyond a
// double, 1e999, is not JSON to nlohmann-json and is skipped and counted); a
// line whose step is not an integer within int64 (1.5, 1e300) is skipped and
// counted, as is a line longer than kMaxLineBytes (only its first bytes are
// held, so a file of binary garbage without newlines costs no memory). Every
// point has a finite value and time, and a name that is valid UTF-8.
//
// Thread-compatible: one reader per trial, used by one thread.
#ifndef SWEEP_WORKER_METRICS_READER_H_
#define SWEEP_WORKER_METRICS_READER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sweep {

struct MetricPointData {
  int64_t step = 0;
  std::string name;
  double value = 0;
  double time = 0;
};

class MetricsReader {
 public:
  static constexpr size_t kMaxLineBytes = 1 << 20;

  explicit MetricsReader(std::string path) : path_(std::move(path)) {}

  // Returns the points of the lines completed since the last call (none if the file
  // does not exist yet). `now` is the time given to lines without one.
  std::vector<MetricPointData> ReadNew(double now);

  // Parses one line; appends its points. Returns false for a malformed line (and
  // then appends nothing), saying why in `*error` when given.
  static bool ParseLine(const std::string& line, int64_t line_number, double now,
                        std::vector<MetricPointData>* out, std::string* error = nullptr);

  int64_t lines_read() const { return lines_; }
  int64_t bad_lines() const { return bad_lines_; }
  const std::string& last_error() const { return last_error_; }

 private:
  // Ends the line held in partial_: parses it (or counts it as bad).
  void EndLine(double now, std::vector<MetricPointData>* out);
  // Adds bytes to the line being read, up to kMaxLineBytes.
  void AppendPartial(const char* data, size_t size);

  std::string path_;
  int64_t offset_ = 0;
  std::string partial_;
  bool overlong_ = false;  // the current line passed kMaxLineBytes
  int64_t lines_ = 0;
  int64_t bad_lines_ = 0;
  std::string last_error_;
};

}  // namespace sweep

#endif  // SWEEP_WORKER_METRICS_READER_H_
