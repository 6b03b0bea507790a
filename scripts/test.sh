#!/usr/bin/env bash
# The test suite: install, build, and run every test (unit, integration with real
# processes on loopback, W&B compatibility) with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
# gpu_check_dry (label gpucheck) times its steps against budgets on purpose and takes
# minutes of CPU training: run it by hand (ctest --test-dir build -L gpucheck).
ctest --test-dir build --output-on-failure -j "${JOBS:-2}" --timeout 300 -LE gpucheck
