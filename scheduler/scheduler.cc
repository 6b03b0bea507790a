#include "scheduler/scheduler.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/ids.h"
#include "common/status_util.h"
#include "common/utf8.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"
#include "sweeps/sampler.h"

namespace sweep {
namespace {


// Why a metric point cannot be stored, or "". Every stored point is storable and
// comparable: a name that is non-empty UTF-8 without NUL, a finite value and time
// (metrics.value and .time are REAL NOT NULL, SQLite binds NaN as NULL, and an
// infinity would rank its trial first or last for good).
std::string RejectReason(const v1::MetricPoint& p, const std::string& shown_name) {
  if (p.name().empty() || !IsCleanUtf8(p.name())) {
    return absl::StrCat("a point at step ", p.step(),
                        " has an empty name or one that is not UTF-8 or holds a NUL");
  }
  if (!std::isfinite(p.value()) || !std::isfinite(p.time())) {
    return absl::StrCat(shown_name, " at step ", p.step(),
                        " has a value or time that is not finite (value ", p.value(),
                        ", time ", p.time(), "); NaN and infinite values are not stored");
  }
  return "";
}

// How much of a metric name the messages about it show.
constexpr size_t kShownNameBytes = 128;

}  // namespace

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(Store* store, Clock* clock,
                                                             SchedulerOptions options) {
  std::unique_ptr<Scheduler> s(new Scheduler(store, clock, options));
  absl::MutexLock lock(&s->mu_);
  SWEEP_RETURN_IF_ERROR(s->Rebuild(/*load_workers=*/true));
  return s;
}

Scheduler::~Scheduler() { Shutdown(); }

double Scheduler::NowSeconds() const { return ToUnixSecondsDouble(clock_->Now()); }

namespace {

const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

// Errors of the database (full disk, locked, I/O), as opposed to the refusals of a
// request, which leave the in-memory state as it was.
bool IsStorageError(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kAborted:
      return true;
    default:
      return false;
  }
}

}  // namespace

template <typename Fn>
auto Scheduler::Atomically(Fn body) -> decltype(body()) {
  if (clock_->Now() < write_retry_at_) {
    // The database failed a moment ago: refuse writes for a while instead of
    // rebuilding the state on every request. Reads go on.
    return absl::UnavailableError(absl::StrCat(
        "the scheduler cannot write its database (", write_failure_,
        "); nothing was recorded: retry in a moment"));
  }
  if (needs_rebuild_) {
    Recover(absl::UnavailableError("the last rebuild failed"));
    if (needs_rebuild_) {
      // The state in memory may be partial: acting on it could stop healthy trials.
      return absl::UnavailableError(
          "the scheduler cannot read its database; nothing was recorded: retry");
    }
  }
  std::optional<decltype(body())> out;
  write_error_ = absl::OkStatus();
  int64_t changes = store_->TotalChanges();
  absl::Status st = store_->InTransaction([&]() -> absl::Status {
    out.emplace(body());
    if (!StatusOf(*out).ok()) return StatusOf(*out);
    return write_error_;
  });
  write_error_ = absl::OkStatus();
  if (st.ok()) {
    // A transaction that wrote nothing proves nothing about the disk.
    if (!write_failure_.empty() && store_->TotalChanges() != changes) {
      spdlog::info("the database takes writes again");
      write_failure_.clear();
    }
    return std::move(*out);
  }
  if (!IsStorageError(st)) return st;
  Recover(st);
  write_failure_ = std::string(st.message());
  write_retry_at_ = clock_->Now() + kWriteRetryDelay;
  return absl::UnavailableError(absl::StrCat("the scheduler could not write its database (",
                                             st.message(), "); nothing was recorded: retry"));
}

void Scheduler::Recover(const absl::Status& why) {
  spdlog::error("database write failed: {}; the change was rolled back and the state is "
                "rebuilt from the database",
                std::string(why.message()));
  sweeps_.clear();
  sweep_order_.clear();
  active_.clear();
  for (auto& [id, w] : workers_) w.stored_state.clear();  // rolled back: write again
  absl::Status st = Rebuild(/*load_workers=*/false);
  needs_rebuild_ = !st.ok();
  if (needs_rebuild_) {
    spdlog::error("rebuilding from the database failed: {}; trying again on the next request",
                  std::string(st.message()));
  }
  work_available_.SignalAll();
}

absl::Status Scheduler::Rebuild(bool load_workers) {
  absl::Time now = clock_->Now();
  SWEEP_ASSIGN_OR_RETURN(std::vector<SweepRow> sweeps, store_->LoadSweeps());
  SWEEP_ASSIGN_OR_RETURN(std::vector<TrialRow> trials, store_->LoadActiveTrials());
  std::map<std::string, std::vector<TrialRow>> trials_by_sweep;
  for (TrialRow& t : trials) trials_by_sweep[t.sweep_id].push_back(std::move(t));

  for (SweepRow& row : sweeps) {
    bool has_live = trials_by_sweep.count(row.id) > 0;
    if (row.state != "running" && !has_live) continue;
    absl::StatusOr<spec::SweepSpec> parsed = spec::ParseSpec(row.spec_yaml, row.file_name);
    if (!parsed.ok()) {
      spdlog::error("sweep {}: its stored spec no longer parses ({}); cancelling it",
                    row.id, std::string(parsed.status().message()));
      row.state = "cancelled";
      row.finished_at = NowSeconds();
      row.end_reason = "the stored spec no longer parses";
      SWEEP_RETURN_IF_ERROR(store_->UpdateSweep(row));
      continue;
    }
    SweepState& s = sweeps_[row.id];
    s.row = row;
    s.spec = std::move(*parsed);
    SWEEP_RETURN_IF_ERROR(LoadHistory(s));
    if (row.state == "running") sweep_order_.push_back(row.id);
    for (TrialRow& t : trials_by_sweep[row.id]) {
      ActiveTrial& a = active_[t.id];
      a.row = std::move(t);
      if (a.row.state == "running") {
        // Give its worker a full lease period to report in.
        a.lease_deadline = now + options_.lease_timeout;
        ++s.running;
      } else {
        s.queued.push_back(a.row.id);
      }
      if (row.state == "cancelled") {
        a.stop_requested = true;
        a.stop_as = TrialState::kCancelled;
      }
    }
    // Budgets that had ended the launching of new trials before the restart.
    if (s.failed >= s.spec.max_failed_trials.value_or(INT64_MAX)) {
      StopLaunching(s, absl::StrCat("max_failed_trials (", s.failed, ") reached"));
    }
    if (const std::optional<spec::Metric>& m = s.spec.metric; m && m->target) {
      for (const spec::Observation& o : s.history) {
        if (o.value && spec::ReachedTarget(*m, *o.value)) {
          StopLaunching(s, absl::StrCat("metric.target (", m->name, " ", *m->target,
                                        ") reached"));
          break;
        }
      }
    }
  }
  if (load_workers) {
    SWEEP_ASSIGN_OR_RETURN(std::vector<WorkerRow> workers, store_->LoadWorkers());
    for (WorkerRow& w : workers) {
      if (w.state == "lost") continue;
      WorkerState& ws = workers_[w.id];
      ws.row = std::move(w);
      ws.last_seen = now;
      ws.message = ws.row.message;
    }
  }
  SWEEP_RETURN_IF_ERROR(RestoreHeldGpus());
  for (auto& [id, s] : sweeps_) MaybeFinishSweep(s);
  spdlog::info("state rebuilt: {} running sweeps, {} active trials, {} workers",
               sweep_order_.size(), active_.size(), workers_.size());
  return absl::OkStatus();
}

