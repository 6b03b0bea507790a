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
// One bad value loses only itself: NaN and Infinity (as Python writes them) and a
// number beyond a double (1e400) are dropped and the other keys of the line kept;
// a number beyond a double is said once per trial (notices()). A line whose step is
// not an integer within int64 (1.5, 1e300) is skipped and counted, as is a line
// longer than kMaxLineBytes (only its first bytes are held, so a file of binary
// garbage without newlines costs no memory). Every point has a finite value and
// time, and a name that is valid UTF-8.
//
// The file is the trial's, so it may be anything (docs/security.md):
//  - it is read only as a regular file owned by this process's user: it is opened
//    without following a symbolic link and without blocking (a FIFO, a device or a
//    link to /etc/passwd or /dev/zero is never read; said once);
//  - replaced (another inode at the path: deleted and written again, renamed over)
//    or truncated, it is read again from its start;
//  - each ReadNew reads at most `max_bytes_per_read` bytes and `max_lines_per_read`
//    lines, and the trial's points are held to `max_points_per_second` (a burst of
//    one second's worth): what is not read yet stays in the file for the next call
//    (throttled, said once); once more than `max_backlog_bytes` wait unread,
//    flooded() says why, and the slot stops the trial;
//  - a trial has at most `max_names` metric names; points of further names are
//    dropped (said once), as are names longer than kMaxNameBytes.
// No call blocks: open, fstat and pread of a regular file only.
//
// Thread-compatible: one reader per trial, used by one thread.
#ifndef SWEEP_WORKER_METRICS_READER_H_
#define SWEEP_WORKER_METRICS_READER_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace sweep {

struct MetricPointData {
  int64_t step = 0;
  std::string name;
  double value = 0;
  double time = 0;
};

// The bounds of one trial's metrics (worker flags; docs/security.md).
struct MetricsLimits {
  int64_t max_bytes_per_read = 4 << 20;
  int64_t max_lines_per_read = 20000;
  double max_points_per_second = 20000;
  int64_t max_names = 1000;
  int64_t max_backlog_bytes = int64_t{256} << 20;
};

class MetricsReader {
 public:
  static constexpr size_t kMaxLineBytes = 1 << 20;
  static constexpr size_t kMaxNameBytes = 256;

  explicit MetricsReader(std::string path, MetricsLimits limits = MetricsLimits());
  ~MetricsReader();
  MetricsReader(const MetricsReader&) = delete;
  MetricsReader& operator=(const MetricsReader&) = delete;

  // Returns the points of the lines completed since the last call, within the
  // bounds above (none if the file does not exist yet). `now` (Unix seconds) is the
  // time given to lines without one, and times the points-per-second bound.
  std::vector<MetricPointData> ReadNew(double now);

  // Parses one line; appends its points. Returns false for a malformed line (and
  // then appends nothing), saying why in `*error` when given. Values dropped from a
  // line that is kept (a number beyond a double) are described in `*dropped`.
  static bool ParseLine(const std::string& line, int64_t line_number, double now,
                        std::vector<MetricPointData>* out, std::string* error = nullptr,
                        std::string* dropped = nullptr);

  int64_t lines_read() const { return lines_; }
  int64_t bad_lines() const { return bad_lines_; }
  const std::string& last_error() const { return last_error_; }
  // Whether the last ReadNew left nothing it could read now (no bound held it back).
  bool caught_up() const { return caught_up_; }
  // Non-empty once the trial wrote more than max_backlog_bytes that could not be
  // read yet: why, for the trial's failure message.
  const std::string& flooded() const { return flooded_; }
  // What the reader did about the file that the user should know (a bound that
  // fired, a file it would not read, values it dropped), each said once; cleared by
  // the call.
  std::vector<std::string> TakeNotices();

 private:
  // Ends the line held in partial_: parses it (or counts it as bad).
  void EndLine(double now, std::vector<MetricPointData>* out);
  // Adds bytes to the line being read, up to kMaxLineBytes.
  void AppendPartial(const char* data, size_t size);
  // Makes fd_ the file now at path_ when that is another regular file of ours
  // than fd_ (the first, or a replacement); returns whether it did.
  bool Switch();
  // Reads from fd_ within the bounds; returns whether a bound held it back.
  bool ReadOpen(double now, std::vector<MetricPointData>* out);
  // Sets flooded_ when more than max_backlog_bytes of a file of `size` wait unread.
  void CheckBacklog(int64_t size);
  // Keeps the points of names within the bounds.
  void Admit(std::vector<MetricPointData>* points);
  void Notice(const std::string& key, std::string text);

  const std::string path_;
  const MetricsLimits limits_;
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  int64_t offset_ = 0;
  std::string partial_;
  bool overlong_ = false;  // the current line passed kMaxLineBytes
  int64_t lines_ = 0;
  int64_t bad_lines_ = 0;
  std::string last_error_;
  bool started_ = false;  // a first ReadNew filled the points budget
  double tokens_ = 0;     // points that may still be read now (below 0: overdrawn)
  double tokens_at_ = 0;
  bool caught_up_ = true;
  std::string flooded_;
  std::set<std::string> names_;
  std::set<std::string> said_;  // notice keys already given
  std::vector<std::string> notices_;
};

}  // namespace sweep

#endif  // SWEEP_WORKER_METRICS_READER_H_
