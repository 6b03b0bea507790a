#!/usr/bin/env bash
# ASHA against the same configurations run in full.
#
# Runs bench/asha/full.yaml (12 MLP configurations on a Fashion-MNIST subset, 9 epochs
# each, no early stopping), then bench/asha/asha.yaml (the same grid with
# early_terminate: asha, min_iter 1, max_iter 9, eta 3) with `sweep run`, each into a
# fresh SQLite file, and prints from the databases:
#   - the full runs' trial-epochs (val_acc rows stored) and their best val_acc;
#   - for ASHA: the trial-epochs it had spent (val_acc rows stored up to that moment,
#     in the order the scheduler stored them) when a trial first reached the full
#     runs' best minus 0.5 percentage points (or its total, if none did), its total,
#     its best val_acc, and the ratio full / ASHA.
#
#   bash bench/asha/run.sh                    # from anywhere, after scripts/build.sh
#   SLOTS=2 ASHA_SLOTS="2 1" bash bench/asha/run.sh
#
# SLOTS: CPU slots (`sweep run --cpus`) of the full run; ASHA_SLOTS: one ASHA run per
# entry. ASHA's decisions depend on the order in which trials reach a rung, so the
# slot count changes which trials it stops: with 1 slot the grid runs in sequence.
# KEEP=1 keeps the work directory (databases, trial directories).
set -euo pipefail
cd "$(dirname "$0")/../.."
SWEEP=${SWEEP:-build/cli/sweep}
TRAIN=build/trainer/sweep-train   # the path the spec files name
SLOTS=${SLOTS:-2}
ASHA_SLOTS=${ASHA_SLOTS:-"2 1"}
TOL=${TOL:-0.005}                        # 0.5 percentage points of val_acc

for f in "$SWEEP" "$TRAIN"; do
  [ -x "$f" ] || { echo "bench: $f not built (bash scripts/build.sh)" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "bench: needs python3" >&2; exit 1; }

WORK=$(mktemp -d /tmp/sweep-bench-asha.XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT

run() {  # run NAME SPEC CPUS
  local t0 t1
  t0=$(date +%s.%N)
  "$SWEEP" run --cpus "$3" --http off --db "$WORK/$1.db" --work-dir "$WORK/$1-runs" \
    "bench/asha/$2" >"$WORK/$1.log" 2>&1 || { echo "bench: sweep run $2 failed:" >&2; tail -20 "$WORK/$1.log" >&2; exit 1; }
  t1=$(date +%s.%N)
  python3 -c "print(f'{$t1 - $t0:.1f}')" >"$WORK/$1.wall"
}

echo "bench: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before; work dir $WORK" >&2
echo "bench: full run, $SLOTS slots" >&2
run full full.yaml "$SLOTS"
for s in $ASHA_SLOTS; do
  echo "bench: asha, $s slots" >&2
  run "asha$s" asha.yaml "$s"
done
echo "bench: load average $(cut -d' ' -f1-3 /proc/loadavg) after" >&2

python3 - "$WORK" "$TOL" "$SLOTS" $ASHA_SLOTS <<'PY'
import json, sqlite3, sys
work, tol, full_slots, asha_slots = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]

def load(name):
    db = sqlite3.connect(f"file:{work}/{name}.db?mode=ro", uri=True)
    rows = db.execute(
        "SELECT m.trial_id, m.step, m.value, m.time FROM metrics m "
        "WHERE m.name = 'val_acc' AND m.value IS NOT NULL ORDER BY m.time, m.rowid").fetchall()
    trials = db.execute("SELECT id, idx, state, params, stopped_at_step, COALESCE(best_metric, 0) "
                        "FROM trials ORDER BY idx").fetchall()
    wall = open(f"{work}/{name}.wall").read().strip()
    return rows, trials, wall

def cfg(params):
    p = json.loads(params)
    return f"lr={p['lr']:g} hidden={p['hidden']}"

full_rows, full_trials, full_wall = load("full")
# A diverging configuration (lr 0.3) may end `failed` (non-finite loss); its epochs count.
bad = [t for t in full_trials if t[2] not in ("completed", "failed")]
if bad or len(full_trials) != 12:
    sys.exit(f"bench: full run: {len(full_trials)} trials, not ended: {bad}")
full_states = {}
for t in full_trials:
    full_states[t[2]] = full_states.get(t[2], 0) + 1
best = max(v for _, _, v, _ in full_rows)
best_trial = max(full_trials, key=lambda t: t[5])
target = best - tol
# The full runs' own trial-epochs to reach the target (in storage order), for reference.
full_to_target = next(i + 1 for i, r in enumerate(full_rows) if r[2] >= target)

print(f"full ({full_slots} slots): {len(full_trials)} trials "
      f"({', '.join(f'{n} {k}' for k, n in sorted(full_states.items()))}), {len(full_rows)} trial-epochs, "
      f"best val_acc {best:.4f} ({cfg(best_trial[3])}), wall {full_wall} s")
print(f"  target: {best:.4f} - {tol*100:g} pp = {target:.4f}; "
      f"the full grid first reached it after {full_to_target} trial-epochs (in storage order)")
print("  per configuration, best val_acc (epoch): " + "; ".join(
    f"{cfg(t[3])}: {t[5]:.4f}" + ("" if t[2] == "completed" else f" ({t[2]})") for t in full_trials))
for s in asha_slots:
    rows, trials, wall = load(f"asha{s}")
    hit = next((i + 1 for i, r in enumerate(rows) if r[2] >= target), None)
    spent = hit if hit is not None else len(rows)
    abest = max(v for _, _, v, _ in rows)
    by_state = {}
    for t in trials:
        by_state[t[2]] = by_state.get(t[2], 0) + 1
    stops = {}
    for t in trials:
        if t[2] == "stopped":
            stops[t[4]] = stops.get(t[4], 0) + 1
    print(f"asha ({s} slot{'s' if s != '1' else ''}): {len(trials)} trials "
          f"({', '.join(f'{n} {k}' for k, n in sorted(by_state.items()))}; stopped at rung: "
          f"{', '.join(f'{k}: {n}' for k, n in sorted(stops.items())) or 'none'}), "
          f"{len(rows)} trial-epochs in all, best val_acc {abest:.4f}, wall {wall} s")
    if hit is not None:
        print(f"  reached {target:.4f} after {hit} trial-epochs; "
              f"full/asha = {len(full_rows)}/{hit} = {len(full_rows)/hit:.2f}x fewer "
              f"(whole sweeps: {len(full_rows)}/{len(rows)} = {len(full_rows)/len(rows):.2f}x)")
    else:
        print(f"  never reached {target:.4f} (best {abest:.4f}, {(best-abest)*100:.2f} pp below the "
              f"full best); spent {spent} trial-epochs, full/asha = {len(full_rows)/spent:.2f}x")
    print("  per configuration, epochs run / best val_acc: " + "; ".join(
        f"{cfg(t[3])}: {sum(1 for r in rows if r[0] == t[0])} / {t[5]:.4f}"
        + ("" if t[2] == "completed" else f" ({t[2]})") for t in trials))
PY
