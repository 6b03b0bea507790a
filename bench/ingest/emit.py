"""A metric-ingest benchmark trial: appends --lines=N metric lines to
$SWEEP_METRICS_FILE as fast as Python can write them, one point per line."""
import os
import sys

args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
n = int(args["lines"])
with open(os.environ["SWEEP_METRICS_FILE"], "a") as f:
    f.write("".join(f'{{"step": {i}, "loss": {1.0 / (i + 1):.6f}}}\n' for i in range(n)))
