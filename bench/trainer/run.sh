#!/usr/bin/env bash
# sweep-train versus the same MLP training loop in PyTorch (Python), in one run:
# same data (Fashion-MNIST), model (784-256-128-10 ReLU), optimizer (SGD, momentum
# 0.9, constant lr), batch sizes, epochs and threads. Prints training steps per second
# of each, their ratio, and both test accuracies.
#
#   bash bench/trainer/run.sh                       # after scripts/build.sh
#   EPOCHS=5 BATCHES="32 64 256" THREADS=2 bash bench/trainer/run.sh
#
# Installs Debian's python3-torch (the same 1.13 build as libtorch-dev) if missing;
# that package is for this benchmark only and is not in scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
TRAIN=${SWEEP_TRAIN:-build/trainer/sweep-train}
EPOCHS=${EPOCHS:-3}
BATCHES=${BATCHES:-"64 256"}
THREADS=${THREADS:-1}
LR=${LR:-0.01}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
PY=/usr/bin/python3  # Debian's interpreter, where python3-torch installs

[ -x "$TRAIN" ] || { echo "bench: $TRAIN not built (bash scripts/build.sh)" >&2; exit 1; }
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "bench: installing python3-torch (benchmark only)" >&2
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-torch >&2
fi

# Both sides get one BLAS thread per torch thread (Python cannot tell OpenBLAS; the
# trainer does so itself through openblas_set_num_threads).
export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "machine: $(getconf _NPROCESSORS_ONLN) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "BLAS: $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3)"
echo "sweep-train: $("$TRAIN" --version)"
echo "python: $("$PY" -c 'import torch, sys; print("torch", torch.__version__, "python", sys.version.split()[0])')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data: $DATA (54000 train, 6000 val, 10000 test), epochs $EPOCHS x ${REPEAT:-2} runs each, threads $THREADS, lr $LR"
# steps/s: training steps per wall-clock second; steps/cpu-s: per second of process CPU
# time, which a busy machine disturbs far less.
printf "\n%-6s %12s %12s %7s %14s %14s %7s %9s %9s\n" batch "C++ steps/s" "Py steps/s" ratio \
  "C++ steps/cpu-s" "Py steps/cpu-s" ratio "C++ test" "Py test"
# Each side runs REPEAT times in the order C++, Python, Python, C++, ... so that a
# change in machine load over the run weighs on both alike.
REPEAT=${REPEAT:-2}
for bs in $BATCHES; do
  for r in $(seq 1 "$REPEAT"); do
    order="cpp py"; [ $((r % 2)) -eq 0 ] && order="py cpp"
    for side in $order; do
      if [ "$side" = cpp ]; then
        SWEEP_METRICS_FILE="$work/cpp-$bs-$r.jsonl" CUDA_VISIBLE_DEVICES= "$TRAIN" \
          --data_dir="$DATA" --hidden='[256,128]' --optimizer=sgd --momentum=0.9 --lr="$LR" \
          --batch_size="$bs" --epochs="$EPOCHS" --threads="$THREADS" --device=cpu --seed=0 \
          > "$work/cpp-$bs-$r.log"
      else
        "$PY" bench/trainer/mlp_pytorch.py --data_dir="$DATA" --hidden='[256,128]' \
          --momentum=0.9 --lr="$LR" --batch_size="$bs" --epochs="$EPOCHS" --threads="$THREADS" \
          --seed=0 > "$work/py-$bs-$r.jsonl"
      fi
    done
  done
  "$PY" - "$work" "$bs" "$REPEAT" <<'PY'
import json, math, sys
work, bs, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n = 54000
steps_per_epoch = math.ceil(n / bs)
cpp_steps = cpp_seconds = py_steps = py_seconds = cpp_cpu = py_cpu = 0.0
for r in range(1, repeat + 1):
    cpp = [json.loads(l) for l in open(f"{work}/cpp-{bs}-{r}.jsonl")]
    for l in cpp:
        if "samples_per_second" in l:  # training time only, as on the Python side
            cpp_steps += steps_per_epoch
            cpp_seconds += n / l["samples_per_second"]
            cpp_cpu += l["train_cpu_seconds"]
    py = [json.loads(l) for l in open(f"{work}/py-{bs}-{r}.jsonl")]
    for l in py:
        if "train_seconds" in l:
            py_steps += steps_per_epoch
            py_seconds += l["train_seconds"]
            py_cpu += l["train_cpu_seconds"]
cpp_sps, py_sps = cpp_steps / cpp_seconds, py_steps / py_seconds
cpp_cps, py_cps = cpp_steps / cpp_cpu, py_steps / py_cpu
print(f"{bs:<6d} {cpp_sps:12.1f} {py_sps:12.1f} {cpp_sps / py_sps:6.2f}x "
      f"{cpp_cps:14.1f} {py_cps:14.1f} {cpp_cps / py_cps:6.2f}x "
      f"{cpp[-1]['test_acc']:9.4f} {py[-1]['test_acc']:9.4f}")
PY
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
