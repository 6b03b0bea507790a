#include "worker/worker.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/process.h"
#include "common/rpc.h"
#include "common/status_util.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"
#include "sweep/v1/sweep.grpc.pb.h"
#include "worker/gpu_monitor.h"
#include "worker/metrics_reader.h"

extern char** environ;

namespace sweep {
namespace {

namespace fs = std::filesystem;

constexpr absl::Duration kRpcTimeout = absl::Seconds(10);
constexpr size_t kLogTailBytes = 8192;

// How far the worker is from stopping. Signals move it forward, never back.
enum Phase { kRunning = 0, kDraining = 1, kStopNow = 2 };

class Lifecycle {
 public:
  Phase phase() const { return static_cast<Phase>(phase_.load()); }
  void Advance() {
    absl::MutexLock lock(&mu_);
    if (phase_ < kStopNow) ++phase_;
    cv_.SignalAll();
  }
  // Sleeps for `d` or until the phase changes. Returns the phase.
  Phase Sleep(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    int start = phase_;
    absl::Time deadline = absl::Now() + d;
    while (phase_ == start && !cv_.WaitWithDeadline(&mu_, deadline)) {
    }
    return phase();
  }

 private:
  std::atomic<int> phase_{kRunning};
  absl::Mutex mu_;
  absl::CondVar cv_;
};

// This process's one sweep-group-guard (common/process.h), started on first use; it
// lives as long as the process. Null, with a warning, when it cannot be started:
// trials then still die with the worker, but what they started may not.
GroupGuard* TrialGroupGuard() {
  static GroupGuard* const guard = []() -> GroupGuard* {
    std::string path = GroupGuardPath();
    absl::StatusOr<std::unique_ptr<GroupGuard>> g =
        path.empty() ? absl::NotFoundError("sweep-group-guard is not next to sweep")
                     : GroupGuard::Start(path);
    if (!g.ok()) {
      spdlog::warn("no group guard ({}): if this worker is killed, processes its trials "
                   "started may live on", std::string(g.status().message()));
      return nullptr;
    }
    return g->release();
  }();
  return guard;
}

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
  return out;
}

std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout, const RpcSecurity& sec) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  Authorize(ctx.get(), sec);
  return ctx;
}

std::string GiB(double bytes) { return absl::StrFormat("%.1f GiB", bytes / (1 << 30)); }

bool IsSweepTrain(const std::vector<std::string>& argv) {
  return !argv.empty() && fs::path(argv[0]).filename() == "sweep-train";
}

