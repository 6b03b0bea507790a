#!/bin/sh
# The trial of tests/slurm_test.cc: records the Slurm job it runs in and its pid,
# reports one metric, then sleeps as told (--sleep=SECONDS).
set -eu
x=0 sleep_s=0
for a in "$@"; do
  case "$a" in
    --x=*) x=${a#*=} ;;
    --sleep=*) sleep_s=${a#*=} ;;
  esac
done
{
  echo "SLURM_JOB_ID=${SLURM_JOB_ID:-}"
  echo "PID=$$"
} > "$SWEEP_TRIAL_DIR/seen.txt"
echo "{\"step\": 1, \"score\": $x}" >> "$SWEEP_METRICS_FILE"
exec sleep "$sleep_s"
