#include "worker/slot.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/utf8.h"
#include "common/version.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"
#include "trainer/contract.h"
#include "worker/log_cap.h"

extern char** environ;

namespace sweep {
namespace {

namespace fs = std::filesystem;

constexpr size_t kLogTailBytes = 8192;


std::string Hostname() {
  char buf[256] = {0};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

std::string Tail(const fs::path& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return "";
  std::streamoff size = in.tellg();
  std::streamoff start = size > static_cast<std::streamoff>(kLogTailBytes)
                             ? size - static_cast<std::streamoff>(kLogTailBytes)
                             : 0;
  in.seekg(start);
  std::string out(static_cast<size_t>(size - start), '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  // A protobuf string must be UTF-8: one invalid byte would make the scheduler
  // refuse the whole outcome, for good.
  return Utf8Tail(out, kLogTailBytes);
}

std::string GiB(double bytes) { return absl::StrFormat("%.1f GiB", bytes / (1 << 30)); }

bool IsSweepTrain(const std::vector<std::string>& argv) {
  return !argv.empty() && fs::path(argv[0]).filename() == trainer::kBinaryName;
}

// Whether a failed trial ran out of GPU memory: sweep-train's exit code 5, or what
// PyTorch and CUDA print then.
bool LooksLikeOom(const std::vector<std::string>& argv, const ExitStatus& exit,
                  const std::string& stderr_tail) {
  if (IsSweepTrain(argv) && exit.signal == 0 && exit.exit_code == trainer::kExitOutOfMemory) {
    return true;
  }
  for (const char* s : {"CUDA out of memory", "OutOfMemoryError", "CUDA error: out of memory",
                        "CUBLAS_STATUS_ALLOC_FAILED"}) {
    if (absl::StrContains(stderr_tail, s)) return true;
  }
  return false;
}

// Asks sweep-train how much GPU memory the trial needs (`--estimate-memory`, same
// argv and environment, 30 s at most). nullopt when it cannot say; why is logged.
std::optional<int64_t> EstimateMemoryBytes(const SpawnOptions& trial, const fs::path& dir,
                                           const std::string& name) {
  SpawnOptions e = trial;
  e.argv.push_back(trainer::kEstimateMemoryFlag);
  e.stdout_path = (dir / "memory-estimate.json").string();
  e.stderr_path = (dir / "memory-estimate.log").string();
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(e);
  if (!child.ok()) {
    spdlog::warn("{}: memory estimate failed: {}", name, std::string(child.status().message()));
    return std::nullopt;
  }
  // Well inside the lease (no heartbeat is sent meanwhile): the estimate loads no data.
  std::optional<ExitStatus> st = child->Wait(absl::Seconds(10));
  if (!st) st = child->Stop(absl::Seconds(1));
  if (!st->ok()) {
    spdlog::warn("{}: sweep-train --estimate-memory ended with {}; starting the trial anyway",
                 name, st->ToString());
    return std::nullopt;
  }
  std::ifstream in(e.stdout_path);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  nlohmann::json j = nlohmann::json::parse(last, nullptr, false);
  if (!j.is_object() || !j.contains(trainer::kEstimateTotalKey) ||
      !j[trainer::kEstimateTotalKey].is_number()) {
    spdlog::warn("{}: sweep-train --estimate-memory printed no total_bytes; starting the "
                 "trial anyway",
                 name);
    return std::nullopt;
  }
  return j[trainer::kEstimateTotalKey].get<int64_t>();
}

v1::TrialGpuUsage ToProto(const TrialGpuUse& u, bool flagged) {
  v1::TrialGpuUsage out;
  out.set_no_gpu_activity(flagged);
  out.set_peak_memory_mib(u.peak_mib);
  out.set_energy_joules(u.energy_joules);
  out.set_mean_utilization(u.MeanUtilization());
  out.set_samples(u.samples);
  return out;
}

}  // namespace

const char* SlotStateName(SlotState state) {
  switch (state) {
    case SlotState::kRegistering:
      return "registering";
    case SlotState::kLeasing:
      return "leasing";
    case SlotState::kRunning:
      return "running";
    case SlotState::kDraining:
      return "draining";
    case SlotState::kFinishing:
      return "finishing";
    case SlotState::kLost:
      return "lost";
    case SlotState::kStopped:
      return "stopped";
  }
  return "unknown";
}

Slot::Slot(SlotOptions options, SlotWorld world, int index, std::optional<Gpu> gpu)
    : o_(std::move(options)),
      link_(world.link),
      clock_(world.clock),
      life_(world.life),
      group_guard_(world.group_guard),
      index_(index),
      gpu_(std::move(gpu)),
      node_(world.node),
      monitor_(gpu_ ? world.monitor : nullptr) {}

void Slot::Enter(SlotState next) {
  using S = SlotState;
  const S from = state_.load();
  if (from == next) return;
  bool ok = false;
  switch (from) {
    case S::kRegistering:
      ok = next == S::kLeasing || next == S::kLost || next == S::kStopped;
      break;
    case S::kLeasing:
      ok = next == S::kRegistering || next == S::kRunning || next == S::kFinishing ||
           next == S::kLost || next == S::kStopped;
      break;
    case S::kRunning:
      ok = next == S::kDraining || next == S::kFinishing;
      break;
    case S::kDraining:
      ok = next == S::kFinishing;
      break;
    case S::kFinishing:
      ok = next == S::kRunning || next == S::kLeasing || next == S::kRegistering ||
           next == S::kLost || next == S::kStopped;
      break;
    case S::kLost:
      ok = next == S::kRegistering || next == S::kStopped;
      break;
    case S::kStopped:
      break;
  }
  if (!ok) {
    spdlog::error("{}: bug: slot state {} -> {} is not an edge of the state machine", name_,
                  SlotStateName(from), SlotStateName(next));
    assert(false);
  }
  state_.store(next);
}

void Slot::Run() {
  absl::Duration backoff = absl::Milliseconds(200);
  while (life_->phase() == kRunning) {
    if (worker_id_.empty()) {
      Enter(SlotState::kRegistering);
      if (!Register()) {
        life_->Sleep(backoff);
        backoff = std::min(backoff * 2, absl::Seconds(5));
        continue;
      }
    }
    if (GpuLost()) continue;
    Enter(SlotState::kLeasing);
    RefreshGpuMessage();
    v1::LeaseTrialRequest req;
    req.set_worker_id(worker_id_);
    req.set_wait_ms(1000);
    absl::StatusOr<v1::LeaseTrialResponse> resp = link_->LeaseTrial(req);
    if (absl::IsNotFound(resp.status())) {
      spdlog::warn("{}: the scheduler does not know us; registering again", name_);
      worker_id_.clear();
      continue;
    }
    if (!resp.ok()) {
      spdlog::warn("{}: cannot reach the scheduler at {}: {}", name_, link_->Address(),
                   std::string(resp.status().message()));
      life_->Sleep(backoff);
      backoff = std::min(backoff * 2, absl::Seconds(5));
      continue;
    }
    backoff = absl::Milliseconds(200);
    if (resp->has_trial()) {
      RunTrial(resp->trial());
      // Each FinishTrial may bring the slot's next trial (lease_next).
      while (next_) {
        v1::TrialAssignment a = std::move(*next_);
        next_.reset();
        if (life_->phase() != kRunning) {
          Release(a);
          break;
        }
        RunTrial(a);
      }
    } else if (resp->drain()) {
      spdlog::info("{}: the scheduler is shutting down", name_);
      life_->Sleep(absl::Seconds(1));
    }
  }
  Enter(SlotState::kStopped);
}

bool Slot::Register() {
  v1::RegisterRequest req;
  req.set_host(Hostname());
  req.set_pid(getpid());
  req.set_slot(index_);
  req.set_version(std::string(Version()));
  if (gpu_) {
    req.mutable_gpu()->set_index(gpu_->index);
    req.mutable_gpu()->set_uuid(gpu_->uuid);
    req.mutable_gpu()->set_name(gpu_->name);
    req.mutable_gpu()->set_memory_mib(gpu_->memory_mib);
  }
  absl::StatusOr<v1::RegisterResponse> resp = link_->Register(req);
  if (!resp.ok()) {
    spdlog::warn("cannot register with the scheduler at {}: {}", link_->Address(),
                 std::string(resp.status().message()));
    return false;
  }
  worker_id_ = resp->worker_id();
  name_ = worker_id_;
  heartbeat_interval_ = absl::Milliseconds(resp->heartbeat_interval_ms());
  spdlog::info("registered as {}", worker_id_);
  return true;
}

std::vector<std::string> Slot::TrialEnv(const v1::TrialAssignment& a, const std::vector<Gpu>& gpus,
                                   const fs::path& trial_dir, const fs::path& ckpt_dir) const {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    if (kv.starts_with("SWEEP_") || kv.starts_with("CUDA_VISIBLE_DEVICES=") ||
        kv.starts_with("CUDA_DEVICE_ORDER=")) {
      continue;
    }
    env.emplace_back(kv);
  }
  // NVML numbers GPUs in PCI bus order, CUDA by default fastest first: make CUDA
  // use NVML's order, or index 1 could be another card on a mixed node. A MIG
  // device is named by its MIG-... UUID.
  std::vector<std::string> names;
  for (const Gpu& g : gpus) names.push_back(g.CudaName());
  env.push_back("CUDA_DEVICE_ORDER=PCI_BUS_ID");
  env.push_back(absl::StrCat("CUDA_VISIBLE_DEVICES=", absl::StrJoin(names, ",")));
  env.push_back(absl::StrCat("SWEEP_TRIAL_ID=", a.trial_id()));
  env.push_back(absl::StrCat("SWEEP_SWEEP_ID=", a.sweep_id()));
  env.push_back(absl::StrCat("SWEEP_ATTEMPT=", a.attempt()));
  env.push_back(absl::StrCat("SWEEP_PARAMS=", a.params_json()));
  env.push_back(absl::StrCat("SWEEP_TRIAL_DIR=", trial_dir.string()));
  env.push_back(absl::StrCat("SWEEP_CHECKPOINT_DIR=", ckpt_dir.string()));
  env.push_back(absl::StrCat("SWEEP_METRICS_FILE=", (trial_dir / "metrics.jsonl").string()));
  return env;
}

// Sends the pending batch; true once acknowledged. Sets *stale on a refused lease.
bool Slot::SendPending(const v1::TrialAssignment& a, bool* stale, bool* stop) {
  if (pending_.points_size() == 0 && pending_.notices_size() == 0) return true;
  absl::StatusOr<v1::ReportMetricsResponse> resp = link_->ReportMetrics(pending_);
  if (absl::IsFailedPrecondition(resp.status())) {
    spdlog::warn("{}: lease on {} is stale: {}", name_, a.trial_id(),
                 std::string(resp.status().message()));
    *stale = true;
    return false;
  }
  if (!resp.ok()) return false;  // retried with the same seq on the next poll
  if (resp->stop()) *stop = true;
  pending_.clear_points();
  pending_.clear_notices();
  return true;
}

// Logs what the trial's user should know and queues it for the scheduler, which
// keeps it as an event of the trial.
void Slot::QueueNotices(const v1::TrialAssignment& a, const std::vector<std::string>& notes) {
  for (const std::string& n : notes) {
    spdlog::warn("{}: trial {}: {}", name_, a.trial_id(), n);
    notices_.push_back(CleanUtf8(n));  // they quote the trial's bytes
  }
}

void Slot::QueuePoints(const std::vector<MetricPointData>& points) {
  for (const MetricPointData& p : points) {
    v1::MetricPoint* m = backlog_.Add();
    m->set_step(p.step);
    m->set_name(p.name);
    m->set_value(p.value);
    m->set_time(p.time);
  }
}

// Moves up to kMaxBatch points of the backlog into a new pending batch when the
// last one was acknowledged (a batch stays well under the server's message limit,
// even after a long outage of a chatty trial).
void Slot::PromoteBacklog(const v1::TrialAssignment& a) {
  constexpr int kMaxBatch = 10000;
  if (pending_.points_size() > 0 || pending_.notices_size() > 0) return;
  if (backlog_.empty() && notices_.empty()) return;
  pending_.set_worker_id(worker_id_);
  pending_.set_trial_id(a.trial_id());
  pending_.set_epoch(a.epoch());
  pending_.set_seq(++seq_);
  for (std::string& n : notices_) pending_.add_notices(std::move(n));
  notices_.clear();
  if (backlog_.size() <= kMaxBatch) {
    pending_.mutable_points()->Swap(&backlog_);
    return;
  }
  auto* points = pending_.mutable_points();
  points->Reserve(kMaxBatch);
  for (int i = 0; i < kMaxBatch; ++i) *points->Add() = std::move(backlog_[i]);
  backlog_.DeleteSubrange(0, kMaxBatch);
}

// The heartbeats of one running trial, from a thread of its own: nothing the slot's
// thread waits on (the trial process, its files, a metrics report, the GPU driver)
// can delay them. The first goes out at once, then one every heartbeat interval of
// the clock, and one at once when asked (Now()). The slot's thread reads the
// orders the replies carry (stop_ordered(), reregister()) and hands over the
// slot's message (SetMessage()). Destruction stops the thread; a heartbeat in
// flight is waited for (bounded by the link's call deadline).
class TrialHeartbeat {
 public:
  TrialHeartbeat(SchedulerLink* link, Clock* clock, Lifecycle* life, GpuMonitor* monitor,
                 const std::atomic<bool>* gpu_flagged, absl::Duration interval,
                 std::string worker_id, const v1::TrialAssignment& a, std::string message)
      : link_(link),
        clock_(clock),
        life_(life),
        monitor_(monitor),
        gpu_flagged_(gpu_flagged),
        interval_(interval),
        worker_id_(std::move(worker_id)),
        trial_id_(a.trial_id()),
        epoch_(a.epoch()),
        message_(std::move(message)),
        next_(clock->Now()) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~TrialHeartbeat() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
  }
  TrialHeartbeat(const TrialHeartbeat&) = delete;
  TrialHeartbeat& operator=(const TrialHeartbeat&) = delete;

