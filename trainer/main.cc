// sweep-train: the LibTorch trainer that ships with sweep. Reads the trial's
// parameters (SWEEP_PARAMS and --key=value arguments), trains, reports metrics
// to SWEEP_METRICS_FILE and checkpoints to SWEEP_CHECKPOINT_DIR. Exit codes:
// see trainer/trainer.h and docs/trainer.md. Two other modes:
// `--estimate-memory` (with the same parameters) prints the memory estimate as
// one JSON line (estimate.h); `doctor` checks the node (doctor.h).
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "trainer/data.h"
#include "trainer/doctor.h"
#include "trainer/estimate.h"
#include "trainer/params.h"
#include "trainer/trainer.h"

namespace {

std::atomic<bool> g_stop{false};

void OnTerm(int) { g_stop.store(true); }

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sweep::trainer;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << ParamsHelp();
      return 0;
    }
    if (a == "--version") {
      std::cout << BuildInfo() << "\n";
      return 0;
    }
  }
  if (!args.empty() && (args[0] == "doctor" || args[0] == "--doctor")) {
    auto options = ParseDoctorArgs(args);
    if (!options.ok()) {
      std::cerr << "sweep-train: " << options.status().message() << "\n";
      return kExitBadInput;
    }
    return RunDoctor(*options);
  }
  auto estimate_flag = std::find(args.begin(), args.end(), kEstimateMemoryFlag);
  const bool estimate_only = estimate_flag != args.end();
  if (estimate_only) args.erase(estimate_flag);

  std::optional<std::string> cuda;
  if (const char* v = std::getenv("CUDA_VISIBLE_DEVICES")) cuda = v;
  auto params = ParseParams(Env("SWEEP_PARAMS"), args, cuda);
  if (!params.ok()) {
    std::cerr << "sweep-train: " << params.status().message()
              << "\n(sweep-train --help lists the parameters)\n";
    return ExitCodeFor(params.status());
  }

  for (const auto& w : params->warnings)
    std::cerr << "sweep-train: warning: " << w << "\n";

  if (estimate_only) {
    // One JSON line on stdout; the dataset's shape only, no samples loaded.
    const TrainerParams& p = *params;
    absl::StatusOr<DataShape> shape =
        ReadDataShape({.dataset = p.dataset,
                       .data_dir = p.data_dir,
                       .val_fraction = p.val_fraction,
                       .train_limit = p.train_limit});
    absl::StatusOr<MemoryEstimate> estimate =
        shape.ok() ? EstimateMemory(p, *shape)
                   : absl::StatusOr<MemoryEstimate>(shape.status());
    if (!estimate.ok()) {
      std::cerr << "sweep-train: " << estimate.status().message() << "\n";
      return ExitCodeFor(estimate.status());
    }
    std::cout << MemoryEstimateJson(*estimate, p, *shape) << std::endl;
    return kExitTrained;
  }

  struct sigaction sa = {};
  sa.sa_handler = OnTerm;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);

  TrainerEnv env;
  env.metrics_file = Env("SWEEP_METRICS_FILE");
  env.checkpoint_dir = Env("SWEEP_CHECKPOINT_DIR");
  env.cuda_visible_devices = cuda.value_or("");
  env.stop = &g_stop;
  env.quiet = env.metrics_file.empty();  // stdout carries the JSON lines then
  absl::Status st = RunTrainer(*params, env);
  if (!st.ok()) std::cerr << "sweep-train: " << st.message() << "\n";
  return ExitCodeFor(st);
}
