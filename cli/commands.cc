#include "cli/commands.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "absl/synchronization/notification.h"
#include "cli/client.h"
#include "cli/db_source.h"
#include "cli/report.h"
#include "common/status_util.h"
#include "spdlog/spdlog.h"
#include "sweeps/spec.h"

namespace sweep {
namespace {

namespace fs = std::filesystem;

int Fail(const absl::Status& st) {
  std::cerr << "error: " << st.message() << "\n";
  return ExitCodeFor(st);
}

double Now() { return absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()); }

void PrintJson(const nlohmann::json& j) { std::cout << j.dump(2) << "\n"; }

std::string Describe(const spec::SweepSpec& s, std::optional<int64_t> budget) {
  std::string out =
      absl::StrCat(std::string(spec::MethodName(s.method)), " search over ",
                   s.parameters.size(), " parameter", s.parameters.size() == 1 ? "" : "s", ", ");
  if (budget) {
    absl::StrAppend(&out, *budget, " trial", *budget == 1 ? "" : "s");
  } else {
    absl::StrAppend(&out, "unbounded (runs until cancelled; set run_cap to bound it)");
  }
  if (s.metric) {
    absl::StrAppend(&out, ", ",
                    s.metric->goal == spec::Goal::kMaximize ? "maximize " : "minimize ",
                    s.metric->name);
  }
  return out;
}

}  // namespace

std::string CheckProgram(const spec::SweepSpec& s) {
  nlohmann::json params = s.method == spec::Method::kGrid ? spec::GridPoint(s, 0)
                                                          : spec::SamplePoint(s, 0, 0);
  absl::StatusOr<std::vector<std::string>> argv = spec::BuildCommand(s, params);
  if (!argv.ok()) return std::string(argv.status().message());
  // The program is the first argument that names a file; interpreters such as
  // /usr/bin/env or python3 come before it.
  for (const std::string& arg : *argv) {
    if (arg.starts_with("-") || arg.find('=') != std::string::npos) break;
    bool has_slash = arg.find('/') != std::string::npos;
    if (has_slash && !fs::exists(arg)) {
      return absl::StrCat("'", arg, "' does not exist in ", fs::current_path().string(),
                          "; trials run from the directory you submit from, so run this "
                          "command where the program is (or use an absolute path)");
    }
    if (arg == s.program && !has_slash && !fs::exists(arg)) {
      return absl::StrCat("program '", arg, "' does not exist in ",
                          fs::current_path().string());
    }
  }
  return "";
}

int SchedulerCommand(const SchedulerCommandOptions& o) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  absl::StatusOr<std::unique_ptr<SchedulerServer>> server = SchedulerServer::Start(o.server);
  if (!server.ok()) return Fail(server.status());
  if (!o.port_file.empty()) {
    std::string tmp = o.port_file + ".tmp";
    std::ofstream(tmp) << (*server)->address() << "\n";
    fs::rename(tmp, o.port_file);
  }
  int sig = 0;
  sigwait(&set, &sig);
  spdlog::info("got signal {}; shutting down", sig);
  (*server)->Stop();
  return kExitOk;
}

int WorkerCommand(const WorkerOptions& o) {
  std::unique_ptr<GpuDiscovery> discovery = NewNvmlDiscovery();
  return RunWorker(o, discovery.get());
}

