#include "scheduler/read_model.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/status_util.h"
#include "nlohmann/json.hpp"
#include "scheduler/estimate.h"
#include "sweeps/spec.h"

namespace sweep {

v1::TrialSummary ToSummary(const TrialRow& t) {
  v1::TrialSummary s;
  s.set_id(t.id);
  s.set_sweep_id(t.sweep_id);
  s.set_state(t.state);
  s.set_params_json(t.params_json);
  s.set_worker(t.worker_id);
  s.set_host(t.host);
  s.set_gpu(t.gpu);
  s.set_attempt(t.attempt);
  s.set_started_at(t.started_at);
  s.set_ended_at(t.ended_at);
  s.set_has_exit(t.exit_code.has_value() || t.signal != 0);
  s.set_exit_code(t.exit_code.value_or(0));
  s.set_signal(t.signal);
  s.set_has_final(t.final_metric.has_value());
  s.set_final_value(t.final_metric.value_or(0));
  s.set_has_best(t.best_metric.has_value());
  s.set_best_value(t.best_metric.value_or(0));
  s.set_message(t.message);
  s.set_trial_dir(t.trial_dir);
  nlohmann::json argv = nlohmann::json::parse(t.argv_json, nullptr, false);
  if (argv.is_array()) {
    for (const auto& a : argv) {
      if (a.is_string()) s.add_argv(a.get<std::string>());
    }
  }
  return s;
}

v1::WorkerSummary ToSummary(const WorkerRow& w) {
  v1::WorkerSummary s;
  s.set_id(w.id);
  s.set_host(w.host);
  if (w.has_gpu) {
    s.mutable_gpu()->set_index(w.gpu_index);
    s.mutable_gpu()->set_uuid(w.gpu_uuid);
    s.mutable_gpu()->set_name(w.gpu_name);
    s.mutable_gpu()->set_memory_mib(w.gpu_memory_mib);
  }
  s.set_state(w.state);
  s.set_trial_id(w.trial_id);
  s.set_last_heartbeat(w.last_heartbeat);
  s.set_message(w.message);
  return s;
}

absl::StatusOr<v1::SweepSummary> SweepRecords::Summarize(const SweepRow& row) {
  v1::SweepSummary s;
  s.set_id(row.id);
  s.set_name(row.name);
  s.set_state(row.state);
  s.set_method(row.method);
  s.set_metric_name(row.metric_name);
  s.set_metric_goal(row.metric_goal);
  s.set_budget(row.budget);
  s.set_created_at(row.created_at);
  s.set_finished_at(row.finished_at);
  s.set_end_reason(row.end_reason);
  s.set_launch_stopped(row.launch_stopped);
  SWEEP_ASSIGN_OR_RETURN(auto counts, store_->CountTrials(row.id));
  SWEEP_ASSIGN_OR_RETURN(auto gpu_notes, store_->CountGpuNotes(row.id));
  s.set_no_gpu_activity(gpu_notes["no_gpu_activity"]);
  s.set_oom(gpu_notes["oom"]);
  int64_t unstarted = row.state == "running" && row.budget >= 0 && row.launch_stopped.empty()
                          ? row.budget - row.next_index
                          : 0;
  s.set_queued(counts["queued"] + unstarted);
  s.set_running(counts["running"]);
  s.set_completed(counts["completed"]);
  s.set_failed(counts["failed"]);
  s.set_stopped(counts["stopped"]);
  s.set_cancelled(counts["cancelled"]);
  if (!row.metric_name.empty()) {
    SWEEP_ASSIGN_OR_RETURN(auto best, store_->BestTrial(row.id, row.metric_goal == "maximize"));
    if (best) {
      s.set_has_best(true);
      s.set_best_trial(best->first);
      s.set_best_value(best->second);
    }
  }
  if (row.state != "running") SWEEP_RETURN_IF_ERROR(AddSpent(row, s));
  if (live_ != nullptr) live_->AddToSweep(s);
  return s;
}

absl::Status SweepRecords::AddSpent(const SweepRow& row, v1::SweepSummary& out) {
  SWEEP_ASSIGN_OR_RETURN(SpentRow spent, store_->Spent(row.id));
  // A sweep of CPU trials spent no GPU-hours: nothing to say.
  if (spent.gpu_trial_seconds <= 0 && spent.energy_joules <= 0) return absl::OkStatus();
  // The spec as stored was valid when submitted; one that no longer parses (a
  // newer sweep's key) only loses the GPU share and the money.
  absl::StatusOr<spec::SweepSpec> parsed = spec::ParseSpec(row.spec_yaml, row.file_name);
  double share = parsed.ok() ? spec::GpuShare(parsed->resources) : 1;
  out.set_has_spent(true);
  out.set_gpu_hours_spent(spent.gpu_trial_seconds * share / 3600);
  out.set_energy_kwh_spent(spent.energy_joules / kJoulesPerKwh);
  if (parsed.ok() && parsed->cost) {
    out.set_has_cost_spent(true);
    out.set_cost_spent(out.gpu_hours_spent() * parsed->cost->gpu_hour +
                       out.energy_kwh_spent() * parsed->cost->kwh);
    out.set_currency(parsed->cost->currency);
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::GetStatusResponse> SweepRecords::Status(const std::string& sweep_id,
                                                           double now) {
  v1::GetStatusResponse resp;
  if (!sweep_id.empty()) {
    SWEEP_ASSIGN_OR_RETURN(SweepRow row, store_->LoadSweep(sweep_id));
    SWEEP_ASSIGN_OR_RETURN(*resp.add_sweeps(), Summarize(row));
  } else {
    SWEEP_ASSIGN_OR_RETURN(std::vector<SweepRow> rows, store_->LoadSweeps());
    for (const SweepRow& row : rows) {
      SWEEP_ASSIGN_OR_RETURN(*resp.add_sweeps(), Summarize(row));
    }
  }
  if (live_ != nullptr) {
    live_->AddWorkers(resp);
    return resp;
  }
  SWEEP_ASSIGN_OR_RETURN(std::vector<WorkerRow> workers, store_->LoadWorkers());
  for (const WorkerRow& w : workers) {
    if (w.state == "lost" || w.last_heartbeat < now - kStoredWorkerWindowSeconds) continue;
    *resp.add_workers() = ToSummary(w);
  }
  return resp;
}

absl::StatusOr<v1::ListTrialsResponse> SweepRecords::Trials(const std::string& sweep_id,
                                                            const std::string& metric) {
  SWEEP_ASSIGN_OR_RETURN(SweepRow row, store_->LoadSweep(sweep_id));
  v1::ListTrialsResponse resp;
  SWEEP_ASSIGN_OR_RETURN(*resp.mutable_sweep(), Summarize(row));
  SWEEP_ASSIGN_OR_RETURN(std::vector<TrialRow> trials, store_->LoadTrials(sweep_id));
  std::map<std::string, double> values;
  if (!metric.empty()) {
    SWEEP_ASSIGN_OR_RETURN(values, store_->LastValues(sweep_id, metric));
  }
  SWEEP_ASSIGN_OR_RETURN(auto gpu_rows, store_->LoadTrialGpu(sweep_id));
  SWEEP_ASSIGN_OR_RETURN(auto notices, store_->LoadNotices(sweep_id));
  for (const TrialRow& t : trials) {
    v1::TrialSummary* s = resp.add_trials();
    *s = ToSummary(t);
    if (auto n = notices.find(t.id); n != notices.end()) {
      for (const std::string& text : n->second) s->add_notices(text);
    }
    auto g = gpu_rows.find(t.id);
    AddGpu(g == gpu_rows.end() ? nullptr : &g->second, *s);
    if (auto it = values.find(t.id); it != values.end()) {
      s->set_has_metric_value(true);
      s->set_metric_value(it->second);
    }
  }
  return resp;
}

absl::StatusOr<v1::GetTrialResponse> SweepRecords::Trial(const std::string& trial_id) {
  SWEEP_ASSIGN_OR_RETURN(TrialRow row, store_->LoadTrial(trial_id));
  v1::GetTrialResponse resp;
  *resp.mutable_trial() = ToSummary(row);
  absl::StatusOr<TrialGpuRow> gpu_row = store_->LoadOneTrialGpu(row.id);
  AddGpu(gpu_row.ok() ? &*gpu_row : nullptr, *resp.mutable_trial());
  resp.set_stdout_tail(row.stdout_tail);
  resp.set_stderr_tail(row.stderr_tail);
  return resp;
}

void SweepRecords::AddGpu(const TrialGpuRow* row, v1::TrialSummary& out) {
  if (row != nullptr) {
    out.set_gpu_flag(row->gpu_flag);
    out.set_failure_kind(row->failure_kind);
    for (absl::string_view g : absl::StrSplit(row->gpus, ',', absl::SkipEmpty())) {
      int index = 0;
      if (absl::SimpleAtoi(g, &index)) out.add_gpus(index);
    }
    if (row->energy_joules || row->peak_memory_mib) {
      out.set_has_gpu_usage(true);
      out.set_peak_gpu_memory_mib(row->peak_memory_mib.value_or(0));
      out.set_energy_joules(row->energy_joules.value_or(0));
      out.set_gpu_utilization(row->utilization.value_or(0));
    }
  }
  if (live_ != nullptr && out.state() == "running") live_->AddToTrial(out);
}

}  // namespace sweep