  // Sends the next heartbeat now.
  void Now() {
    absl::MutexLock lock(&mu_);
    now_ = true;
  }
  void SetMessage(const std::string& message) {
    absl::MutexLock lock(&mu_);
    message_ = message;
  }
  // The message the scheduler last took.
  std::string sent_message() {
    absl::MutexLock lock(&mu_);
    return sent_message_;
  }
  bool stop_ordered() const { return stop_ordered_.load(); }
  bool reregister() const { return reregister_.load(); }

 private:
  void Loop() {
    absl::MutexLock lock(&mu_);
    while (true) {
      auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || now_; };
      clock_->AwaitWithDeadline(&mu_, absl::Condition(&wake), next_);
      if (stop_) return;
      now_ = false;
      next_ = clock_->Now() + interval_;
      v1::HeartbeatRequest req;
      req.set_worker_id(worker_id_);
      req.set_draining(life_->phase() != kRunning);
      v1::RunningTrial* r = req.add_running();
      r->set_trial_id(trial_id_);
      r->set_epoch(epoch_);
      if (monitor_) *r->mutable_usage() = ToProto(monitor_->Usage(trial_id_), *gpu_flagged_);
      req.set_message(message_);
      mu_.Unlock();
      absl::StatusOr<v1::HeartbeatResponse> resp = link_->Heartbeat(req);
      mu_.Lock();
      if (!resp.ok()) continue;
      sent_message_ = req.message();
      if (resp->reregister()) reregister_ = true;
      for (const v1::RunningTrial& s : resp->stop()) {
        if (s.trial_id() == trial_id_) stop_ordered_ = true;
      }
    }
  }