absl::Status Scheduler::LoadHistory(SweepState& s) {
  const spec::SweepSpec& sp = s.spec;
  bool maximize = sp.metric && sp.metric->goal == spec::Goal::kMaximize;
  if (sp.early_stop.type != spec::EarlyTerminate::Type::kNone && sp.metric) {
    s.stopper = std::make_unique<EarlyStopper>(sp.early_stop, maximize);
    // Replaying the stored reports in order rebuilds the same rungs; decisions
    // already acted on come out the same, and new ones are taken when the trials
    // report again.
    SWEEP_ASSIGN_OR_RETURN(auto series, store_->LoadMetricSeries(s.row.id, sp.metric->name));
    for (const Store::SeriesPoint& p : series) s.stopper->Report(p.trial_id, p.step, p.value);
  }
  SWEEP_ASSIGN_OR_RETURN(std::vector<TrialRow> trials, store_->LoadTrials(s.row.id));
  std::sort(trials.begin(), trials.end(),
            [](const TrialRow& a, const TrialRow& b) {
              return std::tie(a.ended_at, a.index) < std::tie(b.ended_at, b.index);
            });
  for (const TrialRow& t : trials) {
    std::optional<TrialState> st = ParseTrialState(t.state);
    if (!st || !IsTerminal(*st)) continue;
    if (*st == TrialState::kFailed) ++s.failed;
    if (t.started_at > 0 && t.ended_at > 0) {
      s.durations.Add(t.ended_at - t.started_at, TrialGpus(s, t));
    }
    if (*st == TrialState::kCancelled) continue;
    s.history.push_back(spec::Observation{
        .params = nlohmann::json::parse(t.params_json, nullptr, false),
        .value = *st == TrialState::kFailed ? std::nullopt : t.final_metric});
  }
  // GPU energy of ended trials, for the estimates.
  SWEEP_ASSIGN_OR_RETURN(auto gpu_rows, store_->LoadTrialGpu(s.row.id));
  for (const auto& [id, g] : gpu_rows) {
    std::optional<TrialState> st = ParseTrialState(g.state);
    if (st && IsTerminal(*st) && g.energy_joules) s.energy.Add(*g.energy_joules);
  }
  return absl::OkStatus();
}

void Scheduler::Event(const std::string& kind, const std::string& sweep,
                      const std::string& trial, const std::string& worker,
                      const std::string& message) {
  absl::Status st = store_->AddEvent(NowSeconds(), kind, sweep, trial, worker, message);
  if (!st.ok()) {
    spdlog::warn("could not record event {}: {}", kind, std::string(st.message()));
    write_error_.Update(st);
  }
}

void Scheduler::SetWorkerState(WorkerState& w, const std::string& state,
                               const std::string& trial) {
  w.row.state = state;
  w.row.trial_id = trial;
  w.row.last_heartbeat = ToUnixSecondsDouble(w.last_seen);
  // Most heartbeats change nothing but the time: one write per slot every few
  // seconds was most of the database's writes with many workers.
  if (state == w.stored_state && trial == w.stored_trial &&
      w.row.last_heartbeat - w.stored_heartbeat < kHeartbeatWriteEvery) {
    return;
  }
  absl::Status st = store_->UpsertWorker(w.row);
  if (!st.ok()) {
    spdlog::warn("could not save worker {}: {}", w.row.id, std::string(st.message()));
    write_error_.Update(st);
    return;
  }
  w.stored_state = state;
  w.stored_trial = trial;
  w.stored_heartbeat = w.row.last_heartbeat;
}

// ---------------------------------------------------------------- worker side

absl::StatusOr<v1::RegisterResponse> Scheduler::Register(const v1::RegisterRequest& req) {
  absl::MutexLock lock(&mu_);
  // Refusals, outside Atomically(), which takes ResourceExhausted for a full disk.
  for (const auto& [what, value] :
       {std::pair{"host", &req.host()}, std::pair{"GPU UUID", &req.gpu().uuid()},
        std::pair{"GPU name", &req.gpu().name()}}) {
    if (value->size() > kMaxNameBytes || !IsCleanUtf8(*value)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the ", what, " of a registration must be UTF-8 of at most ", kMaxNameBytes,
          " bytes without NUL; got ", value->size(), " bytes"));
    }
  }
  int64_t slots_of_host = 0;
  for (const auto& [id, w] : workers_) {
    slots_of_host += w.row.host == req.host() && w.row.state != "lost";
  }
  if (slots_of_host >= options_.max_workers_per_host) {
    spdlog::warn("refused a registration from host {}: it has {} worker slots already",
                 req.host(), slots_of_host);
    return absl::ResourceExhaustedError(absl::StrCat(
        "host ", req.host(), " already has ", slots_of_host,
        " worker slots registered, the most this scheduler takes from one host "
        "(sweep scheduler --max-workers-per-host); the slots of a worker that stopped "
        "count until they are marked lost, after --lease-timeout"));
  }
  return Atomically([&] { return RegisterLocked(req); });
}

absl::StatusOr<v1::RegisterResponse> Scheduler::RegisterLocked(const v1::RegisterRequest& req) {
  WorkerRow row;
  row.host = req.host();
  row.pid = req.pid();
  row.slot = req.slot();
  row.has_gpu = req.has_gpu();
  if (row.has_gpu) {
    row.gpu_index = req.gpu().index();
    row.gpu_uuid = req.gpu().uuid();
    row.gpu_name = req.gpu().name();
    row.gpu_memory_mib = req.gpu().memory_mib();
  }
  row.registered_at = NowSeconds();
  row.last_heartbeat = row.registered_at;
  const std::string slot =
      row.has_gpu ? absl::StrCat("gpu", row.gpu_index) : absl::StrCat("cpu", row.slot);
  // An id another worker has (in memory) or had (in the database, lost ones too)
  // is drawn again: 64 random bits make that all but never happen.
  for (int attempt = 1;; ++attempt) {
    row.id = NewWorkerId(gen_, row.host, slot);
    absl::Status st =
        workers_.count(row.id) > 0
            ? absl::AlreadyExistsError(absl::StrCat("worker id ", row.id, " is taken"))
            : store_->InsertWorker(row);
    if (st.ok()) break;
    if (!absl::IsAlreadyExists(st)) return st;
    spdlog::warn("drew worker id {} again: {}", row.id, std::string(st.message()));
    if (attempt == 8) {
      return absl::FailedPreconditionError("no free worker id after 8 draws: register again");
    }
  }
  WorkerState& w = workers_[row.id];
  w.row = row;
  w.last_seen = clock_->Now();
  Event("worker_registered", "", "", row.id,
        row.has_gpu ? absl::StrCat("GPU ", row.gpu_index, " ", row.gpu_name, " (",
                                   row.gpu_memory_mib, " MiB)")
                    : "CPU slot");
  spdlog::info("worker {} registered", row.id);
  v1::RegisterResponse resp;
  resp.set_worker_id(row.id);
  resp.set_heartbeat_interval_ms(absl::ToInt64Milliseconds(options_.heartbeat_interval));
  resp.set_lease_timeout_ms(absl::ToInt64Milliseconds(options_.lease_timeout));
  return resp;
}

