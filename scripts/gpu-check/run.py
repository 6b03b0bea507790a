#!/usr/bin/env python3
"""The run half of scripts/gpu-check.sh: the proof on a real GPU, step by step.

Started by `bash scripts/gpu-check.sh run` (which sets OUT, GPU_CHECK_ROOT and
GPU_CHECK_CARRY) in the checkout's root. Each step has its own time budget, cut to what
is left of the total (GPU_CHECK_BUDGET seconds, default 450; 150 in a dry run); a step
that fails or runs out of time is recorded with what it measured so far, and the next
one runs. Steps:

  env       the machine: GPU (nvidia-smi), python's torch, ldd of the carried sweep
  build     sweep-train against python3's torch (PyTorch's CUDA LibTorch), with
            scripts/gpu-check/trainer/CMakeLists.txt (the trainer alone)
  doctor    `sweep doctor`: scalar multiply and matrix products on CPU and GPU
  pack      one scheduler and one `sweep worker --gpus 0 --slots-per-gpu 8`; sweeps of
            N = 1, 2, 4, 8 identical small sweep-train trials with trials_per_gpu: N,
            each trial stopped by the spec's `timeout`; throughput while all N ran,
            GPU utilization, peak memory, energy per trial (trials.energy_joules)
  memory    three models, one trial each: `sweep-train --estimate-memory` against
            trials.peak_gpu_memory_mib and the trainer's own allocator peak; with it,
            a command trial that never touches the GPU, which resources.gpu_check must
            flag (trials.gpu_flag = no_gpu_activity)
  lr_grid   sweeps/lr_grid.yaml through `sweep run --gpus all` (program and data_dir
            pointed at this run's sweep-train and data), wall time

GPU_CHECK_DRY=1: no GPU; the fake libnvidia-ml.so.1 (tests/fake_nvml.cc) with one fake
card, sweep-train trials on the CPU (device=cpu), small sizes. Proves the plumbing only.
Other knobs: GPU_CHECK_TRAINER (use this sweep-train, no build), GPU_CHECK_SWEEP (this
sweep binary, no carried libraries), GPU_CHECK_PACK ("1 2 4 8"), GPU_CHECK_STEPS (a
subset, e.g. "env doctor pack"), GPU_CHECK_FAKE_NVML_DIR (dry run; default
build/tests/fake-nvml), GPU_CHECK_BUILD (sweep-train's build folder), GPU_CHECK_KEEP=1
(keep the work folder).

Writes under $OUT: gpu-check.md (the summary), gpu-check.json (every figure),
logs.tar.gz (build, doctor, scheduler and worker logs, nvidia-smi samples, trial logs)
and dbs.tar.gz (the SQLite files).
"""
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback

ROOT = os.environ.get("GPU_CHECK_ROOT", os.getcwd())
CARRY = os.environ.get("GPU_CHECK_CARRY", os.path.join(ROOT, ".devcarry"))
OUT = os.environ["OUT"]
HERE = os.path.dirname(os.path.abspath(__file__))
DRY = os.environ.get("GPU_CHECK_DRY") == "1"
T0 = time.monotonic()
BUDGET = float(os.environ.get("GPU_CHECK_BUDGET", "150" if DRY else "450"))
DEADLINE = T0 + BUDGET
MIN_STEP_S = 8            # a step with less time than this left is skipped
STEPS = os.environ.get("GPU_CHECK_STEPS", "env build doctor pack memory lr_grid").split()
PACK_NS = [int(n) for n in os.environ.get("GPU_CHECK_PACK", "1 2 4 8").split()]

# Budgets (seconds) per step; each is cut to what is left of the total.
BUDGETS = {"env": 20, "build": 200, "doctor": 45, "pack": 115, "memory": 45, "lr_grid": 150}
if DRY:
    BUDGETS.update({"build": 400, "doctor": 40, "pack": 20 + 12 * len(PACK_NS),
                    "memory": 45, "lr_grid": 15})

# Sizes. The packed trials: a small MLP, many epochs of a subset, stopped by `timeout`,
# so that all N run side by side for most of their life whatever the GPU's speed.
PACK_TIMEOUT_S = 6 if DRY else 18
PACK_TRAIN_LIMIT = 1000 if DRY else 20000
MEM_EPOCHS = 1 if DRY else 2
MEM_TRAIN_LIMIT = 500 if DRY else 20000

WORK = tempfile.mkdtemp(prefix="gpu-check.")
LOGS = os.path.join(WORK, "logs")
os.makedirs(LOGS)
DEPS = os.path.join(CARRY, "deps")        # bin/, lib/, include/ from deps.tar.xz
DATA_DIR = "/usr/share/datasets/fashion-mnist"   # replaced by the carried copy, if any

REPORT = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "dry_run": DRY,
          "budget_s": BUDGET, "steps": []}
STATE = {}                # what steps hand to later ones (trainer path, cluster)


def log(msg):
    print(f"[gpu-check {time.monotonic() - T0:6.1f}s] {msg}", flush=True)


class StepTimeout(Exception):
    pass


class StepFailed(Exception):
    pass


def left():
    return DEADLINE - time.monotonic()


# --- processes --------------------------------------------------------------------


def sweep_bin():
    return os.environ.get("GPU_CHECK_SWEEP") or os.path.join(DEPS, "bin", "sweep")