// Whether a failed trial ran out of GPU memory: sweep-train's exit code 5, or what
// PyTorch and CUDA print then.
bool LooksLikeOom(const std::vector<std::string>& argv, const ExitStatus& exit,
                  const std::string& stderr_tail) {
  if (IsSweepTrain(argv) && exit.signal == 0 && exit.exit_code == 5) return true;
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
  e.argv.push_back("--estimate-memory");
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
  if (!j.is_object() || !j.contains("total_bytes") || !j["total_bytes"].is_number()) {
    spdlog::warn("{}: sweep-train --estimate-memory printed no total_bytes; starting the "
                 "trial anyway",
                 name);
    return std::nullopt;
  }
  return j["total_bytes"].get<int64_t>();
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

// One slot: registers, leases trials one at a time and runs them.
class Slot {
 public:
  // `node`: the node's devices (to find the other GPUs of a trial of several).
  Slot(const WorkerOptions& o, const RpcSecurity& sec, Lifecycle* life,
       std::shared_ptr<grpc::Channel> channel, int slot, std::optional<Gpu> gpu,
       const std::vector<Gpu>* node, GpuMonitor* monitor)
      : o_(o), sec_(sec), life_(life), stub_(v1::WorkerService::NewStub(channel)),
        slot_(slot), gpu_(std::move(gpu)), node_(node), monitor_(gpu_ ? monitor : nullptr) {}

  void Run() {
    absl::Duration backoff = absl::Milliseconds(200);
    while (life_->phase() == kRunning) {
      if (worker_id_.empty() && !Register()) {
        life_->Sleep(backoff);
        backoff = std::min(backoff * 2, absl::Seconds(5));
        continue;
      }
      if (GpuLost()) continue;
      RefreshGpuMessage();
      v1::LeaseTrialRequest req;
      req.set_worker_id(worker_id_);
      req.set_wait_ms(1000);
      v1::LeaseTrialResponse resp;
      auto ctx = Context(absl::Milliseconds(req.wait_ms()) + kRpcTimeout, sec_);
      grpc::Status st = stub_->LeaseTrial(ctx.get(), req, &resp);
      if (st.error_code() == grpc::StatusCode::NOT_FOUND) {
        spdlog::warn("{}: the scheduler does not know us; registering again", name_);
        worker_id_.clear();
        continue;
      }
      if (!st.ok()) {
        spdlog::warn("{}: cannot reach the scheduler at {}: {}", name_, o_.scheduler,
                     st.error_message());
        life_->Sleep(backoff);
        backoff = std::min(backoff * 2, absl::Seconds(5));
        continue;
      }
      backoff = absl::Milliseconds(200);
      if (resp.has_trial()) {
        RunTrial(resp.trial());
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
      } else if (resp.drain()) {
        spdlog::info("{}: the scheduler is shutting down", name_);
        life_->Sleep(absl::Seconds(1));
      }
    }
  }

 private:
  bool Register() {
    v1::RegisterRequest req;
    req.set_host(Hostname());
    req.set_pid(getpid());
    req.set_slot(slot_);
    req.set_version("0.1.0");
    if (gpu_) {
      req.mutable_gpu()->set_index(gpu_->index);
      req.mutable_gpu()->set_uuid(gpu_->uuid);
      req.mutable_gpu()->set_name(gpu_->name);
      req.mutable_gpu()->set_memory_mib(gpu_->memory_mib);
    }
    v1::RegisterResponse resp;
    auto ctx = Context(kRpcTimeout, sec_);
    grpc::Status st = stub_->Register(ctx.get(), req, &resp);
    if (!st.ok()) {
      spdlog::warn("cannot register with the scheduler at {}: {}", o_.scheduler,
                   st.error_message());
      return false;
    }
    worker_id_ = resp.worker_id();
    name_ = worker_id_;
    heartbeat_interval_ = absl::Milliseconds(resp.heartbeat_interval_ms());
    spdlog::info("registered as {}", worker_id_);
    return true;
  }

  std::vector<std::string> TrialEnv(const v1::TrialAssignment& a, const std::vector<Gpu>& gpus,
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
  bool SendPending(const v1::TrialAssignment& a, bool* stale, bool* stop) {
    if (pending_.points_size() == 0) return true;
    v1::ReportMetricsResponse resp;
    auto ctx = Context(kRpcTimeout, sec_);
    grpc::Status st = stub_->ReportMetrics(ctx.get(), pending_, &resp);
    if (st.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      spdlog::warn("{}: lease on {} is stale: {}", name_, a.trial_id(), st.error_message());
      *stale = true;
      return false;
    }
    if (!st.ok()) return false;  // retried with the same seq on the next poll
    if (resp.stop()) *stop = true;
    pending_.clear_points();
    return true;
  }

  void QueuePoints(const std::vector<MetricPointData>& points) {
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
  void PromoteBacklog(const v1::TrialAssignment& a) {
    constexpr int kMaxBatch = 10000;
    if (pending_.points_size() > 0 || backlog_.empty()) return;
    pending_.set_worker_id(worker_id_);
    pending_.set_trial_id(a.trial_id());
    pending_.set_epoch(a.epoch());
    pending_.set_seq(++seq_);
    if (backlog_.size() <= kMaxBatch) {
      pending_.mutable_points()->Swap(&backlog_);
      return;
    }
    auto* points = pending_.mutable_points();
    points->Reserve(kMaxBatch);
    for (int i = 0; i < kMaxBatch; ++i) *points->Add() = std::move(backlog_[i]);
    backlog_.DeleteSubrange(0, kMaxBatch);
  }

  void RunTrial(const v1::TrialAssignment& a) {
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
    so.group_guard = TrialGroupGuard();

    if (monitor_ && IsSweepTrain(so.argv)) {
      if (std::string why = MemoryDoesNotFit(so, trial_dir, gpus); !why.empty()) {
        spdlog::warn("{}: trial {} not started: {}", name_, a.trial_id(), why);
        std::ofstream(trial_dir / "stderr.log", std::ios::app) << "sweep: " << why << "\n";
        fin.set_outcome(v1::TRIAL_OUTCOME_FAILED);
        fin.set_failure_kind("oom");
        fin.set_message(why);
        fin.set_stderr_tail(Tail(trial_dir / "stderr.log"));
        Finish(fin);
        return;
      }
    }

    seq_ = 0;
    pending_.Clear();
    backlog_.Clear();
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
      Finish(fin);
      return;
    }

    if (monitor_) monitor_->Begin(a.trial_id(), child->pid(), uuids, baseline_mib);
    // The no-silent-CPU check judges the first sample that began after this time
    // (asked for then, not waited for).
    absl::Time gpu_check_at = monitor_ && a.gpu_check_ms() > 0
                                  ? absl::Now() + absl::Milliseconds(a.gpu_check_ms())
                                  : absl::InfiniteFuture();
    bool gpu_check_asked = false;

    MetricsReader reader((trial_dir / "metrics.jsonl").string());
    absl::Time next_heartbeat = absl::Now();
    absl::Time drain_deadline = absl::InfiniteFuture();
    bool stale = false, stop = false, released = false, gpu_stopped = false;
    std::string gpu_lost;  // why one of the trial's GPUs is lost, or ""
    std::optional<ExitStatus> exit;
    while (true) {
      exit = child->Wait(o_.poll_interval);
      QueuePoints(reader.ReadNew(ToUnixSecondsDouble(absl::Now())));
      PromoteBacklog(a);
      SendPending(a, &stale, &stop);
      if (exit) break;
      // A GPU that fell off the bus takes the trial with it: stop it and give it
      // back, so that it runs again elsewhere without using one of its retries.
      if (monitor_ && gpu_lost.empty()) gpu_lost = LostDevice(gpus);
      if (!gpu_lost.empty()) {
        exit = child->Stop(o_.kill_grace);
        break;
      }
      if (absl::Now() >= gpu_check_at && !gpu_check_asked) {
        monitor_->RequestSample();
        gpu_check_asked = true;
      }
      if (gpu_check_asked && monitor_->LastSampleTime() >= gpu_check_at) {
        gpu_check_at = absl::InfiniteFuture();
        gpu_check_asked = false;
        if (CheckGpuActivity(a, gpus)) {
          next_heartbeat = absl::Now();  // tell the scheduler now
          gpu_stopped = a.gpu_check_stop();
        }
      }
      if (absl::Now() >= next_heartbeat) {
        next_heartbeat = absl::Now() + heartbeat_interval_;
        if (Heartbeat(a)) stop = true;
      }
      Phase phase = life_->phase();
      if (phase == kDraining && drain_deadline == absl::InfiniteFuture()) {
        drain_deadline = absl::Now() + o_.drain_timeout;
        spdlog::info("{}: draining; trial {} may run for {} more", name_, a.trial_id(),
                     absl::FormatDuration(o_.drain_timeout));
      }
      if (phase == kStopNow || absl::Now() >= drain_deadline) released = true;
      if (stale || stop || released || gpu_stopped) {
        exit = child->Stop(phase == kStopNow ? absl::Seconds(1) : o_.kill_grace);
        break;
      }
    }
    absl::Time exited_at = absl::Now();
    TrialGpuUse use;
    if (monitor_) use = monitor_->End(a.trial_id());
    // Report every line the trial wrote before it ended.
    QueuePoints(reader.ReadNew(ToUnixSecondsDouble(absl::Now())));
    absl::Time give_up = absl::Now() + absl::Seconds(60);
    while (!stale && (pending_.points_size() > 0 || !backlog_.empty())) {
      PromoteBacklog(a);
      if (SendPending(a, &stale, &stop)) continue;
      if (stale || absl::Now() > give_up || life_->phase() == kStopNow) break;
      absl::SleepFor(absl::Milliseconds(500));
    }
    if (reader.bad_lines() > 0) {
      spdlog::warn("{}: trial {} wrote {} malformed metric lines; last: {}", name_,
                   a.trial_id(), reader.bad_lines(), reader.last_error());
    }
    // A trial that crashed on its own because its GPU was lost (CUDA errors) goes
    // back to the queue too, once the sampler has seen the loss.
    if (monitor_ && gpu_lost.empty() && !exit->ok()) {
      monitor_->RequestSample();
      absl::Time wait_until = absl::Now() + heartbeat_interval_;
      while (gpu_lost.empty() && monitor_->LastSampleTime() < exited_at &&
             absl::Now() < wait_until && life_->phase() != kStopNow) {
        absl::SleepFor(o_.poll_interval);
      }
      gpu_lost = LostDevice(gpus);
    }
    // The next trial of this GPU starts only once this one's memory is released (a
    // lost GPU releases nothing: the slot takes no more trials).
    if (monitor_ && gpu_lost.empty()) {
      AwaitRelease(a, gpus.front(), use, baseline_mib, was_alone, exited_at, !stale);
    }
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
    if (!stop && !released && !gpu_stopped && stop_signal &&
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
    }
    if (monitor_) *fin.mutable_usage() = ToProto(use, gpu_flagged_);
    spdlog::info("{}: trial {} ended: {}", name_, a.trial_id(),
                 fin.message().empty() ? "completed" : fin.message());
    Finish(fin);
  }

  // Returns true when the scheduler wants the running trial stopped.
  bool Heartbeat(const v1::TrialAssignment& a) {
    v1::HeartbeatRequest req;
    req.set_worker_id(worker_id_);
    req.set_draining(life_->phase() != kRunning);
    v1::RunningTrial* r = req.add_running();
    r->set_trial_id(a.trial_id());
    r->set_epoch(a.epoch());
    if (monitor_) *r->mutable_usage() = ToProto(monitor_->Usage(a.trial_id()), gpu_flagged_);
    req.set_message(message_);
    reported_message_ = message_;
    v1::HeartbeatResponse resp;
    auto ctx = Context(kRpcTimeout, sec_);
    if (!stub_->Heartbeat(ctx.get(), req, &resp).ok()) return false;
    if (resp.reregister()) {
      spdlog::warn("{}: the scheduler forgot this worker; stopping trial {}", name_,
                   a.trial_id());
      worker_id_.clear();
    }
    for (const v1::RunningTrial& s : resp.stop()) {
      if (s.trial_id() == a.trial_id()) return true;
    }
    return false;
  }

  // The devices of the trial: the slot's own, then the other cards its assignment
  // names by index; none on a CPU slot. FailedPrecondition for a trial of several
  // GPUs on a MIG device (a process sees one MIG device at most) and for an index
  // this node lacks.
  absl::StatusOr<std::vector<Gpu>> TrialDevices(const v1::TrialAssignment& a) const {
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
  static std::string Names(const std::vector<Gpu>& gpus) {
    if (gpus.size() == 1) return gpus.front().Label();
    std::vector<int> indexes;
    for (const Gpu& g : gpus) indexes.push_back(g.index);
    return absl::StrCat("GPU ", absl::StrJoin(indexes, ","));
  }

  // "GPU 1 (GPU-...) is lost: <NVML's error>" for the first of `gpus` that the
  // sampler found lost, or "".
  std::string LostDevice(const std::vector<Gpu>& gpus) {
    for (const Gpu& g : gpus) {
      std::string why;
      if (monitor_->Lost(g.uuid, &why)) {
        return absl::StrCat(g.Label(), " (", g.uuid, ") is lost: ", why);
      }
    }
    return "";
  }

  // Whether the slot's GPU is lost (the sampler found NVML_ERROR_GPU_IS_LOST). Then
  // the slot takes no more trials: it tells the scheduler it drains, with the
  // reason as its message, and idles until the worker stops.
  bool GpuLost() {
    std::string why;
    if (!monitor_ || !monitor_->Lost(gpu_->uuid, &why)) return false;
    if (!lost_reported_) {
      message_ = absl::StrCat(gpu_->Label(), " (", gpu_->uuid, ") is lost: ", why,
                              "; this slot takes no more trials (check the node: "
                              "nvidia-smi, dmesg)");
      spdlog::error("{}: {}", name_, message_);
      lost_reported_ = true;
    }
    v1::HeartbeatRequest req;
    req.set_worker_id(worker_id_);
    req.set_draining(true);
    req.set_message(message_);
    v1::HeartbeatResponse resp;
    auto ctx = Context(kRpcTimeout, sec_);
    if (stub_->Heartbeat(ctx.get(), req, &resp).ok()) {
      reported_message_ = message_;
      if (resp.reregister()) worker_id_.clear();
    }
    life_->Sleep(heartbeat_interval_);
    return true;
  }

  // Asks sweep-train for its memory estimate; returns why the trial cannot fit the
  // free memory of its GPUs, or "" when it fits or the estimate is unknown.
  std::string MemoryDoesNotFit(const SpawnOptions& so, const fs::path& trial_dir,
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
  bool CheckGpuActivity(const v1::TrialAssignment& a, const std::vector<Gpu>& gpus) {
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
  void AwaitRelease(const v1::TrialAssignment& a, const Gpu& gpu, const TrialGpuUse& use,
                    int64_t baseline_mib, bool was_alone, absl::Time exited_at,
                    bool heartbeat) {
    absl::Time deadline = absl::Now() + o_.gpu_release_timeout;
    absl::Time start = absl::Now();
    absl::Time after = exited_at;
    std::string held;
    bool known = false;  // a sample after the end said the memory is still held
    while (true) {
      absl::Time step = std::min(deadline, absl::Now() + heartbeat_interval_);
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
        after = absl::Now();  // next, a newer sample
      }
      if (absl::Now() >= deadline || life_->phase() == kStopNow) break;
      if (absl::Now() - start > absl::Seconds(1) && message_.empty()) {
        message_ = absl::StrCat("waiting for ", gpu.Label(), " memory after trial ",
                                a.trial_id(), ": ", held);
        spdlog::info("{}: {}", name_, message_);
      }
      if (heartbeat) Heartbeat(a);
    }
    message_.clear();
    if (!held.empty()) {
      message_ = absl::StrCat(gpu.Label(), ": ", held, " ",
                              absl::FormatDuration(o_.gpu_release_timeout),
                              " after trial ", a.trial_id(), " ended");
      spdlog::warn("{}: {}", name_, message_);
    }
    AddForeign();
    next_gpu_refresh_ = absl::Now() + std::max(o_.gpu_sample_interval, absl::Seconds(1));
  }

  // Appends to the slot's message the processes on its GPU that sweep did not start.
  void AddForeign() {
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
  void RefreshGpuMessage() {
    if (monitor_ && !message_.empty() && absl::Now() >= next_gpu_refresh_) {
      next_gpu_refresh_ = absl::Now() + std::max(o_.gpu_sample_interval, absl::Seconds(1));
      message_.clear();
      AddForeign();
      if (message_.empty()) foreign_reported_.clear();
    }
    if (message_ == reported_message_ || worker_id_.empty()) return;
    v1::HeartbeatRequest req;
    req.set_worker_id(worker_id_);
    req.set_draining(life_->phase() != kRunning);
    req.set_message(message_);
    v1::HeartbeatResponse resp;
    auto ctx = Context(kRpcTimeout, sec_);
    if (stub_->Heartbeat(ctx.get(), req, &resp).ok()) reported_message_ = message_;
  }

  // Reports the outcome, retrying while the scheduler is unreachable. Asks for the
  // slot's next trial in the same call (kept in next_) unless the worker is
  // stopping or gives the trial back.
  void Finish(v1::FinishTrialRequest fin) {
    fin.set_lease_next(life_->phase() == kRunning &&
                       fin.outcome() != v1::TRIAL_OUTCOME_RELEASED);
    absl::Time give_up = absl::Now() + absl::Seconds(60);
    while (true) {
      v1::FinishTrialResponse resp;
      auto ctx = Context(kRpcTimeout, sec_);
      grpc::Status st = stub_->FinishTrial(ctx.get(), fin, &resp);
      if (st.ok()) {
        if (resp.has_next()) next_ = resp.next();
        return;
      }
      if (st.error_code() != grpc::StatusCode::UNAVAILABLE &&
          st.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
        spdlog::warn("{}: the scheduler refused the outcome of {}: {}", name_,
                     fin.trial_id(), st.error_message());
        return;
      }
      if (absl::Now() > give_up || life_->phase() == kStopNow) {
        spdlog::error("{}: could not report the outcome of {}: {}", name_, fin.trial_id(),
                      st.error_message());
        return;
      }
      absl::SleepFor(absl::Milliseconds(500));
    }
  }

  // Gives back a trial leased with a FinishTrial reply that the slot will not run.
  void Release(const v1::TrialAssignment& a) {
    v1::FinishTrialRequest fin;
    fin.set_worker_id(worker_id_);
    fin.set_trial_id(a.trial_id());
    fin.set_epoch(a.epoch());
    fin.set_outcome(v1::TRIAL_OUTCOME_RELEASED);
    fin.set_message("the worker is stopping");
    Finish(fin);
  }

  const WorkerOptions& o_;
  const RpcSecurity& sec_;
  Lifecycle* life_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  int slot_;
  std::optional<Gpu> gpu_;
  const std::vector<Gpu>* node_;   // the node's devices
  GpuMonitor* monitor_;            // null on a CPU slot
  bool lost_reported_ = false;     // the slot's GPU is lost and the log says so
  bool gpu_flagged_ = false;       // the running trial failed the no-silent-CPU check
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
};

// Blocks the stop signals in every thread and turns them into lifecycle steps on
// a thread of their own. Returns that thread, detached.
void HandleSignals(Lifecycle* life, std::function<void(Phase)> on_signal) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set, life, on_signal] {
    while (true) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      life->Advance();
      spdlog::info("got signal {}: {}", sig,
                   life->phase() == kDraining ? "draining (send again to stop now)"
                                              : "stopping now");
      if (on_signal) on_signal(life->phase());
    }
  }).detach();
}

// --gpus: one `sweep worker --gpu UUID` process per GPU or MIG device; forwards stop
// signals.
int Supervise(const WorkerOptions& o, const std::vector<Gpu>& gpus) {
  Lifecycle life;
  std::vector<ChildProcess> children;
  absl::Mutex mu;
  HandleSignals(&life, [&](Phase phase) {
    absl::MutexLock lock(&mu);
    for (ChildProcess& c : children) c.Signal(SIGTERM);
  });
  {
    absl::MutexLock lock(&mu);
    for (const Gpu& g : gpus) {
      SpawnOptions so;
      so.argv = {SelfExecutable(),
                 "worker",
                 "--scheduler", o.scheduler,
                 "--token-file", o.token_file,
                 "--tls-ca", o.tls_ca,
                 "--gpu", g.uuid,
                 "--work-dir", o.work_dir,
                 "--drain-timeout", absl::StrCat(absl::ToInt64Seconds(o.drain_timeout)),
                 "--kill-grace", absl::StrCat(absl::ToInt64Seconds(o.kill_grace)),
                 "--slots-per-gpu", absl::StrCat(o.slots_per_gpu),
                 "--gpu-sample-interval",
                 absl::StrCat(absl::ToDoubleSeconds(o.gpu_sample_interval)),
                 "--gpu-release-timeout",
                 absl::StrCat(absl::ToDoubleSeconds(o.gpu_release_timeout)),
                 "--log-level", o.log_level};
      so.new_process_group = false;  // a terminal's Ctrl-C reaches them too
      absl::StatusOr<ChildProcess> c = ChildProcess::Spawn(so);
      if (!c.ok()) {
        spdlog::error("cannot start the worker for {}: {}", g.Label(),
                      std::string(c.status().message()));
        return kExitFailure;
      }
      spdlog::info("started worker for {} ({}, {} MiB), pid {}", g.Label(), g.name,
                   g.memory_mib, c->pid());
      children.push_back(std::move(*c));
    }
  }
  int rc = kExitOk;
  for (size_t i = 0; i < children.size(); ++i) {
    ExitStatus st;
    while (true) {
      std::optional<ExitStatus> s;
      {
        absl::MutexLock lock(&mu);
        s = children[i].Wait(absl::Milliseconds(200));
      }
      if (s) {
        st = *s;
        break;
      }
    }
    if (!st.ok()) rc = kExitFailure;
  }
  return rc;
}

}  // namespace

