#!/usr/bin/env python3
"""GPU telemetry benchmarks (issue "Real GPUs", Benchmarks), on fake GPUs.

Run by bench/gpu/run.sh (which builds sweep, sweep-group-guard and the fake
libnvidia-ml.so.1 of tests/fake_nvml.cc). Two benchmarks, printed as Markdown:

cpu   The telemetry's CPU cost per node per second with 8 fake GPUs. A scheduler and
      `sweep worker --gpus all --slots-per-gpu 1` (a supervisor and one worker process
      per GPU, each with its NVML sampler thread) on a fake node of 8 cards; the CPU
      time (utime + stime from /proc/PID/stat) of every worker process over a fixed
      window, idle and with 8 trials running (one `sleep` per GPU), at
      --gpu-sample-interval 1 and 5 (the default). Against it, the nvidia-smi path it
      replaced, emulated: the old sampler ran `nvidia-smi --query-gpu=...
      --format=csv,noheader,nounits` and `nvidia-smi --query-compute-apps=...` once per
      sample in every worker process; here a stand-in `nvidia-smi` shell script that
      prints the same CSV for 8 cards is run twice per sample for each of 8 workers at
      the same interval, and the CPU of those child processes (os.times() children) is
      measured. A real nvidia-smi costs more than the stand-in (it loads NVML and queries
      the driver on every run), so the emulation is a lower bound of the old path.

turn  Trial turnaround: a trial's exit to the next trial's start on the same slot, with
      every fake NVML call taking 0 s and 2 s (`delay_s`). One fake card, one slot, a
      sweep of trials (gpus_per_trial: 1) that each record their start and exit times
      (date +%s.%N) and sleep 0.2 s; turnaround from those times. A third run keeps the
      2 s delay with the scheduler's heartbeat interval at 1 s instead of 2 s.

  python3 bench/gpu/telemetry.py [--only cpu,turn] [--window 30] [--trials 15]
"""
import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(os.environ.get("BENCH_GPU_BUILD", os.path.join(ROOT, "build")))
SWEEP = os.path.join(BUILD, "cli", "sweep")
FAKE_NVML_DIR = os.path.join(BUILD, "tests", "fake-nvml")
TICK = os.sysconf("SC_CLK_TCK")


def cards(n, delay=0.0, processes_file=""):
    c = {"delay_s": delay,
         "gpus": [{"uuid": f"GPU-fake-{i}", "name": "Fake GPU", "memory_mib": 16384,
                   "utilization": 50, "power_w": 100} for i in range(n)]}
    if processes_file:
        c["processes_file"] = processes_file
    return c


