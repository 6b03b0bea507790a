#!/bin/sh
# A command trial that reports steadily: --lines=N metric lines, one every --every=S
# seconds ({"step": i, "tick": i}).
set -eu
lines=10 every=0.1
for a in "$@"; do
  case "$a" in
    --lines=*) lines=${a#*=} ;;
    --every=*) every=${a#*=} ;;
  esac
done
i=1
while [ "$i" -le "$lines" ]; do
  echo "{\"step\": $i, \"tick\": $i}" >> "$SWEEP_METRICS_FILE"
  sleep "$every"
  i=$((i + 1))
done