absl::StatusOr<v1::LeaseTrialResponse> Scheduler::LeaseTrial(
    const v1::LeaseTrialRequest& req) {
  absl::MutexLock lock(&mu_);
  absl::Duration wait =
      std::min(absl::Milliseconds(std::max<int64_t>(0, req.wait_ms())),
               options_.max_lease_wait);
  absl::Time deadline = absl::Now() + wait;  // real time: this is how long we block
  v1::LeaseTrialResponse resp;
  while (true) {
    if (shutdown_) {
      resp.set_drain(true);
      return resp;
    }
    auto it = workers_.find(req.worker_id());
    if (it == workers_.end()) {
      return absl::NotFoundError(
          absl::StrCat("unknown worker '", req.worker_id(), "': register again"));
    }
    WorkerState& w = it->second;
    w.last_seen = clock_->Now();
    if (w.row.state == "lost") SetWorkerState(w, "idle", "");
    if (w.row.state != "draining" && MayHaveWork()) {
      SWEEP_ASSIGN_OR_RETURN(std::optional<v1::TrialAssignment> a,
                             Atomically([&] { return TryLease(w); }));
      if (a) {
        *resp.mutable_trial() = std::move(*a);
        return resp;
      }
    }
    ++waiting_leases_;
    bool timed_out = work_available_.WaitWithDeadline(&mu_, deadline);
    --waiting_leases_;
    if (timed_out) return resp;
  }
}

bool Scheduler::CanCreateTrial(const SweepState& s) {
  return s.row.launch_stopped.empty() && (s.row.budget < 0 || s.row.next_index < s.row.budget);
}

bool Scheduler::HasTrialToHandOut(const SweepState& s) {
  if (s.row.state != "running") return false;
  if (s.spec.max_concurrent > 0 && s.running >= s.spec.max_concurrent) return false;
  return !s.queued.empty() || CanCreateTrial(s);
}

bool Scheduler::MayHaveWork() const {
  for (const std::string& id : sweep_order_) {
    if (HasTrialToHandOut(sweeps_.at(id))) return true;
  }
  return false;
}

absl::StatusOr<std::optional<v1::TrialAssignment>> Scheduler::TryLease(WorkerState& w) {
  // A copy: a sweep may finish (and leave sweep_order_) while we look.
  const std::vector<std::string> order = sweep_order_;
  std::optional<std::vector<GpuLoad>> gpu_loads;  // computed on first use
  for (size_t i = 0; i < order.size(); ++i) {
    const std::string& sweep_id = order[i];
    SweepState& s = sweeps_.at(sweep_id);
    if (!HasTrialToHandOut(s)) continue;
    std::vector<GpuLoad> extra_gpus;
    if (!PlacementFits(s, w, gpu_loads, &extra_gpus)) continue;

    ActiveTrial* t = nullptr;
    if (!s.queued.empty()) {
      t = &active_.at(s.queued.front());
    } else if (CanCreateTrial(s)) {
      // Create the next trial of the search.
      int64_t index = s.row.next_index;
      nlohmann::json params = NextParams(s, index);
      TrialRow row;
      row.id = TrialId(sweep_id, index);
      row.sweep_id = sweep_id;
      row.index = index;
      row.state = "queued";
      row.params_json = params.dump();
      row.created_at = NowSeconds();
      absl::StatusOr<std::vector<std::string>> argv = spec::BuildCommand(s.spec, params);
      if (argv.ok()) row.argv_json = nlohmann::json(*argv).dump();
      SweepRow next = s.row;
      next.next_index = index + 1;
      if (!argv.ok()) {
        // The command cannot be built for this point: the trial fails without
        // running, and the search goes on.
        row.state = "failed";
        row.message = std::string(argv.status().message());
        row.ended_at = row.created_at;
      }
      SWEEP_RETURN_IF_ERROR(store_->InTransaction([&]() -> absl::Status {
        SWEEP_RETURN_IF_ERROR(store_->UpsertTrial(row));
        return store_->UpdateSweep(next);
      }));
      s.row = next;
      if (!argv.ok()) {
        Event("trial_failed", sweep_id, row.id, "", row.message);
        MaybeFinishSweep(s);
        --i;  // look at this sweep's next point (bounded by its budget)
        continue;
      }
      ActiveTrial& a = active_[row.id];
      a.row = std::move(row);
      s.queued.push_back(a.row.id);
      t = &a;
    } else {
      continue;
    }

    // Lease it.
    ActiveTrial& a = *t;
    TrialRow before = a.row;
    a.row.worker_id = w.row.id;
    a.row.host = w.row.host;
    a.row.gpu = w.row.has_gpu ? w.row.gpu_index : -1;
    a.row.attempt += 1;
    a.row.epoch += 1;
    a.row.last_seq = 0;
    a.row.started_at = NowSeconds();
    a.row.ended_at = 0;
    a.row.exit_code.reset();
    a.row.signal = 0;
    a.final_step = INT64_MIN;
    if (absl::Status st = MoveTrial(a, TrialState::kRunning); !st.ok()) {
      a.row = before;
      return st;
    }
    s.queued.pop_front();
    a.lease_deadline = clock_->Now() + options_.lease_timeout;
    SetWorkerState(w, "busy", a.row.id);
    Event("trial_leased", sweep_id, a.row.id, w.row.id,
          absl::StrCat("attempt ", a.row.attempt, ", epoch ", a.row.epoch));

    v1::TrialAssignment out;
    out.set_trial_id(a.row.id);
    out.set_sweep_id(sweep_id);
    out.set_epoch(a.row.epoch);
    out.set_attempt(a.row.attempt);
    out.set_params_json(a.row.params_json);
    for (const auto& arg : nlohmann::json::parse(a.row.argv_json)) {
      out.add_argv(arg.get<std::string>());
    }
    out.set_working_dir(s.row.working_dir);
    AddGpuAssignment(s, w, extra_gpus, out);
    return std::optional<v1::TrialAssignment>(std::move(out));
  }
  return std::optional<v1::TrialAssignment>();
}