int SubmitCommand(const ClientOptions& scheduler, const std::string& file, bool dry_run) {
  // Validate here first: a bad file never reaches the scheduler.
  absl::StatusOr<spec::SweepSpec> parsed = spec::LoadSpecFile(file);
  if (!parsed.ok()) return Fail(parsed.status());
  std::ifstream in(file, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  v1::SubmitSweepRequest req;
  req.set_spec_yaml(text);
  req.set_file_name(file);
  req.set_working_dir(fs::current_path().string());
  req.set_dry_run(dry_run);
  absl::StatusOr<SweepClient> client = SweepClient::Connect(scheduler);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<v1::SubmitSweepResponse> resp = client->Submit(req);
  if (!resp.ok()) return Fail(resp.status());
  for (const std::string& w : resp->warnings()) std::cerr << "warning: " << w << "\n";
  if (std::string w = CheckProgram(*parsed); !w.empty()) std::cerr << "warning: " << w << "\n";
  if (dry_run) {
    std::cout << "dry run: nothing was submitted\n"
              << "trials: " << Describe(*parsed, spec::TrialBudget(*parsed)) << "\n"
              << "placement: " << resp->placement() << "\n"
              << "estimate: none before a trial of this sweep has run\n";
    return kExitOk;
  }
  std::cerr << "submitted: " << Describe(*parsed, spec::TrialBudget(*parsed)) << "\n";
  std::cout << resp->sweep_id() << "\n";
  return kExitOk;
}

int StatusCommand(const ClientOptions& scheduler, const std::string& sweep_id, bool json) {
  absl::StatusOr<std::unique_ptr<SweepSource>> client = OpenSource(scheduler);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<v1::GetStatusResponse> resp = (*client)->Status(sweep_id);
  if (!resp.ok()) return Fail(resp.status());
  if (json) {
    nlohmann::json j = {{"sweeps", nlohmann::json::array()},
                        {"workers", nlohmann::json::array()},
                        {"write_failure", resp->write_failure()}};
    for (const auto& s : resp->sweeps()) j["sweeps"].push_back(ToJson(s));
    for (const auto& w : resp->workers()) j["workers"].push_back(ToJson(w));
    PrintJson(j);
  } else {
    std::cout << FormatStatus(*resp, Now());
    bool running = std::any_of(resp->sweeps().begin(), resp->sweeps().end(),
                               [](const v1::SweepSummary& s) { return s.state() == "running"; });
    if (!scheduler.db.empty() && running) {
      std::cerr << "(read from " << scheduler.db << ": a running sweep's estimate and why its "
                << "trials wait come from its scheduler; drop --db to ask it)\n";
    }
  }
  return kExitOk;
}

int TrialsCommand(const ClientOptions& scheduler, const std::string& sweep_id,
                  const std::string& sort_metric, bool reverse, bool json) {
  absl::StatusOr<std::unique_ptr<SweepSource>> client = OpenSource(scheduler);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<v1::ListTrialsResponse> resp = (*client)->Trials(sweep_id, sort_metric);
  if (!resp.ok()) return Fail(resp.status());
  if (!sort_metric.empty()) {
    // Best first by the sweep's goal when sorting by its metric, else ascending.
    bool descending = sort_metric == resp->sweep().metric_name() &&
                      resp->sweep().metric_goal() == "maximize";
    if (reverse) descending = !descending;
    auto* trials = resp->mutable_trials();
    std::stable_sort(trials->begin(), trials->end(),
                     [descending](const v1::TrialSummary& a, const v1::TrialSummary& b) {
                       if (a.has_metric_value() != b.has_metric_value()) {
                         return a.has_metric_value();
                       }
                       return descending ? a.metric_value() > b.metric_value()
                                         : a.metric_value() < b.metric_value();
                     });
  }
  if (json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& t : resp->trials()) j.push_back(ToJson(t));
    PrintJson(j);
  } else {
    std::cout << FormatTrials(*resp, -1);
  }
  return kExitOk;
}

int BestCommand(const ClientOptions& scheduler, const std::string& sweep_id, bool json) {
  absl::StatusOr<std::unique_ptr<SweepSource>> client = OpenSource(scheduler);
  if (!client.ok()) return Fail(client.status());
  // The scheduler ranks (with an index); fetch only the winner, whatever the size.
  absl::StatusOr<v1::GetStatusResponse> status = (*client)->Status(sweep_id);
  if (!status.ok()) return Fail(status.status());
  const v1::SweepSummary& sweep = status->sweeps(0);
  if (sweep.metric_name().empty()) {
    return Fail(absl::FailedPreconditionError(absl::StrCat(
        "sweep ", sweep_id, " has no metric, so no trial is best; see `sweep trials ",
        sweep_id, "`")));
  }
  if (!sweep.has_best()) {
    return Fail(absl::NotFoundError(absl::StrCat("no trial of sweep ", sweep_id,
                                                 " has reported ", sweep.metric_name(),
                                                 " yet")));
  }
  absl::StatusOr<v1::GetTrialResponse> trial = (*client)->Trial(sweep.best_trial());
  if (!trial.ok()) return Fail(trial.status());
  const v1::TrialSummary& best = trial->trial();
  if (json) {
    PrintJson(ToJson(best));
    return kExitOk;
  }
  std::cout << "best trial " << best.id() << " (" << best.state() << "): "
            << sweep.metric_name() << " = " << FormatValue(best.final_value())
            << "\n";
  nlohmann::json flat = FlattenParams(nlohmann::json::parse(best.params_json()));
  std::vector<std::vector<std::string>> rows;
  for (const auto& [k, v] : flat.items()) {
    rows.push_back({"  " + k, v.is_string() ? v.get<std::string>() : v.dump()});
  }
  std::cout << FormatTable(rows);
  return kExitOk;
}

