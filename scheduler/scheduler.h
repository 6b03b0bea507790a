// Scheduler: the core of the `sweep scheduler` daemon, with no gRPC in it.
//
// It owns the queue of every running sweep, hands one trial at a time to workers
// under a lease, takes their metric reports and outcomes, and re-queues the trials
// of workers that go silent. Every change is written to the Store before it is
// acknowledged; on Create() the scheduler rebuilds its state from the Store, so a
// restarted scheduler carries on where the old one stopped.
//
// Requests and responses are the sweep.v1 protobuf messages (plain data); the gRPC
// adapters in service.h only translate calls and statuses.
//
// Leases: a trial is leased to one worker slot with an epoch that grows by one with
// every lease. ReportMetrics, FinishTrial and Heartbeat name (trial, epoch); a
// message for an epoch that is not the trial's current lease is refused with
// FailedPrecondition. Metric reports carry a sequence number per lease, 1, 2, ...:
// the worker sends report n + 1 only once report n was acknowledged. A number not
// above the last stored one is acknowledged as a duplicate and not stored again; a
// number beyond the next one (or below 1) is refused, as no lease could have sent
// it.
//
// What one request may cost is bounded before the work is done (docs/security.md):
// the size of a spec, the YAML parse (sweeps/internal/yaml_adapter.h; at most
// kParallelParses at once), the worker slots of a host, the text kept of a
// finished trial (kMaxLogTailBytes, ...).
//
// Thread safety: every public method is thread-safe (one internal mutex).
// LeaseTrial may block up to the request's wait_ms waiting for work.
#ifndef SWEEP_SCHEDULER_SCHEDULER_H_
#define SWEEP_SCHEDULER_SCHEDULER_H_

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "scheduler/early_stopping.h"
#include "scheduler/estimate.h"
#include "scheduler/placement.h"
#include "scheduler/read_model.h"
#include "scheduler/store.h"
#include "scheduler/trial_state.h"
#include "sweep/v1/sweep.pb.h"
#include "sweeps/sampler.h"
#include "sweeps/spec.h"

namespace sweep {

struct SchedulerOptions {
  // A running trial whose worker has not been heard from for this long is re-queued
  // (or failed once it used up max_retries).
  absl::Duration lease_timeout = absl::Seconds(30);
  // How often workers are told to heartbeat.
  absl::Duration heartbeat_interval = absl::Seconds(2);
  // Upper bound on how long a LeaseTrial call waits for work.
  absl::Duration max_lease_wait = absl::Seconds(5);
  // SubmitSweep refuses a longer spec before parsing it (`--max-spec-bytes`); at
  // most kMaxSpecBytesLimit, the spec parser's own limit.
  int64_t max_spec_bytes = kDefaultMaxSpecBytes;
  // Register refuses a slot of a host that already has this many slots not lost
  // (`--max-workers-per-host`).
  int max_workers_per_host = 1024;
  // Seeds the scheduler's randomness (sweep and worker ids, the seeds of sweeps
  // that give none); unset: a random seed. For tests.
  std::optional<uint64_t> random_seed;

  static constexpr int64_t kDefaultMaxSpecBytes = 1 << 20;
  static constexpr int64_t kMaxSpecBytesLimit = 16 << 20;
};

// What the scheduler keeps of what workers send, whoever sends it.
// FinishTrial's stdout_tail and stderr_tail: their last 8 KiB (at a character
// boundary). Its message: its first 8 KiB. Its trial_dir: none beyond 4 KiB.
inline constexpr size_t kMaxLogTailBytes = 8 << 10;
inline constexpr size_t kMaxMessageBytes = 8 << 10;
inline constexpr size_t kMaxPathBytes = 4 << 10;
// RegisterRequest's host, GPU UUID and GPU name. (A heartbeat's message is cut
// at kMaxMessageBytes.)
inline constexpr size_t kMaxNameBytes = 256;

class Scheduler {
 public:
  // Builds a scheduler over `store` (not owned; must outlive it) and rebuilds its
  // state from it. Returns the store's error if it cannot be read.
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(Store* store, Clock* clock,
                                                           SchedulerOptions options);
  ~Scheduler();

