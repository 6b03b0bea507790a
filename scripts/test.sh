#!/usr/bin/env bash
# The test suite: install, build, and run every test (unit, integration with real
# processes on loopback, W&B compatibility) with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "${JOBS:-2}" --timeout 300
