#!/usr/bin/env bash
# Configures and builds sweep into build/ (or $BUILD_DIR) with Ninja, two jobs.
#   bash scripts/build.sh [-DOPTION=VALUE ...]   everything, tests included
#   TARGETS="sweep sweep-train" bash scripts/build.sh -DSWEEP_BUILD_TESTS=OFF
#                                                only those targets (the main job)
set -euo pipefail
cd "$(dirname "$0")/.."
# Let ccache share results between clones in other directories (CI builds a fresh
# clone each time).
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
build_dir=${BUILD_DIR:-build}
# Release at -O2 without debug info: about 40% faster to compile than RelWithDebInfo
# (-g) for the LibTorch and gRPC sources. BUILD_TYPE=RelWithDebInfo (or Debug) for a
# debugger.
build_type=${BUILD_TYPE:-Release}
# Tests are on unless an argument turns them off: a build/ that the main job
# configured without them gets them back here.
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" \
  -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
  -DSWEEP_BUILD_TRAINER=ON -DSWEEP_BUILD_TESTS=ON "$@" >/dev/null
targets=()
for t in ${TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build_dir" -j "${JOBS:-2}" "${targets[@]}"
