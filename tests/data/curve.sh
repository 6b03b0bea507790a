#!/bin/sh
# A command trial that reports a learning curve slowly: `loss` = x at every step
# 1..steps, one line every `pause` seconds. Records its pid for the tests.
set -eu
x=1 steps=10 pause=0.2
for a in "$@"; do
  case "$a" in
    --x=*) x=${a#*=} ;;
    --steps=*) steps=${a#*=} ;;
    --pause=*) pause=${a#*=} ;;
  esac
done
echo "$$" > "$SWEEP_TRIAL_DIR/pid"
i=1
while [ "$i" -le "$steps" ]; do
  echo "{\"step\": $i, \"loss\": $x}" >> "$SWEEP_METRICS_FILE"
  sleep "$pause"
  i=$((i + 1))
done
