#!/usr/bin/env python3
"""sweep's benchmarks against what users would pick instead.

    python3 bench/bench.py [--only dispatch,makespan,ingest,scale] [--reps N]

Runs real processes: `sweep scheduler` and `sweep worker --cpus 4` on loopback, real
SQLite files under $BENCH_WORK (default /tmp/sweep-bench), the peers (xargs, Optuna
with SQLite storage) side by side in the same run. Writes every figure to
$BENCH_WORK/results.json and the table to docs/BENCHMARKS.md (the part between the
`bench:begin` and `bench:end` markers; other sections, such as "Trainer", are kept).
bench/run.sh builds and calls this; see docs/BENCHMARKS.md for what each row means.
"""
import argparse
import json
import os
import platform
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BENCH_BUILD", os.path.join(ROOT, "build-bench"))
SWEEP = os.environ.get("SWEEP_BIN", os.path.join(BUILD, "cli", "sweep"))
SQLTOOL = os.environ.get("SQLTOOL_BIN", os.path.join(BUILD, "bench", "sweep-bench-sqlite"))
SLEEPER = os.environ.get("SLEEP_BIN", os.path.join(BUILD, "bench", "sweep-bench-sleep"))
WORK = os.environ.get("BENCH_WORK", "/tmp/sweep-bench")
PY = "/usr/bin/python3"  # Debian's interpreter, where python3-optuna installs
SLOTS = 4
TRUE = shutil.which("true") or "/bin/true"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summary(values):
    v = sorted(values)
    return {"median": statistics.median(v), "min": v[0], "max": v[-1], "n": len(v), "all": values}