nlohmann::json Scheduler::NextParams(const SweepState& s, int64_t index) {
  if (s.spec.method == spec::Method::kGrid) return spec::GridPoint(s.spec, index);
  std::vector<nlohmann::json> running;
  if (s.spec.method == spec::Method::kBayes) {
    for (const auto& [id, t] : active_) {
      if (t.row.sweep_id == s.row.id && t.row.state == "running") {
        running.push_back(nlohmann::json::parse(t.row.params_json, nullptr, false));
      }
    }
  }
  return spec::Suggest(s.spec, s.row.seed, index, s.history, running);
}

absl::Status Scheduler::MoveTrial(ActiveTrial& t, TrialState to) {
  std::optional<TrialState> from = ParseTrialState(t.row.state);
  if (!from) return absl::InternalError(absl::StrCat("bad state ", t.row.state));
  SWEEP_RETURN_IF_ERROR(CheckTransition(*from, to));
  TrialRow row = t.row;
  row.state = std::string(TrialStateName(to));
  if (IsTerminal(to) && row.ended_at == 0) row.ended_at = NowSeconds();
  SWEEP_RETURN_IF_ERROR(store_->UpsertTrial(row));
  t.row = std::move(row);
  SweepState& s = sweeps_.at(t.row.sweep_id);
  if (*from == TrialState::kRunning) --s.running;
  if (to == TrialState::kRunning) ++s.running;
  if (IsTerminal(to)) {
    if (t.row.started_at > 0) s.durations.Add(t.row.ended_at - t.row.started_at, TrialGpus(s, t.row));
    if (to != TrialState::kCancelled) {
      s.history.push_back(spec::Observation{
          .params = nlohmann::json::parse(t.row.params_json, nullptr, false),
          .value = to == TrialState::kFailed ? std::nullopt : t.row.final_metric});
    }
    if (to == TrialState::kFailed && ++s.failed >= s.spec.max_failed_trials.value_or(INT64_MAX)) {
      StopLaunching(s, absl::StrCat("max_failed_trials (", s.failed, ") reached"));
    }
    std::string id = t.row.id;
    std::erase(s.queued, id);
    active_.erase(id);  // `t` is gone from here on
    MaybeFinishSweep(s);
  }
  return absl::OkStatus();
}

absl::Status Scheduler::LoseLease(ActiveTrial& t, const std::string& why,
                                  bool counts_as_attempt) {
  std::string id = t.row.id;
  std::string sweep_id = t.row.sweep_id;
  SweepState& s = sweeps_.at(sweep_id);
  t.row.message = why;
  if (t.stop_requested) {
    if (!t.stop_reason.empty()) t.row.message = t.stop_reason;
    Event("trial_ended", sweep_id, id, t.row.worker_id, why);
    return MoveTrial(t, t.stop_as);
  }
  int retries_used = t.row.attempt - 1;
  if (counts_as_attempt && retries_used >= s.spec.max_retries) {
    t.row.message = absl::StrCat(why, "; no retries left (max_retries: ",
                                 s.spec.max_retries, ")");
    Event("trial_failed", sweep_id, id, t.row.worker_id, t.row.message);
    return MoveTrial(t, TrialState::kFailed);
  }
  if (!counts_as_attempt) t.row.attempt -= 1;  // a released lease costs no retry
  std::string worker = t.row.worker_id;
  t.row.worker_id.clear();
  SWEEP_RETURN_IF_ERROR(MoveTrial(t, TrialState::kQueued));
  s.queued.push_front(id);  // it waited longest: it goes first
  Event("trial_requeued", sweep_id, id, worker, why);
  spdlog::warn("trial {} re-queued: {}", id, why);
  work_available_.SignalAll();
  return absl::OkStatus();
}

absl::StatusOr<Scheduler::ActiveTrial*> Scheduler::FindLease(const std::string& worker_id,
                                                             const std::string& trial_id,
                                                             int64_t epoch) {
  auto it = active_.find(trial_id);
  if (it == active_.end() || it->second.row.state != "running") {
    return absl::FailedPreconditionError(
        absl::StrCat("trial ", trial_id, " is not running under a lease"));
  }
  ActiveTrial& t = it->second;
  if (t.row.epoch != epoch || t.row.worker_id != worker_id) {
    return absl::FailedPreconditionError(absl::StrCat(
        "stale lease on trial ", trial_id, ": epoch ", epoch, " of worker ", worker_id,
        ", but the trial is now epoch ", t.row.epoch, " on ", t.row.worker_id));
  }
  return &t;
}

absl::StatusOr<v1::HeartbeatResponse> Scheduler::Heartbeat(const v1::HeartbeatRequest& req) {
  absl::MutexLock lock(&mu_);
  return Atomically([&] { return HeartbeatLocked(req); });
}

absl::StatusOr<v1::HeartbeatResponse> Scheduler::HeartbeatLocked(const v1::HeartbeatRequest& req) {
  v1::HeartbeatResponse resp;
  auto it = workers_.find(req.worker_id());
  if (it == workers_.end()) {
    resp.set_reregister(true);
    for (const v1::RunningTrial& r : req.running()) *resp.add_stop() = r;
    return resp;
  }
  WorkerState& w = it->second;
  w.last_seen = clock_->Now();
  std::string trial;
  for (const v1::RunningTrial& r : req.running()) {
    absl::StatusOr<ActiveTrial*> t = FindLease(w.row.id, r.trial_id(), r.epoch());
    if (!t.ok() || (*t)->stop_requested) {
      *resp.add_stop() = r;
      continue;
    }
    (*t)->lease_deadline = clock_->Now() + options_.lease_timeout;
    trial = r.trial_id();
    if (r.has_usage()) RecordGpuUsage(**t, r.usage(), "", /*final=*/false);
  }
  if (std::string message = Utf8Head(req.message(), kMaxMessageBytes); w.message != message) {
    w.message = std::move(message);
    if (absl::Status st = store_->UpdateWorkerMessage(w.row.id, w.message); !st.ok()) {
      spdlog::warn("could not save worker {}: {}", w.row.id, std::string(st.message()));
      write_error_.Update(st);
    }
  }
  std::string state = req.draining() ? "draining" : (trial.empty() ? "idle" : "busy");
  SetWorkerState(w, state, trial);
  return resp;
}

absl::StatusOr<v1::ReportMetricsResponse> Scheduler::ReportMetrics(
    const v1::ReportMetricsRequest& req) {
  absl::MutexLock lock(&mu_);
  return Atomically([&] { return ReportMetricsLocked(req); });
}