def sweep_env():
    """The environment of every sweep process: the carried libraries, and in a dry run
    the fake NVML with its config."""
    env = dict(os.environ)
    paths = []
    if DRY:
        paths.append(os.environ.get("GPU_CHECK_FAKE_NVML_DIR",
                                    os.path.join(ROOT, "build", "tests", "fake-nvml")))
        env["SWEEP_FAKE_NVML"] = os.path.join(WORK, "nvml.json")
    if not os.environ.get("GPU_CHECK_SWEEP"):
        paths.append(os.path.join(DEPS, "lib"))
    if env.get("LD_LIBRARY_PATH"):
        paths.append(env["LD_LIBRARY_PATH"])
    if paths:
        env["LD_LIBRARY_PATH"] = ":".join(paths)
    return env


def kill_group(p, grace=3.0):
    """SIGTERM to the process group of p, SIGKILL after `grace` seconds."""
    if p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def run(argv, deadline, log_name, env=None, cwd=None, check=True):
    """Runs argv in its own process group, output to logs/<log_name>; kills it at
    `deadline` (StepTimeout). Returns (exit code, output)."""
    path = os.path.join(LOGS, log_name)
    with open(path, "ab") as f:
        f.write(f"$ {' '.join(argv)}\n".encode())
        f.flush()
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=env,
                             cwd=cwd or ROOT, start_new_session=True)
        try:
            rc = p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            kill_group(p)
            raise StepTimeout(f"{os.path.basename(argv[0])} {' '.join(argv[1:3])} "
                              f"ran out of the step's time (log {log_name})")
    text = open(path, errors="replace").read()
    if check and rc != 0:
        tail = "\n".join(text.rstrip().splitlines()[-15:])
        raise StepFailed(f"{' '.join(argv[:3])} exited {rc}:\n{tail}")
    return rc, text


def output(argv, env=None, timeout=20):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"({e})"


# --- steps ------------------------------------------------------------------------


def step(name, fn):
    rec = {"name": name, "budget_s": BUDGETS[name], "figures": {}}
    REPORT["steps"].append(rec)
    if name not in STEPS:
        rec.update(status="not run", why="not in GPU_CHECK_STEPS")
        return
    budget = min(BUDGETS[name], left())
    if budget < MIN_STEP_S:
        rec.update(status="skipped", why=f"{left():.0f} s left of the total budget")
        log(f"{name}: skipped ({rec['why']})")
        return
    log(f"{name}: start (budget {budget:.0f} s)")
    t = time.monotonic()
    try:
        fn(t + budget, rec["figures"])
        rec["status"] = "ok"
    except StepTimeout as e:
        rec.update(status="timed out", why=str(e))
    except StepFailed as e:
        rec.update(status="failed", why=str(e))
    except Exception as e:  # a bug in this script: recorded, the next step runs
        rec.update(status="failed", why=f"{type(e).__name__}: {e}",
                   traceback=traceback.format_exc())
    rec["seconds"] = round(time.monotonic() - t, 1)
    log(f"{name}: {rec['status']} in {rec['seconds']} s"
        + (f": {rec['why'].splitlines()[0]}" if rec.get("why") else ""))


def unpack(fig):
    """deps.tar.xz and data.tar.xz of `prepare`, into .devcarry/deps and .devcarry/data."""
    global DATA_DIR
    for name, into in (("deps.tar.xz", CARRY), ("data.tar.xz", os.path.join(CARRY, "data"))):
        src = os.path.join(CARRY, name)
        if not os.path.exists(src):
            fig[f"unpacked_{name}"] = "absent"
            continue
        stamp = os.path.join(into, f".{name}.unpacked")
        if not (os.path.exists(stamp) and os.path.getmtime(stamp) >= os.path.getmtime(src)):
            t = time.monotonic()
            with tarfile.open(src, "r:xz") as tar:
                tar.extractall(into)
            open(stamp, "w").close()
            fig[f"unpacked_{name}"] = f"{time.monotonic() - t:.1f} s"
    carried = os.path.join(CARRY, "data", "fashion-mnist")
    if os.path.exists(os.path.join(carried, "train-images-idx3-ubyte")):
        DATA_DIR = carried


def step_env(deadline, fig):
    unpack(fig)
    fig["host"] = os.uname().nodename
    fig["cpus"] = os.cpu_count()
    fig["kernel"] = os.uname().release
    fig["nvidia_smi"] = (output(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                                 "--format=csv,noheader"]) if shutil.which("nvidia-smi")
                         else "no nvidia-smi")
    fig["python_torch"] = output([sys.executable, "-c",
                                  "import torch; print(torch.__version__, torch.version.cuda,"
                                  " torch.cuda.is_available())"], timeout=60).splitlines()[-1]
    fig["nvcc"] = output(["nvcc", "--version"]).splitlines()[-1:] if shutil.which("nvcc") \
        else "no nvcc on PATH"
    fig["sweep"] = sweep_bin()
    ldd = output(["ldd", sweep_bin()], env=sweep_env())
    with open(os.path.join(LOGS, "ldd-sweep.txt"), "w") as f:
        f.write(ldd)
    missing = [l.split()[0] for l in ldd.splitlines() if "not found" in l]
    fig["sweep_libraries_missing"] = missing
    fig["data_dir"] = DATA_DIR
    if DRY:
        with open(os.path.join(WORK, "nvml.json"), "w") as f:
            json.dump({"gpus": [{"uuid": "GPU-fake-0", "name": "Fake GPU",
                                 "memory_mib": 16384, "utilization": 50,
                                 "power_w": 100}]}, f)
        fig["fake_nvml"] = "one fake card, 16 GiB, 50 % utilization, 100 W"
    if missing:
        raise StepFailed(f"the carried sweep lacks {', '.join(missing)}")


