"""What the logs and the checkpoints cost a run, and how near the compiled epoch is to its floor.

Every figure is taken in fresh processes, interleaved round after round, after a warm-up round.

    python -m experiments.benchmark_logs [--data-dir D] [--rounds 5] [--rows logs1,floor]
    python -m experiments.benchmark_logs --accelerator [--data-dir D]   # a GPU or TPU host

Rows, each with the medians over the rounds, their ratio, its target and PASS or FAIL:
- `logs1`: `five_layer_relu --epochs 3` logged against `--no-logs`, whole processes; at most
  1.05 x, or 0.25 s more, whichever is larger.
- `logs64`: `softmax --lr 0.01:1:64 --epochs 2` (a 64-member sweep, every batch of every member
  logged) against `--no-logs`; at most 1.25 x.
- `checkpoint`: `five_layer_relu --epochs 6 --no-logs` with `--checkpoint-dir` against without;
  at most 1.03 x, or 0.2 s more, whichever is larger.
- `floor`: `five_layer_relu --no-logs`' compiled epoch as its JSON records it (`seconds`, the
  median after the first) against the shaped-GEMM floor (`experiments.gemm_floor`: the same
  epoch's matrix products alone, measured in the same round); at most 1.25 x.
- `sweep8`: an 8-member learning-rate sweep's epoch, as its JSON records it, against eight
  single epochs (the `floor` row's); at most 0.9 x.

Whole-process rows also print the CPU time the commands' threads used, which a machine shared
with other jobs disturbs less, and every round's figures. A round runs every row, each pair's
order alternating from round to round, so that a machine slowing down weighs on both sides. The
load average is printed before and after. `--accelerator` refuses a host whose JAX backend is the
CPU, and adds `logs256`, a 256-member sweep's logs (at most 1.25 x), the size at which a GPU's
epoch is shorter than a host core's logging.
"""

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from experiments.benchmark.running import backend

REPO_ROOT = Path(__file__).resolve().parent.parent
SWEEP_RATES = "0.0001,0.0002,0.0004,0.0007,0.001,0.002,0.004,0.007"


@dataclasses.dataclass(frozen=True)
class Row:
    """A figure measured with `extra` against `plain`, and its target (`max_ratio`, or
    `max_seconds_more` over `plain`, whichever allows more)."""

    name: str
    what: str
    max_ratio: float
    max_seconds_more: float = 0.0
    command: tuple[str, ...] = ()  # a whole-process row: the command, timed with each flag set
    plain: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()

    @property
    def whole_process(self) -> bool:
        return bool(self.command)


def logs_row(name: str, members: int) -> Row:
    return Row(
        name,
        f"softmax --lr 0.01:1:{members}, 2 epochs, logged / --no-logs",
        1.25,
        command=("experiments.softmax", "--lr", f"0.01:1:{members}", "--epochs", "2"),
        plain=("--no-logs",),
        extra=("--logdir", "{work}/logs"),
    )


ROWS = (
    Row(
        "logs1",
        "five_layer_relu, 3 epochs, logged / --no-logs",
        1.05,
        0.25,
        command=("experiments.five_layer_relu", "--epochs", "3"),
        plain=("--no-logs",),
        extra=("--logdir", "{work}/logs"),
    ),
    logs_row("logs64", 64),
    Row(
        "checkpoint",
        "five_layer_relu, 6 epochs, --no-logs, with / without --checkpoint-dir",
        1.03,
        0.2,
        command=("experiments.five_layer_relu", "--epochs", "6", "--no-logs"),
        extra=("--checkpoint-dir", "{work}/ckpt"),
    ),
    Row("floor", "five_layer_relu's compiled epoch / its shaped-GEMM floor", 1.25),
    Row("sweep8", "an 8-member sweep's compiled epoch / 8 single epochs", 0.9),
)
ACCELERATOR_ROWS = (logs_row("logs256", 256),)


@dataclasses.dataclass
class Figures:
    """A row's figures over the rounds: `extra` against `plain` (seconds), and the CPU time of
    whole-process rows."""

    plain: list[float] = dataclasses.field(default_factory=list)
    extra: list[float] = dataclasses.field(default_factory=list)
    cpu_plain: list[float] = dataclasses.field(default_factory=list)
    cpu_extra: list[float] = dataclasses.field(default_factory=list)


def run(module_and_args: list[str], data_dir: str | None) -> tuple[float, float, str]:
    """`python -m ...` in a fresh process: its wall clock, the CPU time of all its threads,
    and its standard output."""
    command = [sys.executable, "-m", *module_and_args]
    command += ["--data-dir", data_dir] if data_dir else []
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True, text=True)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, done.stdout


def whole_process(row: Row, extra: bool, data_dir: str | None) -> tuple[float, float]:
    """The row's command, with its extra flags or its plain ones, writing into a fresh folder."""
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as work:
        flags = [f.format(work=work) for f in (row.extra if extra else row.plain)]
        wall, cpu, _ = run([*row.command, "--quiet", *flags], data_dir)
        return wall, cpu