  SchedulerLink* const link_;
  Clock* const clock_;
  Lifecycle* const life_;
  GpuMonitor* const monitor_;
  const std::atomic<bool>* const gpu_flagged_;
  const absl::Duration interval_;
  const std::string worker_id_;
  const std::string trial_id_;
  const int64_t epoch_;
  absl::Mutex mu_;
  std::string message_ ABSL_GUARDED_BY(mu_);
  std::string sent_message_ ABSL_GUARDED_BY(mu_);
  absl::Time next_ ABSL_GUARDED_BY(mu_);
  bool now_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> stop_ordered_{false};
  std::atomic<bool> reregister_{false};
  std::thread thread_;
};

void Slot::RunTrial(const v1::TrialAssignment& a) {
  fs::path trial_root = fs::absolute(o_.work_dir) / a.sweep_id() / a.trial_id();
  fs::path trial_dir = trial_root / absl::StrCat("attempt-", a.attempt());
  fs::path ckpt_dir = trial_root / "checkpoints";
  std::error_code ec;
  fs::create_directories(trial_dir, ec);
  fs::create_directories(ckpt_dir, ec);
  spdlog::info("{}: trial {} (attempt {}) starting", name_, a.trial_id(), a.attempt());

  v1::FinishTrialRequest fin;
  fin.set_worker_id(worker_id_);
  fin.set_trial_id(a.trial_id());
  fin.set_epoch(a.epoch());
  fin.set_trial_dir(trial_dir.string());

  absl::StatusOr<std::vector<Gpu>> devices = TrialDevices(a);
  if (!devices.ok()) {
    std::string why(devices.status().message());
    spdlog::warn("{}: trial {} not started: {}", name_, a.trial_id(), why);
    std::ofstream(trial_dir / "stderr.log", std::ios::app) << "sweep: " << why << "\n";
    fin.set_outcome(v1::TRIAL_OUTCOME_FAILED);
    fin.set_message(why);
    fin.set_stderr_tail(Tail(trial_dir / "stderr.log"));
    Enter(SlotState::kFinishing);
    Finish(fin);
    return;
  }
  const std::vector<Gpu>& gpus = *devices;
  std::vector<std::string> uuids;
  for (const Gpu& g : gpus) uuids.push_back(g.uuid);

  SpawnOptions so;
  so.argv.assign(a.argv().begin(), a.argv().end());
  so.env = TrialEnv(a, gpus, trial_dir, ckpt_dir);
  so.cwd = !a.working_dir().empty() && fs::is_directory(a.working_dir())
               ? a.working_dir()
               : fs::current_path().string();
  so.stdout_path = (trial_dir / "stdout.log").string();
  so.stderr_path = (trial_dir / "stderr.log").string();
  // If this worker is SIGKILLed, the guard kills the trial's whole process group,
  // so nothing of this attempt runs beside the next one.
  so.group_guard = group_guard_;

  if (monitor_ && IsSweepTrain(so.argv)) {
    if (std::string why = MemoryDoesNotFit(so, trial_dir, gpus); !why.empty()) {
      spdlog::warn("{}: trial {} not started: {}", name_, a.trial_id(), why);
      std::ofstream(trial_dir / "stderr.log", std::ios::app) << "sweep: " << why << "\n";
      fin.set_outcome(v1::TRIAL_OUTCOME_FAILED);
      fin.set_failure_kind("oom");
      fin.set_message(why);
      fin.set_stderr_tail(Tail(trial_dir / "stderr.log"));
      Enter(SlotState::kFinishing);
      Finish(fin);
      return;
    }
  }

  seq_ = 0;
  pending_.Clear();
  backlog_.Clear();
  notices_.clear();
  gpu_flagged_ = false;
  bool was_alone = false;
  int64_t baseline_mib = -1;  // GPU memory in use before the trial
  if (monitor_) {
    // The newest sample: no waiting for the driver before a start.
    was_alone = !monitor_->Shared(uuids.front(), a.trial_id());
    std::optional<GpuSample> before = monitor_->Reading(uuids.front());
    if (before && before->error.empty()) baseline_mib = before->memory_used_mib;
  }
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(so);
  if (!child.ok()) {
    std::ofstream(trial_dir / "stderr.log", std::ios::app)
        << "sweep: " << child.status().message() << "\n";
    fin.set_outcome(v1::TRIAL_OUTCOME_FAILED);
    fin.set_exit_code(127);
    fin.set_message(std::string(child.status().message()));
    fin.set_stderr_tail(Tail(trial_dir / "stderr.log"));
    Enter(SlotState::kFinishing);
    Finish(fin);
    return;
  }
  Enter(SlotState::kRunning);

  const absl::Time began = clock_->Now();
  if (monitor_) monitor_->Begin(a.trial_id(), child->pid(), uuids, baseline_mib);
  // The no-silent-CPU check judges the first sample that began after this time
  // (asked for then, not waited for).
  absl::Time gpu_check_at = monitor_ && a.gpu_check_ms() > 0
                                ? clock_->Now() + absl::Milliseconds(a.gpu_check_ms())
                                : absl::InfiniteFuture();
  bool gpu_check_asked = false;

  MetricsReader reader((trial_dir / "metrics.jsonl").string(), o_.metrics);
  LogCap caps[] = {LogCap(so.stdout_path, o_.max_log_bytes),
                   LogCap(so.stderr_path, o_.max_log_bytes)};
  // Reads what the trial wrote since the last call, keeps its logs within their
  // bound, and queues what its user should know.
  auto take_output = [&] {
    QueuePoints(reader.ReadNew(ToUnixSecondsDouble(clock_->Now())));
    std::vector<std::string> notes = reader.TakeNotices();
    for (LogCap& cap : caps) {
      if (cap.Poll()) {
        notes.push_back(absl::StrCat(
            fs::path(cap.path()).filename().string(),
            " passed ", o_.max_log_bytes >> 20, " MiB: its middle is cut, its first and "
            "last bytes kept (worker flag --max-log-mib)"));
      }
    }
    QueueNotices(a, notes);
  };
  bool flooded = false;  // stopped: it wrote metrics faster than they can be taken
  auto heartbeat = std::make_unique<TrialHeartbeat>(link_, clock_, life_, monitor_, &gpu_flagged_,
                                                    heartbeat_interval_, worker_id_, a, message_);
  absl::Time drain_deadline = absl::InfiniteFuture();
  bool stale = false, stop = false, released = false, gpu_stopped = false;
  std::string gpu_lost;  // why one of the trial's GPUs is lost, or ""
  std::optional<ExitStatus> exit;
  while (true) {
    exit = child->Wait(o_.poll_interval);
    take_output();
    PromoteBacklog(a);
    SendPending(a, &stale, &stop);
    if (exit) break;
    if (!reader.flooded().empty()) {
      flooded = true;
      exit = child->Stop(o_.kill_grace);
      break;
    }
    // A GPU that fell off the bus (or failed with a device Xid) takes the trial with
    // it: stop it and give it back, so that it runs again elsewhere without using one
    // of its retries.
    if (monitor_ && gpu_lost.empty()) gpu_lost = BrokenDevice(gpus);
    if (!gpu_lost.empty()) {
      exit = child->Stop(o_.kill_grace);
      break;
    }
    if (clock_->Now() >= gpu_check_at && !gpu_check_asked) {
      monitor_->RequestSample();
      gpu_check_asked = true;
    }
    if (gpu_check_asked && monitor_->LastSampleTime() >= gpu_check_at) {
      gpu_check_at = absl::InfiniteFuture();
      gpu_check_asked = false;
      if (CheckGpuActivity(a, gpus)) {
        heartbeat->Now();  // tell the scheduler now
        gpu_stopped = a.gpu_check_stop();
      }
    }
    if (heartbeat->stop_ordered()) stop = true;
    if (heartbeat->reregister() && !worker_id_.empty()) {
      spdlog::warn("{}: the scheduler forgot this worker while trial {} ran", name_,
                   a.trial_id());
      worker_id_.clear();
    }
    Phase phase = life_->phase();
    if (phase == kDraining && drain_deadline == absl::InfiniteFuture()) {
      drain_deadline = clock_->Now() + o_.drain_timeout;
      Enter(SlotState::kDraining);
      spdlog::info("{}: draining; trial {} may run for {} more", name_, a.trial_id(),
                   absl::FormatDuration(o_.drain_timeout));
    }
    if (phase == kStopNow || clock_->Now() >= drain_deadline) released = true;
    if (stale || stop || released || gpu_stopped) {
      exit = child->Stop(phase == kStopNow ? absl::Seconds(1) : o_.kill_grace);
      break;
    }
  }
  Enter(SlotState::kFinishing);
  absl::Time exited_at = clock_->Now();
  TrialGpuUse use;
  if (monitor_) use = monitor_->End(a.trial_id());
  // Report every line the trial wrote before it ended (within the bounds: a
  // flooded file is not read to its end).
  take_output();
  absl::Time give_up = clock_->Now() + o_.report_give_up;
  while (!stale && (pending_.points_size() > 0 || pending_.notices_size() > 0 ||
                    !backlog_.empty() || !notices_.empty() ||
                    (!reader.caught_up() && !flooded))) {
    if (!reader.caught_up() && !flooded) take_output();
    PromoteBacklog(a);
    const bool sent = SendPending(a, &stale, &stop);
    // Points left to send go out at once; a reader held back by the points-per-
    // second bound gets its next share after a poll interval.
    if (sent && (!backlog_.empty() || !notices_.empty())) continue;
    if (sent && (reader.caught_up() || flooded)) continue;
    if (stale || clock_->Now() > give_up || life_->phase() == kStopNow) {
      if (!stale) {
        spdlog::error("{}: could not report {} metric points of trial {}{}", name_,
                      pending_.points_size() + backlog_.size(), a.trial_id(),
                      reader.caught_up() ? "" : ", nor the rest of its metrics file");
      }
      break;
    }
    life_->Sleep(sent ? o_.poll_interval : o_.retry_interval);
  }
  if (reader.bad_lines() > 0) {
    spdlog::warn("{}: trial {} wrote {} malformed metric lines; last: {}", name_,
                 a.trial_id(), reader.bad_lines(), reader.last_error());
  }
  // A trial that crashed on its own because its GPU was lost, or because an Xid
  // that is not its fault hit it (CUDA errors), goes back to the queue too, once
  // the sampler has seen the loss or the Xid.
  std::string xid_note;  // other Xids while it ran, for its message
  if (monitor_ && gpu_lost.empty() && !exit->ok()) {
    monitor_->WaitForSample(exited_at, clock_->Now() + heartbeat_interval_);
    gpu_lost = BrokenDevice(gpus);
    if (gpu_lost.empty()) gpu_lost = TrialXid(gpus, began);
    xid_note = OtherXids(gpus, began);
  }
  // The next trial of this GPU starts only once this one's memory is released (a
  // broken GPU releases nothing: the slot takes no more trials; after a trial Xid
  // the driver has already torn the trial's context down).
  if (monitor_ && gpu_lost.empty()) {
    AwaitRelease(a, gpus.front(), use, baseline_mib, was_alone, exited_at,
                 stale ? nullptr : heartbeat.get());
  }
  reported_message_ = heartbeat->sent_message();
  heartbeat.reset();  // no heartbeat of this trial after its outcome
  if (stale) return;  // the trial belongs to someone else now

  fin.set_stdout_tail(Tail(trial_dir / "stdout.log"));
  fin.set_stderr_tail(Tail(trial_dir / "stderr.log"));
  fin.set_exit_code(exit->exit_code);
  fin.set_signal(exit->signal);
  // A trial killed by a signal while this worker is being stopped was most likely
  // signalled with it (Slurm's scancel, systemd's stop, a terminal's Ctrl-C reach
  // the whole job): give it back instead of failing it. The worker's own signal
  // may land a moment after the trial's.
  bool stop_signal = exit->signal == SIGTERM || exit->signal == SIGINT ||
                     exit->signal == SIGHUP || exit->signal == SIGKILL;
  if (!stop && !released && !gpu_stopped && gpu_lost.empty() && stop_signal &&
      (life_->phase() != kRunning || life_->Sleep(absl::Seconds(1)) != kRunning)) {
    released = true;
  }
  if (!gpu_lost.empty() && !stop) {
    fin.set_outcome(v1::TRIAL_OUTCOME_RELEASED);
    fin.set_message(absl::StrCat(gpu_lost, "; the trial goes back to the queue without "
                                 "using a retry"));
    spdlog::error("{}: trial {} given back: {}", name_, a.trial_id(), gpu_lost);
  } else if (stop) {
    fin.set_outcome(v1::TRIAL_OUTCOME_STOPPED);
    fin.set_message("stopped on the scheduler's order");
  } else if (released) {
    fin.set_outcome(v1::TRIAL_OUTCOME_RELEASED);
    fin.set_message("the worker was stopped before the trial ended");
  } else if (flooded) {
    fin.set_outcome(v1::TRIAL_OUTCOME_FAILED);
    fin.set_failure_kind("metrics_flood");
    fin.set_message(absl::StrCat("stopped: ", reader.flooded()));
  } else if (gpu_stopped) {
    fin.set_outcome(v1::TRIAL_OUTCOME_FAILED);
    fin.set_failure_kind("no_gpu_activity");
    fin.set_message(absl::StrCat(
        "stopped: no process of the trial held memory on ", Names(gpus),
        " within ", absl::FormatDuration(absl::Milliseconds(a.gpu_check_ms())),
        " (resources.gpu_check action: stop)"));
  } else if (exit->ok()) {
    fin.set_outcome(v1::TRIAL_OUTCOME_COMPLETED);
  } else {
    fin.set_outcome(v1::TRIAL_OUTCOME_FAILED);
    fin.set_message(exit->ToString());
    if (monitor_ && LooksLikeOom(so.argv, *exit, fin.stderr_tail())) {
      fin.set_failure_kind("oom");
      fin.set_message(absl::StrCat("out of GPU memory (peak ", use.peak_mib,
                                   " MiB seen on ", Names(gpus), " of ", gpu_->memory_mib,
                                   " MiB): ", exit->ToString()));
    }
    fin.set_message(fin.message() + xid_note);
  }
  if (monitor_) *fin.mutable_usage() = ToProto(use, gpu_flagged_);
  spdlog::info("{}: trial {} ended: {}", name_, a.trial_id(),
               fin.message().empty() ? "completed" : fin.message());
  Finish(fin);
}