int RunWorker(const WorkerOptions& o, GpuDiscovery* discovery,
              std::shared_ptr<GpuProbe> probe) {
  int modes = !o.gpu.empty() + !o.gpus.empty() + (o.cpus > 0);
  if (modes != 1) {
    spdlog::error("give exactly one of --gpu N, --gpus all|LIST or --cpus N");
    return kExitBadInput;
  }
  if (o.slots_per_gpu < 1) {
    spdlog::error("--slots-per-gpu must be at least 1");
    return kExitBadInput;
  }
  std::vector<std::optional<Gpu>> slots;
  std::vector<Gpu> node_gpus;
  if (!o.gpus.empty() || !o.gpu.empty()) {
    absl::StatusOr<std::vector<Gpu>> all = discovery->Discover();
    if (!all.ok()) {
      spdlog::error("{}", std::string(all.status().message()));
      return kExitBadInput;
    }
    const std::string& which = o.gpus.empty() ? o.gpu : o.gpus;
    absl::StatusOr<std::vector<Gpu>> chosen = SelectGpus(*all, which);
    if (!chosen.ok()) {
      spdlog::error("{}: {}", o.gpus.empty() ? "--gpu" : "--gpus",
                    std::string(chosen.status().message()));
      return kExitBadInput;
    }
    if (!o.gpus.empty()) return Supervise(o, *chosen);
    if (chosen->size() != 1) {
      std::vector<std::string> names;
      for (const Gpu& g : *chosen) names.push_back(g.uuid);
      spdlog::error("--gpu {} names {} devices ({}): give one of them, or --gpus {} for one "
                    "worker process each",
                    o.gpu, chosen->size(), absl::StrJoin(names, ", "), o.gpu);
      return kExitBadInput;
    }
    slots.assign(o.slots_per_gpu, chosen->front());
    node_gpus = *all;
  } else {
    slots.assign(o.cpus, std::nullopt);
  }

  absl::StatusOr<RpcSecurity> sec = LoadRpcSecurity(o.token_file, o.tls_ca);
  if (!sec.ok()) {
    spdlog::error("{}", std::string(sec.status().message()));
    return kExitBadInput;
  }
  Lifecycle life;
  HandleSignals(&life, nullptr);  // before any thread starts: they inherit the mask
  std::unique_ptr<GpuMonitor> monitor;
  if (!node_gpus.empty()) {
    if (probe == nullptr) probe = NewNvmlProbe();
    monitor = std::make_unique<GpuMonitor>(probe, std::vector<std::string>{slots.front()->uuid},
                                           o.gpu_sample_interval);
    spdlog::info("{} ({}, {}, {} MiB) through {}", slots.front()->Label(), slots.front()->name,
                 slots.front()->uuid, slots.front()->memory_mib, discovery->Source());
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  auto channel = MakeChannel(o.scheduler, *sec, args);
  std::vector<std::unique_ptr<Slot>> workers;
  std::vector<std::thread> threads;
  for (size_t i = 0; i < slots.size(); ++i) {
    workers.push_back(std::make_unique<Slot>(o, *sec, &life, channel, static_cast<int>(i),
                                             slots[i], &node_gpus, monitor.get()));
  }
  spdlog::info("worker with {} {} slot(s), scheduler {}, work dir {}", slots.size(),
               slots.front() ? "GPU" : "CPU", o.scheduler, o.work_dir);
  for (auto& w : workers) threads.emplace_back([&w] { w->Run(); });
  for (std::thread& t : threads) t.join();
  spdlog::info("worker stopped");
  return kExitOk;
}

}  // namespace sweep
