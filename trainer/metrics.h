// MetricsWriter: appends sweep-train's metrics to SWEEP_METRICS_FILE as JSON
// lines (docs/trial-contract.md), one whole line per write, flushed at once so
// the worker sees every epoch as it ends. Without a file, lines go to stdout.
//
// Thread-compatible: one writer per process, used by one thread.
#ifndef SWEEP_TRAINER_METRICS_H_
#define SWEEP_TRAINER_METRICS_H_

#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace sweep::trainer {

class MetricsWriter {
 public:
  // Opens `path` for appending (creating it), or stdout when `path` is empty.
  // Returns FailedPrecondition when the file cannot be opened.
  static absl::StatusOr<MetricsWriter> Open(const std::string& path);

  MetricsWriter(MetricsWriter&& other) noexcept;
  MetricsWriter& operator=(MetricsWriter&&) = delete;
  ~MetricsWriter();

  // Writes `line` (a JSON object) as one line and flushes. Non-finite numbers
  // are written as null (the worker ignores them). Returns Internal on a write
  // error.
  absl::Status Write(const nlohmann::json& line);

 private:
  explicit MetricsWriter(FILE* f, bool owned) : file_(f), owned_(owned) {}
  FILE* file_;
  bool owned_;
};

}  // namespace sweep::trainer

#endif  // SWEEP_TRAINER_METRICS_H_
