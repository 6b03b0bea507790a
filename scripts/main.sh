#!/usr/bin/env bash
# The main job: install, build, and run a real sweep on this machine, one worker
# per GPU (or one CPU slot per core where there is no GPU). By default that is
# sweeps/lr_grid.yaml: sweep-train (LibTorch) training an MLP on Fashion-MNIST over a
# grid of learning rates and batch sizes. Results land in sweeps.db; pass another
# spec as the first argument (e.g. sweeps/quadratic_grid.yaml, which needs no LibTorch).
#
# It installs and builds only what the job needs (scripts/setup.sh main; the
# targets sweep, sweep-group-guard and sweep-train, the dashboard built into sweep),
# and prints a line per stage with its time.
set -euo pipefail
cd "$(dirname "$0")/.."
spec=${1:-sweeps/lr_grid.yaml}
[ -f "$spec" ] || { echo "main: no spec at $spec" >&2; exit 2; }

start=$SECONDS
stage_start=$SECONDS
stage() {  # stage NAME: says that stage NAME starts
  echo "main: [$(date +%H:%M:%S)] $1"
}
done_stage() {  # done_stage NAME: says how long it took
  echo "main: $1 took $((SECONDS - stage_start)) s"
  stage_start=$SECONDS
}

stage "packages (scripts/setup.sh main)"
bash scripts/setup.sh main
done_stage packages

stage "build: sweep, sweep-group-guard, sweep-train"
TARGETS="sweep sweep-group-guard sweep-train" bash scripts/build.sh -DSWEEP_BUILD_TESTS=OFF
done_stage build

slots=()
if grep -q "sweep-train" "$spec"; then
  trainer=build/trainer/sweep-train
  if [ ! -x "$trainer" ]; then
    echo "main: sweep-train was not built (LibTorch not found?); run scripts/setup.sh main" >&2
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

stage "sweep: build/cli/sweep run $spec"
rc=0
build/cli/sweep run "$spec" --db "${SWEEP_DB:-sweeps.db}" "${slots[@]}" || rc=$?
done_stage sweep
echo "main: all stages took $((SECONDS - start)) s; results in ${SWEEP_DB:-sweeps.db}" \
     "(build/cli/sweep status --db ${SWEEP_DB:-sweeps.db})"
exit $rc
