#!/bin/sh
# A command trial that reports a learning curve slowly: `loss` = x at every step
# 1..steps, one line every `pause` seconds. Records its pid for the tests.
#
# --gate_dir=DIR: before every step after the first the trial waits until DIR/go-X
# exists (X as in --x=X), so a test can hold a trial mid-run until it is stopped, or
# let it through. The wait gives up after 300 s (exit 4) so that no trial outlives
# a test that died.
set -eu
. "$(dirname "$0")/gate.sh"
x=1 steps=10 pause=0.2 gate_dir=
for a in "$@"; do
  case "$a" in
    --x=*) x=${a#*=} ;;
    --steps=*) steps=${a#*=} ;;
    --pause=*) pause=${a#*=} ;;
    --gate_dir=*) gate_dir=${a#*=} ;;
  esac
done
echo "$$" > "$SWEEP_TRIAL_DIR/pid"
i=1
while [ "$i" -le "$steps" ]; do
  if [ "$i" -gt 1 ] && [ -n "$gate_dir" ]; then
    await_gate "$gate_dir/go-$x"
  fi
  echo "{\"step\": $i, \"loss\": $x}" >> "$SWEEP_METRICS_FILE"
  sleep "$pause"
  i=$((i + 1))
done
