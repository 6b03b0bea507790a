#!/usr/bin/env bash
# The main job: install, build, and run a real sweep on this machine, one worker
# per GPU (or one CPU slot per core where there is no GPU). Results land in
# sweeps.db; pass another spec as the first argument.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
spec=${1:-sweeps/quadratic_grid.yaml}
exec build/cli/sweep run "$spec" --db "${SWEEP_DB:-sweeps.db}"
