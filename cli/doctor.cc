#include "cli/doctor.h"

#include <stdlib.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/client.h"
#include "common/logging.h"
#include "common/process.h"
#include "common/status_util.h"
#include "nlohmann/json.hpp"
#include "worker/gpu.h"

namespace sweep {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// sweep-train doctor times a 1024 matmul on the CPU: seconds on any machine.
constexpr absl::Duration kTrainerTimeout = absl::Seconds(120);

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

bool Executable(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && access(p.c_str(), X_OK) == 0;
}

// `name` in a directory of $PATH, or "".
std::string OnPath(const std::string& name) {
  for (absl::string_view dir :
       absl::StrSplit(Env("PATH"), ':', absl::SkipEmpty())) {
    fs::path p = fs::path(std::string(dir)) / name;
    if (Executable(p)) return p.string();
  }
  return "";
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Where sweep-train is: next to this binary (an install), in its build tree
// (build/cli/sweep and build/trainer/sweep-train), under ./build, then
// on PATH. `looked` lists the places, for the message when it is nowhere.
std::string FindTrainer(std::vector<std::string>* looked) {
  fs::path self = fs::path(SelfExecutable()).parent_path();
  for (const fs::path& p :
       {self / "sweep-train",
        self / ".." / "trainer" / "sweep-train",
        fs::path("build") / "trainer" / "sweep-train"}) {
    std::error_code ec;
    fs::path abs = fs::weakly_canonical(fs::absolute(p), ec);
    looked->push_back(abs.string());
    if (Executable(abs)) return abs.string();
  }
  looked->push_back("$PATH");
  return OnPath("sweep-train");
}

class Report {
 public:
  void Line(const std::string& s) { std::cout << s << "\n"; }
  void Problem(const std::string& s) {
    problems_.push_back(s);
    std::cout << "  PROBLEM: " << s << "\n";
  }
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

// 1. GPUs, through NVML. Returns how many cards it lists.
int CheckGpus(Report& r) {
  std::unique_ptr<GpuDiscovery> discovery = NewNvmlDiscovery();
  absl::StatusOr<std::vector<Gpu>> gpus = discovery->Discover();
  if (absl::IsNotFound(gpus.status())) {
    // No driver (or no card): a CPU machine, not a problem.
    r.Line(absl::StrCat("GPUs: none: ", gpus.status().message()));
    return 0;
  }
  if (!gpus.ok()) {
    r.Line("GPUs: NVML is installed but unusable");
    r.Problem(std::string(gpus.status().message()));
    return 0;
  }
  int cards = 0;
  for (const Gpu& g : *gpus) cards += !g.is_mig_device();
  r.Line(absl::StrCat("GPUs: ", cards, " listed by ", discovery->Source()));
  for (const Gpu& g : *gpus) {
    if (g.is_mig_device()) {
      r.Line(absl::StrFormat("     MIG device %d: %s  %s  %d MiB", g.mig_index,
                             g.name, g.uuid, g.memory_mib));
    } else {
      r.Line(absl::StrFormat(
          "  %d  %s  %s  %d MiB%s", g.index, g.name, g.uuid, g.memory_mib,
          g.mig_enabled ? "  (MIG mode: its MIG devices run trials)" : ""));
    }
  }
  if (const char* v = std::getenv("CUDA_VISIBLE_DEVICES")) {
    r.Line(absl::StrCat("  CUDA_VISIBLE_DEVICES=\"", v,
                        "\" here: programs see only those (workers set it per "
                        "slot themselves)"));
  }
  return cards;
}

// 2. The scheduler, when one is named.
void CheckScheduler(const DoctorCommandOptions& o, Report& r) {
  if (o.scheduler.empty()) {
    r.Line("Scheduler: not checked (give --scheduler or set $SWEEP_SCHEDULER)");
    return;
  }
  ClientOptions c{
      .address = o.scheduler, .token_file = o.token_file, .tls_ca = o.tls_ca};
  absl::StatusOr<SweepClient> client = SweepClient::Connect(c);
  absl::StatusOr<v1::GetStatusResponse> status =
      client.ok() ? client->Status("")
                  : absl::StatusOr<v1::GetStatusResponse>(client.status());
  if (!status.ok()) {
    r.Line(absl::StrCat("Scheduler ", o.scheduler, ": not reachable"));
    r.Problem(std::string(status.status().message()));
    return;
  }
  r.Line(absl::StrCat("Scheduler ", o.scheduler, ": reachable, ",
                      status->sweeps_size(), " sweep(s), ",
                      status->workers_size(), " worker(s)"));
}

// 3. Free disk in the work directory (or the directory it will be made in).
void CheckDisk(const DoctorCommandOptions& o, Report& r) {
  std::error_code ec;
  fs::path dir = fs::absolute(o.work_dir, ec);
  while (!fs::exists(dir, ec) && dir.has_parent_path() &&
         dir != dir.parent_path()) {
    dir = dir.parent_path();
  }
  struct statvfs st;
  if (statvfs(dir.c_str(), &st) != 0) {
    r.Problem(absl::StrCat("work directory ", o.work_dir, ": cannot stat ",
                           dir.string()));
    return;
  }
  double free_gib = static_cast<double>(st.f_bavail) * st.f_frsize /
                    (1024.0 * 1024.0 * 1024.0);
  std::string where = dir == fs::absolute(o.work_dir, ec)
                          ? dir.string()
                          : absl::StrCat(dir.string(), " (", o.work_dir,
                                         " does not exist yet)");
  r.Line(absl::StrFormat("Work directory %s: %.1f GiB free", where, free_gib));
  if (access(dir.c_str(), W_OK) != 0) {
    r.Problem(absl::StrCat(dir.string(),
                           " is not writable: trials could not be started"));
  }
  if (free_gib < o.min_free_gib) {
    r.Problem(absl::StrFormat(
        "only %.2f GiB free under %s (less than --min-free-gib %.1f): "
        "checkpoints and logs may fill the disk",
        free_gib, dir.string(), o.min_free_gib));
  }
}

// 4. sweep-train doctor, relayed; checked against what NVML listed.
void CheckTrainer(const DoctorCommandOptions& o, int gpus, Report& r) {
  std::string trainer = o.trainer;
  if (trainer.empty()) {
    std::vector<std::string> looked;
    trainer = FindTrainer(&looked);
    if (trainer.empty()) {
      r.Line(absl::StrCat(
          "sweep-train: not found (looked in ", absl::StrJoin(looked, ", "),
          "): LibTorch and CUDA not checked; give --trainer PATH"));
      if (gpus > 0) {
        r.Line(
            "  without it, nothing here checked that a program can use "
            "these GPUs");
      }
      return;
    }
  } else if (!Executable(trainer)) {
    r.Problem(absl::StrCat("--trainer ", trainer, ": not an executable file"));
    return;
  }
  r.Line(absl::StrCat("sweep-train: ", trainer,
                      ", running `sweep-train doctor`:"));
  std::cout.flush();

  char tmpl[] = "/tmp/sweep-doctor-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    r.Problem("cannot make a temporary directory");
    return;
  }
  fs::path tmp = tmpl;
  SpawnOptions s;
  s.argv = {trainer, "doctor", "--json-file=" + (tmp / "report.json").string()};
  s.stdout_path = (tmp / "out").string();
  s.stderr_path = (tmp / "err").string();
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(s);
  std::optional<ExitStatus> exit;
  if (child.ok()) {
    exit = child->Wait(kTrainerTimeout);
    if (!exit) {
      child->Stop(absl::Seconds(2));
      r.Problem(absl::StrCat("sweep-train doctor did not finish in ",
                             absl::FormatDuration(kTrainerTimeout)));
    }
  } else {
    r.Problem(
        absl::StrCat("cannot run ", trainer, ": ", child.status().message()));
  }
  std::string out = ReadAll(s.stdout_path), err = ReadAll(s.stderr_path),
              report = ReadAll((tmp / "report.json").string());
  fs::remove_all(tmp);
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty()))
    r.Line(absl::StrCat("  | ", line));
  if (!exit) return;
  Json j = Json::parse(report, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("cuda_available")) {
    r.Problem(absl::StrCat("sweep-train doctor failed (", exit->ToString(),
                           ") without a report", err.empty() ? "" : ": ",
                           err.substr(0, 2000)));
    return;
  }
  bool cuda = j["cuda_available"].get<bool>();
  if (gpus > 0 && !cuda) {
    std::string why = j.value("cuda_unavailable_because", std::string("?"));
    r.Problem(absl::StrCat(
        "NVML lists ", gpus,
        " GPU(s) but sweep-train's LibTorch cannot "
        "use CUDA: ",
        why,
        ".\n"
        "           THIS IS THE SILENT-CPU TRAP: sweep-train trials with "
        "device=cuda will fail (exit code 3), and a program that picks its "
        "device by \"is CUDA available\" will train on the CPU, slowly, "
        "without a word. Build sweep-train against PyTorch's CUDA LibTorch "
        "(docs/trainer.md) before sweeping on these GPUs."));
  } else if (exit->exit_code != 0 || exit->signal != 0) {
    r.Problem(absl::StrCat("sweep-train doctor reports problems (",
                           exit->ToString(), "); see its report above"));
  }
  int64_t torch_devices = j.value("device_count", int64_t{0});
  if (cuda && gpus > 0 && torch_devices != gpus &&
      std::getenv("CUDA_VISIBLE_DEVICES") == nullptr) {
    r.Line(absl::StrCat("  note: LibTorch sees ", torch_devices,
                        " CUDA device(s), NVML lists ", gpus));
  }
}

}  // namespace

