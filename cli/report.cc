#include "cli/report.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace sweep {
namespace {

nlohmann::json Params(const v1::TrialSummary& t) {
  nlohmann::json p = nlohmann::json::parse(t.params_json(), nullptr, false);
  return p.is_object() ? p : nlohmann::json::object();
}

std::string ParamText(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return FormatValue(v.get<double>());
  return v.dump();
}

// Parameter names of all trials, flattened, in first-seen order.
std::vector<std::string> ParamColumns(const v1::ListTrialsResponse& r) {
  std::vector<std::string> cols;
  std::set<std::string> seen;
  for (const v1::TrialSummary& t : r.trials()) {
    nlohmann::json flat = FlattenParams(Params(t));
    for (const auto& [k, v] : flat.items()) {
      if (seen.insert(k).second) cols.push_back(k);
    }
  }
  return cols;
}

double Duration(const v1::TrialSummary& t, double now) {
  if (t.started_at() == 0) return 0;
  return (t.ended_at() > 0 ? t.ended_at() : now) - t.started_at();
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  return absl::StrCat("\"", absl::StrReplaceAll(s, {{"\"", "\"\""}}), "\"");
}

}  // namespace

std::string GpuNote(const v1::TrialSummary& t) {
  std::vector<std::string> parts;
  if (!t.failure_kind().empty()) parts.push_back(t.failure_kind());
  if (!t.gpu_flag().empty() && t.gpu_flag() != t.failure_kind()) parts.push_back(t.gpu_flag());
  if (t.has_gpu_usage()) {
    parts.push_back(absl::StrFormat("%d MiB peak", t.peak_gpu_memory_mib()));
    parts.push_back(absl::StrFormat("%.3g kJ", t.energy_joules() / 1000));
  }
  return parts.empty() ? "-" : absl::StrJoin(parts, ", ");
}

std::string FormatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string FormatValue(double v) { return absl::StrFormat("%.6g", v); }

std::string FormatDuration(double seconds) {
  int64_t s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
}

std::string FormatProgress(const v1::SweepSummary& s, double now) {
  int64_t done = s.completed() + s.failed() + s.stopped() + s.cancelled();
  std::string total = s.budget() >= 0 ? absl::StrCat(s.budget()) : "?";
  std::string line = absl::StrCat("sweep ", s.id(), ": ", done, "/", total, " done, ",
                                  s.running(), " running, ", s.queued(), " queued");
  if (s.failed() > 0) absl::StrAppend(&line, ", ", s.failed(), " failed");
  if (s.has_best()) {
    absl::StrAppend(&line, " | best ", s.metric_name(), " ", FormatValue(s.best_value()),
                    " (", s.best_trial(), ")");
  }
  double end = s.finished_at() > 0 ? s.finished_at() : now;
  absl::StrAppend(&line, " | ", FormatDuration(end - s.created_at()));
  if (s.has_estimate()) {
    absl::StrAppend(&line, " | ETA ", FormatDuration(s.eta_seconds()));
    if (s.has_cost()) {
      absl::StrAppend(&line, ", ", absl::StrFormat("%.2f", s.cost_total()), " ",
                      s.currency());
    }
  }
  return line;
}

