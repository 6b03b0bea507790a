// Slot: one slot of a worker process. It registers with the scheduler, leases trials
// one at a time and runs each as a child process pinned to its GPU (or on a CPU
// slot), streams the trial's metric lines, heartbeats, obeys stop orders, reports
// the outcome and, when the worker drains, gives its trial back.
//
// Everything outside the process it starts is injected (SlotWorld): the scheduler
// (SchedulerLink), the clock (every timing decision: heartbeat due, drain deadline,
// gpu_check due, GPU release timeout, retry and give-up times), the worker's
// lifecycle, and the GPU telemetry (GpuMonitor over a GpuProbe; none on a CPU slot).
// Waits on the trial process itself (poll_interval, kill_grace) are real time.
//
// States (state(); Slot::Enter() in slot.cc is the one place that moves them and
// checks the edges):
//
//   kRegistering ──registered──► kLeasing ──a trial──► kRunning ──drain──► kDraining
//     ▲   (fails: back off         │   ▲                   │                   │
//     │    on the clock, again)    │   │ outcome sent,     │ trial ended,      │ drain timeout
//     └──NotFound, reregister──────┘   │ or stale lease    ▼ stopped, stale    │ or stop now
//                                      └────────────── kFinishing ◄────────────┘
//                                            FinishTrial's  │
//                                  reply brings the next trial └──► kRunning
//
//   kLeasing ──trial cannot start (devices, memory estimate, spawn)──► kFinishing
//   kRegistering, kLeasing, kFinishing ──the slot's GPU is lost or hit by a device
//       Xid──► kLost (heartbeats
//       `draining` with the reason, takes no trial)
//   kFinishing, kLost ──the scheduler forgot the slot (reregister)──► kRegistering
//   kRegistering, kLeasing, kFinishing, kLost ──the worker drains or stops, no
//       trial left──► kStopped (Run returns)
//
// Per trial:
//  - heartbeats every heartbeat interval (the scheduler's, from Register) of the
//    clock while the trial runs; a stop order for the trial in the reply (or in a
//    ReportMetrics reply) stops it: outcome STOPPED;
//  - metric lines go to ReportMetrics in batches with sequence numbers 1, 2, ...;
//    a batch that fails with Unavailable is sent again, unchanged (same seq), until
//    acknowledged, so no point is lost or stored twice; after the trial ends, the
//    rest is sent, retrying every retry_interval until report_give_up;
//  - FailedPrecondition from ReportMetrics (a stale lease): the trial is stopped and
//    dropped without a FinishTrial (it belongs to another worker now);
//  - draining: the trial may run for drain_timeout more, then is stopped and given
//    back (RELEASED); stop now: stopped at once and given back;
//  - FinishTrial that fails with Unavailable is retried with the same request every
//    retry_interval until report_give_up (or stop now);
//  - a GPU of the trial found lost or hit by a device Xid (GpuMonitor::Broken) stops
//    it and gives it back (RELEASED, no retry used) with the reason; so does a trial
//    that failed on its own once a sample after its exit shows the loss, or an Xid
//    of XidKind::kTrial on its GPUs while it ran (waited for one heartbeat
//    interval); other Xids while it ran are named in a failed trial's message;
//  - after a GPU trial the slot waits (bounded) for a sample showing its memory
//    released, except while the driver takes over kSlowDriver to answer.
//
// While a trial runs, its heartbeats go out from a thread of their own
// (TrialHeartbeat in slot.cc), so that nothing the slot's thread waits on (the
// trial process, its files, a metrics report, the GPU driver) delays them.
//
// Thread safety: Run() is called on one thread, the slot's own (plus the heartbeat
// thread of a running trial, which it starts and stops); state() may be read from
// any thread. Lifecycle: construct, Run() until it returns (the lifecycle left
// kRunning and no trial is left), destroy.
#ifndef SWEEP_WORKER_SLOT_H_
#define SWEEP_WORKER_SLOT_H_

#include <atomic>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"
#include "common/process.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "sweep/v1/sweep.pb.h"
#include "worker/gpu.h"
#include "worker/gpu_monitor.h"
#include "worker/lifecycle.h"
#include "worker/metrics_reader.h"
#include "worker/scheduler_link.h"

