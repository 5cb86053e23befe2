"""What saving a checkpoint after every epoch costs: `five_layer_relu` with and without
`--checkpoint-dir`, each in fresh processes, interleaved (without, with, without, ...).

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


def wall_seconds(epochs: int, data_dir: str | None, checkpoint: bool) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-checkpoint-") as workdir:
        command = [
            sys.executable, "-m", "experiments.five_layer_relu", "--epochs", str(epochs),
            "--quiet", "--logdir", f"{workdir}/logs",
        ]  # fmt: skip
        command += ["--data-dir", data_dir] if data_dir else []
        command += ["--checkpoint-dir", f"{workdir}/checkpoints"] if checkpoint else []
        start = time.perf_counter()
        subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="tfds data dir holding mnist (default: tfds')")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    seconds = {False: [], True: []}
    for _ in range(args.rounds):
        for checkpoint in (False, True):
            seconds[checkpoint].append(wall_seconds(args.epochs, args.data_dir, checkpoint))
    plain, saved = (statistics.median(seconds[c]) for c in (False, True))
    print(
        f"five_layer_relu, {args.epochs} epochs, median of {args.rounds} interleaved rounds: "
        f"{plain:.1f} s without checkpoints, {saved:.1f} s with one after every epoch "
        f"({saved / plain:.3f} x, {(saved - plain) / args.epochs:.3f} s per epoch); "
        f"rounds without {[round(s, 1) for s in seconds[False]]}, "
        f"with {[round(s, 1) for s in seconds[True]]}"
    )


if __name__ == "__main__":
    main()