def torch_prefix():
    out = subprocess.run([sys.executable, "-c",
                          "import torch.utils; print(torch.utils.cmake_prefix_path)"],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else ""


def step_build(deadline, fig):
    given = os.environ.get("GPU_CHECK_TRAINER")
    if given:
        STATE["trainer"] = os.path.abspath(given)
        fig["trainer"] = STATE["trainer"]
        fig["built"] = False
    else:
        build = os.environ.get("GPU_CHECK_BUILD", os.path.join(WORK, "build-trainer"))
        prefix = torch_prefix()
        fig["cmake_prefix_path"] = prefix or "(none: python3 has no torch; CMake's default)"
        env = dict(os.environ)
        if not shutil.which("nvcc") and os.path.exists("/usr/local/cuda/bin/nvcc"):
            env["PATH"] = "/usr/local/cuda/bin:" + env["PATH"]
        env.setdefault("CCACHE_BASEDIR", ROOT)
        env.setdefault("CCACHE_NOHASHDIR", "1")
        args = ["cmake", "-S", os.path.join(HERE, "trainer"), "-B", build, "-G", "Ninja",
                "-DCMAKE_BUILD_TYPE=Release", f"-DSWEEP_ROOT={ROOT}", f"-DSWEEP_DEPS={DEPS}"]
        if prefix:
            args.append(f"-DCMAKE_PREFIX_PATH={prefix}")
        t = time.monotonic()
        run(args, deadline, "build-trainer.log", env=env)
        fig["configure_s"] = round(time.monotonic() - t, 1)
        jobs = str(os.cpu_count() or 2)
        t = time.monotonic()
        try:
            run(["ninja", "-C", build, f"-j{jobs}", "sweep-train"], deadline,
                "build-trainer.log", env=env)
        except StepFailed:
            text = open(os.path.join(LOGS, "build-trainer.log"), errors="replace").read()
            errs = [l for l in text.splitlines() if "error" in l or "undefined reference" in l]
            fig["errors"] = errs[:20]
            raise
        fig["compile_link_s"] = round(time.monotonic() - t, 1)
        STATE["trainer"] = os.path.join(build, "trainer", "sweep-train")
        fig["trainer"] = STATE["trainer"]
        fig["built"] = True
    fig["version"] = output([STATE["trainer"], "--version"])
    with open(os.path.join(LOGS, "build-trainer.log"), "a") as f:
        f.write("\n$ ldd sweep-train\n" + output(["ldd", STATE["trainer"]]) + "\n")
    if not DRY and "CUDA device usable: yes" not in fig["version"]:
        raise StepFailed(f"sweep-train built, but CUDA is not usable: {fig['version']}")


NUM = r"([0-9.]+)"


def parse_doctor(text):
    """Figures from `sweep doctor`'s relay of `sweep-train doctor` (trainer/doctor.cc)."""
    fig = {}
    section = None
    for line in text.splitlines():
        line = line.lstrip(" |")
        if line.startswith("CPU,"):
            section = "cpu"
        elif line.startswith("GPU cuda:"):
            section = "gpu"
        elif line.startswith("GPU / CPU"):
            section = "speedup"
        m = re.match(r"scalar multiply(?:, host -> device -> host)?: " + NUM + " us", line)
        if m and section in ("cpu", "gpu"):
            fig[f"{section}_scalar_multiply_us"] = float(m.group(1))
        m = re.match(r"matmul (\d+)x\d+ fp32: " + NUM + r" s, " + NUM + " GFLOP/s", line)
        if m and section in ("cpu", "gpu"):
            fig.setdefault(f"{section}_matmul", []).append(
                {"n": int(m.group(1)), "seconds": float(m.group(2)),
                 "gflops": float(m.group(3))})
        m = re.match(r"matmul (\d+)x\d+: " + NUM + "x", line)
        if m and section == "speedup":
            fig["speedup_matmul_same_size"] = float(m.group(2))
        m = re.match(r"GFLOP/s, GPU at (\d+) vs CPU at (\d+): " + NUM + "x", line)
        if m:
            fig["speedup_gflops_large_vs_cpu"] = float(m.group(3))
        m = re.match(r"GPUs?: (.*)", line)
        if m and "gpus" not in fig:
            fig["gpus"] = m.group(1)[:200]
    fig["problems"] = [l.strip() for l in text.splitlines() if "PROBLEM" in l]
    return fig


def step_doctor(deadline, fig):
    if "trainer" not in STATE:
        raise StepFailed("no sweep-train (the build step failed)")
    rc, text = run([sweep_bin(), "doctor", "--trainer", STATE["trainer"], "--work-dir",
                    os.path.join(WORK, "doctor-runs")], deadline, "doctor.txt",
                   env=sweep_env(), check=False)
    fig.update(parse_doctor(text))
    fig["exit_code"] = rc
    if rc != 0:
        raise StepFailed(f"sweep doctor exited {rc}: " + "; ".join(fig["problems"])[:500])


# --- a scheduler and one worker, for pack and memory --------------------------------


class Cluster:
    def __init__(self, deadline):
        self.db = os.path.join(WORK, "check.db")
        port_file = os.path.join(WORK, "port")
        env = sweep_env()
        self.procs = []
        self.procs.append(self._spawn(
            [sweep_bin(), "scheduler", "--listen", "127.0.0.1:0", "--port-file", port_file,
             "--db", self.db, "--http", "off", "--heartbeat-interval", "1"],
            "scheduler.log", env))
        while not os.path.exists(port_file) or not open(port_file).read().strip():
            self._check_alive()
            if time.monotonic() > deadline:
                raise StepTimeout("the scheduler wrote no port file")
            time.sleep(0.1)
        self.address = open(port_file).read().strip()
        self.slots = max(PACK_NS + [8])
        self.procs.append(self._spawn(
            [sweep_bin(), "worker", "--scheduler", self.address, "--gpus", "0",
             "--slots-per-gpu", str(self.slots), "--gpu-sample-interval", "1",
             "--gpu-release-timeout", "10", "--kill-grace", "2", "--drain-timeout", "2",
             "--work-dir", os.path.join(WORK, "runs")], "worker.log", env))
        while self.query("SELECT COUNT(*) FROM workers")[0][0] < self.slots:
            self._check_alive()
            if time.monotonic() > deadline:
                raise StepTimeout(f"the worker's {self.slots} slots did not register")
            time.sleep(0.2)

    def _spawn(self, argv, log_name, env):
        f = open(os.path.join(LOGS, log_name), "ab")
        return subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                start_new_session=True)

    def _check_alive(self):
        for p in self.procs:
            if p.poll() is not None:
                raise StepFailed(f"{' '.join(p.args[:2])} exited {p.returncode} "
                                 "(logs: scheduler.log, worker.log)")

    def query(self, sql, args=()):
        try:
            con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
            try:
                return con.execute(sql, args).fetchall()
            finally:
                con.close()
        except sqlite3.OperationalError:
            return [(0,)] if sql.startswith("SELECT COUNT") else []

    def submit(self, name, spec, deadline):
        path = os.path.join(WORK, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(spec)
        rc, text = run([sweep_bin(), "submit", path, "--scheduler", self.address], deadline,
                       f"submit-{name}.log", env=sweep_env())
        return text.strip().splitlines()[-1].strip()

    def ended(self, sweep):
        s = self.query("SELECT state FROM sweeps WHERE id=?", (sweep,))
        n = self.query("SELECT COUNT(*) FROM trials WHERE sweep_id=? AND state IN "
                       "('running','queued')", (sweep,))
        return bool(s) and s[0][0] != "running" and n[0][0] == 0

    def wait(self, sweeps, deadline):
        while not all(self.ended(s) for s in sweeps):
            self._check_alive()
            if time.monotonic() > deadline:
                for s in sweeps:
                    subprocess.run([sweep_bin(), "cancel", s, "--scheduler", self.address],
                                   env=sweep_env(), capture_output=True, timeout=20)
                raise StepTimeout(f"sweeps {', '.join(sweeps)} did not end in time "
                                  "(cancelled)")
            time.sleep(0.25)

    def stop(self):
        for p in reversed(self.procs):
            kill_group(p, grace=5)


def cluster(deadline):
    if STATE.get("cluster") is None:
        STATE["cluster"] = Cluster(deadline)
    return STATE["cluster"]


class SmiSampler:
    """nvidia-smi every 0.5 s (utilization, memory in use, power), stamped with this
    process's clock: an independent witness of what the GPU did per phase."""

    def __init__(self):
        self.rows = []
        self.p = None
        if shutil.which("nvidia-smi") is None:
            return
        self.p = subprocess.Popen(
            ["nvidia-smi", "--query-gpu=index,utilization.gpu,memory.used,power.draw",
             "--format=csv,noheader,nounits", "-lms", "500"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            parts = [x.strip() for x in line.split(",")]
            if len(parts) == 4 and parts[0] == "0":
                try:
                    self.rows.append((time.time(), float(parts[1]), float(parts[2]),
                                      float(parts[3])))
                except ValueError:
                    pass

    def window(self, t0, t1):
        rows = [r for r in self.rows if t0 <= r[0] <= t1]
        if not rows:
            return {}
        return {"smi_samples": len(rows),
                "smi_mean_utilization_pct": round(sum(r[1] for r in rows) / len(rows), 1),
                "smi_max_memory_used_mib": max(r[2] for r in rows),
                "smi_mean_power_w": round(sum(r[3] for r in rows) / len(rows), 1)}

    def stop(self):
        if self.p:
            kill_group(self.p, grace=1)
            with open(os.path.join(LOGS, "nvidia-smi.csv"), "w") as f:
                f.write("unix_time,utilization_pct,memory_used_mib,power_w\n")
                for r in self.rows:
                    f.write(",".join(str(x) for x in r) + "\n")


def trainer_params(extra):
    p = {"data_dir": DATA_DIR, "optimizer": "sgd", "momentum": 0.9, "lr": 0.01,
         "threads": 1}
    if DRY:
        p["device"] = "cpu"
    p.update(extra)
    if p["optimizer"] != "sgd":
        p.pop("momentum")
    return p


def spec(name, params, resources, timeout=None, program=None, command=None):
    lines = [f"name: {name}", f"program: {json.dumps(program or STATE['trainer'])}",
             "command: " + json.dumps(command or ["${program}", "${args}"]),
             "method: grid", "metric: {name: val_acc, goal: maximize}", "parameters:"]
    for k, v in params.items():
        if isinstance(v, dict):
            lines.append(f"  {k}: {json.dumps(v)}")
        else:
            lines.append(f"  {k}: {{value: {json.dumps(v)}}}")
    lines.append("resources: " + json.dumps(resources))
    if timeout:
        lines.append(f"timeout: {timeout}")
    return "\n".join(lines) + "\n"


def trial_rows(c, sweep):
    cols = ["id", "state", "started_at", "ended_at", "gpu_flag", "failure_kind",
            "peak_gpu_memory_mib", "energy_joules", "gpu_utilization", "exit_code", "message",
            "params", "trial_dir"]
    rows = c.query(f"SELECT {', '.join(cols)} FROM trials WHERE sweep_id=? ORDER BY idx",
                   (sweep,))
    return [dict(zip(cols, r)) for r in rows]


def metric_rows(c, trial, name):
    return c.query("SELECT step, value, time FROM metrics WHERE trial_id=? AND name=? "
                   "ORDER BY step", (trial, name))


def pack_phase(c, n, deadline, smi):
    name = f"pack-{n}"
    params = trainer_params({"seed": {"values": list(range(n))}, "model": "mlp",
                             "hidden": [256, 128], "batch_size": 128, "epochs": 10000,
                             "train_limit": PACK_TRAIN_LIMIT})
    res = {"gpus_per_trial": 1, "trials_per_gpu": n,
           "gpu_check": {"within": "10s" if not DRY else "3s"}}
    t0 = time.time()
    sweep = c.submit(name, spec(name, params, res, timeout=PACK_TIMEOUT_S), deadline)
    fig = {"n": n, "sweep": sweep}
    try:
        c.wait([sweep], deadline)
    finally:
        t1 = time.time()
        fig.update(pack_figures(c, sweep, n))
        fig.update(smi.window(fig.get("window_start", t0), fig.get("window_end", t1)))
    return fig


def pack_figures(c, sweep, n):
    """Throughput while all N trials trained: the epochs every trial ended inside the
    window from the latest first-epoch end to the earliest last-epoch end, each trial's
    mean samples_per_second over those, summed."""
    trials = trial_rows(c, sweep)
    fig = {"states": {}, "trials": len(trials)}
    for t in trials:
        fig["states"][t["state"]] = fig["states"].get(t["state"], 0) + 1
    epochs = {t["id"]: metric_rows(c, t["id"], "samples_per_second") for t in trials}
    secs = {t["id"]: {s: v for s, v, _ in metric_rows(c, t["id"], "epoch_seconds")}
            for t in trials}
    with_epochs = [e for e in epochs.values() if len(e) >= 2]
    if len(with_epochs) == len(trials) and trials:
        # An epoch's metric time is when the scheduler stored it: its start is that
        # less epoch_seconds. The window starts when every trial has begun its second
        # epoch (the first carries warm-up) and ends when the first trial stops.
        w0 = max(e[0][2] for e in with_epochs)
        w1 = min(e[-1][2] for e in with_epochs)
        fig["window_start"], fig["window_end"] = w0, w1
        fig["window_s"] = round(w1 - w0, 2)
        total = 0.0
        per = []
        for tid, e in epochs.items():
            inside = [v for s, v, tm in e
                      if tm - secs[tid].get(s, 0) >= w0 - 0.5 and tm <= w1 + 0.5 and s >= 2]
            if not inside:
                inside = [v for s, v, _ in e[1:]] or [v for _, v, _ in e]
                fig["window_note"] = "window too short: some trials' rates are over all epochs"
            mean = sum(inside) / len(inside)
            per.append(round(mean))
            total += mean
        fig["per_trial_samples_per_s"] = per
        fig["aggregate_samples_per_s"] = round(total)
    else:
        fig["why_no_rate"] = "not every trial finished two epochs"
    done = [len(epochs[t["id"]]) for t in trials]
    fig["epochs_per_trial"] = done
    samples = sum(done) * PACK_TRAIN_LIMIT
    starts = [t["started_at"] for t in trials if t["started_at"]]
    ends = [t["ended_at"] for t in trials if t["ended_at"]]
    if starts and ends:
        wall = max(ends) - min(starts)
        fig["wall_s"] = round(wall, 2)
        fig["wall_samples_per_s"] = round(samples / wall) if wall > 0 else None
    for key, col in (("gpu_utilization_pct", "gpu_utilization"),
                     ("peak_gpu_memory_mib", "peak_gpu_memory_mib"),
                     ("energy_joules", "energy_joules")):
        fig[key] = [None if t[col] is None else round(t[col], 1) for t in trials]
    energies = [t["energy_joules"] for t in trials if t["energy_joules"] is not None]
    if energies:
        fig["energy_per_trial_j_mean"] = round(sum(energies) / len(energies), 1)
        if samples:
            fig["energy_j_per_million_samples"] = round(sum(energies) / samples * 1e6, 1)
    fig["gpu_flags"] = [t["gpu_flag"] for t in trials]
    return fig


def step_pack(deadline, fig):
    if "trainer" not in STATE:
        raise StepFailed("no sweep-train (the build step failed)")
    c = cluster(deadline)
    smi = SmiSampler()
    phases = []
    fig["phases"] = phases
    fig["conditions"] = (f"MLP 784-256-128-10, batch 128, SGD, {PACK_TRAIN_LIMIT} training "
                         f"samples per epoch, each trial stopped after {PACK_TIMEOUT_S} s "
                         "(spec timeout); one worker --gpus 0 --slots-per-gpu "
                         f"{c.slots} --gpu-sample-interval 1")
    try:
        for i, n in enumerate(PACK_NS):
            # Leave each later phase its share of the step's time.
            share = (deadline - time.monotonic()) / (len(PACK_NS) - i)
            phase_deadline = time.monotonic() + max(share, PACK_TIMEOUT_S + 8)
            try:
                phases.append(pack_phase(c, n, min(deadline, phase_deadline), smi))
            except StepTimeout as e:
                phases.append({"n": n, "error": str(e)})
            log(f"pack: {phases[-1]}")
    finally:
        smi.stop()
    base = next((p.get("aggregate_samples_per_s") for p in phases if p["n"] == 1), None)
    for p in phases:
        if base and p.get("aggregate_samples_per_s"):
            p["throughput_vs_one"] = round(p["aggregate_samples_per_s"] / base, 2)
    eight = next((p for p in phases if p["n"] == 8), None)
    if eight and "throughput_vs_one" in eight:
        fig["target_8_packed_ge_6x"] = "met" if eight["throughput_vs_one"] >= 6 else "missed"
    bad = [p for p in phases if "error" in p or "aggregate_samples_per_s" not in p]
    if bad:
        raise StepFailed(f"{len(bad)} phase(s) without a throughput: "
                         + "; ".join(str(p.get("error", p.get("why_no_rate"))) for p in bad))


CPU_TRIAL = """#!/bin/sh
# A trial that ignores its GPU: CPU work for a few seconds, one metric line.
end=$(( $(date +%s) + ${1:-10} ))
while [ "$(date +%s)" -lt "$end" ]; do :; done
echo '{"step": 1, "val_acc": 0.1}' >> "$SWEEP_METRICS_FILE"
"""

MODELS = [
    ("mlp-small", {"model": "mlp", "hidden": [256, 128], "batch_size": 128,
                   "optimizer": "sgd"}),
    ("mlp-wide", {"model": "mlp", "hidden": [2048, 2048, 1024], "batch_size": 1024,
                  "optimizer": "adam"}),
    ("cnn", {"model": "cnn", "conv_channels": [32, 64], "hidden": [128], "batch_size": 256,
             "optimizer": "adamw"}),
]


def step_memory(deadline, fig):
    if "trainer" not in STATE:
        raise StepFailed("no sweep-train (the build step failed)")
    c = cluster(deadline)
    # The CPU-only trial, flagged by gpu_check (it runs beside the three below).
    prog = os.path.join(WORK, "cpu_trial.sh")
    with open(prog, "w") as f:
        f.write(CPU_TRIAL)
    seconds = 8 if DRY else 12
    nogpu = c.submit("no-gpu", spec("no-gpu", {"x": {"values": [1]}},
                                    {"gpus_per_trial": 1, "trials_per_gpu": 4,
                                     "gpu_check": {"within": "4s", "action": "flag"}},
                                    program=prog,
                                    command=["/bin/sh", "${program}", str(seconds)]),
                     deadline)
    sweeps = {}
    for name, extra in MODELS:
        params = trainer_params(dict(extra, epochs=MEM_EPOCHS, train_limit=MEM_TRAIN_LIMIT))
        sweeps[name] = c.submit(name, spec(name, params, {"gpus_per_trial": 1,
                                                          "trials_per_gpu": 4}), deadline)
    try:
        c.wait([nogpu] + list(sweeps.values()), deadline)
    finally:
        t = trial_rows(c, nogpu)
        fig["no_gpu_trial"] = {k: t[0][k] for k in ("state", "gpu_flag", "failure_kind",
                                                    "peak_gpu_memory_mib")} if t else {}
        models = []
        fig["models"] = models
        for name, extra in MODELS:
            m = {"model": name, "params": extra}
            args = [STATE["trainer"], "--estimate-memory"] + [
                f"--{k}={json.dumps(v) if isinstance(v, list) else v}"
                for k, v in trainer_params(dict(extra, epochs=MEM_EPOCHS,
                                                train_limit=MEM_TRAIN_LIMIT)).items()]
            try:
                est = subprocess.run(args, capture_output=True, text=True, timeout=30,
                                     env=dict(os.environ, CUDA_VISIBLE_DEVICES="0"))
                m["estimate_stderr"] = est.stderr.strip()[-300:]
                est = est.stdout.strip()
            except (OSError, subprocess.SubprocessError) as e:
                est = str(e)
            try:
                e = json.loads(est.splitlines()[-1])
                m["estimate_mib"] = round(e["total_bytes"] / 2**20, 1)
                m["estimate_data_mib"] = round(e["data_bytes"] / 2**20, 1)
            except (ValueError, KeyError, IndexError):
                m["estimate_error"] = est[-300:]
            rows = trial_rows(c, sweeps[name])
            if rows:
                r = rows[0]
                m.update(state=r["state"], peak_gpu_memory_mib=r["peak_gpu_memory_mib"],
                         energy_joules=r["energy_joules"], gpu_flag=r["gpu_flag"])
                alloc = metric_rows(c, r["id"], "gpu_peak_memory_bytes")
                if alloc:
                    m["allocator_peak_mib"] = round(max(v for _, v, _ in alloc) / 2**20, 1)
                if r["peak_gpu_memory_mib"] and m.get("estimate_mib"):
                    m["nvml_peak_over_estimate"] = round(
                        r["peak_gpu_memory_mib"] / m["estimate_mib"], 2)
                if m.get("allocator_peak_mib") and m.get("estimate_mib"):
                    m["allocator_peak_over_estimate"] = round(
                        m["allocator_peak_mib"] / m["estimate_mib"], 2)
            models.append(m)
    flag = fig["no_gpu_trial"].get("gpu_flag")
    if flag != "no_gpu_activity":
        raise StepFailed(f"the CPU-only trial was not flagged (gpu_flag {flag!r})")
    not_done = [m["model"] for m in fig["models"] if m.get("state") != "completed"]
    if not_done:
        raise StepFailed(f"model trials not completed: {', '.join(not_done)}")


def step_lr_grid(deadline, fig):
    if "trainer" not in STATE:
        raise StepFailed("no sweep-train (the build step failed)")
    if STATE.get("cluster"):
        STATE.pop("cluster").stop()
    text = open(os.path.join(ROOT, "sweeps", "lr_grid.yaml")).read()
    # The spec as users run it, but for where sweep-train and the data are here.
    text = text.replace("program: build/trainer/sweep-train",
                        f"program: {STATE['trainer']}")
    text = re.sub(r"(\n  dataset:\n    value: fashion-mnist\n)",
                  r"\1  data_dir:\n    value: " + DATA_DIR + "\n", text)
    if DRY:
        text += "  device:\n    value: cpu\n"
    path = os.path.join(WORK, "lr_grid.yaml")
    with open(path, "w") as f:
        f.write(text)
    db = os.path.join(WORK, "lr_grid.db")
    t = time.monotonic()
    try:
        rc, _ = run([sweep_bin(), "run", path, "--gpus", "all", "--db", db, "--http", "off",
                     "--work-dir", os.path.join(WORK, "lr-runs")], deadline, "lr_grid.log",
                    env=sweep_env(), check=False)
        fig["exit_code"] = rc
    finally:
        fig["wall_s"] = round(time.monotonic() - t, 1)
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            rows = con.execute("SELECT state, started_at, ended_at, best_metric, "
                               "energy_joules, peak_gpu_memory_mib FROM trials").fetchall()
            con.close()
        except sqlite3.Error:
            rows = []
        fig["trials"] = len(rows)
        fig["completed"] = sum(1 for r in rows if r[0] == "completed")
        d = [r[2] - r[1] for r in rows if r[0] == "completed" and r[1] and r[2]]
        if d:
            fig["trial_seconds_mean"] = round(sum(d) / len(d), 1)
        best = [r[3] for r in rows if r[3] is not None]
        if best:
            fig["best_val_acc"] = round(max(best), 4)
        e = [r[4] for r in rows if r[4] is not None]
        if e:
            fig["energy_per_trial_j_mean"] = round(sum(e) / len(e), 1)
        fig["reference"] = ("2 CPU cores (docs/BENCHMARKS.md, Trainer): 4 min 0 s loaded, "
                            "2-3 min expected quiet")
    if rc != 0 or fig["completed"] != 12:
        raise StepFailed(f"sweep run exited {rc}, {fig['completed']} of 12 trials completed")


# --- the summary --------------------------------------------------------------------


def write_summary():
    REPORT["total_s"] = round(time.monotonic() - T0, 1)
    with open(os.path.join(OUT, "gpu-check.json"), "w") as f:
        json.dump(REPORT, f, indent=2, default=str)
    L = [f"# gpu-check {'DRY RUN (no GPU: plumbing only, no GPU figure)' if DRY else ''}",
         "", f"Started {REPORT['started']}; total {REPORT['total_s']} s of a "
         f"{BUDGET:.0f} s budget.", "",
         "| step | status | seconds | budget | note |", "|---|---|---|---|---|"]
    for s in REPORT["steps"]:
        why = (s.get("why") or "").splitlines()
        L.append(f"| {s['name']} | {s['status']} | {s.get('seconds', '')} | {s['budget_s']} | "
                 f"{why[0][:160] if why else ''} |")
    by = {s["name"]: s["figures"] for s in REPORT["steps"]}
    env = by.get("env", {})
    L += ["", "## Machine", "", f"- GPU: {env.get('nvidia_smi')}",
          f"- CPUs: {env.get('cpus')}, kernel {env.get('kernel')}",
          f"- python3 torch: {env.get('python_torch')}",
          f"- sweep-train: {by.get('build', {}).get('version', '?')}"]
    d = by.get("doctor", {})
    if d:
        L += ["", "## sweep doctor", ""]
        for k in ("cpu_scalar_multiply_us", "gpu_scalar_multiply_us", "cpu_matmul",
                  "gpu_matmul", "speedup_matmul_same_size", "speedup_gflops_large_vs_cpu",
                  "problems"):
            if k in d:
                L.append(f"- {k}: {d[k]}")
    p = by.get("pack", {})
    if p.get("phases"):
        L += ["", "## Packed trials on one GPU", "", p.get("conditions", ""), "",
              "| N | trials/states | aggregate samples/s (all N running) | vs 1 | wall samples/s "
              "| GPU util % (NVML, per trial) | nvidia-smi util % | peak MiB per trial | "
              "nvidia-smi max MiB | energy J/trial | J per 1M samples | flags |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for ph in p["phases"]:
            if "error" in ph:
                L.append(f"| {ph['n']} | {ph['error'][:120]} |||||||||||")
                continue
            L.append("| {n} | {states} | {agg} | {r} | {w} | {u} | {su} | {pk} | {sm} | {e} | "
                     "{epm} | {fl} |".format(
                         n=ph["n"], states=ph.get("states"),
                         agg=ph.get("aggregate_samples_per_s", ph.get("why_no_rate")),
                         r=ph.get("throughput_vs_one", ""), w=ph.get("wall_samples_per_s"),
                         u=ph.get("gpu_utilization_pct"),
                         su=ph.get("smi_mean_utilization_pct", ""),
                         pk=ph.get("peak_gpu_memory_mib"),
                         sm=ph.get("smi_max_memory_used_mib", ""),
                         e=ph.get("energy_per_trial_j_mean"),
                         epm=ph.get("energy_j_per_million_samples"),
                         fl=sorted(set(ph.get("gpu_flags", [])))))
        if "target_8_packed_ge_6x" in p:
            L.append(f"\nTarget, 8 packed >= 6x one: **{p['target_8_packed_ge_6x']}**")
    m = by.get("memory", {})
    if m.get("models"):
        L += ["", "## Memory estimate against the measured peak", "",
              "| model | estimate MiB (data MiB) | NVML peak MiB (process, with CUDA context) | "
              "allocator peak MiB | NVML/estimate | allocator/estimate | state |",
              "|---|---|---|---|---|---|---|"]
        for x in m["models"]:
            L.append(f"| {x['model']} | {x.get('estimate_mib')} ({x.get('estimate_data_mib')}) "
                     f"| {x.get('peak_gpu_memory_mib')} | {x.get('allocator_peak_mib')} | "
                     f"{x.get('nvml_peak_over_estimate')} | "
                     f"{x.get('allocator_peak_over_estimate')} | {x.get('state')} |")
        L += ["", f"CPU-only trial under resources.gpu_check: {m.get('no_gpu_trial')}"]
    g = by.get("lr_grid", {})
    if g:
        L += ["", "## sweeps/lr_grid.yaml", "",
              f"- wall {g.get('wall_s')} s, {g.get('completed')} of 12 completed "
              f"(exit {g.get('exit_code')}), mean trial {g.get('trial_seconds_mean')} s, "
              f"best val_acc {g.get('best_val_acc')}, "
              f"energy/trial {g.get('energy_per_trial_j_mean')} J",
              f"- for comparison: {g.get('reference')}"]
    with open(os.path.join(OUT, "gpu-check.md"), "w") as f:
        f.write("\n".join(L) + "\n")


def archive():
    # Trial logs (stderr, stdout) of the runs, small.
    for runs in ("runs", "lr-runs"):
        base = os.path.join(WORK, runs)
        for dirpath, _, files in os.walk(base):
            for fn in files:
                if fn in ("stderr", "stdout", "stderr.log", "stdout.log") or fn.endswith(".log"):
                    src = os.path.join(dirpath, fn)
                    dst = os.path.join(LOGS, "trials", os.path.relpath(src, base)
                                       .replace(os.sep, "__"))
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    with open(src, "rb") as i, open(dst, "wb") as o:
                        o.write(i.read()[-65536:])
    for name in os.listdir(WORK):
        if name.endswith(".yaml"):
            shutil.copy(os.path.join(WORK, name), LOGS)
    with tarfile.open(os.path.join(OUT, "logs.tar.gz"), "w:gz") as t:
        t.add(LOGS, arcname="logs")
    dbs = os.path.join(WORK, "dbs")
    os.makedirs(dbs, exist_ok=True)
    for name in ("check.db", "lr_grid.db"):
        src = os.path.join(WORK, name)
        if os.path.exists(src):
            try:
                a = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
                b = sqlite3.connect(os.path.join(dbs, name))
                a.backup(b)
                a.close()
                b.close()
            except sqlite3.Error as e:
                log(f"archive: {name}: {e}")
    with tarfile.open(os.path.join(OUT, "dbs.tar.gz"), "w:gz") as t:
        t.add(dbs, arcname="dbs")
    for name in ("logs.tar.gz", "dbs.tar.gz"):
        size = os.path.getsize(os.path.join(OUT, name))
        if size > 15 * 2**20:
            log(f"archive: {name} is {size / 2**20:.1f} MiB: over what the device returns")


def main():
    log(f"work {WORK}, out {OUT}, budget {BUDGET:.0f} s{', DRY RUN' if DRY else ''}")
    try:
        step("env", step_env)
        step("build", step_build)
        step("doctor", step_doctor)
        step("pack", step_pack)
        step("memory", step_memory)
        step("lr_grid", step_lr_grid)
    finally:
        if STATE.get("cluster"):
            STATE.pop("cluster").stop()
        write_summary()
        try:
            archive()
        except Exception as e:
            log(f"archive failed: {e}")
        if os.environ.get("GPU_CHECK_KEEP") != "1":
            shutil.rmtree(WORK, ignore_errors=True)
    ok = sum(1 for s in REPORT["steps"] if s["status"] == "ok")
    log(f"done: {ok} of {len(REPORT['steps'])} steps ok; total wall time "
        f"{time.monotonic() - T0:.1f} s; figures in {OUT}/gpu-check.md")
    print(open(os.path.join(OUT, "gpu-check.md")).read())
    return 0 if ok == len([s for s in REPORT["steps"] if s["status"] != "not run"]) else 1


if __name__ == "__main__":
    sys.exit(main())
