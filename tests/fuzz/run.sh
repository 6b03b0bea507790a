#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each one for a
# bounded time on its seed corpus. Fails on any crash, sanitizer report, broken
# invariant, hang (-timeout), leak or excess memory.
#
#   tests/fuzz/run.sh                   every target, 60 s each
#   tests/fuzz/run.sh 20                20 s each
#   tests/fuzz/run.sh 300 spec          one target
#
# Environment: FUZZ_SECONDS (default 60), FUZZ_BUILD_DIR (default build-fuzz),
# FUZZ_PARALLEL=1 runs the targets at the same time (CI, 2 cores), JOBS (ninja, 2).
# New inputs found go to $FUZZ_BUILD_DIR/corpus/<target>/, crashes to
# $FUZZ_BUILD_DIR/artifacts/<target>/; the seed corpus in tests/fuzz/corpus/ is only
# read. Copy an input worth keeping there (small, named for what it covers): the
# corpus replay test (fuzz_corpus_test in the main build) runs it from then on.
# Needs clang and libFuzzer: Debian packages clang-14, libclang-rt-14-dev, llvm-14.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
seconds="${1:-${FUZZ_SECONDS:-60}}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(spec metrics)
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"

cxx=""
for c in clang++ clang++-14; do
  if command -v "$c" >/dev/null 2>&1; then cxx="$(command -v "$c")"; break; fi
done
if [ -z "$cxx" ]; then
  echo "fuzz: clang++ not found; install clang-14 and libclang-rt-14-dev (scripts/setup.sh)" >&2
  exit 1
fi
for s in llvm-symbolizer llvm-symbolizer-14 /usr/lib/llvm-14/bin/llvm-symbolizer; do
  if command -v "$s" >/dev/null 2>&1; then
    export ASAN_SYMBOLIZER_PATH="$(command -v "$s")"
    break
  fi
done

gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
[ -f "$build/CMakeCache.txt" ] || cmake -S "$here" -B "$build" "${gen[@]}" \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "${JOBS:-2}"

# The metrics target writes a scratch file per input: keep it in memory.
[ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] && export TMPDIR=/dev/shm
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

run_one() {
  local t="$1" corpus="$build/corpus/$1" artifacts="$build/artifacts/$1"
  mkdir -p "$corpus" "$artifacts"
  local max_len=65536
  [ "$t" = metrics ] && max_len=4096
  echo "fuzz: $t for ${seconds}s"
  # -timeout: one input may take at most 10 s (a hang); -rss_limit_mb: 2 GiB.
  "$build/${t}_fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len="$max_len" -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "$corpus" "$here/corpus/$t" >"$build/$t.log" 2>&1
}

status=0
failed=()
if [ "${FUZZ_PARALLEL:-0}" = 1 ]; then
  pids=()
  for t in "${targets[@]}"; do run_one "$t" & pids+=($!); done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { status=1; failed+=("${targets[$i]}"); }
  done
else
  for t in "${targets[@]}"; do run_one "$t" || { status=1; failed+=("$t"); }; done
fi

for t in "${targets[@]}"; do
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/$t.log" | grep -o '[0-9]*$' || true)
  speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$build/$t.log" | grep -o '[0-9]*$' || true)
  cov=$(grep -o 'cov: [0-9]*' "$build/$t.log" | tail -1 || true)
  echo "fuzz: $t: ${execs:-?} inputs, ${speed:-?} exec/s, $cov"
done
if [ $status -ne 0 ]; then
  for t in "${failed[@]}"; do
    echo "fuzz: $t FAILED; the end of $build/$t.log:" >&2
    tail -n 60 "$build/$t.log" >&2
    ls "$build/artifacts/$t" >&2 || true
  done
  echo "fuzz: reproduce with $build/<target>_fuzzer <artifact>" >&2
fi
exit $status
