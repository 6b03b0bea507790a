#!/bin/sh
# The command trial of the integration tests: records what it saw, appends three
# metric lines, then sleeps as told. score = 10 x + y + step.
#
# --gate=PATH: after its metric lines the trial also waits until PATH exists, so a
# test catches it mid-run for as long as it needs and ends the wait by creating
# PATH (or by stopping the trial). The wait gives up after 300 s (exit 4) so that
# no trial outlives a test that died.
set -eu
. "$(dirname "$0")/gate.sh"
x=0 y=0 sleep_s=0.1 gate=
for a in "$@"; do
  case "$a" in
    --x=*) x=${a#*=} ;;
    --y=*) y=${a#*=} ;;
    --sleep=*) sleep_s=${a#*=} ;;
    --gate=*) gate=${a#*=} ;;
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
if [ -n "$gate" ]; then
  await_gate "$gate"
fi
sleep "$sleep_s"
echo "trial x=$x y=$y done"