std::string FormatStatus(const v1::GetStatusResponse& status, double now) {
  std::vector<std::vector<std::string>> rows = {
      {"SWEEP", "NAME", "STATE", "METHOD", "DONE", "RUNNING", "QUEUED", "FAILED", "BEST",
       "ELAPSED"}};
  for (const v1::SweepSummary& s : status.sweeps()) {
    int64_t done = s.completed() + s.failed() + s.stopped() + s.cancelled();
    std::string best = s.has_best() ? absl::StrCat(s.metric_name(), "=",
                                                   FormatValue(s.best_value()))
                                    : "-";
    double end = s.finished_at() > 0 ? s.finished_at() : now;
    rows.push_back({s.id(), s.name(), s.state(), s.method(),
                    absl::StrCat(done, "/", s.budget() >= 0 ? absl::StrCat(s.budget()) : "?"),
                    absl::StrCat(s.running()), absl::StrCat(s.queued()),
                    absl::StrCat(s.failed()), best, FormatDuration(end - s.created_at())});
  }
  std::string out = status.sweeps().empty() ? "no sweeps yet\n" : FormatTable(rows);
  for (const v1::SweepSummary& s : status.sweeps()) {
    if (!s.waiting().empty()) {
      absl::StrAppend(&out, s.id(), ": queued trials wait: ", s.waiting(), "\n");
    }
    if (s.has_estimate()) {
      absl::StrAppend(&out, s.id(), ": about ", FormatDuration(s.eta_seconds()), " left (",
                      FormatDuration(s.eta_low_seconds()), " to ",
                      FormatDuration(s.eta_high_seconds()), ")");
      if (s.gpu_hours_total() > 0) {
        absl::StrAppend(&out, absl::StrFormat(", %.2f of %.2f GPU-hours", s.gpu_hours_so_far(),
                                              s.gpu_hours_total()));
      }
      if (s.energy_kwh_total() > 0) {
        absl::StrAppend(&out, absl::StrFormat(", %.3f of %.3f kWh", s.energy_kwh_so_far(),
                                              s.energy_kwh_total()));
      }
      if (s.has_cost()) {
        absl::StrAppend(&out, absl::StrFormat(", %.2f %s in all", s.cost_total(), s.currency()));
      }
      absl::StrAppend(&out, "; from ", s.estimate_basis(), "\n");
    } else if (s.has_spent()) {
      absl::StrAppend(&out, s.id(), ": spent ",
                      absl::StrFormat("%.2f GPU-hours, %.3f kWh", s.gpu_hours_spent(),
                                      s.energy_kwh_spent()));
      if (s.has_cost_spent()) {
        absl::StrAppend(&out, absl::StrFormat(", %.2f %s", s.cost_spent(), s.currency()));
      }
      absl::StrAppend(&out, "\n");
    } else if (s.state() == "running" && !s.estimate_basis().empty()) {
      absl::StrAppend(&out, s.id(), ": ", s.estimate_basis(), "\n");
    }
    if (s.no_gpu_activity() > 0 || s.oom() > 0) {
      absl::StrAppend(&out, s.id(), ": GPU: ");
      if (s.no_gpu_activity() > 0) {
        absl::StrAppend(&out, s.no_gpu_activity(), " trial", s.no_gpu_activity() == 1 ? "" : "s",
                        " held no GPU memory (no_gpu_activity: running on the CPU?)",
                        s.oom() > 0 ? ", " : "");
      }
      if (s.oom() > 0) {
        absl::StrAppend(&out, s.oom(), " ran out of GPU memory (oom)");
      }
      absl::StrAppend(&out, "; see sweep trials ", s.id(), "\n");
    }
    if (!s.launch_stopped().empty() && s.state() == "running") {
      absl::StrAppend(&out, s.id(), ": launching no new trials: ", s.launch_stopped(), "\n");
    }
  }
  if (status.sweeps_size() == 1 && !status.sweeps(0).end_reason().empty()) {
    absl::StrAppend(&out, "ended: ", status.sweeps(0).end_reason(), "\n");
  }
  if (!status.write_failure().empty()) {
    absl::StrAppend(&out, "scheduler: cannot write its database (", status.write_failure(),
                    "); nothing is recorded until it can: free disk space or release the "
                    "lock\n");
  }
  std::vector<std::vector<std::string>> workers = {
      {"WORKER", "SLOT", "STATE", "TRIAL", "LAST SEEN"}};
  for (const v1::WorkerSummary& w : status.workers()) {
    std::string slot = w.has_gpu() ? absl::StrFormat("GPU %d %s (%d MiB)", w.gpu().index(),
                                                     w.gpu().name(), w.gpu().memory_mib())
                                   : "CPU";
    workers.push_back({w.id(), slot, w.state(), w.trial_id().empty() ? "-" : w.trial_id(),
                       absl::StrCat(FormatDuration(now - w.last_heartbeat()), " ago")});
  }
  absl::StrAppend(&out, "\n", status.workers().empty() ? "no workers connected\n"
                                                        : FormatTable(workers));
  for (const v1::WorkerSummary& w : status.workers()) {
    if (!w.message().empty()) absl::StrAppend(&out, w.id(), ": ", w.message(), "\n");
  }
  return out;
}

std::vector<v1::TrialSummary> RankTrials(const v1::ListTrialsResponse& r) {
  std::vector<v1::TrialSummary> out(r.trials().begin(), r.trials().end());
  bool maximize = r.sweep().metric_goal() == "maximize";
  std::stable_sort(out.begin(), out.end(),
                   [maximize](const v1::TrialSummary& a, const v1::TrialSummary& b) {
                     if (a.has_final() != b.has_final()) return a.has_final();
                     if (!a.has_final()) return false;
                     return maximize ? a.final_value() > b.final_value()
                                     : a.final_value() < b.final_value();
                   });
  return out;
}

