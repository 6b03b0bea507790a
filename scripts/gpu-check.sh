#!/usr/bin/env bash
# One-call proof of sweep on a real GPU (issue "Real GPUs", item 7), in two halves:
#
#   bash scripts/gpu-check.sh prepare [--dest CHECKOUT]
#       HERE, on the build machine (Debian 12, no GPU needed): builds `sweep` and
#       `sweep-group-guard`, and fills the ignored folder .devcarry/ of CHECKOUT
#       (default: this checkout) with them (stripped), the shared libraries `ldd` lists
#       for them (gRPC, Protobuf, abseil, yaml-cpp, SQLite, spdlog, fmt, ... but not
#       libc/libstdc++/libm/ld-linux/libgcc_s/libpthread/libdl/librt, which the GPU
#       machine has), every abseil library with the headers of abseil, nlohmann-json
#       and zlib (to build sweep-train there), all in deps.tar.xz; Fashion-MNIST
#       (Debian's dataset-fashion-mnist) in data.tar.xz; and a copy of this script and
#       scripts/gpu-check/, so the device call works from a checkout that lacks them.
#       Prints the folder's size with the working tree's (64 MiB together at most) and
#       the device call to make. `run` unpacks the archives there (.devcarry/deps/,
#       .devcarry/data/).
#
#   bash scripts/gpu-check.sh run            (or: bash .devcarry/gpu-check.sh run)
#       THERE, on the GPU machine, as the device call's command, in the checkout's root,
#       with $OUT set: builds sweep-train against PyTorch's CUDA LibTorch
#       (scripts/gpu-check/trainer/CMakeLists.txt: the trainer alone, no gRPC), then runs
#       the carried `sweep` (LD_LIBRARY_PATH=.devcarry/lib) through the steps of
#       scripts/gpu-check/run.py, each with its own time budget inside one total
#       (GPU_CHECK_BUDGET, default 450 s): sweep doctor; 1, 2, 4 and 8 sweep-train
#       trials packed on the GPU (throughput, utilization, memory, energy); the memory
#       estimate against the measured peak for three models; a CPU-only trial flagged
#       by resources.gpu_check; sweeps/lr_grid.yaml. A failing step is recorded and the
#       next one runs. Writes gpu-check.md, gpu-check.json and two archives (logs,
#       databases) under $OUT (4 files; the device returns 8 at most).
#
#   GPU_CHECK_DRY=1 bash scripts/gpu-check.sh run
#       The run half on a machine without a GPU: the fake libnvidia-ml.so.1
#       (tests/fake_nvml.cc, build/tests/fake-nvml) with one fake card, sweep-train
#       trials on the CPU (device=cpu), small sizes and budgets. It proves the plumbing
#       (builds, processes, budgets, parsing, $OUT), not a single GPU figure.
#       GPU_CHECK_TRAINER=PATH skips building sweep-train; GPU_CHECK_SWEEP=PATH runs
#       that sweep instead of the carried one (then .devcarry/ is not needed). The ctest
#       `gpu_check_dry` (label gpucheck) runs it so.
#
# The device call (prepare prints it): command `bash .devcarry/gpu-check.sh run`,
# carry [".devcarry"], timeout_s 540. The device machine receives the checkout the
# session was started in (not a helper's worktree): prepare with --dest pointing at it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Libraries the GPU machine has itself (its own C and C++ runtime): never carried.
SYSTEM_LIBS='^(linux-vdso|libc|libstdc\+\+|libm|ld-linux-x86-64|libgcc_s|libpthread|libdl|librt)\.so'
LIMIT_MIB=64          # what may travel, working tree and carry together
WARN_MIB=56           # prepare fails above this, to leave room for the tree's growth

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

