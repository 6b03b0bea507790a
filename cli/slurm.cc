#include "cli/slurm.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/address.h"
#include "common/logging.h"
#include "common/process.h"
#include "common/status_util.h"

namespace sweep {
namespace {

namespace fs = std::filesystem;

// Slurm's largest --signal lead time.
constexpr int kMaxDrainBefore = 65535;

bool AllOf(const std::string& s, absl::string_view extra) {
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        extra.find(c) == absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

bool HasControl(const std::string& s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

absl::Status Bad(absl::string_view flag, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(flag, ": ", why));
}

// "60", "0.5": a number of seconds as the worker's flags take it.
std::string Secs(double s) { return absl::StrCat(s); }

absl::Status ValidateName(absl::string_view flag, const std::string& v,
                          absl::string_view extra) {
  if (v.empty() || AllOf(v, extra)) return absl::OkStatus();
  return Bad(flag, absl::StrCat("'", absl::CHexEscape(v),
                                "' may hold only letters, digits and these: ", extra));
}

std::string Absolute(const std::string& path) {
  if (path.empty()) return path;
  std::error_code ec;
  fs::path p = fs::absolute(path, ec);
  return ec ? path : p.lexically_normal().string();
}

}  // namespace

int DrainBeforeSeconds(const SlurmWorkersOptions& o) {
  if (o.drain_before > 0) return o.drain_before;
  return static_cast<int>(std::ceil(o.drain_timeout + o.kill_grace)) + 30;
}

absl::StatusOr<int64_t> ParseSlurmTime(const std::string& text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", absl::CHexEscape(text),
        "' is not a Slurm time limit; use MINUTES, MINUTES:SECONDS, HOURS:MINUTES:SECONDS, "
        "DAYS-HOURS, DAYS-HOURS:MINUTES or DAYS-HOURS:MINUTES:SECONDS"));
  };
  absl::string_view rest = text;
  int64_t days = -1;
  if (size_t dash = rest.find('-'); dash != absl::string_view::npos) {
    if (!AllOf(std::string(rest.substr(0, dash)), "") || dash == 0 ||
        !absl::SimpleAtoi(rest.substr(0, dash), &days)) {
      return bad();
    }
    rest.remove_prefix(dash + 1);
  }
  std::vector<absl::string_view> parts = absl::StrSplit(rest, ':');
  std::vector<int64_t> n;
  for (absl::string_view p : parts) {
    int64_t v = 0;
    if (p.empty() || p.size() > 9 || !AllOf(std::string(p), "") || !absl::SimpleAtoi(p, &v)) {
      return bad();
    }
    n.push_back(v);
  }
  if (n.size() > 3 || (days >= 0 && days > 100000)) return bad();
  if (days < 0) {
    // M, M:S, H:M:S
    if (n.size() == 1) return n[0] * 60;
    if (n.size() == 2) return n[0] * 60 + n[1];
    return n[0] * 3600 + n[1] * 60 + n[2];
  }
  // D-H, D-H:M, D-H:M:S
  int64_t s = days * 86400 + n[0] * 3600;
  if (n.size() >= 2) s += n[1] * 60;
  if (n.size() == 3) s += n[2];
  return s;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