int DoctorCommand(const DoctorCommandOptions& o) {
  Report r;
  r.Line("sweep doctor: checking this node");
  int gpus = CheckGpus(r);
  CheckScheduler(o, r);
  CheckDisk(o, r);
  CheckTrainer(o, gpus, r);
  if (r.problems().empty()) {
    r.Line("doctor: every check passed");
    std::cout.flush();
    return kExitOk;
  }
  r.Line(absl::StrCat("doctor: ", r.problems().size(),
                      " problem(s); see the PROBLEM lines above"));
  std::cout.flush();
  return kExitFailure;
}

void AddDoctorCommand(CLI::App* app) {
  auto o = std::make_shared<DoctorCommandOptions>();
  o->scheduler = Env("SWEEP_SCHEDULER");
  o->token_file = Env("SWEEP_TOKEN_FILE");
  o->tls_ca = Env("SWEEP_TLS_CA");
  CLI::App* c = app->add_subcommand(
      "doctor",
      "check this node: GPUs, CUDA from LibTorch, disk, scheduler; "
      "time CPU vs GPU");
  c->add_option(
      "--scheduler", o->scheduler,
      "also check this scheduler is reachable (default $SWEEP_SCHEDULER)");
  c->add_option(
      "--token-file", o->token_file,
      "file holding the scheduler's token (default $SWEEP_TOKEN_FILE)");
  c->add_option("--tls-ca", o->tls_ca, "the scheduler's CA certificate (PEM)");
  c->add_option("--work-dir", o->work_dir, "where trial directories go")
      ->capture_default_str();
  c->add_option(
      "--trainer", o->trainer,
      "sweep-train to check (default: next to sweep, in its build tree, "
      "./build/trainer, or PATH)");
  c->add_option("--min-free-gib", o->min_free_gib,
                "fail when the work directory has less free disk")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  c->callback([o] {
    InitLogging("sweep", "warn");
    std::exit(DoctorCommand(*o));
  });
}

}  // namespace sweep
