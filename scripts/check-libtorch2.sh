#!/usr/bin/env bash
# check-libtorch2.sh: does sweep-train compile, link and pass its tests against
# LibTorch 2.6? A manual check for maintainers; not part of CI.
#
# CI builds sweep-train against Debian 12's CPU LibTorch 1.13, GPU nodes against
# PyTorch's LibTorch 2.x with CUDA. This script checks the 2.x side with Debian
# trixie's LibTorch 2.6 packages, each flavour in its own trixie chroot made with
# debootstrap:
#
#   cpu   libtorch-dev 2.6 (CPU). Configures with SWEEP_BUILD_TESTS=ON, builds
#         sweep-train and the trainer tests only (TRAINER_TESTS below; not the
#         whole tree) and runs them with ctest.
#   cuda  libtorch-cuda-dev 2.6 (contrib, built against CUDA 12), with
#         nvidia-cuda-toolkit (non-free, nvcc 12.4). libtorch-cuda-dev's dependency
#         nvidia-cudnn is an installer that downloads cuDNN from NVIDIA at install
#         time; a local dummy package stands in for it, so there is no
#         libcudnn.so.9. Builds sweep-train, checks that its CUDA-only code
#         (SWEEP_TRAINER_CUDA_STATS: peak GPU memory from
#         c10::cuda::CUDACachingAllocator) was compiled; if the link fails only
#         for want of libcudnn it links again with -Wl,--allow-shlib-undefined and
#         says so. To run the binary without a GPU it builds a stub libcudnn.so.9
#         (the names libtorch_cuda.so imports from it, as empty functions; never
#         called without a GPU) in the chroot's /build-cuda-cudnn-stub, used
#         through LD_LIBRARY_PATH only. Then `sweep-train --version` and `doctor` must
#         say CUDA is not usable, and `--device=cuda` must exit 3 at once
#         (docs/trainer.md), never train on the CPU.
#
# The first run downloads about 2.8 GB from deb.debian.org (0.3 GB for the cpu
# chroot; 2.5 GB more for cuda: LibTorch's CUDA build, CUDA's libraries and
# nvidia-cuda-toolkit, which a CUDA LibTorch's CMake config needs) and takes
# about 13 GB of disk under $SWEEP_LT2_DIR. Later runs reuse the chroots and
# the .deb cache there, and only rebuild what changed. The source is the working tree this script is
# in, bind-mounted read-only into the chroots; its dashboard/node_modules must
# exist (scripts/setup.sh), since the top-level CMake needs ECharts to configure.
#
# Usage:   sudo scripts/check-libtorch2.sh [cpu] [cuda]      (default: both)
# Env:     SWEEP_LT2_DIR (default /var/tmp/sweep-lt2), MIRROR (default
#          http://deb.debian.org/debian), JOBS (compile jobs, default 1),
#          NICE (default 19), SETUP_ONLY=1 (make the chroots, install the
#          packages, stop), ALL_TRAINER_TESTS=1 (see TRAINER_TESTS).
# Exit:    0 when every check passed, 1 when one failed, 2 for a usage or setup
#          problem. The summary at the end lists every check.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${SWEEP_LT2_DIR:-/var/tmp/sweep-lt2}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
JOBS="${JOBS:-1}"
NICE="${NICE:-19}"
SUITE=trixie
ARCHIVES="$WORK/apt-archives"  # the .deb cache both chroots share

# What the top-level CMakeLists.txt needs to configure (scripts/setup.sh's list,
# less what only other parts of the tree or the host use).
BUILD_PACKAGES=(
  cmake ninja-build g++ pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libyaml-cpp-dev libsqlite3-dev libcli11-dev nlohmann-json3-dev
  libspdlog-dev libgtest-dev libgmock-dev zlib1g-dev libcpp-httplib-dev
  libopenblas0-pthread
)
# tests/CMakeLists.txt's sweep_trainer_test targets. trainer_sweep_test and
# doctor_test also build `sweep` (most of the tree); set ALL_TRAINER_TESTS=1.
TRAINER_TESTS=(
  trainer_params_test trainer_data_test trainer_schedule_test
  trainer_model_test trainer_checkpoint_test trainer_loop_test
  trainer_run_test trainer_estimate_test
)
if [ "${ALL_TRAINER_TESTS:-0}" = 1 ]; then
  TRAINER_TESTS+=(trainer_sweep_test doctor_test)