// The devices of the trial: the slot's own, then the other cards its assignment
// names by index; none on a CPU slot. FailedPrecondition for a trial of several
// GPUs on a MIG device (a process sees one MIG device at most) and for an index
// this node lacks.
absl::StatusOr<std::vector<Gpu>> Slot::TrialDevices(const v1::TrialAssignment& a) const {
  if (!gpu_) return std::vector<Gpu>();
  std::vector<Gpu> out = {*gpu_};
  for (int i = 1; i < a.gpus_size(); ++i) {
    if (gpu_->is_mig_device()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the trial asks for ", a.gpus_size(), " GPUs, but this slot is ", gpu_->Label(),
          ", and a MIG device runs trials of one GPU only"));
    }
    auto it = std::find_if(node_->begin(), node_->end(), [&](const Gpu& g) {
      return g.index == a.gpus(i) && !g.is_mig_device() && g.runs_trials();
    });
    if (it == node_->end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the trial was given GPU ", a.gpus(i), ", which this node lacks"));
    }
    out.push_back(*it);
  }
  return out;
}

// "GPU 0,1", or the label of a MIG device.
std::string Slot::Names(const std::vector<Gpu>& gpus) {
  if (gpus.size() == 1) return gpus.front().Label();
  std::vector<int> indexes;
  for (const Gpu& g : gpus) indexes.push_back(g.index);
  return absl::StrCat("GPU ", absl::StrJoin(indexes, ","));
}