absl::StatusOr<v1::ReportMetricsResponse> Scheduler::ReportMetricsLocked(const v1::ReportMetricsRequest& req) {
  SWEEP_ASSIGN_OR_RETURN(ActiveTrial * t,
                         FindLease(req.worker_id(), req.trial_id(), req.epoch()));
  v1::ReportMetricsResponse resp;
  resp.set_stop(t->stop_requested);  // also for a duplicate
  t->lease_deadline = clock_->Now() + options_.lease_timeout;
  if (auto w = workers_.find(req.worker_id()); w != workers_.end()) {
    w->second.last_seen = clock_->Now();
  }
  // The worker numbers its reports 1, 2, ... and sends the next only once the last
  // was acknowledged: a number below 1 or beyond last_seq + 1 was sent by no lease,
  // and taking it would make every later report of the lease a "duplicate".
  if (req.seq() < 1 || req.seq() > t->row.last_seq + 1) {
    spdlog::warn("trial {}: refused a report with seq {} from worker {} (epoch {}): the "
                 "next one is {}",
                 t->row.id, req.seq(), req.worker_id(), req.epoch(), t->row.last_seq + 1);
    return absl::InvalidArgumentError(absl::StrCat(
        "report seq ", req.seq(), " for trial ", t->row.id, " (epoch ", req.epoch(),
        ") is out of order: reports of a lease are numbered 1, 2, ... and the next one is ",
        t->row.last_seq + 1, "; nothing was stored"));
  }
  if (req.seq() <= t->row.last_seq) {
    resp.set_duplicate(true);
    return resp;
  }
  const SweepState& s = sweeps_.at(t->row.sweep_id);
  TrialRow row = t->row;
  int64_t final_step = t->final_step;
  row.last_seq = req.seq();
  std::vector<MetricRow> points;
  points.reserve(req.points_size());
  std::vector<const v1::MetricPoint*> accepted;
  accepted.reserve(req.points_size());
  for (const v1::MetricPoint& p : req.points()) {
    if (std::string why = RejectReason(p, Utf8Head(p.name(), kShownNameBytes)); !why.empty()) {
      // One bad point loses only itself.
      if (resp.rejected_points() == 0) resp.set_rejected(why);
      resp.set_rejected_points(resp.rejected_points() + 1);
      std::string name = Utf8Head(p.name(), kShownNameBytes);
      if (t->rejected_names.size() < kMaxRejectedNames &&
          t->rejected_names.insert(name).second) {
        Event("metric_rejected", t->row.sweep_id, t->row.id, t->row.worker_id,
              absl::StrCat(why, " (further points of ", name.empty() ? "it" : name,
                           " like it are left out without another event)"));
      }
      continue;
    }
    accepted.push_back(&p);
    t->last_step = std::max(t->last_step, p.step());
    points.push_back(MetricRow{.attempt = row.attempt,
                               .step = p.step(),
                               .name = p.name(),
                               .value = p.value(),
                               .time = p.time()});
    if (s.spec.metric && p.name() == s.spec.metric->name) {
      if (p.step() >= final_step) {
        final_step = p.step();
        row.final_metric = p.value();
      }
      if (!row.best_metric || spec::IsBetter(s.spec.metric->goal, p.value(), *row.best_metric)) {
        row.best_metric = p.value();
      }
    }
  }
  SWEEP_RETURN_IF_ERROR(store_->AppendMetrics(row, points));
  if (resp.rejected_points() > 0) {
    spdlog::warn("trial {}: left out {} of the {} points of report {}: {}", row.id,
                 resp.rejected_points(), req.points_size(), req.seq(), resp.rejected());
  }
  // A worker says each notice once per trial, so a few per report is plenty; each is
  // kept to 1 KiB of clean text.
  constexpr int kMaxNotices = 16;
  for (int i = 0; i < req.notices_size() && i < kMaxNotices; ++i) {
    Event("trial_notice", row.sweep_id, row.id, req.worker_id(), Utf8Head(req.notices(i), 1024));
  }
  t->row = std::move(row);
  t->final_step = final_step;
  if (s.spec.metric) {
    SweepState& sweep = sweeps_.at(t->row.sweep_id);
    const spec::Metric& m = *s.spec.metric;
    std::vector<std::pair<int64_t, double>> series;
    for (const v1::MetricPoint* p : accepted) {
      if (p->name() == m.name) series.emplace_back(p->step(), p->value());
    }
    std::stable_sort(series.begin(), series.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [step, value] : series) {
      if (spec::ReachedTarget(m, value)) {
        StopLaunching(sweep, absl::StrCat("metric.target (", m.name, " ", *m.target,
                                          ") reached by trial ", t->row.id));
      }
      if (!sweep.stopper || t->stop_requested) continue;
      EarlyStopper::Decision d = sweep.stopper->Report(t->row.id, step, value);
      if (d.stop) {
        t->row.stopped_at_step = d.step;
        RequestStop(*t, TrialState::kStopped, d.reason);
      }
    }
  }
  resp.set_stop(t->stop_requested);
  return resp;
}

absl::StatusOr<v1::FinishTrialResponse> Scheduler::FinishTrial(
    const v1::FinishTrialRequest& req) {
  absl::MutexLock lock(&mu_);
  return Atomically([&] { return FinishTrialLocked(req); });
}

