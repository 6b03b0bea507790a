#!/bin/sh
# The command trial of the dashboard's browser test: a learning curve of five
# steps. loss falls with the step and is lowest near lr = 0.01 with more layers; a
# trial with layers=4 diverges after step 2 and exits 3 with a message on stderr.
#
# --gate=PATH: after step 1 the trial waits until PATH exists, so the test sees it
# running for as long as it needs and then releases it by creating PATH (the wait
# gives up after 300 s, exit 4, so that no trial outlives a test that died).
set -eu
. "$(dirname "$0")/../data/gate.sh"
lr=0.01 layers=1 gate=
for a in "$@"; do
  case "$a" in
    --lr=*) lr=${a#*=} ;;
    --layers=*) layers=${a#*=} ;;
    --gate=*) gate=${a#*=} ;;
  esac
done
echo "training lr=$lr layers=$layers"
for step in 1 2 3 4 5; do
  if [ "$step" = 2 ] && [ -n "$gate" ]; then
    await_gate "$gate"
  fi
  if [ "$layers" = 4 ] && [ "$step" = 3 ]; then
    echo "error: loss diverged to nan at step $step (lr=$lr)" >&2
    exit 3
  fi
  loss=$(awk -v s="$step" -v lr="$lr" -v l="$layers" 'BEGIN {
    d = log(lr) / log(10) + 2; if (d < 0) d = -d;
    printf "%.4f", 1 / (s + 1) + 0.15 * d + 0.2 / l }')
  echo "{\"step\": $step, \"loss\": $loss, \"lr_seen\": $lr}" >> "$SWEEP_METRICS_FILE"
  echo "step $step loss $loss"
done
echo "done: final loss $loss"
