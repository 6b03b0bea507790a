// `sweep run FILE`: a scheduler and local workers in one process tree, for one
// machine. Starts the scheduler in this process on a free loopback port, one worker
// process (--gpus or --cpus), submits the sweep, shows progress until it ends and
// prints the leaderboard. Ctrl-C cancels the sweep (running trials are stopped);
// a second Ctrl-C stops at once.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/report.h"
#include "common/process.h"
#include "common/status_util.h"
#include "spdlog/spdlog.h"
#include "sweeps/spec.h"

namespace sweep {
namespace {

namespace fs = std::filesystem;

std::atomic<int> g_interrupts{0};
void OnInterrupt(int) { g_interrupts.fetch_add(1); }

double Now() { return absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()); }

}  // namespace

int RunCommand(const RunCommandOptions& o) {
  absl::StatusOr<spec::SweepSpec> parsed = spec::LoadSpecFile(o.file);
  if (!parsed.ok()) {
    std::cerr << "error: " << parsed.status().message() << "\n";
    return ExitCodeFor(parsed.status());
  }
  for (const std::string& w : parsed->warnings) std::cerr << "warning: " << w << "\n";
  if (std::string w = CheckProgram(*parsed); !w.empty()) {
    std::cerr << "error: " << o.file << ": " << w << "\n";
    return kExitBadInput;
  }

  // Where trials run: the GPUs of this node when asked for or when it has any.
  std::string gpus = o.gpus;
  int cpus = o.cpus;
  if (gpus.empty() && cpus == 0) {
    absl::StatusOr<std::vector<Gpu>> found = NewNvmlDiscovery()->Discover();
    if (found.ok()) {
      gpus = "all";
    } else {
      cpus = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    }
  }
  if (!gpus.empty() && cpus > 0) {
    std::cerr << "error: give --gpus or --cpus, not both\n";
    return kExitBadInput;
  }
  if (gpus.empty() && parsed->resources.gpus_per_trial > 0) {
    std::cerr << "error: " << o.file << ": resources.gpus_per_trial is "
              << parsed->resources.gpus_per_trial
              << " but this run has only CPU slots; run where GPUs are, or drop it\n";
    return kExitBadInput;
  }

  ServerOptions so;
  so.listen = "127.0.0.1:0";
  so.db_path = o.db;
  so.http = o.http;
  so.http_fallback = true;
  absl::StatusOr<std::unique_ptr<SchedulerServer>> server = SchedulerServer::Start(so);
  if (!server.ok()) {
    std::cerr << "error: " << server.status().message() << "\n";
    return kExitFailure;
  }
  std::string address = (*server)->address();

  SpawnOptions wo;
  wo.argv = {SelfExecutable(), "worker", "--scheduler", address, "--work-dir", o.work_dir,
             "--log-level", o.log_level};
  if (!gpus.empty()) {
    wo.argv.insert(wo.argv.end(), {"--gpus", gpus});
  } else {
    wo.argv.insert(wo.argv.end(), {"--cpus", absl::StrCat(cpus)});
  }
  wo.new_process_group = false;
  absl::StatusOr<ChildProcess> worker = ChildProcess::Spawn(wo);
  if (!worker.ok()) {
    std::cerr << "error: cannot start the worker: " << worker.status().message() << "\n";
    return kExitFailure;
  }

  std::ifstream in(o.file, std::ios::binary);
  v1::SubmitSweepRequest req;
  req.set_spec_yaml(std::string((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>()));
  req.set_file_name(o.file);
  req.set_working_dir(fs::current_path().string());
  SweepClient client(address, RpcSecurity{});
  absl::StatusOr<v1::SubmitSweepResponse> submitted = client.Submit(req);
  if (!submitted.ok()) {
    std::cerr << "error: " << submitted.status().message() << "\n";
    return ExitCodeFor(submitted.status());
  }
  const std::string id = submitted->sweep_id();
  std::cerr << "sweep " << id << " (" << o.file << ") on "
            << (gpus.empty() ? absl::StrCat(cpus, " CPU slot", cpus == 1 ? "" : "s")
                             : absl::StrCat("GPUs ", gpus))
            << "; results in " << o.db << ", trial files in " << o.work_dir << "/" << id
            << "\n";
  if (const Dashboard* d = (*server)->dashboard()) {
    std::cerr << "dashboard: " << d->url() << "\n";
  }

  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  bool tty = isatty(STDERR_FILENO);
  bool cancelled = false;
  std::string last_line;
  absl::Time last_print = absl::InfinitePast();
  v1::SweepSummary summary;
  while (true) {
    if (g_interrupts.load() > 0 && !cancelled) {
      cancelled = true;
      std::cerr << "\ninterrupted: cancelling sweep " << id
                << " (Ctrl-C again to stop at once)\n";
      client.Cancel(id).IgnoreError();
    }
    if (g_interrupts.load() > 1) break;
    absl::StatusOr<v1::GetStatusResponse> st = client.Status(id);
    if (st.ok() && st->sweeps_size() == 1) {
      summary = st->sweeps(0);
      std::string line = FormatProgress(summary, Now());
      if (tty) {
        std::cerr << "\r\033[K" << line << std::flush;
      } else if (line.substr(0, line.rfind('|')) != last_line.substr(0, last_line.rfind('|')) &&
                 absl::Now() - last_print > absl::Seconds(5)) {
        std::cerr << line << "\n";
        last_print = absl::Now();
      }
      last_line = line;
      if (summary.state() != "running" && summary.running() == 0) break;
    }
    std::optional<ExitStatus> ws = worker->Wait(absl::Milliseconds(500));
    if (ws) {
      std::cerr << "\nerror: the worker exited (" << ws->ToString()
                << "); see the messages above\n";
      return kExitFailure;
    }
  }
  std::cerr << (tty ? "\n" : "") << last_line << "\n";
  absl::StatusOr<v1::ListTrialsResponse> trials = client.Trials(id);
  worker->Stop(absl::Seconds(15));
  (*server)->Stop();
  if (trials.ok()) {
    v1::ListTrialsResponse ranked = *trials;
    ranked.clear_trials();
    for (const v1::TrialSummary& t : RankTrials(*trials)) *ranked.add_trials() = t;
    std::cout << "\n" << (summary.metric_name().empty() ? "trials" : "leaderboard")
              << " of sweep " << id << " (" << summary.end_reason() << "):\n"
              << FormatTrials(ranked, 10);
    if (ranked.trials_size() > 10) {
      std::cout << "... " << ranked.trials_size() - 10 << " more: sweep trials " << id
                << " --db " << o.db << "\n";
    }
  }
  if (trials.ok()) {
    for (const v1::TrialSummary& t : trials->trials()) {
      if (t.state() != "failed") continue;
      std::cout << "\n" << summary.failed() << " trial(s) failed; the first, " << t.id()
                << ": " << (t.message().empty() ? "no message" : t.message())
                << "\n(see `sweep logs " << t.id() << " --db " << o.db << "`, or "
                << t.trial_dir() << ")\n";
      break;
    }
  }
  int64_t finished = summary.completed() + summary.stopped();
  if (cancelled || (finished == 0 && summary.failed() > 0)) return kExitFailure;
  return kExitOk;
}

}  // namespace sweep
