// DbReader: the dashboard's read-only view of the scheduler's SQLite database.
//
// It opens its own connection with SQLITE_OPEN_READONLY: the file is in WAL mode,
// so the dashboard reads while the scheduler writes, never blocks it, and has no
// way to write. Each method reads in one transaction (a consistent snapshot) and
// returns the JSON document the HTTP API serves; docs/dashboard.md describes every
// field.
//
// Errors: NotFound for an unknown sweep or trial (the message names it),
// Unavailable when the database is locked or cannot be read.
//
// Thread safety: thread-safe; one mutex serializes the connection. Lifecycle:
// Open(), use from any thread, destroy (closes the connection).
#ifndef SWEEP_DASHBOARD_INTERNAL_READER_H_
#define SWEEP_DASHBOARD_INTERNAL_READER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "nlohmann/json.hpp"

struct sqlite3;

namespace sweep::dashboard_internal {

class DbReader {
 public:
  // Opens `path` read-only. Returns Unavailable when the file does not exist or
  // is not a sweep database. `clock` (not owned, must outlive the reader) gives
  // "now" for elapsed times and heartbeat ages.
  static absl::StatusOr<std::unique_ptr<DbReader>> Open(const std::string& path,
                                                        const Clock* clock);
  ~DbReader();
  DbReader(const DbReader&) = delete;
  DbReader& operator=(const DbReader&) = delete;

  // {"now", "sweeps": [summary...]}, newest first.
  absl::StatusOr<nlohmann::json> Sweeps();
  // One sweep's summary plus its spec (text and parsed parameters) and the
  // names of the metrics its trials reported. NotFound for an unknown id.
  absl::StatusOr<nlohmann::json> Sweep(const std::string& id);
  // {"now", "metric", "goal", "best_trial", "total", "truncated", "trials": [...]}:
  // every trial in index order when the sweep has at most `limit`; else `limit` of
  // them: the running ones, then the best by final metric, then the newest others
  // (truncated: true; `sweep export` has them all).
  absl::StatusOr<nlohmann::json> Trials(const std::string& sweep_id, int limit);
  // Metric `name` (the sweep's metric when empty) against step for the trials of
  // the sweep: {"name", "names", "series": [{"trial", "points": [[step, value]...]}],
  // "series_total", "truncated"}: every trial when there are at most `max_series`,
  // else the running and the best as Trials() picks them. Each series keeps the
  // latest attempt's value per step and is thinned to at most `max_points` points
  // (first and last always kept). "names" are the metrics of those trials.
  absl::StatusOr<nlohmann::json> Metrics(const std::string& sweep_id, const std::string& name,
                                         int max_points, int max_series);
  // One trial with its logs' tails and every metric series (thinned as above).
  absl::StatusOr<nlohmann::json> Trial(const std::string& id, int max_points);
  // {"now", "workers": [...]}: every registered worker slot, lost ones included.
  absl::StatusOr<nlohmann::json> Workers();

 private:
  DbReader(sqlite3* db, const Clock* clock) : db_(db), clock_(clock) {}
  absl::StatusOr<nlohmann::json> SweepSummaryLocked(const std::string& id, double now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ids of at most `limit` trials of a sweep too large to show whole: the running
  // ones, then the best by final metric, then the newest of the rest.
  absl::StatusOr<std::vector<std::string>> PickTrialsLocked(const std::string& sweep_id,
                                                            bool maximize, int limit)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
  const Clock* clock_;
};

// Returns at most `max_points` of `points` (each [step, value]), evenly spread
// over the series, always keeping the first and the last. Returns `points`
// unchanged when it is short enough or `max_points` < 2.
nlohmann::json Thin(const nlohmann::json& points, int max_points);

}  // namespace sweep::dashboard_internal

#endif  // SWEEP_DASHBOARD_INTERNAL_READER_H_
