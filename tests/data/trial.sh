#!/bin/sh
# The command trial of the integration tests: records what it saw, appends three
# metric lines, then sleeps as told. score = 10 x + y + step.
set -eu
x=0 y=0 sleep_s=0.1
for a in "$@"; do
  case "$a" in
    --x=*) x=${a#*=} ;;
    --y=*) y=${a#*=} ;;
    --sleep=*) sleep_s=${a#*=} ;;
  esac
done
{
  env | grep -E '^(SWEEP_|CUDA_VISIBLE_DEVICES=)' | sort
  echo "ARGS=$*"
  echo "PID=$$"
  echo "PGID=$(cut -d' ' -f5 /proc/$$/stat)"
  echo "CWD=$(pwd)"
} > "$SWEEP_TRIAL_DIR/seen.txt"
echo "$SWEEP_ATTEMPT" >> "$SWEEP_CHECKPOINT_DIR/attempts"
for step in 1 2 3; do
  echo "{\"step\": $step, \"score\": $((x * 10 + y + step))}" >> "$SWEEP_METRICS_FILE"
done
echo "trial x=$x y=$y running"
sleep "$sleep_s"
echo "trial x=$x y=$y done"
