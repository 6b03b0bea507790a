// `sweep`: the command-line entry point. Parses flags into option structs and
// dispatches to cli/commands.h; no logic of its own.
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/doctor.h"
#include "cli/slurm.h"
#include "common/logging.h"
#include "common/status_util.h"
#include "common/version.h"

namespace {

absl::Duration Seconds(double s) { return absl::Milliseconds(static_cast<int64_t>(s * 1000)); }

}  // namespace

int main(int argc, char** argv) {
  using namespace sweep;
  // Debian's abseil tracks lock order on every mutex operation; not needed here.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{"sweep: hyperparameter sweeps on every GPU you have"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "sweep " + std::string(Version()));
  ClientOptions scheduler;
  if (const char* f = getenv("SWEEP_TOKEN_FILE")) scheduler.token_file = f;
  if (const char* f = getenv("SWEEP_TLS_CA")) scheduler.tls_ca = f;
  std::string log_level = "info";
  auto add_scheduler = [&](CLI::App* c) {
    c->add_option("--scheduler", scheduler.address,
                  "scheduler address (default $SWEEP_SCHEDULER, else 127.0.0.1:50051)");
    c->add_option("--token-file", scheduler.token_file,
                  "file holding the scheduler's token (default $SWEEP_TOKEN_FILE)");
    c->add_option("--tls-ca", scheduler.tls_ca,
                  "CA certificate (PEM) of the scheduler's TLS certificate "
                  "(default $SWEEP_TLS_CA); without it the connection is plaintext");
  };

  // Daemons.
  SchedulerCommandOptions so;
  double lease_timeout = 30, heartbeat = 2;
  CLI::App* sched = app.add_subcommand("scheduler", "run the scheduler daemon");
  sched->add_option("--listen", so.server.listen, "gRPC address (port 0: any free port)")
      ->capture_default_str();
  sched->add_option("--db", so.server.db_path, "SQLite database file")->capture_default_str();
  sched->add_option("--lease-timeout", lease_timeout,
                    "seconds without a heartbeat before a worker's trial is re-queued")
      ->capture_default_str()->check(CLI::PositiveNumber);
  sched->add_option("--heartbeat-interval", heartbeat, "seconds between worker heartbeats")
      ->capture_default_str()->check(CLI::PositiveNumber);
  sched->add_option("--http", so.server.http,
                    "dashboard address HOST:PORT (port 0: any free port), or off; off "
                    "loopback it needs the token it prints (or $SWEEP_DASHBOARD_TOKEN)")
      ->capture_default_str();
  double http_header_timeout = 10;
  sched->add_option("--http-header-timeout", http_header_timeout,
                    "seconds a dashboard client has to send a whole request head")
      ->capture_default_str()->check(CLI::PositiveNumber);
  sched->add_option("--http-max-connections", so.server.http_limits.max_connections,
                    "dashboard connections open at once (docs/security.md)")
      ->capture_default_str()->check(CLI::Range(1, 100000));
  sched->add_option("--port-file", so.port_file, "write the bound address to this file");
  std::string token_file, tls_cert_file, tls_key_file;
  sched->add_option("--token-file", token_file,
                    "require this shared token (first line of the file) on every call; "
                    "needed to listen beyond loopback");
  sched->add_flag("--insecure", so.server.insecure,
                  "allow listening beyond loopback without a token");
  sched->add_option("--tls-cert", tls_cert_file, "serve gRPC over TLS with this certificate (PEM)");
  sched->add_option("--tls-key", tls_key_file, "the TLS certificate's private key (PEM)");
  sched->add_option("--max-spec-bytes", so.server.scheduler.max_spec_bytes,
                    "refuse sweep specs larger than this, before parsing them (at most "
                    "16777216)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, sweep::SchedulerOptions::kMaxSpecBytesLimit));
  sched->add_option("--max-workers-per-host", so.server.scheduler.max_workers_per_host,
                    "refuse registrations from a host that has this many worker slots "
                    "that are not lost")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sched->add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();

  WorkerOptions wo;
  double drain = 60, grace = 10, gpu_sample = 5, gpu_release = 30;
  CLI::App* worker = app.add_subcommand("worker", "run a worker daemon");
  add_scheduler(worker);
  auto* gpu_opt = worker->add_option(
      "--gpu", wo.gpu, "run the slots of one GPU (index or GPU-UUID) or MIG device (MIG-UUID)");
  auto* gpus_opt = worker->add_option("--gpus", wo.gpus,
                                      "all or a list of indexes and UUIDs (0,2,MIG-...): one worker "
                                      "process per GPU or MIG device");
  auto* cpus_opt = worker->add_option("--cpus", wo.cpus, "run this many CPU slots")
                       ->check(CLI::PositiveNumber);
  gpu_opt->excludes(gpus_opt)->excludes(cpus_opt);
  gpus_opt->excludes(cpus_opt);
  worker->add_option("--work-dir", wo.work_dir, "where trial directories go")
      ->capture_default_str();
  worker->add_option("--drain-timeout", drain,
                     "seconds running trials may go on after SIGTERM")
      ->capture_default_str();
  worker->add_option("--kill-grace", grace, "seconds between SIGTERM and SIGKILL of a trial")
      ->capture_default_str();
  worker->add_option("--slots-per-gpu", wo.slots_per_gpu,
                     "slots per GPU: at most this many trials share one GPU (the spec's "
                     "resources decide how many do)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  worker->add_option("--gpu-sample-interval", gpu_sample,
                     "seconds between GPU telemetry samples while trials run")
      ->capture_default_str()->check(CLI::PositiveNumber);
  worker->add_option("--gpu-release-timeout", gpu_release,
                     "seconds to wait after a trial for its GPU memory to be released")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  worker->add_option("--max-log-mib", wo.max_log_mib,
                     "bound on each trial's stdout.log and stderr.log: beyond it the middle "
                     "is cut, the first and last bytes kept")
      ->capture_default_str()->check(CLI::PositiveNumber);
  worker->add_option("--max-metric-points-per-second", wo.metrics.max_points_per_second,
                     "metric points read per second of one trial; more are read later")
      ->capture_default_str()->check(CLI::PositiveNumber);
  worker->add_option("--max-metric-names", wo.metrics.max_names,
                     "distinct metric names per trial; points of further names are dropped")
      ->capture_default_str()->check(CLI::PositiveNumber);
  worker->add_option("--max-metrics-backlog-mib", wo.max_metrics_backlog_mib,
                     "unread metric lines a trial may leave waiting before it is stopped")
      ->capture_default_str()->check(CLI::PositiveNumber);
  worker->add_option("--log-level", log_level)->capture_default_str();

  // The read commands also read the database file itself.
  auto add_db = [&](CLI::App* c) {
    c->add_option("--db", scheduler.db,
                  "read this SQLite database (sweep run's --db, the scheduler's) directly, "
                  "read-only, instead of asking a scheduler; safe beside a running one");
  };

  // Client commands.
  std::string file, sweep_id, trial_id, sort_metric, format = "csv", output;
  bool json = false, reverse = false, stderr_only = false;
  bool dry_run = false;
  CLI::App* submit = app.add_subcommand("submit", "submit a sweep; prints its id");
  submit->add_option("file", file, "sweep spec (YAML)")->required();
  submit->add_flag("--dry-run", dry_run,
                   "check the spec and where its trials would run on the connected "
                   "workers; submit nothing");
  add_scheduler(submit);
  CLI::App* status = app.add_subcommand("status", "show sweeps and workers");
  status->add_option("sweep", sweep_id, "one sweep's id");
  status->add_flag("--json", json, "print JSON");
  add_scheduler(status);
  add_db(status);
  CLI::App* trials = app.add_subcommand("trials", "list a sweep's trials");
  trials->add_option("sweep", sweep_id)->required();
  trials->add_option("--sort", sort_metric, "sort by the last value of this metric");
  trials->add_flag("--reverse", reverse, "reverse the --sort order");
  trials->add_flag("--json", json, "print JSON");
  add_scheduler(trials);
  add_db(trials);
  CLI::App* best = app.add_subcommand("best", "show a sweep's best trial");
  best->add_option("sweep", sweep_id)->required();
  best->add_flag("--json", json, "print JSON");
  add_scheduler(best);
  add_db(best);
  CLI::App* cancel = app.add_subcommand("cancel", "cancel a sweep and stop its trials");
  cancel->add_option("sweep", sweep_id)->required();
  add_scheduler(cancel);
  CLI::App* logs = app.add_subcommand("logs", "print a trial's stdout and stderr");
  logs->add_option("trial", trial_id)->required();
  logs->add_flag("--stderr", stderr_only, "only stderr");
  add_scheduler(logs);
  add_db(logs);
  CLI::App* exp = app.add_subcommand("export", "export a sweep's trials");
  exp->add_option("sweep", sweep_id)->required();
  exp->add_option("--format", format, "csv or json")->capture_default_str();
  exp->add_option("-o,--output", output, "file to write (default stdout)");
  add_scheduler(exp);
  add_db(exp);
  CLI::App* validate = app.add_subcommand("validate", "check a sweep spec");
  validate->add_option("file", file)->required();
  AddSlurmCommands(app, scheduler);  // `sweep slurm workers` (cli/slurm.h)
  AddDoctorCommand(&app);  // `sweep doctor` (cli/doctor.h)

  RunCommandOptions ro;
  CLI::App* run = app.add_subcommand("run", "run a sweep on this machine, start to end");
  run->add_option("file", ro.file, "sweep spec (YAML)")->required();
  auto* run_gpus = run->add_option("--gpus", ro.gpus, "all or a list of GPU indexes and UUIDs");
  run->add_option("--cpus", ro.cpus, "CPU slots (default: one per core, when no GPU)")
      ->excludes(run_gpus)->check(CLI::PositiveNumber);
  run->add_option("--db", ro.db, "SQLite database file")->capture_default_str();
  run->add_option("--http", ro.http,
                  "dashboard address HOST:PORT, or off (a busy port falls back to a free one)")
      ->capture_default_str();
  run->add_option("--work-dir", ro.work_dir, "where trial directories go")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitBadInput;
  }

  if (*sched) {
    InitLogging("scheduler", log_level);
    so.server.scheduler.lease_timeout = Seconds(lease_timeout);
    so.server.scheduler.heartbeat_interval = Seconds(heartbeat);
    so.server.http_limits.header_timeout = Seconds(http_header_timeout);
    for (auto [path, out, what] :
         {std::tuple{&token_file, &so.server.token, "--token-file"},
          std::tuple{&tls_cert_file, &so.server.tls_cert, "--tls-cert"},
          std::tuple{&tls_key_file, &so.server.tls_key, "--tls-key"}}) {
      if (path->empty()) continue;
      absl::StatusOr<std::string> text = ReadSecretFile(*path, what);
      if (!text.ok()) {
        std::cerr << "error: " << text.status().message() << "\n";
        return kExitBadInput;
      }
      *out = *text + (out == &so.server.token ? "" : "\n");
    }
    if (const char* token = getenv("SWEEP_DASHBOARD_TOKEN")) so.server.http_token = token;
    return SchedulerCommand(so);
  }
  if (*worker) {
    InitLogging("worker", log_level);
    wo.scheduler = scheduler.address;
    wo.token_file = scheduler.token_file;
    wo.tls_ca = scheduler.tls_ca;
    wo.drain_timeout = Seconds(drain);
    wo.kill_grace = Seconds(grace);
    wo.gpu_sample_interval = Seconds(gpu_sample);
    wo.gpu_release_timeout = Seconds(gpu_release);
    wo.log_level = log_level;
    return WorkerCommand(wo);
  }
  InitLogging("sweep", "warn");
  if (*submit) return SubmitCommand(scheduler, file, dry_run);
  if (*status) return StatusCommand(scheduler, sweep_id, json);
  if (*trials) return TrialsCommand(scheduler, sweep_id, sort_metric, reverse, json);
  if (*best) return BestCommand(scheduler, sweep_id, json);
  if (*cancel) return CancelCommand(scheduler, sweep_id);
  if (*logs) return LogsCommand(scheduler, trial_id, stderr_only);
  if (*exp) return ExportCommand(scheduler, sweep_id, format, output);
  if (*validate) return ValidateCommand(file);
  if (*run) return RunCommand(ro);
  return kExitBadInput;
}