absl::StatusOr<v1::FinishTrialResponse> Scheduler::FinishTrialLocked(const v1::FinishTrialRequest& req) {
  absl::StatusOr<ActiveTrial*> found =
      FindLease(req.worker_id(), req.trial_id(), req.epoch());
  if (!found.ok()) {
    // A retried FinishTrial whose first copy was recorded is harmless.
    absl::StatusOr<TrialRow> row = store_->LoadTrial(req.trial_id());
    if (row.ok() && row->epoch == req.epoch() && row->worker_id == req.worker_id() &&
        row->state != "running" && row->state != "queued") {
      v1::FinishTrialResponse resp;
      // The first reply may have carried the slot's next trial and been lost: hand
      // that trial out again, or it would wait for its lease to expire.
      auto given = given_next_.find(req.worker_id());
      if (req.lease_next() && given != given_next_.end() &&
          given->second.after_trial == req.trial_id() &&
          given->second.after_epoch == req.epoch()) {
        auto next = active_.find(given->second.next.trial_id());
        if (next != active_.end() && next->second.row.state == "running" &&
            next->second.row.worker_id == req.worker_id() &&
            next->second.row.epoch == given->second.next.epoch()) {
          *resp.mutable_next() = given->second.next;
        }
      }
      return resp;
    }
    return found.status();
  }
  ActiveTrial& t = **found;
  if (req.has_usage() || !req.failure_kind().empty()) {
    RecordGpuUsage(t, req.usage(), req.failure_kind(), /*final=*/true);
  }
  std::string worker_id = req.worker_id();
  if (auto w = workers_.find(worker_id); w != workers_.end()) {
    w->second.last_seen = clock_->Now();
    SetWorkerState(w->second, w->second.row.state == "draining" ? "draining" : "idle", "");
  }
  // Whoever sent them, the logs' tails and the message are kept short
  // (docs/security.md): the dashboard serves them on every refresh.
  t.row.trial_dir = req.trial_dir().size() <= kMaxPathBytes ? CleanUtf8(req.trial_dir()) : "";
  t.row.stdout_tail = Utf8Tail(req.stdout_tail(), kMaxLogTailBytes);
  t.row.stderr_tail = Utf8Tail(req.stderr_tail(), kMaxLogTailBytes);
  if (req.stdout_tail().size() > kMaxLogTailBytes || req.stderr_tail().size() > kMaxLogTailBytes) {
    spdlog::warn("trial {}: kept the last {} bytes of log tails of {} and {} bytes", t.row.id,
                 kMaxLogTailBytes, req.stdout_tail().size(), req.stderr_tail().size());
  }
  const std::string message = Utf8Head(req.message(), kMaxMessageBytes);
  if (req.outcome() == v1::TRIAL_OUTCOME_RELEASED) {
    SWEEP_RETURN_IF_ERROR(LoseLease(t, absl::StrCat("released by worker ", worker_id,
                                                    (message.empty() ? "" : ": "), message),
                                    /*counts_as_attempt=*/false));
    return v1::FinishTrialResponse();
  }
  if (req.signal() != 0) {
    t.row.signal = req.signal();
    t.row.exit_code.reset();
  } else {
    t.row.exit_code = req.exit_code();
  }
  t.row.message = t.stop_requested && !t.stop_reason.empty() ? t.stop_reason : message;
  TrialState to = TrialState::kFailed;
  switch (req.outcome()) {
    case v1::TRIAL_OUTCOME_COMPLETED: to = TrialState::kCompleted; break;
    case v1::TRIAL_OUTCOME_STOPPED: to = t.stop_as; break;
    default: to = t.stop_requested ? t.stop_as : TrialState::kFailed; break;
  }
  std::string id = t.row.id, sweep_id = t.row.sweep_id;
  std::string ended = absl::StrCat(TrialStateName(to),
                                   t.row.message.empty() ? "" : ": ", t.row.message);
  SWEEP_RETURN_IF_ERROR(MoveTrial(t, to));
  Event("trial_ended", sweep_id, id, worker_id, ended);
  v1::FinishTrialResponse resp;
  // The slot's next trial in the same reply (and the same transaction): one round
  // trip between two trials instead of two.
  if (auto w = workers_.find(worker_id);
      req.lease_next() && !shutdown_ && w != workers_.end() && w->second.row.state != "draining") {
    SWEEP_ASSIGN_OR_RETURN(std::optional<v1::TrialAssignment> next, TryLease(w->second));
    if (next) {
      given_next_[worker_id] = GivenNext{req.trial_id(), req.epoch(), *next};
      *resp.mutable_next() = std::move(*next);
    }
  }
  // A max_concurrent slot or a GPU may have opened for a waiting trial. Idle
  // workers waiting at the end of a sweep are not woken by every finish.
  if (MayHaveWork()) work_available_.SignalAll();
  return resp;
}

void Scheduler::MaybeFinishSweep(SweepState& s) {
  if (s.row.state != "running") return;
  bool all_created = s.row.budget >= 0 && s.row.next_index >= s.row.budget;
  if (!(all_created || !s.row.launch_stopped.empty()) || s.running > 0 || !s.queued.empty()) {
    return;
  }
  s.row.state = "finished";
  s.row.finished_at = NowSeconds();
  s.row.end_reason = s.row.launch_stopped.empty()
                         ? absl::StrCat("all ", s.row.budget, " trials ended")
                         : absl::StrCat(s.row.launch_stopped, " after ", s.row.next_index,
                                        " trials");
  absl::Status st = store_->UpdateSweep(s.row);
  if (!st.ok()) {
    spdlog::warn("could not save sweep {}: {}", s.row.id, std::string(st.message()));
    write_error_.Update(st);
  }
  std::erase(sweep_order_, s.row.id);
  Event("sweep_finished", s.row.id, "", "", s.row.end_reason);
  spdlog::info("sweep {} finished: {}", s.row.id, s.row.end_reason);
}

void Scheduler::StopLaunching(SweepState& s, const std::string& why) {
  if (!s.row.launch_stopped.empty() || s.row.state != "running") return;
  s.row.launch_stopped = why;
  if (absl::Status st = store_->UpdateSweep(s.row); !st.ok()) {
    spdlog::warn("could not save sweep {}: {}", s.row.id, std::string(st.message()));
    write_error_.Update(st);
  }
  Event("sweep_budget", s.row.id, "", "", why);
  spdlog::info("sweep {}: no new trials: {}", s.row.id, why);
  MaybeFinishSweep(s);
}

void Scheduler::RequestStop(ActiveTrial& t, TrialState as, const std::string& why) {
  if (t.stop_requested) return;
  t.stop_requested = true;
  t.stop_as = as;
  t.stop_reason = why;
  Event("trial_stop_requested", t.row.sweep_id, t.row.id, t.row.worker_id, why);
}

// ---------------------------------------------------------------- client side

absl::StatusOr<v1::SubmitSweepResponse> Scheduler::SubmitSweep(
    const v1::SubmitSweepRequest& req) {
  for (const auto& [what, value] : {std::pair{"file name", &req.file_name()},
                                     std::pair{"working directory", &req.working_dir()}}) {
    if (value->size() > kMaxPathBytes) {
      return absl::InvalidArgumentError(absl::StrCat("the spec's ", what, " is ", value->size(),
                                                     " bytes, more than the ", kMaxPathBytes,
                                                     " a path may have"));
    }
  }
  std::string file = req.file_name().empty() ? "<spec>" : req.file_name();
  // The size first: the work of a parse grows with it.
  if (static_cast<int64_t>(req.spec_yaml().size()) > options_.max_spec_bytes) {
    spdlog::warn("refused a spec of {} bytes ({}): the limit is {}", req.spec_yaml().size(),
                 file, options_.max_spec_bytes);
    return absl::InvalidArgumentError(absl::StrCat(
        file, ": the spec is ", req.spec_yaml().size(), " bytes, more than the ",
        options_.max_spec_bytes,
        " this scheduler takes (sweep scheduler --max-spec-bytes); the sweep was not "
        "submitted"));
  }
  absl::StatusOr<spec::SweepSpec> parsed_or;
  {
    // A parse takes up to a few tens of MB: a burst of submits waits its turn.
    absl::MutexLock parse_lock(&parse_mu_);
    parse_mu_.Await(absl::Condition(
        +[](int* parses) { return *parses < kParallelParses; }, &parses_));
    ++parses_;
  }
  parsed_or = spec::ParseSpec(req.spec_yaml(), file);
  {
    absl::MutexLock parse_lock(&parse_mu_);
    --parses_;
  }
  SWEEP_ASSIGN_OR_RETURN(spec::SweepSpec parsed, std::move(parsed_or));
  absl::MutexLock lock(&mu_);
  // A sweep no connected GPU could ever run is refused, not queued forever.
  if (std::string why = NeverPlaceableNow(parsed); !why.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": ", why, "; the sweep was not submitted"));
  }
  if (req.dry_run()) return DryRun(parsed);
  return Atomically([&] { return SubmitSweepLocked(req, file, std::move(parsed)); });
}

