#!/bin/sh
# A command trial that resumes from its checkpoint, for the failure tests: for every
# step from the one after the checkpoint up to `steps` it appends one metric line
# {"step": i, "v": 1000 x + i}, then saves i as the checkpoint (write and rename) and
# sleeps `pause` seconds (`pause1` instead in attempt 1, when given). Writes `done`
# in its trial directory when it ran to the end. Records for the tests its pid, its
# network namespace and the step it resumed after.
set -eu
x=0 steps=10 pause=0.1 pause1=
for a in "$@"; do
  case "$a" in
    --x=*) x=${a#*=} ;;
    --steps=*) steps=${a#*=} ;;
    --pause=*) pause=${a#*=} ;;
    --pause1=*) pause1=${a#*=} ;;
  esac
done
if [ "$SWEEP_ATTEMPT" = 1 ] && [ -n "$pause1" ]; then pause=$pause1; fi
ckpt="$SWEEP_CHECKPOINT_DIR/step"
start=0
if [ -f "$ckpt" ]; then start=$(cat "$ckpt"); fi
echo "$$" > "$SWEEP_TRIAL_DIR/pid"
readlink /proc/self/ns/net > "$SWEEP_TRIAL_DIR/netns" || true
echo "$start" > "$SWEEP_TRIAL_DIR/resumed_after"
i=$((start + 1))
while [ "$i" -le "$steps" ]; do
  echo "{\"step\": $i, \"v\": $((x * 1000 + i))}" >> "$SWEEP_METRICS_FILE"
  echo "$i" > "$ckpt.$$"
  mv "$ckpt.$$" "$ckpt"
  sleep "$pause"
  i=$((i + 1))
done
echo done > "$SWEEP_TRIAL_DIR/done"