// "GPU 1 (GPU-...) is lost: <NVML's error>" or "GPU 1 (GPU-...) reported Xid 79
// (...)" for the first of `gpus` that is out of use for good, or "".
std::string Slot::BrokenDevice(const std::vector<Gpu>& gpus) {
  for (const Gpu& g : gpus) {
    std::string why;
    if (monitor_->Broken(g.uuid, &why)) return absl::StrCat(g.Label(), " (", g.uuid, ") ", why);
  }
  return "";
}

// For a trial that failed on `gpus` after `began`: "GPU 0 (GPU-...) reported Xid 94
// (contained ECC error)" when an Xid that fails one application through no fault of
// its own (XidKind::kTrial) hit one of them; else "".
std::string Slot::TrialXid(const std::vector<Gpu>& gpus, absl::Time began) {
  for (const Gpu& g : gpus) {
    for (int64_t xid : monitor_->XidsSince(g.uuid, began)) {
      if (ClassifyXid(xid) == XidKind::kTrial) {
        return absl::StrCat(g.Label(), " (", g.uuid, ") reported ", XidText(xid));
      }
    }
  }
  return "";
}

// The other Xids of `gpus` since `began`, for a failed trial's message:
// "; the driver reported Xid 31 (GPU memory page fault) on GPU 0", or "".
std::string Slot::OtherXids(const std::vector<Gpu>& gpus, absl::Time began) {
  std::vector<std::string> seen;
  for (const Gpu& g : gpus) {
    for (int64_t xid : monitor_->XidsSince(g.uuid, began)) {
      std::string one = absl::StrCat(XidText(xid), " on ", g.Label());
      if (std::find(seen.begin(), seen.end(), one) == seen.end()) seen.push_back(one);
    }
  }
  if (seen.empty()) return "";
  return absl::StrCat("; the driver reported ", absl::StrJoin(seen, ", "));
}

