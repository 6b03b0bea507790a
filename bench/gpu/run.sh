#!/usr/bin/env bash
# GPU telemetry benchmarks on fake GPUs (issue "Real GPUs", Benchmarks); not in CI.
#
#   bash bench/gpu/run.sh                         # both, 30 s windows, 15 trials
#   bash bench/gpu/run.sh --only cpu --window 60  # see bench/gpu/telemetry.py
#
# Builds sweep, sweep-group-guard and the fake libnvidia-ml.so.1 (tests/fake_nvml.cc)
# into build/ (scripts/build.sh; BENCH_GPU_BUILD=DIR to use another tree that has
# them), then runs bench/gpu/telemetry.py, which prints Markdown tables for
# docs/BENCHMARKS.md ("GPU telemetry"). About 5 minutes. bench/run.sh runs it with
# --gpu.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${BENCH_GPU_BUILD:-}" ]; then
  TARGETS="sweep sweep-group-guard fake_nvml" bash scripts/build.sh >&2
fi
exec python3 bench/gpu/telemetry.py "$@"
