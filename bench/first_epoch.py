"""The digits job's first epoch against its later ones: the cost of building the graph.

    python bench/first_epoch.py                        # train_keras.py --preset digits --epochs 3
    python bench/first_epoch.py --epochs 4 -- --jit    # extra train_keras.py flags after --

Runs `train_keras.py --preset digits` in a fresh process, as a user would, into
a temporary run directory, and reads the per-epoch wall time the run writes to
its log.csv (`seconds`: the epoch's training and its test evaluation; the
data-dependent init before epoch 1 is not in it). Prints every epoch's time,
the median of epochs 2.. and the ratio epoch 1 / that median (issue 9's target:
<= 2), with `uptime`'s load before and after (on a shared machine the ratio
is only meaningful when the load stays the same through the run).
"""

from __future__ import annotations

import argparse
import csv
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

from _common import uptime

REPO = pathlib.Path(__file__).resolve().parent.parent
TARGET_RATIO = 2.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="digits")
    parser.add_argument("--epochs", type=int, default=3, help="at least 2")
    parser.add_argument("extra", nargs="*", help="more train_keras.py flags (after --)")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (epoch 1 is compared with the later ones)")

    with tempfile.TemporaryDirectory() as run_dir:
        command = [
            sys.executable, str(REPO / "train_keras.py"), "--preset", args.preset,
            "--epochs", str(args.epochs), "--output-dir", run_dir, *args.extra,
        ]  # fmt: skip
        print("$", " ".join(command))
        print("load before:", uptime())
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        start = time.perf_counter()
        result = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True)
        total = time.perf_counter() - start
        print("load after: ", uptime())
        if result.returncode != 0:
            print(result.stdout[-2000:], result.stderr[-4000:], sep="\n")
            print(f"train_keras.py failed with exit status {result.returncode}")
            return 1
        with open(pathlib.Path(run_dir) / "log.csv") as log:
            seconds = [float(row["seconds"]) for row in csv.DictReader(log)]
    later = statistics.median(seconds[1:])
    ratio = seconds[0] / later
    print(f"process wall time {total:.1f} s (imports, data, init, {len(seconds)} epochs, saving)")
    for epoch, value in enumerate(seconds, 1):
        print(f"epoch {epoch}: {value:7.1f} s")
    print(f"epoch 1 / median(epochs 2..{len(seconds)}) = {seconds[0]:.1f} / {later:.1f} = "
          f"{ratio:.2f}x   target <= {TARGET_RATIO:g}x: {'met' if ratio <= TARGET_RATIO else 'not met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
