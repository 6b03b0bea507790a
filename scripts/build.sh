#!/usr/bin/env bash
# Configures and builds sweep into build/ (or $BUILD_DIR) with Ninja, two jobs.
set -euo pipefail
cd "$(dirname "$0")/.."
# Let ccache share results between clones in other directories (CI builds a fresh
# clone each time).
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
build_dir=${BUILD_DIR:-build}
build_type=${BUILD_TYPE:-RelWithDebInfo}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" \
  -DSWEEP_BUILD_TRAINER=ON "$@" >/dev/null
cmake --build "$build_dir" -j "${JOBS:-2}"