def compiled_epoch(lr_flags: tuple[str, ...], data_dir: str | None) -> float:
    """`five_layer_relu --epochs 3 --no-logs`' compiled epoch as its JSON records it: the median
    `seconds` after the first epoch (which compiles)."""
    with tempfile.TemporaryDirectory(prefix="bench-epoch-") as work:
        flags = ["--epochs", "3", "--no-logs", "--quiet", "--json", f"{work}/run.json"]
        run(["experiments.five_layer_relu", *lr_flags, *flags], data_dir)
        runs = json.loads(Path(work, "run.json").read_text())["runs"]
        return statistics.median(e["seconds"] for e in runs[0]["epochs"][1:])


def floor_seconds() -> float:
    return json.loads(run(["experiments.gemm_floor"], None)[2])["seconds_per_epoch"]


def round_of(rows: list[Row], figures: dict[str, Figures], forward: bool, data_dir) -> None:
    """One round of every row, each pair's order `forward` (plain first) or reversed."""
    for row in rows:
        if not row.whole_process:
            continue
        for extra in (False, True) if forward else (True, False):
            wall, cpu = whole_process(row, extra, data_dir)
            (figures[row.name].extra if extra else figures[row.name].plain).append(wall)
            (figures[row.name].cpu_extra if extra else figures[row.name].cpu_plain).append(cpu)
    names = {r.name for r in rows}
    if not names & {"floor", "sweep8"}:
        return
    measures = [("single", lambda: compiled_epoch((), data_dir))]
    if "floor" in names:
        measures.append(("floor", floor_seconds))
    if "sweep8" in names:
        measures.append(("sweep8", lambda: compiled_epoch(("--lr", SWEEP_RATES), data_dir)))
    seconds = {what: measure() for what, measure in (measures if forward else measures[::-1])}
    if "floor" in names:
        figures["floor"].plain.append(seconds["floor"])
        figures["floor"].extra.append(seconds["single"])
    if "sweep8" in names:
        figures["sweep8"].plain.append(8 * seconds["single"])
        figures["sweep8"].extra.append(seconds["sweep8"])


def verdict(row: Row, plain: float, extra: float) -> str:
    allowed = max(plain * row.max_ratio, plain + row.max_seconds_more)
    target = f"target <= {row.max_ratio:.2f} x"
    if row.max_seconds_more:
        target += f" or +{row.max_seconds_more:.2f} s"
    return f"{target}: {'PASS' if extra <= allowed else 'FAIL'}"


def line(row: Row, f: Figures) -> str:
    plain, extra = statistics.median(f.plain), statistics.median(f.extra)
    text = f"{row.name}: {row.what}: {extra:.4g} s / {plain:.4g} s = {extra / plain:.3f} x"
    if row.whole_process:
        text += f" ({extra - plain:+.2f} s)"
    text += f"; {verdict(row, plain, extra)}"
    if row.whole_process:
        cpu_plain, cpu_extra = statistics.median(f.cpu_plain), statistics.median(f.cpu_extra)
        text += f"; CPU time {cpu_extra:.2f} s / {cpu_plain:.2f} s = {cpu_extra / cpu_plain:.3f} x"
    rounds = [round(e / p, 3) for e, p in zip(f.extra, f.plain, strict=True)]
    return f"{text}; each round's ratio {rounds}"


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="tfds data dir holding mnist (default: tfds')")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", help="a comma-separated subset of the rows (default: all)")
    parser.add_argument(
        "--accelerator", action="store_true", help="on a GPU or TPU host: also logs256"
    )
    args = parser.parse_args()
    known = ROWS + (ACCELERATOR_ROWS if args.accelerator else ())
    names = args.rows.split(",") if args.rows else [r.name for r in known]
    unknown = sorted(set(names) - {r.name for r in known})
    if unknown or args.rounds < 1:
        parser.error(
            f"unknown rows {unknown}: choose from {[r.name for r in known]}"
            if unknown
            else "--rounds must be at least 1"
        )
    args.rows = [r for r in known if r.name in names]
    return args


def main() -> None:
    args = parse_args()
    found = backend()
    if args.accelerator and found["backend"] == "cpu":
        sys.exit("--accelerator: JAX's default backend here is the CPU; run without it")
    print(
        f"{os.cpu_count()} CPUs, JAX backend {found['backend']} ({found['device']}); "
        f"load average (1, 5, 15 min) before: {load()}",
        flush=True,
    )
    figures = {r.name: Figures() for r in args.rows}
    round_of(args.rows, {r.name: Figures() for r in args.rows}, True, args.data_dir)  # warm-up
    for i in range(args.rounds):
        round_of(args.rows, figures, i % 2 == 0, args.data_dir)
    print(f"load average after: {load()}; medians of {args.rounds} interleaved rounds")
    for row in args.rows:
        print(line(row, figures[row.name]))


if __name__ == "__main__":
    main()