int CancelCommand(const ClientOptions& scheduler, const std::string& sweep_id) {
  absl::StatusOr<SweepClient> client = SweepClient::Connect(scheduler);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<v1::CancelSweepResponse> resp = client->Cancel(sweep_id);
  if (!resp.ok()) return Fail(resp.status());
  std::cout << "cancelled sweep " << sweep_id << ": " << resp->cancelled_queued()
            << " queued trials dropped, " << resp->stopping_running()
            << " running trials told to stop\n";
  return kExitOk;
}

int LogsCommand(const ClientOptions& scheduler, const std::string& trial_id,
                bool stderr_only) {
  absl::StatusOr<std::unique_ptr<SweepSource>> client = OpenSource(scheduler);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<v1::GetTrialResponse> resp = (*client)->Trial(trial_id);
  if (!resp.ok()) return Fail(resp.status());
  const std::string& dir = resp->trial().trial_dir();
  auto show = [&](const char* name, const std::string& stored_tail) {
    fs::path path = fs::path(dir) / name;
    std::ifstream in(path, std::ios::binary);
    if (!dir.empty() && in) {
      std::cout << in.rdbuf();
    } else if (!stored_tail.empty()) {
      std::cerr << "(" << path.string() << " is not on this machine; showing the last "
                << stored_tail.size() << " bytes the worker sent)\n";
      std::cout << stored_tail;
    }
  };
  if (dir.empty()) {
    std::cerr << "trial " << trial_id << " is " << resp->trial().state()
              << "; it has no logs yet\n";
    return kExitOk;
  }
  if (!stderr_only) show("stdout.log", resp->stdout_tail());
  show("stderr.log", resp->stderr_tail());
  return kExitOk;
}

int ExportCommand(const ClientOptions& scheduler, const std::string& sweep_id,
                  const std::string& format, const std::string& output) {
  if (format != "csv" && format != "json") {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--format: expected csv or json, got '", format, "'")));
  }
  absl::StatusOr<std::unique_ptr<SweepSource>> client = OpenSource(scheduler);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<v1::ListTrialsResponse> resp = (*client)->Trials(sweep_id);
  if (!resp.ok()) return Fail(resp.status());
  std::string text;
  if (format == "csv") {
    text = TrialsToCsv(*resp);
  } else {
    nlohmann::json j = {{"sweep", ToJson(resp->sweep())}, {"trials", nlohmann::json::array()}};
    for (const auto& t : resp->trials()) j["trials"].push_back(ToJson(t));
    text = j.dump(2) + "\n";
  }
  if (output.empty() || output == "-") {
    std::cout << text;
    return kExitOk;
  }
  std::ofstream out(output, std::ios::binary);
  out << text;
  if (!out) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("cannot write ", output)));
  }
  std::cerr << "wrote " << resp->trials_size() << " trials to " << output << "\n";
  return kExitOk;
}

int ValidateCommand(const std::string& file) {
  absl::StatusOr<spec::SweepSpec> parsed = spec::LoadSpecFile(file);
  if (!parsed.ok()) return Fail(parsed.status());
  for (const std::string& w : parsed->warnings) std::cerr << "warning: " << w << "\n";
  if (std::string w = CheckProgram(*parsed); !w.empty()) std::cerr << "warning: " << w << "\n";
  std::cout << file << ": valid; " << Describe(*parsed, spec::TrialBudget(*parsed)) << "\n";
  return kExitOk;
}

}  // namespace sweep