fi
# ctest names are the gtest names (TrainerRunTest.X, DoctorTest.X).
CTEST_REGEX='^(Trainer|Doctor)'

flavours=("$@")
[ ${#flavours[@]} -gt 0 ] || flavours=(cpu cuda)
for f in "${flavours[@]}"; do
  case "$f" in
    cpu | cuda) ;;
    *)
      echo "usage: $0 [cpu] [cuda]" >&2
      exit 2
      ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "check-libtorch2: needs root (debootstrap, chroot, mount)" >&2
  exit 2
fi
if [ ! -f "$REPO/dashboard/node_modules/echarts/dist/echarts.min.js" ]; then
  echo "check-libtorch2: $REPO/dashboard/node_modules is missing; the top-level" \
    "CMake needs it to configure. Run scripts/setup.sh (or npm ci --prefix" \
    "dashboard) first." >&2
  exit 2
fi

mkdir -p "$WORK" "$ARCHIVES/partial"
LOG="$WORK/logs"
mkdir -p "$LOG"

declare -a SUMMARY=()
FAILED=0
pass() { SUMMARY+=("PASS  $*"); echo "check-libtorch2: PASS: $*"; }
fail() { SUMMARY+=("FAIL  $*"); echo "check-libtorch2: FAIL: $*"; FAILED=1; }
note() { SUMMARY+=("NOTE  $*"); echo "check-libtorch2: $*"; }
step() { echo; echo "=== $* ($(date +%T))"; }

# Mounts made by this run, unmounted (in reverse) on exit.
declare -a MOUNTS=()
cleanup() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTS[$i]}" 2>/dev/null || umount -l "${MOUNTS[$i]}" || true
  done
}
trap cleanup EXIT
bind() { # bind SRC DST [ro]
  mkdir -p "$2"
  mountpoint -q "$2" && return 0
  mount --bind "$1" "$2"
  MOUNTS+=("$2")
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}