class Node:
    """A scheduler and one `sweep worker --gpus all` on a fake node."""

    def __init__(self, work, config, worker_args, scheduler_args=()):
        self.work = work
        os.makedirs(work, exist_ok=True)
        self.nvml = os.path.join(work, "nvml.json")
        with open(self.nvml, "w") as f:
            json.dump(config, f)
        self.env = dict(os.environ, SWEEP_FAKE_NVML=self.nvml,
                        LD_LIBRARY_PATH=FAKE_NVML_DIR + (
                            ":" + os.environ["LD_LIBRARY_PATH"]
                            if os.environ.get("LD_LIBRARY_PATH") else ""))
        self.db = os.path.join(work, "sweeps.db")
        port = os.path.join(work, "port")
        self.procs = [self._spawn([SWEEP, "scheduler", "--listen", "127.0.0.1:0", "--db",
                                   self.db, "--http", "off", "--port-file", port]
                                  + list(scheduler_args),
                                  "scheduler.log")]
        self.scheduler_pid = self.procs[0].pid
        deadline = time.time() + 20
        while not (os.path.exists(port) and open(port).read().strip()):
            if time.time() > deadline:
                raise SystemExit("bench: the scheduler wrote no port file")
            time.sleep(0.05)
        self.address = open(port).read().strip()
        self.procs.append(self._spawn([SWEEP, "worker", "--scheduler", self.address,
                                       "--gpus", "all", "--work-dir",
                                       os.path.join(work, "runs")] + worker_args,
                                      "worker.log"))
        self.worker_pid = self.procs[1].pid

    def _spawn(self, argv, log):
        f = open(os.path.join(self.work, log), "ab")
        return subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=self.env,
                                cwd=self.work, start_new_session=True)

    def query(self, sql):
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            con.close()

    def wait_for(self, sql, want, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = self.query(sql)
            if r and r[0][0] >= want:
                return
            time.sleep(0.1)
        raise SystemExit(f"bench: waited {timeout} s for {sql} >= {want}; logs in {self.work}")

    def submit(self, spec):
        path = os.path.join(self.work, "spec.yaml")
        with open(path, "w") as f:
            f.write(spec)
        r = subprocess.run([SWEEP, "submit", path, "--scheduler", self.address],
                           capture_output=True, text=True, env=self.env, cwd=self.work)
        if r.returncode != 0:
            raise SystemExit(f"bench: submit failed: {r.stderr}")
        return r.stdout.strip().splitlines()[-1]

    def worker_pids(self):
        """The supervisor and every `sweep worker` process under it (not the trials)."""
        out = [self.worker_pid]
        children = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                stat = open(f"/proc/{pid}/stat").read()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(pid))
            except (OSError, IndexError, ValueError):
                pass
        todo = [self.worker_pid]
        while todo:
            for c in children.get(todo.pop(), []):
                try:
                    cmd = open(f"/proc/{c}/cmdline", "rb").read().split(b"\0")
                except OSError:
                    continue
                if os.path.basename(cmd[0]) == b"sweep" and b"worker" in cmd:
                    out.append(c)
                    todo.append(c)
        return out

    def stop(self):
        for p in reversed(self.procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def cpu_seconds(pid):
    """utime + stime of one process, in seconds (None when it is gone)."""
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


def measure(pids, window):
    before = {p: cpu_seconds(p) for p in pids}
    t0 = time.monotonic()
    time.sleep(window)
    wall = time.monotonic() - t0
    total = 0.0
    for p in pids:
        after = cpu_seconds(p)
        if before[p] is None or after is None:
            raise SystemExit(f"bench: process {p} ended during the window")
        total += after - before[p]
    return total, wall


SLEEP_TRIAL = """#!/bin/sh
sleep 3600
"""


def bench_cpu(args, work):
    rows = []
    for interval in (1, 5):
        for running in (False, True):
            w = os.path.join(work, f"cpu-{interval}-{int(running)}")
            node = Node(w, cards(8), ["--slots-per-gpu", "1", "--gpu-sample-interval",
                                      str(interval)])
            try:
                node.wait_for("SELECT COUNT(*) FROM workers", 8, 30)
                if running:
                    prog = os.path.join(w, "trial.sh")
                    open(prog, "w").write(SLEEP_TRIAL)
                    node.submit(f"program: {prog}\ncommand: [/bin/sh, \"${{program}}\"]\n"
                                "method: grid\nparameters:\n  x: {values: [1,2,3,4,5,6,7,8]}\n"
                                "resources: {gpus_per_trial: 1, gpu_check: off}\n")
                    node.wait_for("SELECT COUNT(*) FROM trials WHERE state='running'", 8, 30)
                time.sleep(3)  # past the start-up
                pids = node.worker_pids()
                sched0 = cpu_seconds(node.scheduler_pid)
                cpu, wall = measure(pids, args.window)
                sched = cpu_seconds(node.scheduler_pid) - sched0
                rows.append({"path": "NVML in process (sweep worker)", "interval": interval,
                             "state": "8 trials running" if running else "idle",
                             "processes": len(pids), "cpu_s": cpu, "wall_s": wall,
                             "scheduler_cpu_s": sched})
                print(f"bench: {rows[-1]}", flush=True)
            finally:
                node.stop()
    # The nvidia-smi path, emulated.
    smi_dir = os.path.join(work, "fake-smi")
    os.makedirs(smi_dir, exist_ok=True)
    smi = os.path.join(smi_dir, "nvidia-smi")
    gpu_lines = "\n".join(f"{i}, GPU-fake-{i}, 50, 1024, 16384, 100.00" for i in range(8))
    app_lines = "\n".join(f"{4000 + i}, GPU-fake-{i}, 1000" for i in range(8))
    with open(smi, "w") as f:
        f.write("#!/bin/sh\n# stand-in for nvidia-smi: the CSV the old sampler read\n"
                "case \"$1\" in\n"
                f"  --query-gpu=*) cat <<'EOF'\n{gpu_lines}\nEOF\n  ;;\n"
                f"  --query-compute-apps=*) cat <<'EOF'\n{app_lines}\nEOF\n  ;;\n"
                "esac\n")
    os.chmod(smi, 0o755)
    for interval in (1, 5):
        t0 = os.times()
        start = time.monotonic()
        n = 0
        tick = start
        while time.monotonic() - start < args.window:
            for _ in range(8):  # one sampler per worker process
                for q in (["--query-gpu=index,uuid,utilization.gpu,memory.used,memory.total,"
                           "power.draw", "--format=csv,noheader,nounits"],
                          ["--query-compute-apps=pid,gpu_uuid,used_memory",
                           "--format=csv,noheader,nounits"]):
                    out = subprocess.run([smi] + q, capture_output=True, text=True).stdout
                    [l.split(", ") for l in out.splitlines()]
                    n += 1
            tick += interval
            time.sleep(max(0, tick - time.monotonic()))
        wall = time.monotonic() - start
        t1 = os.times()
        children = (t1.children_user - t0.children_user) + (t1.children_system
                                                            - t0.children_system)
        parent = (t1.user - t0.user) + (t1.system - t0.system)
        rows.append({"path": "nvidia-smi emulated (stand-in script, 2 runs per sample x 8 "
                             "workers)", "interval": interval, "state": "any",
                     "processes": 8, "cpu_s": children, "wall_s": wall,
                     "harness_cpu_s": parent, "invocations": n})
        print(f"bench: {rows[-1]}", flush=True)
    return rows


TURN_TRIAL = """#!/bin/sh
echo "$SWEEP_TRIAL_ID start $(date +%s.%N)" >> "$TURN_LOG"
sleep 0.2
echo '{"step": 1, "loss": 0.5}' >> "$SWEEP_METRICS_FILE"
echo "$SWEEP_TRIAL_ID exit $(date +%s.%N)" >> "$TURN_LOG"
"""


def bench_turn(args, work):
    rows = []
    # (NVML call delay, scheduler heartbeat interval): the third row shows what bounds
    # the second.
    for delay, heartbeat in ((0.0, 2), (2.0, 2), (2.0, 1)):
        w = os.path.join(work, f"turn-{delay:g}-{heartbeat}")
        node = Node(w, cards(1, delay), ["--slots-per-gpu", "1"],
                    ["--heartbeat-interval", str(heartbeat)])
        try:
            node.wait_for("SELECT COUNT(*) FROM workers", 1, 60)
            log = os.path.join(w, "turn.log")
            prog = os.path.join(w, "trial.sh")
            open(prog, "w").write(TURN_TRIAL.replace("$TURN_LOG", log))
            xs = ",".join(str(i) for i in range(args.trials))
            t0 = time.time()
            sweep = node.submit(f"program: {prog}\ncommand: [/bin/sh, \"${{program}}\"]\n"
                                f"method: grid\nparameters:\n  x: {{values: [{xs}]}}\n"
                                "resources: {gpus_per_trial: 1}\n")
            node.wait_for(f"SELECT COUNT(*) FROM trials WHERE sweep_id='{sweep}' AND state "
                          "IN ('completed','failed')", args.trials, 60 + args.trials * 10)
            wall = time.time() - t0
            events = {}
            for line in open(log):
                tid, what, t = line.split()
                events.setdefault(tid, {})[what] = float(t)
            order = sorted(events.values(), key=lambda e: e["start"])
            gaps = [b["start"] - a["exit"] for a, b in zip(order, order[1:])]
            states = node.query(f"SELECT state, COUNT(*) FROM trials WHERE sweep_id='{sweep}' "
                                "GROUP BY state")
            rows.append({"delay_s": delay, "heartbeat_s": heartbeat, "trials": len(order), "states": dict(states),
                         "median_ms": statistics.median(gaps) * 1000,
                         "p90_ms": sorted(gaps)[int(0.9 * (len(gaps) - 1))] * 1000,
                         "max_ms": max(gaps) * 1000, "min_ms": min(gaps) * 1000,
                         "wall_s": wall})
            print(f"bench: {rows[-1]}", flush=True)
        finally:
            node.stop()
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="cpu,turn")
    ap.add_argument("--window", type=float, default=30)
    ap.add_argument("--trials", type=int, default=15)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    for f in (SWEEP, os.path.join(FAKE_NVML_DIR, "libnvidia-ml.so.1")):
        if not os.path.exists(f):
            raise SystemExit(f"bench: {f} missing (bash bench/gpu/run.sh builds it)")
    work = tempfile.mkdtemp(prefix="sweep-bench-gpu.")
    load = open("/proc/loadavg").read().split()[:3]
    print(f"bench: {os.cpu_count()} cores, load average {' '.join(load)} before; "
          f"work {work}", flush=True)
    cpu = bench_cpu(args, work) if "cpu" in args.only else []
    turn = bench_turn(args, work) if "turn" in args.only else []
    load_after = open("/proc/loadavg").read().split()[:3]
    print(f"\nConditions: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"{os.cpu_count()} cores; load average {' '.join(load)} before, "
          f"{' '.join(load_after)} after; window {args.window:g} s; build {BUILD}\n")
    if cpu:
        print("| path | sample interval | state | processes measured | CPU s in window "
              "| CPU ms per node-second | % of one core |")
        print("|---|---|---|---|---|---|---|")
        for r in cpu:
            per = r["cpu_s"] / r["wall_s"]
            print(f"| {r['path']} | {r['interval']} s | {r['state']} | {r['processes']} | "
                  f"{r['cpu_s']:.2f} | {per * 1000:.1f} | {per * 100:.2f} % |")
        print()
    if turn:
        print("| fake NVML call delay | heartbeat interval | trials | turnaround median | p90 "
              "| min–max | wall |")
        print("|---|---|---|---|---|---|---|")
        for r in turn:
            print(f"| {r['delay_s']:g} s | {r['heartbeat_s']} s | {r['trials']} ({r['states']}) | "
                  f"{r['median_ms']:.0f} ms | {r['p90_ms']:.0f} ms | "
                  f"{r['min_ms']:.0f}–{r['max_ms']:.0f} ms | {r['wall_s']:.1f} s |")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"\nkept {work}")


if __name__ == "__main__":
    main()
