#!/usr/bin/env bash
# ctest gpu_check_dry (label gpucheck): scripts/gpu-check.sh's run half on this machine,
# without a GPU: the fake libnvidia-ml.so.1 with one card, the CPU sweep-train of this
# build (no build step), packs of 1 and 2 trials, and a 15 s budget for lr_grid so that
# a step that runs out of time is exercised. Checks the plumbing: every step recorded,
# figures parsed, the CPU-only trial flagged, $OUT holding the four files. It proves
# nothing about a GPU.
#   bash scripts/gpu-check/dry_test.sh SWEEP SWEEP_TRAIN FAKE_NVML_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp -d /tmp/gpu-check-dry-test.XXXXXX)
trap 'rm -rf "$out"' EXIT
cd "$root"
rc=0
OUT=$out GPU_CHECK_DRY=1 GPU_CHECK_SWEEP="$1" GPU_CHECK_TRAINER="$2" \
  GPU_CHECK_FAKE_NVML_DIR="$3" GPU_CHECK_PACK="1 2" GPU_CHECK_BUDGET=170 \
  GPU_CHECK_CARRY="$out/no-carry" bash scripts/gpu-check.sh run || rc=$?
echo "gpu-check.sh run exited $rc (1 expected: doctor and lr_grid cannot pass without a GPU)"
python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
files = sorted(os.listdir(out))
assert files == ["dbs.tar.gz", "gpu-check.json", "gpu-check.md", "logs.tar.gz"], files
r = json.load(open(f"{out}/gpu-check.json"))
s = {x["name"]: x for x in r["steps"]}
assert list(s) == ["env", "build", "doctor", "pack", "memory", "lr_grid"], list(s)
assert r["dry_run"] and r["total_s"] < 170 + 30, r["total_s"]
assert s["env"]["status"] == "ok", s["env"]
assert s["build"]["status"] == "ok" and not s["build"]["figures"]["built"], s["build"]
# Doctor: the fake card is listed but the CPU LibTorch cannot use it: exit 1, CPU figures.
d = s["doctor"]["figures"]
assert d.get("exit_code") == 1 and d.get("cpu_matmul") and "cpu_scalar_multiply_us" in d, d
p = s["pack"]
assert p["status"] == "ok", p
ph = p["figures"]["phases"]
assert [x["n"] for x in ph] == [1, 2], ph
for x in ph:
    assert x["aggregate_samples_per_s"] > 0 and len(x["per_trial_samples_per_s"]) == x["n"], x
    assert x["states"] == {"stopped": x["n"]}, x
    assert all(e is not None for e in x["energy_joules"]), x  # the fake card's 100 W
assert ph[1]["throughput_vs_one"] > 0, ph
m = s["memory"]
assert m["figures"]["no_gpu_trial"]["gpu_flag"] == "no_gpu_activity", m
models = m["figures"]["models"]
assert [x["model"] for x in models] == ["mlp-small", "mlp-wide", "cnn"], models
assert all(x.get("estimate_mib", 0) > 0 and x.get("state") == "completed" for x in models), models
g = s["lr_grid"]
assert g["status"] == "timed out" and g["seconds"] <= g["budget_s"] + 10, g
md = open(f"{out}/gpu-check.md").read()
assert "DRY RUN" in md and "Packed trials on one GPU" in md, md
print("gpu_check_dry: OK:", {k: v["status"] for k, v in s.items()}, f"total {r['total_s']} s")
PY