class Cluster:
    """`sweep scheduler` + `sweep worker --cpus N`, fresh database, on loopback."""

    def __init__(self, name, cpus=SLOTS, db=None, http=True, worker=True):
        self.dir = os.path.join(WORK, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.db = db or os.path.join(self.dir, "sweeps.db")
        self.http_port = free_port() if http else None
        port_file = os.path.join(self.dir, "addr")
        self.sched = subprocess.Popen(
            [SWEEP, "scheduler", "--listen", "127.0.0.1:0", "--port-file", port_file,
             "--db", self.db, "--http", f"127.0.0.1:{self.http_port}" if http else "off"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "scheduler.log"), "w"))
        deadline = time.time() + 120
        while not os.path.exists(port_file):
            if self.sched.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"scheduler did not start; see {self.dir}/scheduler.log")
            time.sleep(0.01)
        self.addr = open(port_file).read().strip()
        self.worker = None
        if worker:
            self.worker = subprocess.Popen(
                [SWEEP, "worker", "--scheduler", self.addr, "--cpus", str(cpus),
                 "--work-dir", os.path.join(self.dir, "runs")],
                cwd=self.dir, stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(self.dir, "worker.log"), "w"))
            self.wait_sql("SELECT COUNT(*) >= ? FROM workers WHERE state != 'lost'", (cpus,), 30)

    def conn(self):
        c = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        return c

    def wait_sql(self, sql, args, timeout):
        c = self.conn()
        deadline = time.time() + timeout
        while True:
            try:
                if c.execute(sql, args).fetchone()[0]:
                    return
            except sqlite3.OperationalError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"timed out waiting for: {sql} {args}")
            time.sleep(0.01)

    def submit(self, spec_path):
        out = subprocess.run([SWEEP, "submit", spec_path, "--scheduler", self.addr],
                             cwd=self.dir, capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def run_sweep(self, spec_text, timeout=600, poll=0.005):
        """Submits a spec; returns (sweep id, seconds from submit to the sweep's end)."""
        spec = os.path.join(self.dir, f"spec-{time.time_ns()}.yaml")
        with open(spec, "w") as f:
            f.write(spec_text)
        c = self.conn()
        t0 = time.perf_counter()
        sid = self.submit(spec)
        deadline = time.time() + timeout
        while True:
            row = c.execute("SELECT state FROM sweeps WHERE id=?", (sid,)).fetchone()
            if row and row[0] != "running":
                break
            if time.time() > deadline:
                raise RuntimeError(f"sweep {sid} did not finish in {timeout} s")
            time.sleep(poll)
        secs = time.perf_counter() - t0
        return sid, secs

    def stop(self):
        for p in (self.worker, self.sched):
            if p and p.poll() is None:
                p.terminate()
        for p in (self.worker, self.sched):
            if p:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def trial_states(c, sid):
    return dict(c.execute("SELECT state, COUNT(*) FROM trials WHERE sweep_id=? GROUP BY state",
                          (sid,)).fetchall())


# ------------------------------------------------------------------ dispatch

N_DISPATCH = 2000
# Optuna runs the same 2,000 trials (N_OPTUNA to run fewer: its cost per trial grows
# with the study, so fewer trials flatter it).
N_OPTUNA = int(os.environ.get("N_OPTUNA", N_DISPATCH))


def bench_dispatch(reps):
    values = ", ".join(str(i) for i in range(N_DISPATCH))
    spec = f"""name: dispatch
command:
  - {TRUE}
  - ${{args}}
method: grid
parameters:
  i:
    values: [{values}]
"""
    res = {"trials": N_DISPATCH, "slots": SLOTS, "command": TRUE}
    sweep_s, xargs_s, optuna_s = [], [], []
    for r in range(reps):
        # sweep
        cl = Cluster("dispatch", http=False)
        try:
            sid, secs = cl.run_sweep(spec)
            st = trial_states(cl.conn(), sid)
            if st.get("completed") != N_DISPATCH:
                raise RuntimeError(f"dispatch: trial states {st}")
        finally:
            cl.stop()
        sweep_s.append(secs)
        log(f"dispatch rep {r}: sweep {secs:.2f} s ({N_DISPATCH / secs:.0f} trials/s)")
        # xargs -P 4, the same command with the same argument
        inp = "".join(f"--i={i}\n" for i in range(N_DISPATCH)).encode()
        t0 = time.perf_counter()
        subprocess.run(["xargs", "-P", str(SLOTS), "-n", "1", TRUE], input=inp, check=True)
        xs = time.perf_counter() - t0
        xargs_s.append(xs)
        log(f"dispatch rep {r}: xargs {xs:.2f} s ({N_DISPATCH / xs:.0f} trials/s)")
        # Optuna, SQLite storage, 4 processes
        os_ = run_optuna()
        optuna_s.append(os_)
        log(f"dispatch rep {r}: optuna {os_:.2f} s for {N_OPTUNA} ({N_OPTUNA / os_:.1f} trials/s)")
    res["sweep_s"] = summary(sweep_s)
    res["xargs_s"] = summary(xargs_s)
    res["optuna_s"] = summary(optuna_s)
    for k in ("sweep", "xargs"):
        res[f"{k}_rate"] = N_DISPATCH / res[f"{k}_s"]["median"]
    res["optuna_trials"] = N_OPTUNA
    res["optuna_rate"] = N_OPTUNA / res["optuna_s"]["median"]
    res["vs_xargs"] = res["sweep_rate"] / res["xargs_rate"]
    res["vs_optuna"] = res["sweep_rate"] / res["optuna_rate"]
    return res


def run_optuna():
    d = os.path.join(WORK, "optuna")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    storage = f"sqlite:///{d}/optuna.db"
    subprocess.run([PY, "-c", "import optuna, sys; optuna.logging.set_verbosity(optuna.logging.WARNING);"
                    "optuna.create_study(study_name='dispatch', storage=sys.argv[1])", storage],
                   check=True)
    per = N_OPTUNA // SLOTS
    procs = [subprocess.Popen([PY, os.path.join(ROOT, "bench", "dispatch", "optuna_worker.py"),
                               storage, "dispatch", str(per), TRUE],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(SLOTS)]
    for p in procs:
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError("optuna worker did not start")
    t0 = time.perf_counter()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError("optuna worker failed")
    secs = time.perf_counter() - t0
    c = sqlite3.connect(f"{d}/optuna.db")
    n = c.execute("SELECT COUNT(*) FROM trials WHERE state='COMPLETE'").fetchone()[0]
    if n != N_OPTUNA:
        raise RuntimeError(f"optuna completed {n} trials, not {N_OPTUNA}")
    return secs


# ------------------------------------------------------------------ makespan

N_MAKESPAN = 200
MAKESPAN_SEED = 8


def list_schedule(durations, slots):
    """Makespan of handing trials out in order to the first free slot, at no cost."""
    free = [0.0] * slots
    for d in durations:
        i = free.index(min(free))
        free[i] += d
    return max(free)


def bench_makespan(reps):
    rng = random.Random(MAKESPAN_SEED)
    durations = [round(rng.uniform(0.2, 1.0), 3) for _ in range(N_MAKESPAN)]
    ideal = sum(durations) / SLOTS
    greedy = list_schedule(durations, SLOTS)
    script = SLEEPER
    # The trial program's own start and exit, measured alone: part of every trial.
    starts = []
    for _ in range(50):
        t0 = time.perf_counter()
        subprocess.run([script, "--d=0"], check=True)
        starts.append(time.perf_counter() - t0)
    start_cost = statistics.median(starts)
    spec = f"""name: makespan
command:
  - {script}
  - ${{args}}
method: grid
parameters:
  d:
    values: {json.dumps(durations)}
"""
    runs = []
    for r in range(reps):
        cl = Cluster("makespan", http=False)
        try:
            sid, secs = cl.run_sweep(spec)
            st = trial_states(cl.conn(), sid)
            if st.get("completed") != N_MAKESPAN:
                raise RuntimeError(f"makespan: trial states {st}")
        finally:
            cl.stop()
        runs.append(secs)
        log(f"makespan rep {r}: {secs:.2f} s (ideal {ideal:.2f}, {secs / ideal:.4f}x)")
    res = {"trials": N_MAKESPAN, "slots": SLOTS, "seed": MAKESPAN_SEED,
           "sum_s": sum(durations), "ideal_s": ideal, "list_schedule_s": greedy,
           "makespan_s": summary(runs), "program_start_s": start_cost}
    res["vs_ideal"] = res["makespan_s"]["median"] / ideal
    res["vs_list_schedule"] = res["makespan_s"]["median"] / greedy
    return res


# ------------------------------------------------------------------ ingest

INGEST_LINES = 200000


def ingest_spec(trials):
    per = INGEST_LINES // trials
    emit = os.path.join(ROOT, "bench", "ingest", "emit.py")
    return f"""name: ingest-{trials}
command:
  - {PY}
  - {emit}
  - ${{args}}
method: grid
parameters:
  k:
    values: {json.dumps(list(range(trials)))}
  lines:
    value: {per}
"""


def bench_ingest(reps, layouts=((8, True), (1, False))):
    res = {"lines": INGEST_LINES, "slots": SLOTS}
    sql = []
    for r in range(reps):
        out = subprocess.run([SQLTOOL, "insert-rate", os.path.join(WORK, "insert-rate.db"),
                              "--rows", str(INGEST_LINES), "--batch", "1000", "--trials", "8"],
                             capture_output=True, text=True, check=True)
        j = json.loads(out.stdout)
        sql.append(j["rows_per_s"])
        log(f"ingest rep {r}: SQLite batched insert {j['rows_per_s']:.0f} rows/s")
    res["sqlite_rows_per_s"] = summary(sql)
    for trials, repeat in layouts:
        rates, stored_ok, notes = [], True, []
        for r in range(reps if repeat else 1):
            cl = Cluster(f"ingest-{trials}", http=False)
            try:
                sid, secs = cl.run_sweep(ingest_spec(trials), timeout=180)
                c = cl.conn()
                n, distinct = c.execute(
                    "SELECT COUNT(*), COUNT(DISTINCT m.trial_id || ':' || m.step) FROM metrics m "
                    "JOIN trials t ON t.id = m.trial_id WHERE t.sweep_id=?", (sid,)).fetchone()
                st = trial_states(c, sid)
            except RuntimeError as e:
                n, distinct, secs, st = 0, 0, float("nan"), {"error": str(e)}
            finally:
                cl.stop()
            ok = n == INGEST_LINES and distinct == INGEST_LINES and st.get("completed") == trials
            stored_ok &= ok
            if not ok:
                notes.append(f"stored {n} of {INGEST_LINES} lines, trial states {st}; "
                             f"see {cl.dir}/worker.log")
            rates.append(INGEST_LINES / secs if ok else 0.0)
            log(f"ingest rep {r}: {trials} trial(s): {secs:.2f} s, {n} stored, "
                f"{rates[-1]:.0f} lines/s {st}")
        res[f"sweep_{trials}"] = {"trials": trials, "rows_per_s": summary(rates),
                                  "all_stored": stored_ok, "notes": notes}
    res["vs_sqlite"] = res["sweep_8"]["rows_per_s"]["median"] / res["sqlite_rows_per_s"]["median"]
    return res


# ------------------------------------------------------------------ scale

SCALE_TRIALS = 100000
SCALE_STEPS = 50  # x 2 metrics = 100 points per trial, 10 million in all


def timed(fn, reps, cap_s=20.0):
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
        if out[-1] > cap_s:
            break  # a slow answer is slow; more repeats only cost time
    return summary(out)


def bench_scale(reps):
    db = os.path.join(WORK, "scale.db")
    gen = subprocess.run([SQLTOOL, "gen-scale", db, "--trials", str(SCALE_TRIALS),
                          "--steps", str(SCALE_STEPS)], capture_output=True, text=True, check=True)
    g = json.loads(gen.stdout)
    log(f"scale: generated {g['trials']} trials, {g['points']} points in {g['seconds']:.1f} s")
    res = {"trials": g["trials"], "points": g["points"], "generate_s": g["seconds"],
           "db_bytes": os.path.getsize(db)}
    t0 = time.perf_counter()
    cl = Cluster("scale", db=db, worker=False)
    res["scheduler_start_s"] = time.perf_counter() - t0
    sid = g["sweep"]
    trial = f"{sid}-{SCALE_TRIALS // 2:04d}"
    queries = {}
    try:
        def cli(*args):
            def f():
                r = subprocess.run([SWEEP, *args, "--scheduler", cl.addr],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                if r.returncode != 0:
                    raise RuntimeError(f"exit {r.returncode}: {r.stderr.strip()[:200]}")
            return f

        def http(path):
            def f():
                with urllib.request.urlopen(f"http://127.0.0.1:{cl.http_port}{path}",
                                            timeout=120) as r:
                    r.read()
            return f
        checks = [
            ("sweep status", cli("status")),
            ("sweep status SWEEP", cli("status", sid)),
            ("sweep best SWEEP", cli("best", sid)),
            ("GET /api/sweeps", http("/api/sweeps")),
            ("GET /api/sweeps/SWEEP", http(f"/api/sweeps/{sid}")),
            ("GET /api/sweeps/SWEEP/trials", http(f"/api/sweeps/{sid}/trials")),
            ("GET /api/sweeps/SWEEP/metrics", http(f"/api/sweeps/{sid}/metrics")),
            ("GET /api/trials/TRIAL", http(f"/api/trials/{trial}")),
            ("GET /api/workers", http("/api/workers")),
        ]
        for name, fn in checks:
            try:
                fn()  # warm: the first read after start pages the database in
                queries[name] = timed(fn, reps)
            except Exception as e:  # noqa: BLE001: a failure is a figure too
                queries[name] = {"error": str(e)}
            q = queries[name]
            log(f"scale: {name}: " + (f"{q['median'] * 1000:.0f} ms" if "median" in q else q["error"]))
    finally:
        cl.stop()
    res["queries"] = queries
    return res


# ------------------------------------------------------------------ workers

SIM = os.environ.get("SIM_BIN", os.path.join(BUILD, "bench", "sweep-bench-sim-workers"))
DAEMONS = 64
DAEMON_TRIALS = 5000
SIM_WORKERS = 1000
SIM_TRIAL_S = (2.0, 8.0)  # each simulated trial "runs" this long, seeded
SIM_SECONDS = 60          # trials in the sweep: enough to keep every worker busy this long


def cpu_seconds(pid):
    """User + system CPU seconds of a process so far."""
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def bench_workers(reps):
    """One scheduler and many workers: 64 real worker daemons running 5,000 trials of
    `true`; then 1,000 simulated worker slots (light clients speaking the worker
    protocol, one process) leasing, reporting and finishing trials of 2-8 s."""
    res = {"daemons": DAEMONS, "daemon_trials": DAEMON_TRIALS}
    # 64 daemons, one CPU slot each
    cl = Cluster("workers64", worker=False, http=False)
    procs = []
    try:
        for i in range(DAEMONS):
            procs.append(subprocess.Popen(
                [SWEEP, "worker", "--scheduler", cl.addr, "--cpus", "1",
                 "--work-dir", os.path.join(cl.dir, "runs")],
                cwd=cl.dir, stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(cl.dir, f"worker{i}.log"), "w")))
        cl.wait_sql("SELECT COUNT(*) >= ? FROM workers WHERE state != 'lost'", (DAEMONS,), 120)
        values = ", ".join(str(i) for i in range(DAEMON_TRIALS))
        spec = f"name: daemons\ncommand: [{TRUE}, \"${{args}}\"]\nmethod: grid\n" \
               f"parameters:\n  i:\n    values: [{values}]\n"
        cpu0 = cpu_seconds(cl.sched.pid)
        sid, secs = cl.run_sweep(spec, poll=0.02)
        cpu = cpu_seconds(cl.sched.pid) - cpu0
        st = trial_states(cl.conn(), sid)
        c = cl.conn()
        workers_used = c.execute("SELECT COUNT(DISTINCT worker) FROM trials WHERE sweep_id=?",
                                 (sid,)).fetchone()[0]
        res["daemon_s"] = secs
        res["daemon_rate"] = DAEMON_TRIALS / secs
        res["daemon_sched_cpu"] = cpu / secs
        res["daemon_completed"] = st.get("completed", 0)
        res["daemon_workers_used"] = workers_used
        log(f"workers: {DAEMONS} daemons: {DAEMON_TRIALS} trials in {secs:.1f} s "
            f"({DAEMON_TRIALS / secs:.0f}/s), scheduler {cpu / secs:.2f} cores, {st}, "
            f"{workers_used} workers used")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        cl.stop()
    # 1,000 simulated slots, `reps` runs: the tail of a latency varies from run to run
    # on a shared 2-core machine, so the median run is the figure.
    mean = sum(SIM_TRIAL_S) / 2
    n_trials = int(SIM_WORKERS * SIM_SECONDS / mean)
    runs = []
    for r in range(reps):
        cl = Cluster("workers1000", worker=False, http=False)
        try:
            spec_path = os.path.join(cl.dir, "sim.yaml")
            with open(spec_path, "w") as f:
                f.write(f"name: simulated\ncommand: [{TRUE}, \"${{args}}\"]\nmethod: random\n"
                        f"run_cap: {n_trials}\nmetric: {{name: loss, goal: minimize}}\n"
                        f"parameters:\n  x: {{min: 0.0, max: 1.0}}\n")
            sid = cl.submit(spec_path)
            out = os.path.join(cl.dir, "sim.json")
            cpu0 = cpu_seconds(cl.sched.pid)
            t0 = time.perf_counter()
            subprocess.run([SIM, "--scheduler", cl.addr, "--workers", str(SIM_WORKERS),
                            "--channels", "32", "--trial-min", str(SIM_TRIAL_S[0]),
                            "--trial-max", str(SIM_TRIAL_S[1]), "--report-every", "1",
                            "--seed", str(r + 1), "--out", out],
                           check=True, stdout=subprocess.DEVNULL)
            secs = time.perf_counter() - t0
            cpu = cpu_seconds(cl.sched.pid) - cpu0
            sim = json.load(open(out))
            st = trial_states(cl.conn(), sid)
            points = cl.conn().execute(
                "SELECT COUNT(*) FROM metrics m JOIN trials t ON t.id=m.trial_id "
                "WHERE t.sweep_id=?", (sid,)).fetchone()[0]
        finally:
            cl.stop()
        lease = sim["calls"].get("lease", {})
        runs.append({"sim": sim, "s": secs, "cpu": cpu / secs, "states": st, "points": points})
        log(f"workers: {SIM_WORKERS} simulated, run {r}: {sim['trials']} trials in {secs:.1f} s, "
            f"lease p50 {lease.get('p50_ms', 0):.2f} ms p99 {lease.get('p99_ms', 0):.2f} ms, "
            f"scheduler {cpu / secs:.2f} cores, {st}, {points} points")
    p99 = lambda run: run["sim"]["calls"].get("lease", {}).get("p99_ms", 1e9)
    runs.sort(key=p99)
    mid = runs[len(runs) // 2]
    res["sim"] = mid["sim"]
    res["sim_workers"] = SIM_WORKERS
    res["sim_trials"] = n_trials
    res["sim_s"] = mid["s"]
    res["sim_sched_cpu"] = mid["cpu"]
    res["sim_states"] = mid["states"]
    res["sim_points"] = mid["points"]
    res["sim_p99s"] = [p99(x) for x in runs]
    res["sim_cpus"] = [x["cpu"] for x in runs]
    res["sim_all_completed"] = all(x["states"] == {"completed": n_trials} for x in runs)
    return res


# ------------------------------------------------------------------ report

def conditions():
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    df = subprocess.run(["df", "-T", WORK], capture_output=True, text=True).stdout.splitlines()[-1].split()
    rota = "?"
    try:
        dev = os.path.basename(df[0])
        rota = open(f"/sys/block/{dev}/queue/rotational").read().strip()
    except OSError:
        pass
    def ver(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except Exception:  # noqa: BLE001
            return "?"
    cache = {}
    try:
        for line in open(os.path.join(BUILD, "CMakeCache.txt")):
            if line.startswith("CMAKE_BUILD_TYPE:"):
                cache["build_type"] = line.split("=", 1)[1].strip()
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
        "disk": f"{df[0]} ({df[1]}, kernel reports rotational={rota}), work dir {WORK}",
        "build_type": cache.get("build_type", "?"),
        "sweep": ver([SWEEP, "--version"]),
        "sqlite": sqlite3.sqlite_version,
        "optuna": ver([PY, "-c", "import optuna; print(optuna.__version__)"]),
        "xargs": ver(["xargs", "--version"]),
        "loadavg_before": open("/proc/loadavg").read().split()[:3],
    }


def fmt_s(s):
    return f"{s['median']:.2f} s ({s['min']:.2f}–{s['max']:.2f})"


def fmt_ms(s):
    if "error" in s:
        return f"error: {s['error']}"
    return f"{s['median'] * 1000:.0f} ms ({s['min'] * 1000:.0f}–{s['max'] * 1000:.0f}, n={s['n']})"


def verdict(ok):
    return "**met**" if ok else "**missed**"


def render(results, cond, reps, wall):
    L = []
    L.append("<!-- bench:begin (written by bench/run.sh; edit bench/bench.py, not this block) -->")
    L.append("## Dispatch, makespan, metric ingest, scale\n")
    L.append("`bash bench/run.sh` runs these side by side in one go and rewrites this block. "
             "Real processes: `sweep scheduler` and `sweep worker --cpus 4` on loopback, a fresh "
             "SQLite file per run; the peers in the same run on the same machine. Each figure "
             f"is the median of {reps} runs, with min–max in brackets, unless the row says "
             "otherwise. Other work shared the machine (others compile in the same checkout), "
             "so expect noise between runs.\n")
    L.append("Conditions: " + "; ".join([
        f"{cond['date']}",
        f"{cond['cpu']}, {cond['cores']} cores",
        f"kernel {cond['kernel']}",
        f"disk {cond['disk']}",
        f"build {cond['build_type']}",
        f"{cond['sweep']}, SQLite {cond['sqlite']}, Optuna {cond['optuna']}, {cond['xargs']}",
        f"load average before {' '.join(cond['loadavg_before'])}",
        f"whole run {wall / 60:.1f} min"]) + ".\n")
    L.append("| benchmark | sweep | measured against | ratio | target | |")
    L.append("|---|---|---|---|---|---|")
    d = results.get("dispatch")
    if d:
        L.append(f"| dispatch: {d['trials']} trials of `true`, {d['slots']} slots | "
                 f"{d['sweep_rate']:.0f} trials/s ({fmt_s(d['sweep_s'])}) | `xargs -P 4`: "
                 f"{d['xargs_rate']:.0f} trials/s ({fmt_s(d['xargs_s'])}) | {d['vs_xargs']:.2f}x | "
                 f">= 0.5x | {verdict(d['vs_xargs'] >= 0.5)} |")
        L.append(f"| | | Optuna, SQLite storage, 4 processes: {d['optuna_rate']:.1f} trials/s "
                 f"({fmt_s(d['optuna_s'])} for {d['optuna_trials']} trials) | {d['vs_optuna']:.1f}x | >= 20x | "
                 f"{verdict(d['vs_optuna'] >= 20)} |")
    m = results.get("makespan")
    if m:
        L.append(f"| makespan: {m['trials']} trials of 0.2–1 s (seed {m['seed']}), {m['slots']} slots | "
                 f"{fmt_s(m['makespan_s'])} | ideal sum/slots: {m['ideal_s']:.2f} s | "
                 f"{m['vs_ideal']:.4f}x | <= 1.02x | {verdict(m['vs_ideal'] <= 1.02)} |")
        L.append(f"| | | in-order list schedule at zero cost: {m['list_schedule_s']:.2f} s | "
                 f"{m['vs_list_schedule']:.4f}x | (for reference) | |")
        L.append(f"| | | the trial program's own start+exit, alone: {m['program_start_s'] * 1000:.1f} ms "
                 f"(median of 50) | | (for reference) | |")
    g = results.get("ingest")
    if g:
        s8 = g["sweep_8"]
        L.append(f"| metric ingest: {g['lines']:,} lines from 8 trials, {g['slots']} slots | "
                 f"{s8['rows_per_s']['median']:,.0f} lines/s ({s8['rows_per_s']['min']:,.0f}–"
                 f"{s8['rows_per_s']['max']:,.0f}), all stored: {'yes' if s8['all_stored'] else 'NO'} | "
                 f"SQLite batched insert (1,000 rows per transaction, same schema and settings): "
                 f"{g['sqlite_rows_per_s']['median']:,.0f} rows/s ({g['sqlite_rows_per_s']['min']:,.0f}–"
                 f"{g['sqlite_rows_per_s']['max']:,.0f}) | {g['vs_sqlite']:.2f}x | >= 0.3x, every line | "
                 f"{verdict(g['vs_sqlite'] >= 0.3 and s8['all_stored'])} |")
        s1 = g.get("sweep_1")
        if s1:
            r1 = s1["rows_per_s"]["median"]
            L.append(f"| metric ingest: the same {g['lines']:,} lines from 1 trial (one run) | "
                     f"{r1:,.0f} lines/s, all stored: {'yes' if s1['all_stored'] else 'NO'} | same | "
                     f"{r1 / g['sqlite_rows_per_s']['median']:.2f}x | every line | "
                     f"{verdict(s1['all_stored'])} |")
    s = results.get("scale")
    if s:
        for name, q in s["queries"].items():
            ok = "median" in q and q["median"] < 0.2
            L.append(f"| scale: {s['trials']:,} trials, {s['points']:,} points: `{name}` | "
                     f"{fmt_ms(q)} | | | < 200 ms | {verdict(ok)} |")
    w = results.get("workers")
    if w:
        L.append(f"| workers: {w['daemons']} `sweep worker --cpus 1` daemons, {w['daemon_trials']:,} "
                 f"trials of `true` | {w['daemon_rate']:.0f} trials/s ({w['daemon_s']:.1f} s), "
                 f"{w['daemon_completed']:,} completed on {w['daemon_workers_used']} workers; "
                 f"scheduler CPU {w['daemon_sched_cpu']:.2f} cores | | | every trial once | "
                 f"{verdict(w['daemon_completed'] == w['daemon_trials'])} |")
        sim = w["sim"]
        lease = sim["calls"].get("lease", {})
        ok = (lease.get("p99_ms", 1e9) < 10 and w["sim_sched_cpu"] < 1.0
              and w["sim_all_completed"])
        calls = sum(v["n"] for v in sim["calls"].values())
        p99s, cpus = w["sim_p99s"], w["sim_cpus"]
        L.append(f"| workers: {w['sim_workers']:,} simulated slots, trials of "
                 f"{SIM_TRIAL_S[0]:g}–{SIM_TRIAL_S[1]:g} s, a metric report a second "
                 f"(median of {len(p99s)} runs by p99) | "
                 f"dispatch latency p50 {lease.get('p50_ms', 0):.2f} ms, p99 "
                 f"{lease.get('p99_ms', 0):.2f} ms ({min(p99s):.1f}–{max(p99s):.1f}); "
                 f"{sim['trials']:,} trials, {calls / w['sim_s']:,.0f} calls/s; scheduler CPU "
                 f"{w['sim_sched_cpu']:.2f} cores ({min(cpus):.2f}–{max(cpus):.2f}) | | | "
                 f"p99 < 10 ms, < 1 core | {verdict(ok)} |")
    L.append("")
    if w:
        sim = w["sim"]
        per = ", ".join(f"{k} {v['n']:,} (p50 {v['p50_ms']:.2f} ms, p99 {v['p99_ms']:.2f} ms)"
                        for k, v in sorted(sim["calls"].items()))
        L.append(f"Workers: the daemons are real `sweep worker` processes, each one CPU slot, "
                 f"all on this machine with the scheduler; the simulated slots are state machines "
                 f"on one event loop of `sweep-bench-sim-workers` (bench/tools/sim_workers.cc, "
                 f"gRPC's callback API, {sim['channels']} channels), each registering, leasing "
                 f"(long poll), reporting one metric point a second, heartbeating and finishing, "
                 f"one call in flight per slot, with the scheduler, the simulator and the "
                 f"benchmark sharing the 2 cores. Dispatch latency is the time of a "
                 f"LeaseTrial call that returned a trial. Calls: {per}; errors: "
                 f"{sim.get('errors', {}) or 'none'}. Trial states at the end: {w['sim_states']}; "
                 f"{w['sim_points']:,} metric points stored.\n")
    if s:
        L.append(f"Scale database: one finished random search of {s['trials']:,} trials, each with "
                 f"`loss` and `acc` at {SCALE_STEPS} steps ({s['points']:,} metric points), "
                 f"{s['trials'] * 2:,} events, {s['db_bytes'] / 2**30:.2f} GiB; schema from the "
                 f"scheduler's own `Store::Open`, rows written by `sweep-bench-sqlite gen-scale` in "
                 f"{s['generate_s']:.0f} s. CLI times are whole `sweep` processes (start, gRPC "
                 f"connect, answer, print); dashboard times are one HTTP GET from Python. The "
                 f"scheduler took {s['scheduler_start_s']:.1f} s to start on it.\n")
    L.append("Notes written by hand (analysis, profiles) are below the block and survive reruns.")
    L.append("<!-- bench:end -->")
    return "\n".join(L) + "\n"


def write_doc(block):
    path = os.path.join(ROOT, "docs", "BENCHMARKS.md")
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n\n"
    b, e = "<!-- bench:begin", "<!-- bench:end -->"
    if b in text and e in text:
        i, j = text.index(b), text.index(e) + len(e)
        text = text[:i] + block.rstrip("\n") + text[j:]
    elif "## Trainer" in text:
        i = text.index("## Trainer")
        text = text[:i] + block + "\n" + text[i:]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    log(f"wrote {path}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="dispatch,makespan,ingest,scale,workers")
    ap.add_argument("--reps", type=int, default=int(os.environ.get("REPS", 3)))
    ap.add_argument("--no-doc", action="store_true", help="do not touch docs/BENCHMARKS.md")
    a = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    for b in (SWEEP, SQLTOOL, SLEEPER, SIM):
        if not os.access(b, os.X_OK):
            sys.exit(f"bench: {b} is not built; run bash bench/run.sh")
    cond = conditions()
    start = time.time()
    results_path = os.path.join(WORK, "results.json")
    results = {}
    fns = {"dispatch": bench_dispatch, "makespan": bench_makespan, "ingest": bench_ingest,
           "scale": bench_scale, "workers": bench_workers}
    for name in a.only.split(","):
        t0 = time.time()
        results[name] = fns[name](a.reps)
        results[name]["bench_wall_s"] = time.time() - t0
        log(f"== {name} done in {time.time() - t0:.0f} s")
    wall = time.time() - start
    with open(results_path, "w") as f:
        json.dump({"conditions": cond, "reps": a.reps, "wall_s": wall, "results": results}, f,
                  indent=1)
    block = render(results, cond, a.reps, wall)
    print(block)
    if not a.no_doc:
        write_doc(block)


if __name__ == "__main__":
    main()