namespace sweep {

struct SlotOptions {
  std::string work_dir = "sweep-runs";  // trial directories go under it
  absl::Duration drain_timeout = absl::Seconds(60);
  absl::Duration kill_grace = absl::Seconds(10);
  absl::Duration poll_interval = absl::Milliseconds(100);  // metrics file, child exit
  absl::Duration gpu_sample_interval = absl::Seconds(5);
  absl::Duration gpu_release_timeout = absl::Seconds(30);
  // Metric reports and outcomes the scheduler cannot take are retried this often,
  // for this long.
  absl::Duration retry_interval = absl::Milliseconds(500);
  absl::Duration report_give_up = absl::Seconds(60);
  // Bounds on what a trial writes (docs/security.md): each of stdout.log and
  // stderr.log, and its metrics file.
  int64_t max_log_bytes = int64_t{64} << 20;
  MetricsLimits metrics;
};

// What a slot works with. Nothing is owned; everything outlives the slot.
struct SlotWorld {
  SchedulerLink* link = nullptr;
  Clock* clock = nullptr;
  Lifecycle* life = nullptr;
  // GPU telemetry for a GPU slot (its clock must be `clock`); ignored on a CPU slot.
  GpuMonitor* monitor = nullptr;
  // The node's devices, to find the other GPUs of a trial of several; may be null on
  // a CPU slot.
  const std::vector<Gpu>* node = nullptr;
  // Kills a trial's process group if this process dies; null: none.
  GroupGuard* group_guard = nullptr;
};

class TrialHeartbeat;  // slot.cc: the heartbeats of a running trial, on their own thread

enum class SlotState {
  kRegistering,
  kLeasing,
  kRunning,
  kDraining,
  kFinishing,
  kLost,
  kStopped,
};
// "registering", "leasing", ...
const char* SlotStateName(SlotState state);

class Slot {
 public:
  // `index`: the slot's number in its worker process; `gpu`: its device, none for a
  // CPU slot.
  Slot(SlotOptions options, SlotWorld world, int index, std::optional<Gpu> gpu);
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

  // Registers, then leases and runs trials until the lifecycle leaves kRunning;
  // finishes (or gives back) the trial it has, then returns in kStopped.
  void Run();

  SlotState state() const { return state_.load(); }

 private:

  // Moves to `next`; the one place that knows the state machine's edges. An edge
  // the diagram lacks is a bug: logged as an error (and fatal in debug builds).
  void Enter(SlotState next);

  bool Register();
  void RunTrial(const v1::TrialAssignment& a);
  std::vector<std::string> TrialEnv(const v1::TrialAssignment& a, const std::vector<Gpu>& gpus,
                                    const std::filesystem::path& trial_dir,
                                    const std::filesystem::path& ckpt_dir) const;
  bool SendPending(const v1::TrialAssignment& a, bool* stale, bool* stop);
  void QueuePoints(const std::vector<MetricPointData>& points);
  void QueueNotices(const v1::TrialAssignment& a, const std::vector<std::string>& notes);
  void PromoteBacklog(const v1::TrialAssignment& a);
  absl::StatusOr<std::vector<Gpu>> TrialDevices(const v1::TrialAssignment& a) const;
  static std::string Names(const std::vector<Gpu>& gpus);
  std::string BrokenDevice(const std::vector<Gpu>& gpus);
  std::string TrialXid(const std::vector<Gpu>& gpus, absl::Time began);
  std::string OtherXids(const std::vector<Gpu>& gpus, absl::Time began);
  bool GpuLost();
  std::string MemoryDoesNotFit(const SpawnOptions& so, const std::filesystem::path& trial_dir,
                               const std::vector<Gpu>& gpus);
  bool CheckGpuActivity(const v1::TrialAssignment& a, const std::vector<Gpu>& gpus);
  void AwaitRelease(const v1::TrialAssignment& a, const Gpu& gpu, const TrialGpuUse& use,
                    int64_t baseline_mib, bool was_alone, absl::Time exited_at,
                    TrialHeartbeat* heartbeat);
  void AddForeign();
  void RefreshGpuMessage();
  void Finish(v1::FinishTrialRequest fin);
  void Release(const v1::TrialAssignment& a);

  const SlotOptions o_;
  SchedulerLink* const link_;
  Clock* const clock_;
  Lifecycle* const life_;
  GroupGuard* const group_guard_;
  const int index_;
  const std::optional<Gpu> gpu_;
  const std::vector<Gpu>* const node_;  // the node's devices
  GpuMonitor* const monitor_;           // null on a CPU slot
  std::atomic<SlotState> state_{SlotState::kRegistering};

  bool lost_reported_ = false;     // the slot's GPU is lost and the log says so
  // The running trial failed the no-silent-CPU check (read by its heartbeats).
  std::atomic<bool> gpu_flagged_{false};
  bool slow_driver_said_ = false;  // the log says that release waits are skipped
  // A driver read slower than this skips the wait for a trial's memory release.
  static constexpr absl::Duration kSlowDriver = absl::Milliseconds(500);
  std::string message_;            // about the slot's GPU, for the scheduler
  std::string reported_message_;   // what the scheduler last heard
  std::string foreign_reported_;   // foreign processes last logged
  absl::Time next_gpu_refresh_ = absl::InfinitePast();
  std::string worker_id_;
  std::optional<v1::TrialAssignment> next_;  // leased with the last FinishTrial
  std::string name_ = "worker";
  absl::Duration heartbeat_interval_ = absl::Seconds(2);
  int64_t seq_ = 0;
  v1::ReportMetricsRequest pending_;
  google::protobuf::RepeatedPtrField<v1::MetricPoint> backlog_;
  std::vector<std::string> notices_;  // for the next batch

};

}  // namespace sweep

#endif  // SWEEP_WORKER_SLOT_H_
