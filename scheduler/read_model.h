// The read model of sweeps: what `sweep status`, `trials`, `best`, `export` and
// `logs` show, built from what the Store holds.
//
// One code path serves both ways of reading: the scheduler's client RPCs (it adds
// what only a running scheduler knows through a LiveView: why queued trials wait,
// the estimate of a running sweep, the telemetry of running trials, the workers it
// hears from), and `sweep ... --db FILE`, which reads the database file alone with
// no LiveView. A sweep that has ended reads the same both ways.
//
// Thread safety: a SweepRecords is thread-compatible, like the Store it reads; the
// scheduler calls it under its own mutex. Lifecycle: the Store and the LiveView
// must outlive it.
#ifndef SWEEP_SCHEDULER_READ_MODEL_H_
#define SWEEP_SCHEDULER_READ_MODEL_H_

#include <string>

#include "absl/status/statusor.h"
#include "scheduler/store.h"
#include "sweep/v1/sweep.pb.h"

namespace sweep {

// What a running scheduler knows beyond its database. Called while the records
// are read; implementations must not call back into SweepRecords.
class LiveView {
 public:
  virtual ~LiveView() = default;
  // Adds the live fields (waiting, estimate) to the summary of a sweep.
  virtual void AddToSweep(v1::SweepSummary& sweep) = 0;
  // Adds the telemetry of a running trial's last heartbeat.
  virtual void AddToTrial(v1::TrialSummary& trial) = 0;
  // Adds the worker slots the scheduler hears from, and why it cannot write its
  // database while it cannot.
  virtual void AddWorkers(v1::GetStatusResponse& status) = 0;
};

class SweepRecords {
 public:
  // `store` and `live` are not owned; `live` is null for a reader of the file
  // alone, which lists the workers from their stored rows instead (see Status).
  SweepRecords(Store* store, LiveView* live) : store_(store), live_(live) {}

  // Summaries of one sweep (NotFound if unknown) or of every sweep, and the
  // workers. Without a LiveView the workers are the stored slots that are not lost
  // and whose row was written in the last kStoredWorkerWindowSeconds before `now`
  // (a live worker's row is rewritten at least every 10 s).
  absl::StatusOr<v1::GetStatusResponse> Status(const std::string& sweep_id, double now);
  // The sweep's summary and every trial in index order, each with its last value of
  // `metric` when that is not empty. NotFound for an unknown sweep.
  absl::StatusOr<v1::ListTrialsResponse> Trials(const std::string& sweep_id,
                                                const std::string& metric);
  // One trial with the log tails its worker sent. NotFound for an unknown trial.
  absl::StatusOr<v1::GetTrialResponse> Trial(const std::string& trial_id);
  // The summary of one stored sweep: identity, state, counts by state (a running
  // sweep's trials not yet created count as queued unless launching stopped), GPU
  // notes and the best trial, plus the live fields when there is a LiveView.
  absl::StatusOr<v1::SweepSummary> Summarize(const SweepRow& row);

  static constexpr double kStoredWorkerWindowSeconds = 60;

 private:
  // The trial's stored GPU placement, outcome and telemetry (`row` may be null),
  // then the live telemetry of a running one.
  void AddGpu(const TrialGpuRow* row, v1::TrialSummary& out);
  // What an ended sweep spent: GPU-hours, energy and money (SweepSummary.has_spent).
  absl::Status AddSpent(const SweepRow& row, v1::SweepSummary& out);

  Store* const store_;
  LiveView* const live_;
};

// Converts a trial row to its wire form (no GPU fields).
v1::TrialSummary ToSummary(const TrialRow& t);
// Converts a worker row to its wire form, as stored (heartbeat and message).
v1::WorkerSummary ToSummary(const WorkerRow& w);

}  // namespace sweep

#endif  // SWEEP_SCHEDULER_READ_MODEL_H_