std::string FormatTrials(const v1::ListTrialsResponse& r, int limit) {
  std::vector<std::string> params = ParamColumns(r);
  std::string metric = r.sweep().metric_name();
  std::vector<std::string> header = {"TRIAL", "STATE"};
  if (!metric.empty()) header.push_back(metric);
  bool extra_metric = false;
  for (const v1::TrialSummary& t : r.trials()) extra_metric |= t.has_metric_value();
  if (extra_metric) header.push_back("SORT METRIC");
  for (const char* h : {"ATTEMPT", "TIME", "WORKER"}) header.push_back(h);
  bool gpu_notes = false;
  for (const v1::TrialSummary& t : r.trials()) {
    gpu_notes |= t.has_gpu_usage() || !t.gpu_flag().empty() || !t.failure_kind().empty();
  }
  if (gpu_notes) header.push_back("GPU");
  for (const std::string& p : params) header.push_back(p);
  std::vector<std::vector<std::string>> rows = {header};
  double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  for (const v1::TrialSummary& t : r.trials()) {
    if (limit >= 0 && static_cast<int>(rows.size()) > limit) break;
    std::vector<std::string> row = {t.id(), t.state()};
    if (!metric.empty()) row.push_back(t.has_final() ? FormatValue(t.final_value()) : "-");
    if (extra_metric) {
      row.push_back(t.has_metric_value() ? FormatValue(t.metric_value()) : "-");
    }
    row.push_back(absl::StrCat(t.attempt()));
    row.push_back(t.started_at() > 0 ? FormatDuration(Duration(t, now)) : "-");
    row.push_back(t.worker().empty() ? "-" : t.worker());
    if (gpu_notes) row.push_back(GpuNote(t));
    nlohmann::json flat = FlattenParams(Params(t));
    for (const std::string& p : params) {
      row.push_back(flat.contains(p) ? ParamText(flat[p]) : "");
    }
    rows.push_back(std::move(row));
  }
  std::string out = FormatTable(rows);
  // What the worker did about a trial's output, under the table.
  for (const v1::TrialSummary& t : r.trials()) {
    for (const std::string& n : t.notices()) absl::StrAppend(&out, t.id(), ": ", n, "\n");
  }
  return out;
}

nlohmann::json FlattenParams(const nlohmann::json& params) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [k, v] : params.items()) {
    if (v.is_object() && !v.empty()) {
      nlohmann::json inner = FlattenParams(v);
      for (const auto& [k2, v2] : inner.items()) out[k + "." + k2] = v2;
    } else {
      out[k] = v;
    }
  }
  return out;
}

nlohmann::json ToJson(const v1::SweepSummary& s) {
  nlohmann::json j = {{"id", s.id()},
                      {"name", s.name()},
                      {"state", s.state()},
                      {"method", s.method()},
                      {"metric", s.metric_name()},
                      {"goal", s.metric_goal()},
                      {"budget", s.budget() >= 0 ? nlohmann::json(s.budget()) : nullptr},
                      {"queued", s.queued()},
                      {"running", s.running()},
                      {"completed", s.completed()},
                      {"failed", s.failed()},
                      {"stopped", s.stopped()},
                      {"cancelled", s.cancelled()},
                      {"created_at", s.created_at()},
                      {"finished_at", s.finished_at() > 0 ? nlohmann::json(s.finished_at())
                                                          : nullptr},
                      {"end_reason", s.end_reason()},
                      {"waiting", s.waiting()},
                      {"launch_stopped", s.launch_stopped()},
                      {"no_gpu_activity", s.no_gpu_activity()},
                      {"oom", s.oom()}};
  j["estimate"] =
      s.has_estimate()
          ? nlohmann::json{{"seconds_left", s.eta_seconds()},
                           {"seconds_left_low", s.eta_low_seconds()},
                           {"seconds_left_high", s.eta_high_seconds()},
                           {"basis", s.estimate_basis()},
                           {"gpu_hours_so_far", s.gpu_hours_so_far()},
                           {"gpu_hours_total", s.gpu_hours_total()},
                           {"energy_kwh_so_far", s.energy_kwh_so_far()},
                           {"energy_kwh_total", s.energy_kwh_total()},
                           {"cost_total", s.has_cost() ? nlohmann::json(s.cost_total())
                                                       : nlohmann::json(nullptr)},
                           {"currency", s.currency()}}
          : nlohmann::json(nullptr);
  j["spent"] = s.has_spent()
                   ? nlohmann::json{{"gpu_hours", s.gpu_hours_spent()},
                                    {"energy_kwh", s.energy_kwh_spent()},
                                    {"cost", s.has_cost_spent() ? nlohmann::json(s.cost_spent())
                                                                : nlohmann::json(nullptr)},
                                    {"currency", s.currency()}}
                   : nlohmann::json(nullptr);
  j["best"] = s.has_best() ? nlohmann::json{{"trial", s.best_trial()},
                                            {"value", s.best_value()}}
                           : nlohmann::json(nullptr);
  return j;
}