absl::StatusOr<v1::SubmitSweepResponse> Scheduler::SubmitSweepLocked(
    const v1::SubmitSweepRequest& req, const std::string& file, spec::SweepSpec parsed) {
  SweepRow row;
  do {
    row.id = NewSweepId(gen_);
  } while (sweeps_.count(row.id) > 0 || store_->LoadSweep(row.id).ok());
  row.name = parsed.name.empty() ? row.id : parsed.name;
  row.spec_yaml = req.spec_yaml();
  row.file_name = file;
  row.working_dir = req.working_dir();
  row.method = std::string(spec::MethodName(parsed.method));
  if (parsed.metric) {
    row.metric_name = parsed.metric->name;
    row.metric_goal = std::string(spec::GoalName(parsed.metric->goal));
  } else {
    row.metric_goal = "minimize";
  }
  row.seed = parsed.seed ? *parsed.seed : absl::Uniform<uint32_t>(gen_);
  row.budget = spec::TrialBudget(parsed).value_or(-1);
  row.created_at = NowSeconds();
  SWEEP_RETURN_IF_ERROR(store_->InsertSweep(row));
  v1::SubmitSweepResponse resp;
  resp.set_sweep_id(row.id);
  resp.set_budget(row.budget);
  for (const std::string& w : parsed.warnings) resp.add_warnings(w);
  SweepState& s = sweeps_[row.id];
  s.row = row;
  s.spec = std::move(parsed);
  SWEEP_RETURN_IF_ERROR(LoadHistory(s));
  sweep_order_.push_back(row.id);
  Event("sweep_submitted", row.id, "", "",
        absl::StrCat(row.method, ", ", row.budget < 0 ? "unbounded" : absl::StrCat(row.budget),
                     " trials"));
  spdlog::info("sweep {} ({}) submitted: {} {} trials", row.id, row.name, row.method,
               row.budget);
  MaybeFinishSweep(s);  // a sweep of zero trials is done at once
  work_available_.SignalAll();
  return resp;
}

// What the scheduler adds to the records of its database (scheduler/read_model.h).
class Scheduler::Live : public LiveView {
 public:
  explicit Live(Scheduler* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) : s_(s) {}
  void AddToSweep(v1::SweepSummary& out) override ABSL_NO_THREAD_SAFETY_ANALYSIS {
    auto it = s_->sweeps_.find(out.id());
    if (it == s_->sweeps_.end()) return;
    out.set_waiting(s_->WaitingReason(it->second));
    if (it->second.row.state == "running") s_->AddEstimate(it->second, out);
  }
  void AddToTrial(v1::TrialSummary& out) override ABSL_NO_THREAD_SAFETY_ANALYSIS {
    s_->AddLiveGpuUsage(out);
  }
  void AddWorkers(v1::GetStatusResponse& resp) override ABSL_NO_THREAD_SAFETY_ANALYSIS {
    resp.set_write_failure(s_->write_failure_);
    for (const auto& [id, w] : s_->workers_) {
      if (w.row.state == "lost") continue;
      v1::WorkerSummary* ws = resp.add_workers();
      *ws = ToSummary(w.row);
      // What the scheduler heard last, which the row may lag.
      ws->set_last_heartbeat(ToUnixSecondsDouble(w.last_seen));
      ws->set_message(w.message);
    }
  }

 private:
  Scheduler* const s_;
};

Scheduler::SlotCount Scheduler::CountSlots(const SweepState& s) const {
  // CPU slots run one trial each; GPU slots as many as fit on their GPUs
  // (placement.h), which may be fewer than the slots.
  SlotCount c;
  GpuNeed need = NeedOf(s.spec.resources);
  if (need.gpus == 0) {
    for (const auto& [id, w] : workers_) {
      if (w.row.state == "lost" || w.row.state == "draining" || w.row.has_gpu) continue;
      ++c.eligible;
      c.idle += w.row.state == "idle";
    }
  }
  Capacity gpus = CountCapacity(need, GpuLoads(""));
  c.eligible += gpus.total;
  c.idle += gpus.free;
  c.gpu = gpus.total;
  return c;
}

void Scheduler::AddEstimate(const SweepState& s, v1::SweepSummary& out) {
  EstimateInput in;
  in.ended = s.durations;
  in.cost = s.spec.cost;
  double now = NowSeconds();
  for (const auto& [id, t] : active_) {
    if (t.row.sweep_id != s.row.id) continue;
    if (t.row.state == "queued") {
      ++in.unstarted;
      continue;
    }
    auto live = live_usage_.find(id);
    in.running.push_back(RunningTrial{.elapsed = now - t.row.started_at,
                                      .gpus = TrialGpus(s, t.row),
                                      .energy_joules = live != live_usage_.end() &&
                                                               live->second.first == t.row.epoch
                                                           ? live->second.second.energy_joules()
                                                           : 0,
                                      .last_step = t.last_step,
                                      .total_steps = ExpectedSteps(s.spec, t.row.params_json)});
  }
  bool more = s.row.launch_stopped.empty();
  in.unbounded = more && s.row.budget < 0;
  if (more && s.row.budget >= 0) in.unstarted += s.row.budget - s.row.next_index;
  SlotCount slots = CountSlots(s);
  in.slots = std::max(1, s.spec.max_concurrent > 0
                             ? std::min(slots.eligible, s.spec.max_concurrent)
                             : slots.eligible);
  in.gpus_per_trial = slots.gpu > 0 ? spec::GpuShare(s.spec.resources) : 0;
  in.energy = s.energy;
  Estimate e = EstimateSweep(in);
  out.set_has_estimate(e.known);
  out.set_estimate_basis(e.basis);
  out.set_eta_seconds(e.seconds_left);
  out.set_eta_low_seconds(e.seconds_left_low);
  out.set_eta_high_seconds(e.seconds_left_high);
  out.set_gpu_hours_so_far(e.gpu_hours_so_far);
  out.set_gpu_hours_total(e.gpu_hours_total);
  out.set_energy_kwh_so_far(e.energy_kwh_so_far);
  out.set_energy_kwh_total(e.energy_kwh_total);
  if (e.money_total) {
    out.set_has_cost(true);
    out.set_cost_total(*e.money_total);
    out.set_currency(s.spec.cost->currency);
  }
}

