"""What checkpoints cost: `five_layer_relu` without `--checkpoint-dir`, with it (saving as
often as the default `--checkpoint-every` lets) and with `--checkpoint-every 0` (after every
epoch), each in fresh processes, interleaved.

Prints the median wall clock of the whole command for each, the difference per epoch and the
ratio. The epoch times a run reports leave the saving out, hence whole processes here.

    python -m experiments.benchmark_checkpoint [--data-dir D] [--epochs 30] [--rounds 3]

`python -m experiments.benchmark_logs` measures the same ratio on a shorter run beside the
logs' ratios; docs/performance.md has its latest figures.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


SAVING = {"without": [], "default": [], "every epoch": ["--checkpoint-every", "0"]}


def wall_seconds(epochs: int, data_dir: str | None, saving: str) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-checkpoint-") as workdir:
        command = [
            sys.executable, "-m", "experiments.five_layer_relu", "--epochs", str(epochs),
            "--quiet", "--logdir", f"{workdir}/logs",
        ]  # fmt: skip
        command += ["--data-dir", data_dir] if data_dir else []
        if saving != "without":
            command += ["--checkpoint-dir", f"{workdir}/checkpoints", *SAVING[saving]]
        start = time.perf_counter()
        subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="tfds data dir holding mnist (default: tfds')")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    seconds = {saving: [] for saving in SAVING}
    for _ in range(args.rounds):
        for saving in SAVING:
            seconds[saving].append(wall_seconds(args.epochs, args.data_dir, saving))
    print(f"five_layer_relu, {args.epochs} epochs, median of {args.rounds} interleaved rounds:")
    plain = statistics.median(seconds["without"])
    for saving, rounds in seconds.items():
        median = statistics.median(rounds)
        print(
            f"  {saving:>12}: {median:.2f} s ({median / plain:.3f} x, "
            f"{(median - plain) / args.epochs:+.3f} s per epoch); rounds "
            f"{[round(s, 2) for s in rounds]}"
        )


if __name__ == "__main__":
    main()