absl::Status ValidateSlurmWorkers(const SlurmWorkersOptions& o) {
  if (o.nodes < 1) return Bad("--nodes", "give 1 or more");
  if (o.gpus_per_node < 0) return Bad("--gpus-per-node", "give 0 or more");
  if (o.cpus_per_node < 0) return Bad("--cpus-per-node", "give 0 or more");
  if (o.gpus_per_node == 0 && o.cpus_per_node == 0) {
    return absl::InvalidArgumentError(
        "give --gpus-per-node G (each node runs `sweep worker --gpus all`, one slot per "
        "GPU) or, for nodes without GPUs, --gpus-per-node 0 --cpus-per-node N (N CPU "
        "slots per node)");
  }
  SWEEP_RETURN_IF_ERROR(ValidateName("--partition", o.partition, "_.-,"));
  SWEEP_RETURN_IF_ERROR(ValidateName("--account", o.account, "_.-+"));
  if (o.job_name.empty()) return Bad("--job-name", "must not be empty");
  SWEEP_RETURN_IF_ERROR(ValidateName("--job-name", o.job_name, "_.-+"));
  for (auto [flag, value] : {std::pair{"--scheduler", &o.scheduler.address},
                             std::pair{"--token-file", &o.scheduler.token_file},
                             std::pair{"--tls-ca", &o.scheduler.tls_ca},
                             std::pair{"--sweep-bin", &o.sweep_bin},
                             std::pair{"--work-dir", &o.work_dir},
                             std::pair{"--output", &o.output}}) {
    if (HasControl(*value)) return Bad(flag, "must not hold control characters");
  }
  if (o.scheduler.address.empty() ||
      o.scheduler.address.find_first_of(" \t") != std::string::npos) {
    return Bad("--scheduler", "give the scheduler's HOST:PORT as the compute nodes reach it");
  }
  if (o.sweep_bin.empty()) return Bad("--sweep-bin", "give the path of the sweep executable");
  if (o.work_dir.empty()) return Bad("--work-dir", "must not be empty");
  if (o.output.empty() || o.output.find_first_of(" \t\"'\\") != std::string::npos) {
    return Bad("--output", "give a path without spaces, quotes or backslashes "
                           "(Slurm's %j, %N, %u... are fine)");
  }
  for (const std::string& opt : o.sbatch_options) {
    if (opt.empty() || opt[0] != '-' || HasControl(opt)) {
      return Bad("--sbatch-option",
                 absl::StrCat("'", absl::CHexEscape(opt),
                              "' must be one sbatch option on one line, such as "
                              "--constraint=a100 or --exclusive"));
    }
  }
  if (o.drain_timeout < 0) return Bad("--drain-timeout", "give 0 or more seconds");
  if (o.kill_grace < 0) return Bad("--kill-grace", "give 0 or more seconds");
  int before = DrainBeforeSeconds(o);
  if (o.drain_before < 0 || before > kMaxDrainBefore) {
    return Bad("--drain-before", absl::StrCat("give 1 to ", kMaxDrainBefore, " seconds"));
  }
  if (before <= o.drain_timeout + o.kill_grace) {
    return Bad("--drain-before",
               absl::StrCat(before, " s leaves the workers no time to drain: make it longer than "
                                    "--drain-timeout + --kill-grace (",
                            Secs(o.drain_timeout + o.kill_grace), " s)"));
  }
  if (!o.time.empty()) {
    absl::StatusOr<int64_t> limit = ParseSlurmTime(o.time);
    if (!limit.ok()) return Bad("--time", limit.status().message());
    if (*limit <= before) {
      return Bad("--time", absl::StrCat(o.time, " (", *limit,
                                        " s) is not longer than the drain warning (--drain-before ",
                                        before, " s): the workers would drain as soon as "
                                        "they start"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RenderSlurmWorkersScript(const SlurmWorkersOptions& o) {
  SWEEP_RETURN_IF_ERROR(ValidateSlurmWorkers(o));
  const int before = DrainBeforeSeconds(o);
  const bool gpus = o.gpus_per_node > 0;
  std::string s;
  absl::StrAppend(
      &s, "#!/bin/bash\n",
      "# Written by `sweep slurm workers` (see docs/cluster.md): one `sweep worker` on\n",
      "# each node of this job, all working for the scheduler at ", o.scheduler.address, ".\n",
      "#\n",
      "# Drain and end the job: scancel --batch --signal=TERM JOBID. Each worker takes\n",
      "# no new trial, lets running ones go on for ", Secs(o.drain_timeout),
      " s, then stops them and gives\n",
      "# them back to the scheduler; the job then ends. The same happens ", before,
      " s before\n",
      "# the time limit. Sent twice, the signal stops the workers at once. A plain\n",
      "# `scancel JOBID` is Slurm's own kill: SIGTERM to every process of the job,\n",
      "# trials included, and SIGKILL after the cluster's KillWait.\n");
  absl::StrAppend(&s, "#SBATCH --job-name=", o.job_name, "\n");
  absl::StrAppend(&s, "#SBATCH --nodes=", o.nodes, "\n");
  absl::StrAppend(&s, "#SBATCH --ntasks-per-node=1\n");
  if (gpus) absl::StrAppend(&s, "#SBATCH --gpus-per-node=", o.gpus_per_node, "\n");
  if (o.cpus_per_node > 0) absl::StrAppend(&s, "#SBATCH --cpus-per-task=", o.cpus_per_node, "\n");
  if (!o.partition.empty()) absl::StrAppend(&s, "#SBATCH --partition=", o.partition, "\n");
  if (!o.account.empty()) absl::StrAppend(&s, "#SBATCH --account=", o.account, "\n");
  if (!o.time.empty()) absl::StrAppend(&s, "#SBATCH --time=", o.time, "\n");
  absl::StrAppend(&s, "#SBATCH --output=", o.output, "\n");
  absl::StrAppend(&s, "#SBATCH --signal=B:TERM@", before, "\n");
  for (const std::string& opt : o.sbatch_options) absl::StrAppend(&s, "#SBATCH ", opt, "\n");

  absl::StrAppend(&s, "\nset -u\n", "sweep_bin=", ShellQuote(o.sweep_bin), "\n",
                  "worker_args=(\n", "  --scheduler ", ShellQuote(o.scheduler.address), "\n");
  if (!o.scheduler.token_file.empty()) {
    absl::StrAppend(&s, "  --token-file ", ShellQuote(o.scheduler.token_file), "\n");
  }
  if (!o.scheduler.tls_ca.empty()) {
    absl::StrAppend(&s, "  --tls-ca ", ShellQuote(o.scheduler.tls_ca), "\n");
  }
  absl::StrAppend(&s, "  --work-dir ", ShellQuote(o.work_dir), "\n",
                  "  --drain-timeout ", ShellQuote(Secs(o.drain_timeout)), "\n",
                  "  --kill-grace ", ShellQuote(Secs(o.kill_grace)), "\n");
  if (gpus) {
    absl::StrAppend(&s, "  --gpus all\n");
  } else {
    absl::StrAppend(&s, "  --cpus ", o.cpus_per_node, "\n");
  }
  absl::StrAppend(&s, ")\n");
  // The workers' step is the job's first, so its id is 0. The drain helper is a step
  // of its own (--overlap shares the allocation) that signals the task itself
  // (LOCALID 0 in `scontrol listpids`), never the worker's trials or children.
  absl::StrAppend(
      &s, R"SH(
# SIGTERM to this shell alone (the warning before the time limit, or scancel
# --batch --signal=TERM) drains: one SIGTERM to each node's `sweep worker` task,
# found with `scontrol listpids` in step 0 (the workers' step) and waited for when
# the workers are still starting. Nothing else of the job is signalled.
draining=0
step=
drain() {
  draining=1
  [ -n "$step" ] || return 0  # the workers' step starts next; it drains right after
  echo "sweep: draining the workers of job ${SLURM_JOB_ID}" >&2
  srun --overlap --nodes="${SLURM_JOB_NUM_NODES}" --ntasks="${SLURM_JOB_NUM_NODES}" \
      --ntasks-per-node=1 --kill-on-bad-exit=0 --mpi=none bash -c '
    for try in $(seq 30); do
      pids=$(scontrol listpids "${SLURM_JOB_ID}.0" 2>/dev/null |
             while read -r pid job step task rest; do
               if [ "$step" = 0 ] && [ "$task" = 0 ]; then echo "$pid"; fi
             done)
      if [ -n "$pids" ]; then kill -TERM $pids; exit 0; fi
      sleep 1
    done
    echo "sweep: no worker to drain on $(hostname)" >&2
    exit 1' ||
    echo "sweep: could not signal every worker (is the job ending?)" >&2
}
trap drain TERM

srun --whole --nodes="${SLURM_JOB_NUM_NODES}" --ntasks="${SLURM_JOB_NUM_NODES}" \
    --ntasks-per-node=1 --kill-on-bad-exit=0 --mpi=none --label \
    "$sweep_bin" worker "${worker_args[@]}" &
step=$!
[ "$draining" = 0 ] || drain
# `wait` returns early when the trap runs; wait again until srun itself has ended.
while :; do
  wait "$step"
  rc=$?
  kill -0 "$step" 2>/dev/null || break
done
echo "sweep: the workers ended (srun exit status $rc)" >&2
exit "$rc"
)SH");
  return s;
}

int SlurmWorkersCommand(SlurmWorkersOptions o, bool dry_run) {
  if (o.sweep_bin.empty()) o.sweep_bin = SelfExecutable();
  for (std::string* path : {&o.sweep_bin, &o.scheduler.token_file, &o.scheduler.tls_ca,
                            &o.work_dir, &o.output}) {
    *path = Absolute(*path);
  }
  if (absl::Status st = ValidateSlurmWorkers(o); !st.ok()) {
    std::cerr << "error: " << st.message() << "\n";
    return kExitBadInput;
  }
  for (auto [flag, path] : {std::pair{"--token-file", &o.scheduler.token_file},
                            std::pair{"--tls-ca", &o.scheduler.tls_ca}}) {
    if (path->empty()) continue;
    if (access(path->c_str(), R_OK) != 0) {
      std::cerr << "error: " << flag << ": cannot read " << *path
                << "; give a file the workers can read on every node (a shared file system)\n";
      return kExitBadInput;
    }
  }
  absl::StatusOr<std::string> script = RenderSlurmWorkersScript(o);
  if (!script.ok()) {
    std::cerr << "error: " << script.status().message() << "\n";
    return kExitBadInput;
  }
  if (IsLoopbackAddress(o.scheduler.address)) {
    std::cerr << "warning: --scheduler " << o.scheduler.address
              << " is a loopback address: only workers on this very machine can reach it; "
                 "give the head node's name or address\n";
  }
  if (o.scheduler.token_file.empty()) {
    std::cerr << "warning: no --token-file: a scheduler that listens beyond loopback "
                 "refuses workers without its token\n";
  }
  if (dry_run) {
    std::cout << *script;
    return kExitOk;
  }

  // sbatch copies the script at submission, so private temporary files will do: in a
  // directory of our own (mkdtemp, mode 0700), where no one else can plant a file.
  std::string dir = (fs::temp_directory_path() / "sweep-sbatch-XXXXXX").string();
  if (mkdtemp(dir.data()) == nullptr) {
    std::cerr << "error: cannot create a temporary directory in "
              << fs::temp_directory_path().string() << ": " << strerror(errno) << "\n";
    return kExitFailure;
  }
  std::string script_path = dir + "/workers.sbatch", out_path = dir + "/sbatch.out",
              err_path = dir + "/sbatch.err";
  auto cleanup = [&] {
    std::error_code ec;
    fs::remove_all(dir, ec);
  };
  {
    std::ofstream f(script_path, std::ios::binary);
    f << *script;
    f.close();
    if (!f) {
      cleanup();
      std::cerr << "error: cannot write the job script to " << script_path << "\n";
      return kExitFailure;
    }
  }
  SpawnOptions so;
  so.argv = {"sbatch", "--parsable", script_path};
  so.stdout_path = out_path;
  so.stderr_path = err_path;
  absl::StatusOr<ChildProcess> sbatch = ChildProcess::Spawn(so);
  if (!sbatch.ok()) {
    cleanup();
    std::cerr << "error: cannot run sbatch (" << sbatch.status().message()
              << "); run this on a Slurm login node, or use --dry-run and submit the "
                 "script yourself\n";
    return kExitFailure;
  }
  std::optional<ExitStatus> st = sbatch->Wait(absl::Minutes(2));
  if (!st) st = sbatch->Stop(absl::Seconds(2));
  auto read = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  std::string out = read(out_path), err = read(err_path);
  cleanup();
  if (!st->ok()) {
    std::cerr << err << "error: sbatch failed (" << st->ToString() << ")\n";
    return kExitFailure;
  }
  // --parsable prints "JOBID" or "JOBID;CLUSTER".
  std::string job = std::string(absl::StripAsciiWhitespace(out));
  job = job.substr(0, job.find(';'));
  if (job.empty()) {
    std::cerr << err << "error: sbatch printed no job id\n";
    return kExitFailure;
  }
  std::cerr << err;
  std::cerr << "submitted Slurm job " << job << ": " << o.nodes << " node"
            << (o.nodes == 1 ? "" : "s") << " running `sweep worker "
            << (o.gpus_per_node > 0 ? "--gpus all" : absl::StrCat("--cpus ", o.cpus_per_node))
            << "` for " << o.scheduler.address << "; log " << o.output << "\n"
            << "drain and end it:  scancel --batch --signal=TERM " << job << "\n"
            << "stop it at once:   scancel " << job << "\n";
  std::cout << job << "\n";
  return kExitOk;
}

void AddSlurmCommands(CLI::App& app, const ClientOptions& scheduler) {
  CLI::App* slurm = app.add_subcommand("slurm", "run workers as Slurm jobs");
  slurm->require_subcommand(1);
  auto o = std::make_shared<SlurmWorkersOptions>();
  auto dry_run = std::make_shared<bool>(false);
  o->scheduler = scheduler;
  CLI::App* w = slurm->add_subcommand(
      "workers",
      "submit an sbatch job that runs one `sweep worker` on every node it gets; prints "
      "the job id");
  w->add_option("--nodes", o->nodes, "nodes to allocate")->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  w->add_option("--gpus-per-node", o->gpus_per_node,
                "GPUs per node; each node runs `sweep worker --gpus all`")
      ->check(CLI::Range(0, 1000000));
  w->add_option("--cpus-per-node", o->cpus_per_node,
                "CPUs per node; with --gpus-per-node 0 the worker runs this many CPU slots")
      ->check(CLI::Range(0, 1000000));
  w->add_option("--partition", o->partition, "Slurm partition (default: the cluster's)");
  w->add_option("--time", o->time,
                "time limit: MINUTES, HOURS:MINUTES:SECONDS, DAYS-HOURS... (default: the "
                "partition's)");
  w->add_option("--account", o->account, "Slurm account to charge");
  w->add_option("--job-name", o->job_name, "Slurm job name")->capture_default_str();
  w->add_option("--sbatch-option", o->sbatch_options,
                "one more #SBATCH option, e.g. --constraint=a100 (repeatable)");
  w->add_option("--output", o->output, "the job's log file (Slurm's %j is the job id)")
      ->capture_default_str();
  w->add_option("--scheduler", o->scheduler.address,
                "the scheduler's address as the compute nodes reach it (default "
                "$SWEEP_SCHEDULER, else 127.0.0.1:50051)");
  w->add_option("--token-file", o->scheduler.token_file,
                "the scheduler's token file, readable on every node (default "
                "$SWEEP_TOKEN_FILE); the script names the file, never the token");
  w->add_option("--tls-ca", o->scheduler.tls_ca,
                "CA certificate of the scheduler's TLS certificate (default $SWEEP_TLS_CA)");
  w->add_option("--sweep-bin", o->sweep_bin,
                "the sweep executable on the compute nodes (default: this one)");
  w->add_option("--work-dir", o->work_dir, "the workers' trial directories")
      ->capture_default_str();
  w->add_option("--drain-timeout", o->drain_timeout,
                "seconds running trials may go on once the workers drain")
      ->capture_default_str()->check(CLI::Range(0.0, 604800.0));
  w->add_option("--kill-grace", o->kill_grace,
                "seconds between SIGTERM and SIGKILL when a trial is stopped")
      ->capture_default_str()->check(CLI::Range(0.0, 604800.0));
  w->add_option("--drain-before", o->drain_before,
                "seconds before the time limit at which the workers start draining "
                "(default: drain timeout + kill grace + 30)")
      ->check(CLI::Range(1, kMaxDrainBefore));
  w->add_flag("--dry-run", *dry_run, "print the script instead of submitting it");
  w->callback([o, dry_run] {
    InitLogging("sweep", "warn");
    int rc = SlurmWorkersCommand(*o, *dry_run);
    std::cout.flush();
    std::cerr.flush();
    std::exit(rc);
  });
}

}  // namespace sweep
