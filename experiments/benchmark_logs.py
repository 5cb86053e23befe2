"""What the TensorBoard logs and the checkpoints cost a run: whole commands with and without
them, in fresh processes, interleaved, after one warm-up round of each (issue 31's targets).

    python -m experiments.benchmark_logs [--data-dir D] [--rounds 5] [--rows logs1,checkpoint]

Rows (each: the median wall clock of the whole command with and without, their ratio, the
target, PASS or FAIL, the same for the CPU time its threads used, which a machine shared with
other jobs disturbs less, and every round's wall clock):
- `logs1`: `five_layer_relu --epochs 3` logged against `--no-logs`; at most 1.05 x, or 0.25 s
  more, whichever is larger.
- `logs64`: `softmax --lr 0.01:1:64 --epochs 2` (a 64-member sweep, every batch of every member
  logged) against `--no-logs`; at most 1.25 x.
- `checkpoint`: `five_layer_relu --epochs 6 --no-logs` with `--checkpoint-dir` against without;
  at most 1.03 x, or 0.2 s more, whichever is larger.

A round runs every row's pair back to back, the pair's order alternating from round to round so
that a machine slowing down or speeding up weighs on both sides. The load average is printed
before and after: figures from a machine shared with other jobs say so.
"""

import argparse
import dataclasses
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Row:
    """A command timed with `extra` flags against `plain` flags, and its target."""

    name: str
    what: str
    command: tuple[str, ...]
    plain: tuple[str, ...]
    extra: tuple[str, ...]
    max_ratio: float
    max_seconds_more: float  # the target is whichever of the two allows more


ROWS = (
    Row(
        "logs1",
        "five_layer_relu, 3 epochs, logged / --no-logs",
        ("experiments.five_layer_relu", "--epochs", "3"),
        ("--no-logs",),
        ("--logdir", "{work}/logs"),
        1.05,
        0.25,
    ),
    Row(
        "logs64",
        "softmax --lr 0.01:1:64, 2 epochs, logged / --no-logs",
        ("experiments.softmax", "--lr", "0.01:1:64", "--epochs", "2"),
        ("--no-logs",),
        ("--logdir", "{work}/logs"),
        1.25,
        0.0,
    ),
    Row(
        "checkpoint",
        "five_layer_relu, 6 epochs, --no-logs, with / without --checkpoint-dir",
        ("experiments.five_layer_relu", "--epochs", "6", "--no-logs"),
        (),
        ("--checkpoint-dir", "{work}/ckpt"),
        1.03,
        0.2,
    ),
)


def timed(row: Row, extra: bool, data_dir: str | None) -> tuple[float, float]:
    """The whole command's wall clock and CPU time (user and system, all its threads), in a
    fresh process writing into a fresh folder."""
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as work:
        flags = row.extra if extra else row.plain
        command = [sys.executable, "-m", *row.command, "--quiet"]
        command += [f.format(work=work) for f in flags]
        command += ["--data-dir", data_dir] if data_dir else []
        before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True)
        wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def verdict(row: Row, plain: float, extra: float) -> str:
    allowed = max(plain * row.max_ratio, plain + row.max_seconds_more)
    target = f"target <= {row.max_ratio:.2f} x"
    if row.max_seconds_more:
        target += f" or +{row.max_seconds_more:.2f} s"
    return f"{target}: {'PASS' if extra <= allowed else 'FAIL'}"


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="tfds data dir holding mnist (default: tfds')")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", default=",".join(r.name for r in ROWS))
    args = parser.parse_args()
    names = args.rows.split(",")
    unknown = sorted(set(names) - {r.name for r in ROWS})
    if unknown or args.rounds < 1:
        parser.error(f"unknown rows {unknown}" if unknown else "--rounds must be at least 1")
    rows = [r for r in ROWS if r.name in names]

    print(f"{os.cpu_count()} CPUs; load average (1, 5, 15 min) before: {load()}", flush=True)
    for row in rows:  # warm-up: the OS's file cache, XLA's compilation cache
        for extra in (False, True):
            timed(row, extra, args.data_dir)
    seconds = {(r.name, e): [] for r in rows for e in (False, True)}
    cpu = {(r.name, e): [] for r in rows for e in (False, True)}
    for i in range(args.rounds):
        for row in rows:
            for extra in (False, True) if i % 2 == 0 else (True, False):
                wall, used = timed(row, extra, args.data_dir)
                seconds[row.name, extra].append(wall)
                cpu[row.name, extra].append(used)
    print(f"load average after: {load()}; medians of {args.rounds} interleaved rounds")
    for row in rows:
        plain, extra = (statistics.median(seconds[row.name, e]) for e in (False, True))
        cpu_plain, cpu_extra = (statistics.median(cpu[row.name, e]) for e in (False, True))
        print(
            f"{row.name}: {row.what}: {extra:.2f} s / {plain:.2f} s = {extra / plain:.3f} x "
            f"({extra - plain:+.2f} s); {verdict(row, plain, extra)}; CPU time "
            f"{cpu_extra:.2f} s / {cpu_plain:.2f} s = {cpu_extra / cpu_plain:.3f} x; rounds "
            f"{[round(s, 2) for s in seconds[row.name, True]]} / "
            f"{[round(s, 2) for s in seconds[row.name, False]]}"
        )


if __name__ == "__main__":
    main()
