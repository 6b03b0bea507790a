#!/usr/bin/env bash
# sweep-train alone against the same sweep-train run as a trial under a worker
# (`sweep run`, one CPU slot): the issue-8 target is at least 0.97x. Runs are
# interleaved (alone, worker, worker, alone, ...); the figure compared is the
# trainer's own `samples_per_second` (training steps only), median over the epochs of
# every run of a side, and the whole run's wall time.
#
#   bash bench/trainer/under_worker.sh            # after scripts/build.sh
#   REPEAT=3 EPOCHS=3 bash bench/trainer/under_worker.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
SWEEP=${SWEEP_BIN:-$PWD/build/cli/sweep}
TRAIN=${SWEEP_TRAIN:-$PWD/build/trainer/sweep-train}
REPEAT=${REPEAT:-2}
EPOCHS=${EPOCHS:-3}
[ -x "$TRAIN" ] && [ -x "$SWEEP" ] || { echo "bench: build first (bash scripts/build.sh)" >&2; exit 1; }
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
args=(--model=mlp --epochs="$EPOCHS" --batch_size=128 --lr=0.01 --momentum=0.9
      --train_limit=20000 --threads=1 --seed=0 --device=cpu)
cat > "$work/one.yaml" <<YAML
name: under-worker
program: $TRAIN
command: ["\${program}", "\${args}"]
method: grid
parameters:
  model: {value: mlp}
  epochs: {value: $EPOCHS}
  batch_size: {value: 128}
  lr: {value: 0.01}
  momentum: {value: 0.9}
  train_limit: {value: 20000}
  threads: {value: 1}
  seed: {value: 0}
  device: {value: cpu}
YAML
echo "machine: $(getconf _NPROCESSORS_ONLN) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
alone() {
  local i=$1 t0 t1
  t0=$EPOCHREALTIME
  SWEEP_METRICS_FILE="$work/alone-$i.jsonl" SWEEP_CHECKPOINT_DIR="$work/ck-$i" \
    "$TRAIN" "${args[@]}" > /dev/null
  t1=$EPOCHREALTIME
  echo "alone $t0 $t1" >> "$work/walls"
}
under() {
  local i=$1 t0 t1
  t0=$EPOCHREALTIME
  "$SWEEP" run "$work/one.yaml" --cpus 1 --http off --db "$work/worker-$i.db" \
    --work-dir "$work/runs-$i" > /dev/null 2>&1
  t1=$EPOCHREALTIME
  echo "worker $t0 $t1" >> "$work/walls"
}
for i in $(seq 1 "$REPEAT"); do
  if [ $((i % 2)) -eq 1 ]; then alone "$i"; under "$i"; else under "$i"; alone "$i"; fi
done
/usr/bin/python3 - "$work" <<'PY'
import glob, json, sqlite3, statistics, sys
work = sys.argv[1]
alone = [json.loads(l)["samples_per_second"] for f in sorted(glob.glob(f"{work}/alone-*.jsonl"))
         for l in open(f) if "samples_per_second" in l]
worker = [v for f in sorted(glob.glob(f"{work}/worker-*.db"))
          for (v,) in sqlite3.connect(f).execute(
              "SELECT value FROM metrics WHERE name='samples_per_second'")]
walls = {"alone": [], "worker": []}
for line in open(f"{work}/walls"):
    side, t0, t1 = line.split()
    walls[side].append(float(t1) - float(t0))
a, w = statistics.median(alone), statistics.median(worker)
print(f"samples/s, median of {len(alone)} epochs alone and {len(worker)} under a worker: "
      f"alone {a:,.0f} ({min(alone):,.0f}-{max(alone):,.0f}), under a worker {w:,.0f} "
      f"({min(worker):,.0f}-{max(worker):,.0f}): {w / a:.3f}x")
wa, ww = statistics.median(walls["alone"]), statistics.median(walls["worker"])
print(f"wall per run, median: alone {wa:.2f} s, `sweep run` (scheduler and worker start, "
      f"the trial, the leaderboard) {ww:.2f} s: {wa / ww:.3f}x")
PY
