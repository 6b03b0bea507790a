// Store: the scheduler's SQLite database, the one place sweep's results live.
//
// The schema is a public interface (docs/schema.md): users query it with sqlite3.
// Only the scheduler writes, through this class. Schema changes are numbered
// migrations applied in order on Open(); `schema_version` records the last one.
//
// Durability: WAL journal, synchronous=NORMAL. A write is acknowledged to a worker
// only after its transaction committed, so nothing acknowledged is lost when the
// scheduler process is killed.
//
// Thread safety: not thread-safe; the scheduler core serializes every call under
// its own mutex. Lifecycle: Open(), use, destroy (closes the database).
#ifndef SWEEP_SCHEDULER_STORE_H_
#define SWEEP_SCHEDULER_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

struct sqlite3;

namespace sweep {

struct SweepRow {
  std::string id;
  std::string name;
  std::string spec_yaml;    // the spec exactly as submitted
  std::string file_name;    // the spec's file name, for messages
  std::string working_dir;  // where `sweep submit` ran
  std::string method;       // grid, random, bayes
  std::string metric_name;  // empty when the spec has no metric
  std::string metric_goal;  // minimize, maximize
  uint64_t seed = 0;
  int64_t budget = -1;      // trials in all; -1 when unbounded
  int64_t next_index = 0;   // index of the next trial to create
  std::string state = "running";  // running, finished, cancelled
  double created_at = 0;
  double finished_at = 0;   // 0 while running
  std::string end_reason;
  // Why a running sweep creates no new trials (a budget ended the launching), or "".
  std::string launch_stopped;
};

struct TrialRow {
  std::string id;
  std::string sweep_id;
  int64_t index = 0;
  std::string state = "queued";
  std::string params_json = "{}";
  std::string argv_json = "[]";
  std::string worker_id;
  std::string host;
  int gpu = -1;             // GPU index on its node; -1 on a CPU slot
  int attempt = 0;
  int64_t epoch = 0;
  int64_t last_seq = 0;     // last metric report stored for this epoch
  double created_at = 0;
  double started_at = 0;
  double ended_at = 0;
  std::optional<int> exit_code;
  int signal = 0;
  std::string message;      // why it ended, or why it was re-queued
  std::optional<double> final_metric;
  std::optional<double> best_metric;
  std::string trial_dir;
  std::string stdout_tail;
  std::string stderr_tail;
  std::optional<int64_t> stopped_at_step;  // the rung or step of an early stop
};

struct MetricRow {
  int attempt = 0;
  int64_t step = 0;
  std::string name;
  double value = 0;
  double time = 0;
};

struct WorkerRow {
  std::string id;
  std::string host;
  int pid = 0;
  int slot = 0;
  bool has_gpu = false;
  int gpu_index = -1;
  std::string gpu_uuid;
  std::string gpu_name;
  int64_t gpu_memory_mib = 0;
  std::string state = "idle";  // idle, busy, draining, lost
  double registered_at = 0;
  double last_heartbeat = 0;
  std::string trial_id;
  std::string message;  // what it last said about its GPU; read only (UpdateWorkerMessage)
};

// A trial's GPU placement, outcome and telemetry (docs/schema.md, migration 4),
// read and written apart from TrialRow.
struct TrialGpuRow {
  std::string trial_id;
  std::string gpus;          // GPU indexes a trial of several held ("0,1"); else ""
  std::string gpu_flag;      // "no_gpu_activity", or ""
  std::string failure_kind;  // "oom", "no_gpu_activity", or ""
  std::optional<int64_t> peak_memory_mib;
  std::optional<double> energy_joules;
  std::optional<double> utilization;  // mean GPU utilization, percent
  std::string state;         // the trial's state (read only)
};

// What the ended trials of a sweep used, from their rows (the last attempt of each).
struct SpentRow {
  int64_t trials = 0;              // trials that started and ended
  double gpu_trial_seconds = 0;    // summed durations of those that ran on a GPU slot
  double energy_joules = 0;        // summed measured energy
};

class Store {
 public:
  // Opens (creating if needed) the database at `path` and applies pending
  // migrations. Returns Unavailable when the file cannot be opened or is locked,
  // FailedPrecondition when it was written by a newer sweep (unknown schema version).
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path);
  // Opens an existing database for reading only, safe beside a running scheduler
  // (WAL: the reader sees the last committed state and never blocks the writer).
  // InTransaction() then reads one consistent snapshot; every write fails.
  // NotFound when there is no such file, InvalidArgument when it is not a sweep
  // database, FailedPrecondition when its schema version is not this sweep's (an
  // older file is upgraded by opening it once with Open()), Unavailable when it
  // cannot be opened.
  static absl::StatusOr<std::unique_ptr<Store>> OpenReadOnly(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Runs `body` in one transaction: committed if it returns OK, rolled back else.
  // Returns body's error, or the commit's. Calls nest: an inner call joins the outer
  // transaction, and an inner error rolls back the outer one once it reaches it.
  // If SQLite itself ended the transaction (it may, on a full disk or an I/O error)
  // nothing is committed and the error says so.
  absl::Status InTransaction(const std::function<absl::Status()>& body);

  // Rows written through this connection since it opened (grows with every write).
  int64_t TotalChanges() const;

  // Prepared statements kept for the life of the connection (opaque outside store.cc).
  struct StmtCache;

  // Copies the WAL into the database from a background thread, on a connection of
  // its own, so that no request waits behind a checkpoint's copying and fsyncs: each
  // time a commit leaves about 4 MB in the WAL, and at least every `every`. A copy
  // beside a steady stream of commits never catches up with them, and the WAL starts
  // over only once it is fully copied: so the thread copies the rest (what came since
  // its last pass) while holding off new transactions. A commit checkpoints itself
  // only when the WAL passes 16 MB, that is when writes outrun the thread; the WAL
  // stays bounded whatever the write rate (BackgroundCheckpointsKeepTheWalBounded).
  // Unavailable when the second connection cannot be opened.
  absl::Status CheckpointInBackground(absl::Duration every);

  // Writes. Each returns Internal (with SQLite's message) on failure.
  absl::Status InsertSweep(const SweepRow& s);
  absl::Status UpdateSweep(const SweepRow& s);  // state, next_index, end fields
  absl::Status UpsertTrial(const TrialRow& t);
  // Adds metric points of `trial` and saves the trial row (last_seq, final and best
  // metric) in one transaction.
  absl::Status AppendMetrics(const TrialRow& trial, const std::vector<MetricRow>& points);
  // Adds a new worker's row. AlreadyExists when a row with its id exists (which
  // is left as it was): a registration never takes over another worker's row.
  absl::Status InsertWorker(const WorkerRow& w);
  // Writes a known worker's state, heartbeat and trial (the row of a worker the
  // scheduler loaded or registered; adds it when missing).
  absl::Status UpsertWorker(const WorkerRow& w);
  absl::Status AddEvent(double time, const std::string& kind, const std::string& sweep_id,
                        const std::string& trial_id, const std::string& worker_id,
                        const std::string& message);

  // Reads. NotFound when a named row does not exist.
  absl::StatusOr<std::vector<SweepRow>> LoadSweeps();
  absl::StatusOr<SweepRow> LoadSweep(const std::string& id);
  absl::StatusOr<std::vector<TrialRow>> LoadTrials(const std::string& sweep_id);
  // Trials in state queued or running, of every sweep, in creation order.
  absl::StatusOr<std::vector<TrialRow>> LoadActiveTrials();
  absl::StatusOr<TrialRow> LoadTrial(const std::string& id);
  absl::StatusOr<std::vector<MetricRow>> LoadMetrics(const std::string& trial_id);
  absl::StatusOr<std::vector<WorkerRow>> LoadWorkers();
  // Number of trials of `sweep_id` in each state (states with none are absent).
  absl::StatusOr<std::map<std::string, int64_t>> CountTrials(const std::string& sweep_id);
  // The trial with the best final metric (`maximize` picks the largest), or nullopt
  // when no trial reported the metric.
  absl::StatusOr<std::optional<std::pair<std::string, double>>> BestTrial(
      const std::string& sweep_id, bool maximize);
  // Every point of metric `name` of the sweep's trials, in the order stored.
  struct SeriesPoint {
    std::string trial_id;
    int64_t step;
    double value;
  };
  absl::StatusOr<std::vector<SeriesPoint>> LoadMetricSeries(const std::string& sweep_id,
                                                            const std::string& name);
  // For each trial of the sweep with `trial_notice` or `metric_rejected` events
  // (what became of its output that its user should know), their messages, oldest
  // first.
  absl::StatusOr<std::map<std::string, std::vector<std::string>>> LoadNotices(
      const std::string& sweep_id);
  // For each trial of the sweep, the last value (highest step) of metric `name`.
  absl::StatusOr<std::map<std::string, double>> LastValues(const std::string& sweep_id,
                                                           const std::string& name);

  // GPU placement and telemetry (migration 4). UpdateTrialGpu writes every field of
  // `r` but state; LoadTrialGpu returns the trials of a sweep with any of them set,
  // by id; LoadOneTrialGpu returns one trial's (NotFound if unknown).
  absl::Status UpdateTrialGpu(const TrialGpuRow& r);
  absl::StatusOr<SpentRow> Spent(const std::string& sweep_id);
  absl::StatusOr<std::map<std::string, TrialGpuRow>> LoadTrialGpu(const std::string& sweep_id);
  absl::StatusOr<TrialGpuRow> LoadOneTrialGpu(const std::string& trial_id);
  // How many trials of the sweep have each GPU flag or failure kind
  // ("no_gpu_activity", "oom"); kinds with none are absent.
  absl::StatusOr<std::map<std::string, int64_t>> CountGpuNotes(const std::string& sweep_id);
  // Sets the message a worker slot reports about its GPU ("" clears it).
  absl::Status UpdateWorkerMessage(const std::string& worker_id, const std::string& message);

 private:
  explicit Store(sqlite3* db);
  absl::Status Migrate();
  absl::Status Exec(const char* sql);
  // Exec() for the few fixed statements of every transaction, prepared once.
  absl::Status ExecCached(const char* sql);

  class Checkpointer;

  sqlite3* db_;
  std::unique_ptr<StmtCache> cache_;
  int txn_depth_ = 0;
  bool read_only_ = false;  // opened by OpenReadOnly()
  // Held by an outermost transaction, and by the checkpointer for its last copy.
  absl::Mutex writes_;
  std::unique_ptr<Checkpointer> checkpointer_;  // stopped before db_ closes
};

}  // namespace sweep

#endif  // SWEEP_SCHEDULER_STORE_H_
