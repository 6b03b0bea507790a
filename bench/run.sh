#!/usr/bin/env bash
# The one benchmark command: sweep against what users would pick instead.
#
#   bash bench/run.sh                       # everything, 3 runs each; rewrites docs/BENCHMARKS.md
#   bash bench/run.sh --only dispatch,ingest --reps 5 --no-doc
#   BENCH_WORK=/mnt/disk/bench bash bench/run.sh   # measure on another disk
#   bash bench/run.sh --gpu [ARGS]          # GPU telemetry on fake GPUs: bench/gpu/run.sh
#
# Builds a Release tree of its own (build-bench/, with -DSWEEP_BUILD_BENCH=ON; the
# normal build never compiles bench/), installs the peer python3-optuna from Debian
# if missing, then runs bench/bench.py: dispatch (vs xargs -P 4 and Optuna), makespan
# (vs the ideal), metric ingest (vs SQLite's own batched inserts) and the scheduler
# at scale (100,000 trials, 10 million points). Separate from the test suite; CI
# does not run it. The Trainer rows have their own command: bench/trainer/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--gpu" ]; then
  shift
  exec bash bench/gpu/run.sh "$@"
fi
BUILD=${BENCH_BUILD:-build-bench}
export BENCH_BUILD=$PWD/$BUILD

if ! /usr/bin/python3 -c "import optuna" 2>/dev/null; then
  echo "bench: installing python3-optuna (benchmark peer only)" >&2
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-optuna >&2
fi
command -v xargs >/dev/null || { echo "bench: xargs (findutils) is missing" >&2; exit 1; }

cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSWEEP_BUILD_BENCH=ON \
  -DSWEEP_BUILD_TESTS=OFF -DSWEEP_BUILD_TRAINER=OFF >/dev/null
ninja -C "$BUILD" -j"${JOBS:-2}" sweep sweep-bench-sqlite sweep-bench-sleep \
  sweep-bench-sim-workers >&2

exec /usr/bin/python3 bench/bench.py "$@"