in_chroot() { # in_chroot ROOT COMMAND...: runs COMMAND in ROOT at low priority
  local root="$1"
  shift
  nice -n "$NICE" chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

# Makes (or reuses) a trixie chroot at ROOT with BUILD_PACKAGES and the extra
# packages given, and mounts /proc, /sys, /dev, the .deb cache and the source.
prepare_chroot() { # prepare_chroot ROOT LOGNAME
  local root="$1" name="$2"
  if [ ! -x "$root/usr/bin/apt-get" ]; then
    if ! command -v debootstrap >/dev/null; then
      apt-get install -y -q debootstrap >"$LOG/host-apt.log" 2>&1
    fi
    step "debootstrap $SUITE into $root"
    nice -n "$NICE" debootstrap --variant=minbase --components=main,contrib,non-free \
      --cache-dir="$ARCHIVES" "$SUITE" "$root" "$MIRROR" >"$LOG/$name-debootstrap.log" 2>&1 || {
      echo "check-libtorch2: debootstrap failed; see $LOG/$name-debootstrap.log" >&2
      exit 2
    }
    echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/99sweep-no-recommends"
    # Keep the downloaded .debs (the shared cache) for the next run.
    echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' \
      >"$root/etc/apt/apt.conf.d/99sweep-keep-debs"
  fi
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  bind /proc "$root/proc"
  bind /sys "$root/sys"
  bind /dev "$root/dev"
  bind /dev/pts "$root/dev/pts"
  bind "$ARCHIVES" "$root/var/cache/apt/archives"
  bind "$REPO" "$root/src" ro
}

apt_install() { # apt_install ROOT LOGNAME PACKAGE...
  local root="$1" name="$2"
  shift 2
  # Only when something is missing.
  local missing=0 p
  for p in "$@"; do
    in_chroot "$root" dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
      grep -q '^install ok installed$' || missing=1
  done
  [ "$missing" = 1 ] || return 0
  in_chroot "$root" apt-get update -q >"$LOG/$name-apt.log" 2>&1
  in_chroot "$root" apt-get install -y -q "$@" >>"$LOG/$name-apt.log" 2>&1 || {
    grep -E '^(E:|dpkg: error)' "$LOG/$name-apt.log" | tail -5 >&2
    return 1
  }
  grep -E '^(Need to get|Fetched)' "$LOG/$name-apt.log" | tail -1 || true
}

# configure ROOT BUILDDIR LOGNAME [CMAKE ARGS...]
configure() {
  local root="$1" dir="$2" name="$3"
  shift 3
  in_chroot "$root" cmake -S /src -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSWEEP_BUILD_TESTS=ON "$@" >"$LOG/$name-configure.log" 2>&1
}

# configure_trainer ROOT BUILDDIR FLAVOUR [CMAKE ARG...]: configure, and check that
# sweep-train is part of the build; a failure is reported and returns 1.
configure_trainer() {
  local root="$1" dir="$2" name="$3"
  shift 3
  if ! configure "$root" "$dir" "$name" "$@"; then
    fail "$name: configure (see $LOG/$name-configure.log)"
    tail -20 "$LOG/$name-configure.log"
    return 1
  fi
  if ! grep -q 'sweep-train: LibTorch' "$LOG/$name-configure.log"; then
    fail "$name: configure skipped sweep-train (see $LOG/$name-configure.log)"
    return 1
  fi
  pass "$name: configure: $(grep -o 'sweep-train: LibTorch.*' "$LOG/$name-configure.log")"
}

# build ROOT BUILDDIR LOGNAME TARGET...: -k 0 so that every error is listed.
build() {
  local root="$1" dir="$2" name="$3"
  shift 3
  in_chroot "$root" ninja -C "$dir" -j"$JOBS" -k 0 "$@" >"$LOG/$name-build.log" 2>&1
}

# The compiler's errors and the warnings that point at LibTorch, from a build log.
show_diagnostics() {
  grep -E 'error:|warning: .*(deprecated|torch|c10|at::)|undefined reference|FAILED:' "$1" |
    sort -u | head -40 || true
}

check_cpu() {
  local root="$WORK/root" b=/build-cpu
  step "cpu: chroot $root with libtorch-dev"
  prepare_chroot "$root" cpu
  apt_install "$root" cpu "${BUILD_PACKAGES[@]}" libtorch-dev || {
    fail "cpu: installing libtorch-dev and the build dependencies (see $LOG/cpu-apt.log)"
    return
  }
  local version
  version=$(in_chroot "$root" dpkg-query -W -f='${Version}' libtorch-dev)
  note "cpu: libtorch-dev $version"
  [ "${SETUP_ONLY:-0}" = 1 ] && return

  step "cpu: configure"
  configure_trainer "$root" "$b" cpu || return

  step "cpu: build sweep-train ${TRAINER_TESTS[*]} (-j$JOBS)"
  if build "$root" "$b" cpu sweep-train "${TRAINER_TESTS[@]}"; then
    pass "cpu: build sweep-train and ${#TRAINER_TESTS[@]} trainer test executables"
  else
    fail "cpu: build (see $LOG/cpu-build.log):"
    show_diagnostics "$LOG/cpu-build.log"
  fi
  show_diagnostics "$LOG/cpu-build.log" >"$LOG/cpu-diagnostics.txt"
  if grep -q 'warning:' "$LOG/cpu-build.log"; then
    note "cpu: compiler warnings: $(grep -c 'warning:' "$LOG/cpu-build.log") (see $LOG/cpu-build.log)"
  fi

  if [ -x "$root$b/trainer/sweep-train" ]; then
    note "cpu: $(in_chroot "$root" "$b/trainer/sweep-train" --version 2>&1 | head -1)"
  fi

  step "cpu: ctest -R '$CTEST_REGEX'"
  # Executables that were not built show up as *_NOT_BUILT tests: excluded.
  in_chroot "$root" sh -c "cd $b && ctest -R '$CTEST_REGEX' -E '_NOT_BUILT' \
    --output-on-failure --timeout 600" >"$LOG/cpu-ctest.log" 2>&1 || true
  local line
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of' "$LOG/cpu-ctest.log" || true)
  if [ -z "$line" ]; then
    fail "cpu: ctest ran no test (see $LOG/cpu-ctest.log)"
  elif grep -q ' 0 tests failed' <<<"$line"; then
    pass "cpu: ctest: $line"
  else
    fail "cpu: ctest: $line"
    local l
    while read -r l; do
      SUMMARY+=("        $l")
      echo "    $l"
    done < <(grep -E '^ *[0-9]+ - .*\(' "$LOG/cpu-ctest.log")
  fi
  local skipped
  skipped=$(grep -c 'Skipped' "$LOG/cpu-ctest.log" || true)
  [ "$skipped" = 0 ] || note "cpu: ctest: $skipped test(s) skipped (see $LOG/cpu-ctest.log)"
  [ "${ALL_TRAINER_TESTS:-0}" = 1 ] ||
    note "cpu: not built: trainer_sweep_test, doctor_test (they need the sweep binary," \
      "most of the tree: ALL_TRAINER_TESTS=1)"
}

# A dummy nvidia-cudnn: the real one downloads cuDNN from NVIDIA when installed.
# Its version sorts above trixie's so apt never tries to "upgrade" it.
install_dummy_cudnn() {
  local root="$1"
  if in_chroot "$root" dpkg-query -W -f='${Version}' nvidia-cudnn 2>/dev/null |
    grep -q sweepdummy; then
    return 0
  fi
  local d="$root/tmp/nvidia-cudnn-dummy"
  rm -rf "$d"
  mkdir -p "$d/DEBIAN"
  cat >"$d/DEBIAN/control" <<'EOF'
Package: nvidia-cudnn
Version: 9.0.0.312~cuda12+sweepdummy1
Architecture: all
Section: contrib/libs
Priority: optional
Maintainer: sweep scripts/check-libtorch2.sh <root@localhost>
Description: empty stand-in for nvidia-cudnn (sweep's check-libtorch2.sh)
 The real package downloads cuDNN from NVIDIA when it is installed, which this
 check cannot do. Installs nothing: there is no libcudnn.so.9.
EOF
  in_chroot "$root" dpkg-deb --build /tmp/nvidia-cudnn-dummy /tmp/nvidia-cudnn-dummy.deb >/dev/null
  in_chroot "$root" dpkg -i /tmp/nvidia-cudnn-dummy.deb >/dev/null
  in_chroot "$root" apt-mark hold nvidia-cudnn >/dev/null
}

# A stub libcudnn.so.9 exporting, as empty functions, every name that
# libtorch_cuda.so imports from libcudnn.so.9 (it is linked with BIND_NOW, so
# all of them must resolve), so that the dynamic loader can load sweep-train on
# a machine without cuDNN. Nothing calls them without a GPU. Writes STUBDIR.
make_cudnn_stub() { # make_cudnn_stub ROOT STUBDIR (STUBDIR inside the chroot)
  local root="$1" stub="$2" lib
  lib=$(in_chroot "$root" sh -c 'ls /usr/lib/x86_64-linux-gnu/libtorch_cuda.so* | head -1')
  mkdir -p "$root$stub"
  # nm writes NAME@libcudnn.so.9: the version node libtorch_cuda.so wants.
  in_chroot "$root" sh -c "nm -D --undefined-only '$lib' | awk '{print \$2}' |
    grep '@libcudnn\.so' | sed 's/@.*//' | sort -u" >"$root$stub/symbols.txt"
  awk '{ printf "void %s(void) {}\n", $1 }' "$root$stub/symbols.txt" >"$root$stub/stub.c"
  # The names are bound to a version node named after the library.
  echo 'libcudnn.so.9 { global: *; };' >"$root$stub/stub.map"
  in_chroot "$root" gcc -shared -fPIC -o "$stub/libcudnn.so.9" -Wl,-soname,libcudnn.so.9 \
    -Wl,--version-script="$stub/stub.map" "$stub/stub.c"
}

check_cuda() {
  local root="$WORK/root-cuda" b=/build-cuda
  step "cuda: chroot $root with libtorch-cuda-dev"
  prepare_chroot "$root" cuda
  apt_install "$root" cuda "${BUILD_PACKAGES[@]}" || {
    fail "cuda: installing the build dependencies (see $LOG/cuda-apt.log)"
    return
  }
  install_dummy_cudnn "$root"
  # find_package(Torch) of a CUDA LibTorch needs the CUDA toolkit (nvcc):
  # Caffe2's cuda.cmake runs find_package(CUDA) and enable_language(CUDA), and
  # configuring fails without them (FATAL_ERROR, even with QUIET).
  apt_install "$root" cuda libtorch-cuda-dev nvidia-cuda-toolkit || {
    fail "cuda: installing libtorch-cuda-dev and nvidia-cuda-toolkit (see $LOG/cuda-apt.log)"
    return
  }
  note "cuda: libtorch-cuda-dev $(in_chroot "$root" dpkg-query -W -f='${Version}' libtorch-cuda-dev)," \
    "nvidia-cudnn replaced by an empty dummy package"
  [ "${SETUP_ONLY:-0}" = 1 ] && return

  step "cuda: configure"
  # Set every time: the CMake cache would keep an earlier run's value.
  local linker=(-DCMAKE_EXE_LINKER_FLAGS=) plain=1
  if [ -f "$root$b/.allow-shlib-undefined" ]; then
    # shellcheck disable=SC2054 # one argument with commas
    linker=(-DCMAKE_EXE_LINKER_FLAGS=-Wl,--allow-shlib-undefined)
    plain=0
  fi
  configure_trainer "$root" "$b" cuda "${linker[@]}" || return
  # The CUDA-only code in trainer is under #ifdef SWEEP_TRAINER_CUDA_STATS,
  # which trainer/CMakeLists.txt defines when it finds c10_cuda.
  if grep -q 'SWEEP_TRAINER_CUDA_STATS' "$root$b/build.ninja"; then
    pass "cuda: SWEEP_TRAINER_CUDA_STATS is defined (the CUDA-only code is compiled)"
  else
    fail "cuda: SWEEP_TRAINER_CUDA_STATS is not defined: the CUDA-only code is not compiled"
  fi

  step "cuda: compile every translation unit of trainer (-j$JOBS)"
  # The objects first, so that a link failure cannot hide a compile error.
  if build "$root" "$b" cuda-compile sweep_trainer sweep_trainer_core \
    trainer/CMakeFiles/sweep-train.dir/main.cc.o; then
    pass "cuda: every trainer translation unit compiles"
    if grep -q 'warning:' "$LOG/cuda-compile-build.log"; then
      note "cuda: compiler warnings: $(grep -c 'warning:' "$LOG/cuda-compile-build.log")" \
        "(see $LOG/cuda-compile-build.log)"
    fi
  else
    fail "cuda: compile (see $LOG/cuda-compile-build.log):"
    show_diagnostics "$LOG/cuda-compile-build.log"
    return
  fi

  step "cuda: link sweep-train"
  if build "$root" "$b" cuda-link sweep-train; then
    if [ "$plain" = 0 ]; then
      pass "cuda: sweep-train links with -Wl,--allow-shlib-undefined (an earlier run" \
        "found no libcudnn.so.9; rm $root$b/.allow-shlib-undefined to try without)"
    else
      pass "cuda: sweep-train links"
    fi
  elif grep -q 'libcudnn' "$LOG/cuda-link-build.log" &&
    ! grep -E 'undefined reference' "$LOG/cuda-link-build.log" | grep -qv 'cudnn'; then
    note "cuda: the link fails only for the missing libcudnn.so.9:" \
      "$(grep -m1 -o '[^ ]*libcudnn[^ ]*.*' "$LOG/cuda-link-build.log")"
    cp "$LOG/cuda-link-build.log" "$LOG/cuda-link-without-cudnn.log"
    touch "$root$b/.allow-shlib-undefined"
    configure "$root" "$b" cuda -DCMAKE_EXE_LINKER_FLAGS=-Wl,--allow-shlib-undefined
    if build "$root" "$b" cuda-link sweep-train; then
      pass "cuda: sweep-train links with -Wl,--allow-shlib-undefined (no libcudnn.so.9 here)"
    else
      fail "cuda: link with -Wl,--allow-shlib-undefined (see $LOG/cuda-link-build.log)"
      show_diagnostics "$LOG/cuda-link-build.log"
      return
    fi
  else
    fail "cuda: link (see $LOG/cuda-link-build.log)"
    show_diagnostics "$LOG/cuda-link-build.log"
    return
  fi

  step "cuda: run sweep-train without a GPU"
  local bin="$b/trainer/sweep-train" stub=/build-cuda-cudnn-stub env=(env)
  in_chroot "$root" ldd "$bin" >"$LOG/cuda-ldd.txt" 2>&1 || true
  if grep -q 'not found' "$LOG/cuda-ldd.txt"; then
    note "cuda: ldd: $(grep 'not found' "$LOG/cuda-ldd.txt" | awk '{print $1}' | sort -u | tr '\n' ' ')not found"
    if grep 'not found' "$LOG/cuda-ldd.txt" | grep -qv libcudnn; then
      fail "cuda: sweep-train cannot be loaded (see $LOG/cuda-ldd.txt)"
      return
    fi
    make_cudnn_stub "$root" "$stub"
    env+=("LD_LIBRARY_PATH=$stub")
    note "cuda: running with a stub libcudnn.so.9 ($(wc -l <"$root$stub/symbols.txt") empty functions)"
  fi
  run() { # run NAME [VAR=VALUE] ARGS...: records output and exit code
    local name="$1" rc=0 var=()
    shift
    if [[ "$1" == *=* && "$1" != --* ]]; then var=("$1"); shift; fi
    in_chroot "$root" "${env[@]}" "${var[@]}" "$bin" "$@" >"$LOG/cuda-$name.txt" 2>&1 || rc=$?
    echo "\$ ${var[*]:+${var[*]} }sweep-train $* -> exit $rc" >>"$LOG/cuda-run.txt"
    sed 's/^/    /' "$LOG/cuda-$name.txt" | head -20 >>"$LOG/cuda-run.txt"
    return "$rc"
  }
  : >"$LOG/cuda-run.txt"
  local rc=0
  run version --version || rc=$?
  if [ "$rc" = 0 ] && grep -q 'built with CUDA: yes, CUDA device usable: no' "$LOG/cuda-version.txt"; then
    pass "cuda: --version: $(tail -1 "$LOG/cuda-version.txt")"
  else
    fail "cuda: --version exited $rc: $(head -3 "$LOG/cuda-version.txt" | tr '\n' ' ')"
  fi
  rc=0
  run doctor doctor --cpu-size=256 || rc=$?
  if [ "$rc" = 0 ] && grep -q 'CUDA: not usable' "$LOG/cuda-doctor.txt" &&
    grep -q 'built with CUDA: yes' "$LOG/cuda-doctor.txt"; then
    pass "cuda: doctor exits 0: $(grep 'CUDA: not usable' "$LOG/cuda-doctor.txt")"
  else
    fail "cuda: doctor exited $rc: $(head -5 "$LOG/cuda-doctor.txt" | tr '\n' ' ')"
  fi
  # The trial must refuse before loading data: no data here on purpose.
  rc=0
  run device-cuda --device=cuda --dataset=csv --data_dir=/nonexistent --epochs=1 || rc=$?
  # ... and name the cause: no device, not "a LibTorch built without CUDA".
  if [ "$rc" = 3 ] && grep -q 'Not falling back to the CPU' "$LOG/cuda-device-cuda.txt" &&
    grep -q 'no CUDA device is visible' "$LOG/cuda-device-cuda.txt"; then
    pass "cuda: --device=cuda exits 3: $(tail -1 "$LOG/cuda-device-cuda.txt")"
  else
    fail "cuda: --device=cuda exited $rc (want 3, no CUDA device is visible): $(tail -2 "$LOG/cuda-device-cuda.txt" | tr '\n' ' ')"
  fi
  # A GPU slot's default: CUDA_VISIBLE_DEVICES set, no device parameter.
  rc=0
  run gpu-slot CUDA_VISIBLE_DEVICES=0 --dataset=csv --data_dir=/nonexistent --epochs=1 || rc=$?
  if [ "$rc" = 3 ] && grep -q 'no CUDA device is visible (CUDA_VISIBLE_DEVICES="0")' "$LOG/cuda-gpu-slot.txt"; then
    pass "cuda: CUDA_VISIBLE_DEVICES=0 without a device parameter exits 3"
  else
    fail "cuda: CUDA_VISIBLE_DEVICES=0 exited $rc (want 3): $(tail -2 "$LOG/cuda-gpu-slot.txt" | tr '\n' ' ')"
  fi
}

for f in "${flavours[@]}"; do
  "check_$f"
done

echo
echo "=== check-libtorch2 summary (logs in $LOG)"
printf '%s\n' "${SUMMARY[@]}"
if [ "$FAILED" = 0 ]; then
  echo "check-libtorch2: OK"
else
  echo "check-libtorch2: FAILED"
fi
exit "$FAILED"