nlohmann::json ToJson(const v1::TrialSummary& t) {
  nlohmann::json j = {{"id", t.id()},
                      {"sweep_id", t.sweep_id()},
                      {"state", t.state()},
                      {"params", Params(t)},
                      {"worker", t.worker()},
                      {"host", t.host()},
                      {"gpu", t.gpu() >= 0 ? nlohmann::json(t.gpu()) : nullptr},
                      {"attempt", t.attempt()},
                      {"started_at", t.started_at() > 0 ? nlohmann::json(t.started_at())
                                                        : nullptr},
                      {"ended_at", t.ended_at() > 0 ? nlohmann::json(t.ended_at()) : nullptr},
                      {"final", t.has_final() ? nlohmann::json(t.final_value()) : nullptr},
                      {"best", t.has_best() ? nlohmann::json(t.best_value()) : nullptr},
                      {"message", t.message()},
                      {"trial_dir", t.trial_dir()},
                      {"argv", std::vector<std::string>(t.argv().begin(), t.argv().end())}};
  j["exit_code"] = t.has_exit() && t.signal() == 0 ? nlohmann::json(t.exit_code()) : nullptr;
  j["signal"] = t.signal() != 0 ? nlohmann::json(t.signal()) : nullptr;
  if (t.has_metric_value()) j["sort_value"] = t.metric_value();
  j["notices"] = std::vector<std::string>(t.notices().begin(), t.notices().end());
  j["gpus"] = std::vector<int>(t.gpus().begin(), t.gpus().end());
  j["gpu_flag"] = t.gpu_flag().empty() ? nlohmann::json(nullptr) : nlohmann::json(t.gpu_flag());
  j["failure_kind"] =
      t.failure_kind().empty() ? nlohmann::json(nullptr) : nlohmann::json(t.failure_kind());
  j["gpu_usage"] = t.has_gpu_usage()
                       ? nlohmann::json{{"peak_memory_mib", t.peak_gpu_memory_mib()},
                                        {"energy_joules", t.energy_joules()},
                                        {"utilization", t.gpu_utilization()}}
                       : nlohmann::json(nullptr);
  return j;
}

nlohmann::json ToJson(const v1::WorkerSummary& w) {
  nlohmann::json j = {{"id", w.id()},
                      {"host", w.host()},
                      {"state", w.state()},
                      {"trial", w.trial_id()},
                      {"last_heartbeat", w.last_heartbeat()},
                      {"message", w.message()}};
  j["gpu"] = w.has_gpu() ? nlohmann::json{{"index", w.gpu().index()},
                                          {"uuid", w.gpu().uuid()},
                                          {"name", w.gpu().name()},
                                          {"memory_mib", w.gpu().memory_mib()}}
                         : nlohmann::json(nullptr);
  return j;
}

std::string TrialsToCsv(const v1::ListTrialsResponse& r) {
  std::string metric = r.sweep().metric_name().empty() ? "metric" : r.sweep().metric_name();
  std::vector<std::string> params = ParamColumns(r);
  std::vector<std::string> header = {"id", "state", "attempt", "worker", "gpu",
                                     "started_at", "ended_at", "exit_code", metric,
                                     "best_" + metric};
  for (const std::string& p : params) header.push_back(p);
  std::string out;
  std::vector<std::string> cells;
  for (const std::string& h : header) cells.push_back(CsvField(h));
  absl::StrAppend(&out, absl::StrJoin(cells, ","), "\n");
  for (const v1::TrialSummary& t : r.trials()) {
    cells = {t.id(), t.state(), absl::StrCat(t.attempt()), CsvField(t.worker()),
             t.gpu() >= 0 ? absl::StrCat(t.gpu()) : "",
             t.started_at() > 0 ? absl::StrFormat("%.3f", t.started_at()) : "",
             t.ended_at() > 0 ? absl::StrFormat("%.3f", t.ended_at()) : "",
             t.has_exit() && t.signal() == 0 ? absl::StrCat(t.exit_code()) : "",
             t.has_final() ? nlohmann::json(t.final_value()).dump() : "",
             t.has_best() ? nlohmann::json(t.best_value()).dump() : ""};
    nlohmann::json flat = FlattenParams(Params(t));
    for (const std::string& p : params) {
      cells.push_back(flat.contains(p) ? CsvField(flat[p].is_string()
                                                      ? flat[p].get<std::string>()
                                                      : flat[p].dump())
                                       : "");
    }
    absl::StrAppend(&out, absl::StrJoin(cells, ","), "\n");
  }
  return out;
}

}  // namespace sweep
