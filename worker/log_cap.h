// LogCap: keeps a trial's stdout.log or stderr.log under a size bound while the
// trial writes to it, keeping the head and the tail.
//
// The trial writes the file itself (its stdout and stderr are the file, opened
// with O_APPEND), so nothing of the worker sits between the trial and its output.
// Each Poll() looks at the file's size; once it passes `max_bytes`, the middle is
// cut: the first half of the bound stays as it is, then one line saying how much
// was cut, then the newest bytes, so that the file is again at most `max_bytes`.
// The trial's next writes land after them (O_APPEND). What the trial writes
// between a Poll's read of the tail and its truncation is lost with the middle.
// Between polls the file may grow past the bound by what the trial writes in one
// poll interval.
//
// Thread-compatible: one per file, used by the slot's thread.
#ifndef SWEEP_WORKER_LOG_CAP_H_
#define SWEEP_WORKER_LOG_CAP_H_

#include <cstdint>
#include <string>

namespace sweep {

class LogCap {
 public:
  // `max_bytes` <= 0: no bound.
  LogCap(std::string path, int64_t max_bytes) : path_(std::move(path)), max_(max_bytes) {}

  // Cuts the file when it passed the bound. Returns true the first time it cut.
  bool Poll();
  const std::string& path() const { return path_; }

 private:
  const std::string path_;
  const int64_t max_;
  int64_t head_end_ = -1;  // where the kept head (and the cut line) ends, once cut
  int64_t cut_ = 0;
};

}  // namespace sweep

#endif  // SWEEP_WORKER_LOG_CAP_H_
