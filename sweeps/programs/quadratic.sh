#!/bin/sh
# A command trial that needs nothing but a POSIX shell and awk: gradient descent with
# momentum on an ill-conditioned 2-D quadratic, f(x, y) = (x - 3)^2 + 10 (y + 1)^2.
# It follows the trial contract (docs/trial-contract.md): reads --key=value
# arguments, appends one JSON line per step to $SWEEP_METRICS_FILE, and resumes from
# $SWEEP_CHECKPOINT_DIR when a retried attempt finds a checkpoint there.
set -eu
lr=0.01 momentum=0.0 steps=50 step_seconds=0.02
for arg in "$@"; do
  case "$arg" in
    --lr=*) lr=${arg#*=} ;;
    --momentum=*) momentum=${arg#*=} ;;
    --steps=*) steps=${arg#*=} ;;
    --step_seconds=*) step_seconds=${arg#*=} ;;
    *) echo "quadratic.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done
metrics=${SWEEP_METRICS_FILE:-/dev/stdout}
ckpt=${SWEEP_CHECKPOINT_DIR:-}
start=0 x=0 y=0 vx=0 vy=0
if [ -n "$ckpt" ] && [ -f "$ckpt/state" ]; then
  read -r start x y vx vy < "$ckpt/state"
  echo "resuming from step $start" >&2
fi
i=$start
while [ "$i" -lt "$steps" ]; do
  i=$((i + 1))
  set -- $(awk -v x="$x" -v y="$y" -v vx="$vx" -v vy="$vy" -v lr="$lr" -v m="$momentum" 'BEGIN {
    gx = 2 * (x - 3); gy = 20 * (y + 1)
    vx = m * vx - lr * gx; vy = m * vy - lr * gy
    x += vx; y += vy
    loss = (x - 3) ^ 2 + 10 * (y + 1) ^ 2
    if (loss > 1e30) loss = 1e30
    printf "%.17g %.17g %.17g %.17g %.10g\n", x, y, vx, vy, loss }')
  x=$1 y=$2 vx=$3 vy=$4 loss=$5
  printf '{"step": %d, "loss": %s}\n' "$i" "$loss" >> "$metrics"
  [ -n "$ckpt" ] && echo "$i $x $y $vx $vy" > "$ckpt/state"
  sleep "$step_seconds"
done
echo "final loss $loss after $steps steps (lr=$lr, momentum=$momentum)"
