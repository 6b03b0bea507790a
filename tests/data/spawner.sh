#!/bin/sh
# A command trial that starts a process of its own (a long sleep), records its pid
# in the trial directory, and waits for it.
sleep 300 &
echo $! > "$SWEEP_TRIAL_DIR/child.pid.tmp"
mv "$SWEEP_TRIAL_DIR/child.pid.tmp" "$SWEEP_TRIAL_DIR/child.pid"
wait