std::string Scheduler::WaitingReason(const SweepState& s) {
  if (s.row.state != "running") return "";
  if (s.queued.empty() && !CanCreateTrial(s)) return "";
  if (s.spec.max_concurrent > 0 && s.running >= s.spec.max_concurrent) {
    return absl::StrCat("max_concurrent (", s.spec.max_concurrent, ") reached");
  }
  auto [eligible, free, gpu] = CountSlots(s);
  if (eligible == 0) {
    if (s.spec.resources.gpus_per_trial == 0) return "no worker is connected";
    if (std::string why = NeverPlaceableNow(s.spec); !why.empty()) {
      return absl::StrCat("no connected GPU can run its trials: ", why);
    }
    return absl::StrCat("needs a GPU slot (resources.gpus_per_trial: ",
                        s.spec.resources.gpus_per_trial, ") and no GPU worker is connected");
  }
  if (free == 0) {
    return gpu > 0 && s.spec.resources.gpus_per_trial > 0
               ? absl::StrCat("the connected GPUs are full: they run at most ", eligible,
                              " of its trials at once (resources)")
               : absl::StrCat("all ", eligible, " worker slots are busy");
  }
  return "";
}

absl::StatusOr<v1::GetStatusResponse> Scheduler::GetStatus(const v1::GetStatusRequest& req) {
  absl::MutexLock lock(&mu_);
  Live live(this);
  return SweepRecords(store_, &live).Status(req.sweep_id(), NowSeconds());
}

absl::StatusOr<v1::ListTrialsResponse> Scheduler::ListTrials(
    const v1::ListTrialsRequest& req) {
  absl::MutexLock lock(&mu_);
  Live live(this);
  return SweepRecords(store_, &live).Trials(req.sweep_id(), req.metric());
}

absl::StatusOr<v1::CancelSweepResponse> Scheduler::CancelSweep(
    const v1::CancelSweepRequest& req) {
  absl::MutexLock lock(&mu_);
  return Atomically([&] { return CancelSweepLocked(req); });
}

absl::StatusOr<v1::CancelSweepResponse> Scheduler::CancelSweepLocked(const v1::CancelSweepRequest& req) {
  SWEEP_ASSIGN_OR_RETURN(SweepRow stored, store_->LoadSweep(req.sweep_id()));
  auto it = sweeps_.find(req.sweep_id());
  if (stored.state != "running" || it == sweeps_.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "sweep ", req.sweep_id(), " already ended (", stored.state, ")"));
  }
  SweepState& s = it->second;
  s.row.state = "cancelled";
  s.row.finished_at = NowSeconds();
  s.row.end_reason = "cancelled by user";
  SWEEP_RETURN_IF_ERROR(store_->UpdateSweep(s.row));
  std::erase(sweep_order_, s.row.id);
  v1::CancelSweepResponse resp;
  std::vector<std::string> ids;
  for (const auto& [id, t] : active_) {
    if (t.row.sweep_id == s.row.id) ids.push_back(id);
  }
  for (const std::string& id : ids) {
    ActiveTrial& t = active_.at(id);
    t.stop_requested = true;
    t.stop_as = TrialState::kCancelled;
    t.stop_reason = "the sweep was cancelled";
    if (t.row.state == "queued") {
      t.row.message = "cancelled before it ran again";
      SWEEP_RETURN_IF_ERROR(MoveTrial(t, TrialState::kCancelled));
      resp.set_cancelled_queued(resp.cancelled_queued() + 1);
    } else {
      resp.set_stopping_running(resp.stopping_running() + 1);
    }
  }
  resp.set_cancelled_queued(resp.cancelled_queued() + (s.row.budget >= 0
                                                           ? s.row.budget - s.row.next_index
                                                           : 0));
  Event("sweep_cancelled", s.row.id, "", "",
        absl::StrCat(resp.stopping_running(), " running trials told to stop"));
  return resp;
}

absl::StatusOr<v1::GetTrialResponse> Scheduler::GetTrial(const v1::GetTrialRequest& req) {
  absl::MutexLock lock(&mu_);
  Live live(this);
  return SweepRecords(store_, &live).Trial(req.trial_id());
}

// ---------------------------------------------------------------- housekeeping

void Scheduler::Tick() {
  absl::MutexLock lock(&mu_);
  absl::Status st = Atomically([&] { return TickLocked(); });
  if (!st.ok()) spdlog::error("housekeeping failed: {}", std::string(st.message()));
}

absl::Status Scheduler::TickLocked() {
  absl::Time now = clock_->Now();
  double now_s = ToUnixSecondsDouble(now);
  for (auto& [id, s] : sweeps_) {
    std::optional<double> limit = s.spec.max_duration_seconds;
    if (s.row.state != "running" || !limit || now_s - s.row.created_at < *limit) continue;
    std::string why = absl::StrCat("max_duration (", absl::FormatDuration(absl::Seconds(*limit)),
                                   ") reached");
    for (auto& [tid, t] : active_) {
      if (t.row.sweep_id == id && t.row.state == "running") {
        RequestStop(t, TrialState::kStopped, why);
      }
    }
    StopLaunching(s, why);
  }
  for (auto& [id, t] : active_) {
    std::optional<double> timeout = sweeps_.at(t.row.sweep_id).spec.trial_timeout_seconds;
    if (t.row.state == "running" && timeout && now_s - t.row.started_at >= *timeout) {
      RequestStop(t, TrialState::kStopped,
                  absl::StrCat("timeout (", absl::FormatDuration(absl::Seconds(*timeout)),
                               ") exceeded"));
    }
  }
  std::vector<std::string> expired;
  for (const auto& [id, t] : active_) {
    if (t.row.state == "running" && t.lease_deadline < now) expired.push_back(id);
  }
  for (const std::string& id : expired) {
    ActiveTrial& t = active_.at(id);
    std::string why = absl::StrCat("worker ", t.row.worker_id, " went silent for over ",
                                   absl::FormatDuration(options_.lease_timeout));
    if (absl::Status st = LoseLease(t, why, /*counts_as_attempt=*/true); !st.ok()) {
      spdlog::error("trial {}: could not expire its lease: {}", id, std::string(st.message()));
      return st;  // all of this tick is rolled back and tried again at the next
    }
  }
  for (auto& [id, w] : workers_) {
    if (w.row.state != "lost" && w.last_seen + options_.lease_timeout < now) {
      spdlog::warn("worker {} lost: silent for over {}", id,
                   absl::FormatDuration(options_.lease_timeout));
      Event("worker_lost", "", "", id, "stopped heartbeating");
      SetWorkerState(w, "lost", "");
    }
  }
  return absl::OkStatus();
}

int Scheduler::WaitingLeases() {
  absl::MutexLock lock(&mu_);
  return waiting_leases_;
}

void Scheduler::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
  work_available_.SignalAll();
}

}  // namespace sweep