// Whether the slot's GPU is out of use for good (lost, or a device Xid). Then the
// slot takes no more trials: it tells the scheduler it drains, with the reason as
// its message, and idles until the worker stops.
bool Slot::GpuLost() {
  if (!monitor_) return false;
  std::string why = BrokenDevice({*gpu_});
  if (why.empty()) return false;
  Enter(SlotState::kLost);
  if (!lost_reported_) {
    message_ = absl::StrCat(why, "; this slot takes no more trials (check the node: "
                            "nvidia-smi, dmesg)");
    spdlog::error("{}: {}", name_, message_);
    lost_reported_ = true;
  }
  v1::HeartbeatRequest req;
  req.set_worker_id(worker_id_);
  req.set_draining(true);
  req.set_message(message_);
  absl::StatusOr<v1::HeartbeatResponse> resp = link_->Heartbeat(req);
  if (resp.ok()) {
    reported_message_ = message_;
    if (resp->reregister()) worker_id_.clear();
  }
  life_->Sleep(heartbeat_interval_);
  return true;
}

// Asks sweep-train for its memory estimate; returns why the trial cannot fit the
// free memory of its GPUs, or "" when it fits or the estimate is unknown.
std::string Slot::MemoryDoesNotFit(const SpawnOptions& so, const fs::path& trial_dir,
                             const std::vector<Gpu>& gpus) {
  std::optional<int64_t> need = EstimateMemoryBytes(so, trial_dir, name_);
  if (!need) return "";
  for (const Gpu& gpu : gpus) {
    // The newest sample, else the device's size (nothing known in use yet).
    std::optional<GpuSample> g = monitor_->Reading(gpu.uuid);
    if (!g || !g->error.empty()) {
      g = GpuSample();
      g->memory_total_mib = gpu.memory_mib;
    }
    double free = static_cast<double>(g->memory_total_mib - g->memory_used_mib) * (1 << 20);
    if (static_cast<double>(*need) > free) {
      return absl::StrCat("needs ", GiB(static_cast<double>(*need)),
                          " of GPU memory (sweep-train --estimate-memory), ", gpu.Label(),
                          " has ", GiB(free), " free; not started");
    }
  }
  return "";
}

