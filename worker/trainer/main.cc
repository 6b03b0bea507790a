// sweep-train: the LibTorch trainer that ships with sweep. Reads the trial's
// parameters (SWEEP_PARAMS and --key=value arguments), trains, reports metrics
// to SWEEP_METRICS_FILE and checkpoints to SWEEP_CHECKPOINT_DIR. Exit codes:
// see worker/trainer/trainer.h and docs/trainer.md.
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "worker/trainer/params.h"
#include "worker/trainer/trainer.h"

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