  // ---- worker side
  // Registers a worker slot under a new id that no other worker has or had (its
  // row is never another's). ResourceExhausted when the host already has
  // max_workers_per_host slots that are not lost; InvalidArgument for a host, GPU
  // UUID or GPU name beyond kMaxNameBytes or holding a NUL; Unavailable when the
  // store fails.
  absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest& req);
  // Leases the next runnable trial to the worker, waiting up to wait_ms for one.
  // Returns has_trial=false when there is none; NotFound for an unknown worker (it
  // must register again).
  absl::StatusOr<v1::LeaseTrialResponse> LeaseTrial(const v1::LeaseTrialRequest& req);
  // Records that the worker is alive and extends the leases of the trials it runs.
  // The response lists trials to stop. reregister=true for an unknown worker.
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& req);
  // Stores metric points. FailedPrecondition for a stale lease; duplicate=true when
  // the sequence number was already stored; InvalidArgument (logged, nothing
  // stored, the lease's last seq unchanged) for a seq below 1 or beyond the last
  // stored + 1. A point that cannot be stored (a value or time that is NaN or
  // infinite, a name that is empty, not UTF-8 or holds a NUL) is left out and the
  // others are stored: the response counts and names what was rejected, and the
  // trial's events say so once per metric name.
  absl::StatusOr<v1::ReportMetricsResponse> ReportMetrics(
      const v1::ReportMetricsRequest& req);
  // Records the trial's outcome, keeping at most the kMax...Bytes above of its
  // text. FailedPrecondition for a stale lease; a repeat of an already recorded
  // outcome returns OK.
  absl::StatusOr<v1::FinishTrialResponse> FinishTrial(const v1::FinishTrialRequest& req);

  // ---- client side
  // Parses and stores a new sweep. InvalidArgument for a bad spec, for one beyond
  // max_spec_bytes (before it is parsed) and for a file name or working directory
  // beyond kMaxPathBytes (nothing stored). At most kParallelParses specs are parsed
  // at once; other calls wait their turn.
  absl::StatusOr<v1::SubmitSweepResponse> SubmitSweep(const v1::SubmitSweepRequest& req);
  static constexpr int kParallelParses = 2;
  // Summaries of one sweep (NotFound if unknown) or of all, and of the workers.
  absl::StatusOr<v1::GetStatusResponse> GetStatus(const v1::GetStatusRequest& req);
  absl::StatusOr<v1::ListTrialsResponse> ListTrials(const v1::ListTrialsRequest& req);
  // Cancels queued trials and orders running ones stopped. FailedPrecondition if the
  // sweep already ended; NotFound if unknown.
  absl::StatusOr<v1::CancelSweepResponse> CancelSweep(const v1::CancelSweepRequest& req);
  absl::StatusOr<v1::GetTrialResponse> GetTrial(const v1::GetTrialRequest& req);

  // ---- housekeeping
  // Re-queues trials whose lease expired and marks silent workers lost. Called
  // periodically by the daemon; tests call it after advancing a fake clock.
  void Tick();
  // Wakes every waiting LeaseTrial; later ones return at once with drain=true.
  void Shutdown();
  // How many LeaseTrial calls are blocked now, waiting for work.
  int WaitingLeases();

 private:
  struct SweepState {
    SweepRow row;
    spec::SweepSpec spec;
    int64_t running = 0;
    int64_t failed = 0;
    std::deque<std::string> queued;  // ids of re-queued trials, oldest first
    std::unique_ptr<EarlyStopper> stopper;   // null without early_terminate
    std::vector<spec::Observation> history;  // ended trials, for the samplers
    DurationStats durations;                 // ended trials, for the estimates
    EnergyStats energy;                      // GPU energy of trials that ended
  };
  struct ActiveTrial {
    TrialRow row;
    absl::Time lease_deadline;
    bool stop_requested = false;
    TrialState stop_as = TrialState::kStopped;  // state it ends in once stopped
    std::string stop_reason;                    // why it is being stopped
    int64_t final_step = INT64_MIN;
    int64_t last_step = 0;  // highest step of any metric reported
    // Metric names whose rejected points have an event already (at most
    // kMaxRejectedNames), so that a trial that keeps sending NaN is told once.
    std::set<std::string> rejected_names;
  };
  static constexpr size_t kMaxRejectedNames = 16;
  struct WorkerState {
    WorkerRow row;
    absl::Time last_seen;
    std::string message;  // what the worker last said about its GPU (heartbeat)
    // What the database holds of the row (state, trial, heartbeat): a heartbeat that
    // changes only the time is written at most every kHeartbeatWriteEvery.
    std::string stored_state, stored_trial;
    double stored_heartbeat = 0;
  };
  static constexpr double kHeartbeatWriteEvery = 10;  // seconds

  Scheduler(Store* store, Clock* clock, SchedulerOptions options)
      : store_(store), clock_(clock), options_(options) {
    if (options.random_seed) {
      const uint64_t seed = *options.random_seed;
      gen_ = absl::BitGen(std::seed_seq{static_cast<uint32_t>(seed),
                                        static_cast<uint32_t>(seed >> 32)});
    }
  }
  // Loads the running sweeps and their queued and running trials from the store
  // (and the workers, with `load_workers`).
  absl::Status Rebuild(bool load_workers) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs `body` (returning absl::Status or absl::StatusOr) as one database
  // transaction. When a write fails (full disk, locked or broken database), none of
  // it is stored, the in-memory state is rebuilt from the database so that the two
  // agree again, and the caller gets Unavailable: nothing was recorded, retry.
  template <typename Fn>
  auto Atomically(Fn body) -> decltype(body()) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Recover(const absl::Status& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The bodies of the public calls that write, run under mu_ inside Atomically().
  absl::StatusOr<v1::RegisterResponse> RegisterLocked(const v1::RegisterRequest& req)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::HeartbeatResponse> HeartbeatLocked(const v1::HeartbeatRequest& req)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::ReportMetricsResponse> ReportMetricsLocked(
      const v1::ReportMetricsRequest& req) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::FinishTrialResponse> FinishTrialLocked(const v1::FinishTrialRequest& req)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::SubmitSweepResponse> SubmitSweepLocked(const v1::SubmitSweepRequest& req,
                                                            const std::string& file,
                                                            spec::SweepSpec parsed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::CancelSweepResponse> CancelSweepLocked(const v1::CancelSweepRequest& req)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status TickLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fills the stopper, history and failure count of `s` from the store.
  absl::Status LoadHistory(SweepState& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  double NowSeconds() const;

  // Whether `s` may create its next trial (budget left, launching not stopped).
  static bool CanCreateTrial(const SweepState& s);
  // Whether `s` runs, is under its max_concurrent, and has a trial queued or to
  // create: what TryLease needs of a sweep before GPU placement.
  static bool HasTrialToHandOut(const SweepState& s);
  // False when no sweep HasTrialToHandOut, whatever the worker; true may still
  // find nothing (GPU placement). Writes nothing.
  bool MayHaveWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Finds a trial for `worker` and leases it; nullopt when none is runnable.
  absl::StatusOr<std::optional<v1::TrialAssignment>> TryLease(WorkerState& worker)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the new state of an active trial, checking the edge; drops it from the
  // active set when terminal and updates its sweep's counters.
  absl::Status MoveTrial(ActiveTrial& t, TrialState to) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Lease lost (worker silent or gave it back): re-queue, or end it.
  absl::Status LoseLease(ActiveTrial& t, const std::string& why, bool counts_as_attempt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Returns the running trial leased under (trial_id, epoch) to worker_id, or
  // FailedPrecondition saying why the lease is stale.
  absl::StatusOr<ActiveTrial*> FindLease(const std::string& worker_id,
                                         const std::string& trial_id, int64_t epoch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeFinishSweep(SweepState& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stops launching new trials of `s`, for `why` (a budget). Idempotent.
  void StopLaunching(SweepState& s, const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Orders a running trial stopped; it ends in `as` with `why` as its message.
  void RequestStop(ActiveTrial& t, TrialState as, const std::string& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The parameters of trial `index` of `s`, from its search method.
  nlohmann::json NextParams(const SweepState& s, int64_t index)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The connected worker slots (neither lost nor draining) that can run trials of
  // `s`: all of them, the idle ones, the GPU ones.
  struct SlotCount {
    int eligible = 0, idle = 0, gpu = 0;
  };
  SlotCount CountSlots(const SweepState& s) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fills the estimate fields of `out` for a running sweep.
  void AddEstimate(const SweepState& s, v1::SweepSummary& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // GPUs a trial of `s` holds on the slot it ran on: 0 on a CPU slot, else
  // spec::GpuShare.
  static double TrialGpus(const SweepState& s, const TrialRow& t) {
    return t.gpu < 0 ? 0 : spec::GpuShare(s.spec.resources);
  }
  // ---- GPU placement (scheduler/placement.h)
  // The GPUs of the connected GPU slots, grouped by (host, UUID), with the trials
  // running on each; only those of `host` unless it is empty.
  std::vector<GpuLoad> GpuLoads(const std::string& host) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a trial of `s` may start on slot `w` now; for a trial of several GPUs,
  // sets *extra to the other GPUs it would take. `loads` is computed on first use
  // (GPU slots only) and shared by the sweeps one TryLease looks at.
  bool PlacementFits(const SweepState& s, const WorkerState& w,
                     std::optional<std::vector<GpuLoad>>& loads, std::vector<GpuLoad>* extra)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds the GPU fields (gpus, gpu_check, gpu_memory) to a new lease of `s` on `w`.
  void AddGpuAssignment(const SweepState& s, const WorkerState& w,
                        const std::vector<GpuLoad>& extra, v1::TrialAssignment& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stores what the worker measured of a trial on its GPUs (heartbeat or finish).
  void RecordGpuUsage(const ActiveTrial& t, const v1::TrialGpuUsage& usage,
                      const std::string& failure_kind, bool final)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds the telemetry of a running trial's last heartbeat to its summary.
  void AddLiveGpuUsage(v1::TrialSummary& out) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // SubmitSweep with dry_run: the budget, warnings and placement verdict of
  // `spec` on the connected workers; stores nothing.
  v1::SubmitSweepResponse DryRun(const spec::SweepSpec& spec) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Rebuilds held_gpus_ from the store, for the running trials of several GPUs.
  absl::Status RestoreHeldGpus() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Why no trial of `spec` could run on the connected GPUs, or "".
  std::string NeverPlaceableNow(const spec::SweepSpec& spec) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Why the queued trials of `s` wait, or "" when nothing holds them back.
  std::string WaitingReason(const SweepState& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetWorkerState(WorkerState& w, const std::string& state, const std::string& trial)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Event(const std::string& kind, const std::string& sweep, const std::string& trial,
             const std::string& worker, const std::string& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  class Live;  // the LiveView of the read model (scheduler/read_model.h)

  Store* const store_;
  Clock* const clock_;
  const SchedulerOptions options_;
  absl::Mutex mu_;
  absl::CondVar work_available_;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  int waiting_leases_ ABSL_GUARDED_BY(mu_) = 0;
  // The first write error in the running Atomically() body that its code only logged
  // (events, worker rows): it still fails the transaction.
  absl::Status write_error_ ABSL_GUARDED_BY(mu_);
  bool needs_rebuild_ ABSL_GUARDED_BY(mu_) = false;  // the last Recover() failed
  // The last trial each worker slot was given in a FinishTrial reply, so that a
  // retried FinishTrial (the reply was lost) gets the same trial again.
  struct GivenNext {
    std::string after_trial;
    int64_t after_epoch = 0;
    v1::TrialAssignment next;
  };
  std::map<std::string, GivenNext> given_next_ ABSL_GUARDED_BY(mu_);
  // After a failed write, writes are refused until write_retry_at_ (reads go on).
  static constexpr absl::Duration kWriteRetryDelay = absl::Seconds(1);
  absl::Time write_retry_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::string write_failure_ ABSL_GUARDED_BY(mu_);  // why, while it lasts
  absl::BitGen gen_ ABSL_GUARDED_BY(mu_);
  // How many SubmitSweep calls parse a spec now (at most kParallelParses).
  absl::Mutex parse_mu_;
  int parses_ ABSL_GUARDED_BY(parse_mu_) = 0;
  std::map<std::string, SweepState> sweeps_ ABSL_GUARDED_BY(mu_);  // running or
                                                                    // with live trials
  std::vector<std::string> sweep_order_ ABSL_GUARDED_BY(mu_);  // leasable, oldest first
  std::map<std::string, ActiveTrial> active_ ABSL_GUARDED_BY(mu_);  // queued, running
  std::map<std::string, WorkerState> workers_ ABSL_GUARDED_BY(mu_);
  // The extra GPUs of running trials of several GPUs, by trial id; an entry counts
  // only while its trial runs under that worker and epoch.
  struct HeldGpus {
    std::string worker_id;
    int64_t epoch = 0;
    std::vector<std::string> uuids;
    std::vector<int> indexes;
  };
  std::map<std::string, HeldGpus> held_gpus_ ABSL_GUARDED_BY(mu_);
  // The last usage a running trial's heartbeat reported, by trial id (epoch-checked).
  std::map<std::string, std::pair<int64_t, v1::TrialGpuUsage>> live_usage_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace sweep

#endif  // SWEEP_SCHEDULER_SCHEDULER_H_