// No-silent-CPU check, once the trial's gpu_check time is up. Returns true (and
// flags the trial) when none of its processes held memory on its GPUs.
bool Slot::CheckGpuActivity(const v1::TrialAssignment& a, const std::vector<Gpu>& gpus) {
  TrialGpuUse use = monitor_->Usage(a.trial_id());
  if (use.seen_on_gpu || use.samples == 0 || !use.attributable) return false;
  gpu_flagged_ = true;
  spdlog::warn("{}: trial {}: no process of it holds memory on {} after {}: it may be "
               "running on the CPU{}",
               name_, a.trial_id(), Names(gpus),
               absl::FormatDuration(absl::Milliseconds(a.gpu_check_ms())),
               a.gpu_check_stop() ? "; stopping it (resources.gpu_check action: stop)" : "");
  return true;
}

// Waits (bounded by --gpu-release-timeout, heartbeating while `heartbeat`) until
// the ended trial's memory on its first device is released; then sets the slot's
// message to what still holds the GPU, if anything, and to processes sweep did not
// start. Judges only samples that began after the trial exited (`exited_at`); when
// none comes within one heartbeat interval (a slow or hung driver), it does not
// wait: the end of a trial is never held up by the driver.
void Slot::AwaitRelease(const v1::TrialAssignment& a, const Gpu& gpu, const TrialGpuUse& use,
                  int64_t baseline_mib, bool was_alone, absl::Time exited_at,
                  TrialHeartbeat* heartbeat) {
  absl::Time deadline = clock_->Now() + o_.gpu_release_timeout;
  absl::Time start = clock_->Now();
  absl::Time after = exited_at;
  std::string held;
  bool known = false;  // a sample after the end said the memory is still held
  // A driver that takes this long to answer would hold every trial's end (and the
  // next trial's start) for as long: then the release is not waited for, and what
  // still holds memory shows in the slot's message from the next samples instead.
  if (absl::Duration took = monitor_->ReadDuration(); took > kSlowDriver) {
    if (!slow_driver_said_) {
      spdlog::warn("{}: the GPU driver takes {} to answer; trials' ends no longer wait for "
                   "a reading that shows their GPU memory released",
                   name_, absl::FormatDuration(took));
      slow_driver_said_ = true;
    }
    AddForeign();
    next_gpu_refresh_ = clock_->Now() + std::max(o_.gpu_sample_interval, absl::Seconds(1));
    return;
  }
  slow_driver_said_ = false;
  while (true) {
    absl::Time step = std::min(deadline, clock_->Now() + heartbeat_interval_);
    std::string now_held;
    GpuMonitor::Release r =
        monitor_->CheckReleased(gpu.uuid, use, baseline_mib, was_alone, after, step, &now_held);
    if (r == GpuMonitor::Release::kReleased) {
      held.clear();
      break;
    }
    if (r == GpuMonitor::Release::kUnknown && !known) {
      spdlog::debug("{}: no {} reading came within {} of trial {}'s end; not waiting for "
                    "its memory to be released",
                    name_, gpu.Label(), absl::FormatDuration(heartbeat_interval_),
                    a.trial_id());
      break;
    }
    if (r == GpuMonitor::Release::kHeld) {
      known = true;
      held = now_held;
      after = clock_->Now();  // next, a newer sample
    }
    if (clock_->Now() >= deadline || life_->phase() == kStopNow) break;
    if (clock_->Now() - start > absl::Seconds(1) && message_.empty()) {
      message_ = absl::StrCat("waiting for ", gpu.Label(), " memory after trial ",
                              a.trial_id(), ": ", held);
      spdlog::info("{}: {}", name_, message_);
      if (heartbeat) heartbeat->SetMessage(message_);
    }
  }
  message_.clear();
  if (!held.empty()) {
    message_ = absl::StrCat(gpu.Label(), ": ", held, " ",
                            absl::FormatDuration(o_.gpu_release_timeout),
                            " after trial ", a.trial_id(), " ended");
    spdlog::warn("{}: {}", name_, message_);
  }
  AddForeign();
  next_gpu_refresh_ = clock_->Now() + std::max(o_.gpu_sample_interval, absl::Seconds(1));
}