prepare() {
  local root dest="" 
  root=$(cd "$HERE/.." && pwd)
  while [ $# -gt 0 ]; do
    case "$1" in
      --dest) dest="$2"; shift 2 ;;
      *) echo "gpu-check prepare: unknown argument $1" >&2; exit 2 ;;
    esac
  done
  dest=${dest:-${GPU_CHECK_DEST:-$root}}
  dest=$(cd "$dest" && pwd)
  [ -f "$root/scripts/build.sh" ] || { echo "gpu-check: run prepare from a sweep checkout" >&2; exit 2; }
  local carry="$dest/.devcarry" build="${BUILD_DIR:-build}"
  if ! git -C "$dest" check-ignore -q .devcarry/x 2>/dev/null; then
    echo "gpu-check: .devcarry/ is not ignored in $dest (add /.devcarry/ to .gitignore" \
      "or .git/info/exclude): it would be committed" >&2
    exit 2
  fi

  echo "== build sweep, sweep-group-guard ($root/$build)"
  (cd "$root" && TARGETS="sweep sweep-group-guard" BUILD_DIR="$build" bash scripts/build.sh) |
    tail -3
  local sweep="$root/$build/cli/sweep" guard="$root/$build/cli/sweep-group-guard"
  for f in "$sweep" "$guard"; do
    [ -x "$f" ] || { echo "gpu-check: $f was not built" >&2; exit 1; }
  done

  echo "== fill $carry"
  rm -rf "$carry"
  local stage="$carry/deps"
  mkdir -p "$stage/bin" "$stage/lib" "$stage/include"
  cp "$sweep" "$guard" "$stage/bin/"
  strip --strip-unneeded "$stage/bin/"*

  # The libraries ldd resolves for both binaries, under the names they are asked by.
  local name path
  while read -r name path; do
    [[ "$name" =~ $SYSTEM_LIBS ]] && continue
    cp -L "$path" "$stage/lib/$name"
  done < <(ldd "$sweep" "$guard" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | sort -u)
  if ldd "$sweep" | grep -q 'not found'; then
    echo "gpu-check: ldd finds no $(ldd "$sweep" | grep 'not found')" >&2
    exit 1
  fi
  # For building sweep-train there: every abseil library (the trainer's are a subset of
  # the set above, but take no chances), zlib, and the headers.
  local multiarch=/usr/lib/x86_64-linux-gnu lib
  for lib in "$multiarch"/libabsl_*.so.*.*; do
    name=$(objdump -p "$lib" | awk '$1 == "SONAME" { print $2 }')
    [ -e "$stage/lib/$name" ] || cp -L "$lib" "$stage/lib/$name"
  done
  [ -e "$stage/lib/libz.so.1" ] || cp -L /lib/x86_64-linux-gnu/libz.so.1 "$stage/lib/"
  chmod u+w "$stage/lib/"*
  strip --strip-unneeded "$stage/lib/"*
  cp -r /usr/include/absl /usr/include/nlohmann "$stage/include/"
  cp /usr/include/zlib.h /usr/include/zconf.h "$stage/include/"
  # Data: sweeps/lr_grid.yaml and the packed trials train on Fashion-MNIST. Carried as
  # raw IDX files in one .tar.xz (xz packs them 15% smaller than their .gz), as the
  # libraries are (3.5x smaller): run unpacks both there.
  local fm=/usr/share/datasets/fashion-mnist
  if [ ! -f "$fm/train-images-idx3-ubyte.gz" ]; then
    echo "gpu-check: $fm missing (apt-get install dataset-fashion-mnist): the GPU run" \
      "would have no data" >&2
    exit 1
  fi
  mkdir -p "$carry/data-stage/fashion-mnist"
  for f in "$fm"/*-ubyte.gz; do
    zcat "$f" >"$carry/data-stage/fashion-mnist/$(basename "$f" .gz)"
  done
  # A record of what was carried, for the report.
  {
    echo "prepared $(date -u +%FT%TZ) on $(hostname) from $(git -C "$root" rev-parse --short HEAD)"
    echo "sweep: $("$sweep" --version 2>/dev/null || echo '?')"
    (cd "$carry" && find . -type f -printf '%10s %p\n' | sort -k2)
  } >"$carry/MANIFEST.txt"
  echo "  packing deps.tar.xz and data.tar.xz (xz -9, a minute on 2 cores)"
  tar -C "$carry" -cf - deps | xz -9 -T"${JOBS:-2}" >"$carry/deps.tar.xz"
  tar -C "$carry/data-stage" -cf - fashion-mnist | xz -9 -T"${JOBS:-2}" >"$carry/data.tar.xz"
  rm -rf "$stage" "$carry/data-stage"
  # The script itself, so that a checkout without it (an older main) can run it.
  cp "$HERE/gpu-check.sh" "$carry/"
  cp -r "$HERE/gpu-check" "$carry/"
  rm -rf "$carry/gpu-check/__pycache__"

  # Size: the carry and what else travels (tracked and untracked-not-ignored files).
  local carry_b tree_b total_b
  carry_b=$(du -sb "$carry" | cut -f1)
  tree_b=$(cd "$dest" && git ls-files -co --exclude-standard -z |
    xargs -0 -r stat -L -c %s 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
  [ -d "$dest/shared" ] && tree_b=$((tree_b + $(du -sb "$dest/shared" | cut -f1)))
  total_b=$((carry_b + tree_b))
  echo "== size"
  printf '  .devcarry     %6s MiB  (deps.tar.xz %s: binaries, libraries, headers; data.tar.xz %s)\n' \
    "$(mib "$carry_b")" "$(du -sh "$carry/deps.tar.xz" | cut -f1)" \
    "$(du -sh "$carry/data.tar.xz" | cut -f1)"
  printf '  working tree  %6s MiB  (%s)\n' "$(mib "$tree_b")" "$dest"
  printf '  together      %6s MiB  of %d MiB that may travel\n' "$(mib "$total_b")" "$LIMIT_MIB"
  if [ "$total_b" -gt $((WARN_MIB * 1048576)) ]; then
    cat >&2 <<EOF
gpu-check: over $WARN_MIB MiB: the device call would fail or leave no room. Look at
  $carry/MANIFEST.txt for the largest files (sizes before xz). In order: move large
  untracked files out of the tree (or ignore them); build sweep with
  BUILD_TYPE=MinSizeRel BUILD_DIR=build-min; carry only the abseil libraries ldd lists;
  carry a Fashion-MNIST subset (the packed trials use train_limit, but lr_grid.yaml
  needs the full training split).
EOF
    exit 1
  fi
  cat <<EOF
== the device call (one call, about 6-8 minutes; needs a session lent a GPU machine)
  run(command="bash .devcarry/gpu-check.sh run", carry=[".devcarry"], timeout_s=540)
  The figures come back under files_at: gpu-check.md, gpu-check.json, logs.tar.gz,
  dbs.tar.gz. The machine receives the session's own checkout: prepare with
  --dest pointing at it when you work in another worktree.
EOF
}

run_mode() {
  local root carry
  root=$PWD
  [ -d "$root/trainer" ] || { echo "gpu-check run: start it in the checkout's root" >&2; exit 2; }
  carry=${GPU_CHECK_CARRY:-$root/.devcarry}
  if [ -z "${OUT:-}" ]; then
    if [ "${GPU_CHECK_DRY:-0}" = 1 ]; then
      OUT=$(mktemp -d /tmp/gpu-check-out.XXXXXX)
      echo "gpu-check: OUT not set; writing to $OUT"
    else
      echo "gpu-check run: \$OUT is not set (the device call sets it)" >&2
      exit 2
    fi
  fi
  mkdir -p "$OUT"
  # The machine's python3 (on the GPU machine: the one with torch) runs the steps; it
  # starts the carried binaries with LD_LIBRARY_PATH, never itself under it.
  export OUT GPU_CHECK_CARRY="$carry" GPU_CHECK_ROOT="$root"
  exec python3 -u "$HERE/gpu-check/run.py"
}

case "${1:-}" in
  prepare) shift; prepare "$@" ;;
  run) shift; run_mode "$@" ;;
  -h | --help | help | "") usage ;;
  *) echo "gpu-check: unknown mode '$1' (prepare or run)" >&2; exit 2 ;;
esac
