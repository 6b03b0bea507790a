#!/usr/bin/env bash
# The main job: install, build, and run a real sweep on this machine, one worker
# per GPU (or one CPU slot per core where there is no GPU). By default that is
# sweeps/lr_grid.yaml: sweep-train (LibTorch) training an MLP on Fashion-MNIST over a
# grid of learning rates and batch sizes. Results land in sweeps.db; pass another
# spec as the first argument (e.g. sweeps/quadratic_grid.yaml, which needs no LibTorch).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh -DSWEEP_BUILD_TRAINER=ON
spec=${1:-sweeps/lr_grid.yaml}
slots=()
if grep -q "sweep-train" "$spec"; then
  trainer=build/worker/trainer/sweep-train
  if [ ! -x "$trainer" ]; then
    echo "main: $trainer was not built (LibTorch not found?); run scripts/setup.sh" >&2
    exit 1
  fi
  # sweep-train never falls back to the CPU: on GPU slots a CPU-only LibTorch build
  # refuses every trial (exit code 3). Use CPU slots then, and say so.
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 &&
     ! "$trainer" --version | grep -q "CUDA device usable: yes"; then
    echo "main: GPUs found, but $("$trainer" --version); running on CPU slots." \
         "Build sweep-train against PyTorch's CUDA LibTorch to use the GPUs (docs/trainer.md)." >&2
    slots=(--cpus "$(nproc)")
  fi
fi
exec build/cli/sweep run "$spec" --db "${SWEEP_DB:-sweeps.db}" "${slots[@]}"