// Appends to the slot's message the processes on its GPU that sweep did not start.
void Slot::AddForeign() {
  std::vector<std::string> foreign = monitor_->Foreign(gpu_->uuid);
  if (foreign.empty()) return;
  std::string what = absl::StrCat(gpu_->Label(),
                                  " memory is held by processes this worker did not start: ",
                                  absl::StrJoin(foreign, ", "));
  if (what != foreign_reported_) spdlog::warn("{}: {}", name_, what);
  foreign_reported_ = what;
  message_ = message_.empty() ? what : absl::StrCat(message_, "; ", what);
}

// Between trials: while the slot has something to say about its GPU, looks again
// (at the newest sample) every few seconds, and tells the scheduler when that
// changes.
void Slot::RefreshGpuMessage() {
  if (monitor_ && !message_.empty() && clock_->Now() >= next_gpu_refresh_) {
    next_gpu_refresh_ = clock_->Now() + std::max(o_.gpu_sample_interval, absl::Seconds(1));
    message_.clear();
    AddForeign();
    if (message_.empty()) foreign_reported_.clear();
  }
  if (message_ == reported_message_ || worker_id_.empty()) return;
  v1::HeartbeatRequest req;
  req.set_worker_id(worker_id_);
  req.set_draining(life_->phase() != kRunning);
  req.set_message(message_);
  if (link_->Heartbeat(req).ok()) reported_message_ = message_;
}

// Reports the outcome, retrying while the scheduler is unreachable. Asks for the
// slot's next trial in the same call (kept in next_) unless the worker is
// stopping or gives the trial back.
void Slot::Finish(v1::FinishTrialRequest fin) {
  fin.set_lease_next(life_->phase() == kRunning &&
                     fin.outcome() != v1::TRIAL_OUTCOME_RELEASED);
  absl::Time give_up = clock_->Now() + o_.report_give_up;
  while (true) {
    absl::StatusOr<v1::FinishTrialResponse> resp = link_->FinishTrial(fin);
    if (resp.ok()) {
      if (resp->has_next()) next_ = std::move(*resp->mutable_next());
      return;
    }
    if (!absl::IsUnavailable(resp.status())) {
      spdlog::warn("{}: the scheduler refused the outcome of {}: {}", name_,
                   fin.trial_id(), std::string(resp.status().message()));
      return;
    }
    if (clock_->Now() > give_up || life_->phase() == kStopNow) {
      spdlog::error("{}: could not report the outcome of {}: {}", name_, fin.trial_id(),
                    std::string(resp.status().message()));
      return;
    }
    clock_->SleepFor(o_.retry_interval);
  }
}

// Gives back a trial leased with a FinishTrial reply that the slot will not run.
void Slot::Release(const v1::TrialAssignment& a) {
  v1::FinishTrialRequest fin;
  fin.set_worker_id(worker_id_);
  fin.set_trial_id(a.trial_id());
  fin.set_epoch(a.epoch());
  fin.set_outcome(v1::TRIAL_OUTCOME_RELEASED);
  fin.set_message("the worker is stopping");
  Finish(fin);
}

}  // namespace sweep
