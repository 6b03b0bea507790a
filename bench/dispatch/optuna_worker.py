"""One of the 4 Optuna processes of the dispatch benchmark (bench/bench.py).

Loads the study from its SQLite storage, says "ready", waits for a line on stdin (so
that Python's and Optuna's import time stay out of the measurement), then runs its
share of the trials; each trial runs the same command as sweep's and xargs' trials.
RandomSampler: the cheapest sampler, so Optuna's figure is its dispatch cost alone.
"""
import subprocess
import sys

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)
storage, name, n, command = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
study = optuna.load_study(study_name=name, storage=storage,
                          sampler=optuna.samplers.RandomSampler(seed=0))


def objective(trial):
    i = trial.suggest_int("i", 0, 1999)
    subprocess.run([command, f"--i={i}"], check=True)
    return 0.0


print("ready", flush=True)
sys.stdin.readline()
study.optimize(objective, n_trials=n)
