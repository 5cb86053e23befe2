"""Seconds per five_layer_relu epoch: this project against the same MLP in its peers.

Loads MNIST once, writes it to a temporary .npz for the peers, then runs every variant in a fresh
process, interleaved round-robin (A B C ... A B C ..., `--rounds` times) so that a slow spell of
the host hits them all alike. Per process the first epoch (compilation, warm-up) is dropped and
the median of the rest kept; per variant the median over rounds. Prints the table with ratios to
plain JAX and to PyTorch eager, then the speed targets of the sweep issue, pass or fail.

    python -m experiments.benchmark --rounds 5 --epochs 5 [--json bench.json]

Variants: this project in float32, in `--dtype bfloat16`, and as an 8-member learning-rate sweep
(one compiled program), then `experiments/peers/`: plain JAX always, and PyTorch eager,
torch.compile and Keras 3 on JAX when installed (`pip install -e .[bench]`). Adding a peer is one
line in `VARIANTS`. Only measured numbers are printed: the sweep's test accuracy is its best
member's; `start-up s` is the project's own process start to first step; `others` is the share of
the CPUs that other processes took during a variant's runs (/proc/stat less the child's CPU time),
a warning that the host was not quiet.
"""

import argparse
import contextlib
import dataclasses
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJECT = "experiments.five_layer_relu"
SWEEP_RATES = tuple(float(f"{lr:.4g}") for lr in np.geomspace(1e-4, 1e-2, 8))
BASELINE, TORCH = "plain_jax", "torch_eager"
PACKAGES = ("jax", "jaxlib", "flax", "optax", "torch", "keras")


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    module: str  # run as `python -m module`
    args: tuple[str, ...] = ()
    requires: str | None = None  # a module that must be importable, else the variant is skipped

    @property
    def is_project(self) -> bool:
        return self.module == PROJECT


VARIANTS = (
    Variant("float32", PROJECT),
    Variant("bfloat16", PROJECT, ("--dtype", "bfloat16")),
    Variant("sweep8", PROJECT, ("--lr", ",".join(f"{lr:g}" for lr in SWEEP_RATES))),
    Variant("plain_jax", "experiments.peers.plain_jax"),
    Variant("torch_eager", "experiments.peers.torch_eager", requires="torch"),
    Variant("torch_compile", "experiments.peers.torch_eager", ("--compile",), requires="torch"),
    Variant("keras_jax", "experiments.peers.keras_jax", requires="keras"),
)


@dataclasses.dataclass
class Result:
    """One process of one variant: what it measured, or why it failed."""

    epoch_seconds: list[float] = dataclasses.field(default_factory=list)
    test_accuracy: float | None = None
    startup_seconds: float | None = None  # this project only: process start to first step
    process_seconds: float | None = None  # wall clock of the whole process, seen by the driver
    others_cpu: float | None = None  # share of all CPUs that other processes used meanwhile
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class Target:
    what: str
    measured: float | None  # None: a variant it needs is missing or failed
    limit: float
    strict: bool = False  # `measured < limit` rather than `<=`

    @property
    def passed(self) -> bool | None:
        if self.measured is None:
            return None
        return self.measured < self.limit if self.strict else self.measured <= self.limit


def available(variants) -> tuple[list[Variant], list[Variant]]:
    """Variants whose framework is importable, and those skipped; nothing is imported here."""
    ok = [v for v in variants if v.requires is None or importlib.util.find_spec(v.requires)]
    return ok, [v for v in variants if v not in ok]


def write_npz(path: str, data_dir: str | None) -> None:
    """MNIST as the peers read it: float32 [N, 784] pixels in [0, 1], int32 labels."""
    from mnist_jax import data

    arrays = {}
    for split in ("train", "test"):
        try:
            images, labels = data.load_mnist(split, data_dir=data_dir)
        except data.MnistError as error:
            raise SystemExit(f"benchmark: {error}") from error
        arrays[f"x_{split}"] = data.to_inputs(images)  # as the project feeds its model
        arrays[f"y_{split}"] = np.asarray(labels, np.int32)
    np.savez(path, **arrays)


def command(variant: Variant, epochs: int, npz: str, data_dir: str | None, workdir: str):
    cmd = [sys.executable, "-m", variant.module, "--epochs", str(epochs)]
    if variant.is_project:
        cmd += ["--quiet", "--logdir", os.path.join(workdir, "logs")]
        cmd += ["--json", os.path.join(workdir, "out.json")]
        cmd += ["--data-dir", data_dir] if data_dir else []
    else:
        cmd += ["--data", npz]
    return cmd + list(variant.args)


def parse_project(report: dict) -> Result:
    """This project's `--json`: every member shares the epoch time; the best member's accuracy."""
    runs = report["runs"]
    accuracies = [r["test_accuracy"] for r in runs if r.get("test_accuracy") is not None]
    return Result(
        epoch_seconds=[float(e["seconds"]) for e in runs[0]["epochs"]],
        test_accuracy=max(accuracies) if accuracies else None,
        startup_seconds=report.get("startup_seconds"),
    )


def parse_peer(stdout: str) -> Result:
    """A peer's one JSON line (the last line of stdout that looks like one)."""
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise ValueError("no JSON line on stdout")
    record = json.loads(lines[-1])
    return Result(epoch_seconds=record["epoch_seconds"], test_accuracy=record["test_accuracy"])


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"


def run_once(
    variant: Variant, epochs: int, npz: str, data_dir: str | None, timeout: float
) -> Result:
    """One fresh process of `variant`; a failure comes back as a Result with `error` set."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{variant.name}-") as workdir:
        cmd = command(variant, epochs, npz, data_dir, workdir)
        busy, child = cpu_busy_seconds(), children_cpu_seconds()
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return Result(error=f"timed out after {timeout:g} s")
        seconds = time.perf_counter() - start
        others = None
        if busy is not None and (busy_after := cpu_busy_seconds()) is not None:
            others_busy = busy_after - busy - (children_cpu_seconds() - child)
            others = max(0.0, others_busy) / (seconds * (os.cpu_count() or 1))
        if proc.returncode != 0:
            return Result(error=f"exit {proc.returncode}: {last_line(proc.stderr)}")
        try:
            if variant.is_project:
                with open(os.path.join(workdir, "out.json")) as f:
                    result = parse_project(json.load(f))
            else:
                result = parse_peer(proc.stdout)
        except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
            return Result(error=f"unreadable output: {type(error).__name__}: {error}")
    result.process_seconds, result.others_cpu = seconds, others
    if len(result.epoch_seconds) != epochs:
        result.error = f"{len(result.epoch_seconds)} epoch times for {epochs} epochs"
    return result


def cpu_busy_seconds() -> float | None:
    """Non-idle time of all CPUs since boot, steal included (Linux's /proc/stat), else None."""
    try:
        with open("/proc/stat") as f:
            user, nice, system, idle, iowait, irq, softirq, steal = map(
                int, f.readline().split()[1:9]
            )
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_median(epoch_seconds: list[float]) -> float:
    """A process's seconds per epoch: its first epoch (compile, warm-up) dropped."""
    if len(epoch_seconds) < 2:
        raise ValueError("need at least 2 epochs: the first one is dropped")
    return statistics.median(epoch_seconds[1:])


def median_or_none(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(results: list[Result]) -> dict:
    """A variant's rounds: the median over rounds of each process's median epoch."""
    good = [r for r in results if r.error is None]
    per_round = [process_median(r.epoch_seconds) for r in good]
    return {
        "seconds_per_epoch": median_or_none(per_round),
        "per_round": per_round,
        "rounds_ok": len(good),
        "rounds": len(results),
        "test_accuracy": median_or_none([r.test_accuracy for r in good]),
        "startup_seconds": median_or_none([r.startup_seconds for r in good]),
        "process_seconds": median_or_none([r.process_seconds for r in good]),
        "others_cpu": median_or_none([r.others_cpu for r in good]),
        "errors": [r.error for r in results if r.error is not None],
        "results": [dataclasses.asdict(r) for r in results],
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def add_ratios(summary: dict[str, dict]) -> None:
    for s in summary.values():
        for key, base in (("vs_plain_jax", BASELINE), ("vs_torch_eager", TORCH)):
            other = summary.get(base, {}).get("seconds_per_epoch")
            s[key] = ratio(s["seconds_per_epoch"], other)


def targets(summary: dict[str, dict]) -> list[Target]:
    """The sweep issue's speed targets, from the measured summary."""

    def get(name: str, key: str = "seconds_per_epoch") -> float | None:
        return summary.get(name, {}).get(key)

    f32, bf16 = get("float32"), get("bfloat16")
    acc_f32, acc_bf16 = get("float32", "test_accuracy"), get("bfloat16", "test_accuracy")
    accuracy_gap = None if acc_f32 is None or acc_bf16 is None else abs(acc_bf16 - acc_f32) * 100
    return [
        Target("float32 epoch / plain JAX", ratio(f32, get(BASELINE)), 0.75),
        Target("float32 epoch / PyTorch eager", ratio(f32, get(TORCH)), 0.4),
        Target("bfloat16 epoch / plain JAX", ratio(bf16, get(BASELINE)), 0.65),
        Target("|bfloat16 - float32| test accuracy, points", accuracy_gap, 0.2),
        Target(
            "sweep8 epoch / (8 x float32 epoch)",
            ratio(get("sweep8"), 8 * f32 if f32 else None),
            0.85,
        ),
        Target("float32 start-up to first step, s", get("float32", "startup_seconds"), 10, True),
    ]


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, spec)


NOISY = 0.1  # others' CPU share above which a variant's figures are flagged


COLUMNS = (  # title, width
    ("variant", 13), ("ok", 5), ("s/epoch", 8), ("range", 15), ("x plain JAX", 11),
    ("x torch eager", 13), ("test acc", 8), ("start-up s", 10), ("process s", 9), ("others", 6),
)  # fmt: skip


def row(cells: list[str]) -> str:
    return "  ".join(
        cell.ljust(width) if i == 0 else cell.rjust(width)
        for i, (cell, (_, width)) in enumerate(zip(cells, COLUMNS, strict=False))
    ).rstrip()


def table(summary: dict[str, dict], goals: list[Target]) -> str:
    lines = [row([title for title, _ in COLUMNS])]
    lines.append("-" * len(lines[0]))
    for name, s in summary.items():
        ok = f"{s['rounds_ok']}/{s['rounds']}"
        if s["seconds_per_epoch"] is None:
            lines.append(row([name, ok]) + f"  FAILED: {s['errors'][-1] if s['errors'] else '?'}")
            continue
        lines.append(
            row(
                [
                    name,
                    ok,
                    fmt(s["seconds_per_epoch"], ".3f"),
                    f"{min(s['per_round']):.3f}-{max(s['per_round']):.3f}",
                    fmt(s["vs_plain_jax"], ".2f"),
                    fmt(s["vs_torch_eager"], ".2f"),
                    fmt(s["test_accuracy"], ".4f"),
                    fmt(s["startup_seconds"], ".1f"),
                    fmt(s["process_seconds"], ".1f"),
                    fmt(s["others_cpu"], ".0%"),
                ]
            )
        )
        lines += [f"{'':<15}failed round: {e}" for e in s["errors"]]
    noisy = [n for n, s in summary.items() if (s["others_cpu"] or 0) > NOISY]
    if noisy:
        lines.append(
            "others: median share of all CPUs that other processes used during a variant's runs;"
            f" above {NOISY:.0%} for {', '.join(noisy)}: those figures are not from a quiet host."
        )
    lines += ["", f"{'target':<46}{'measured':>10}{'limit':>10}  result", "-" * 74]
    verdict = {True: "pass", False: "FAIL", None: "n/a (variant missing or failed)"}
    for t in goals:
        op = "<" if t.strict else "<="
        lines.append(
            f"{t.what:<46}{fmt(t.measured, '.3f'):>10}{op:>4}{t.limit:>6g}  {verdict[t.passed]}"
        )
    lines.append(
        "The accuracy gap is of one seed after --epochs epochs, where seeds alone differ by"
        " tenths of a point: judge it on full runs over several seeds (--seeds 0,1,2)."
    )
    return "\n".join(lines)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or "unknown CPU"


def versions() -> dict[str, str]:
    found = {}
    for package in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[package] = importlib.metadata.version(package)
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--epochs", type=int, default=5, help="per process, first dropped (default 5)")
    p.add_argument("--data-dir", help="MNIST data dir, as the experiments take it")
    p.add_argument("--only", help="comma-separated variant names (default: all installed)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per process (default 600)")
    p.add_argument("--json", dest="json_path", help="write every figure as JSON here")
    args = p.parse_args(argv)
    if args.epochs < 2:
        p.error("--epochs must be at least 2: each process's first epoch is dropped")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    variants, skipped = available(VARIANTS)
    if args.only:
        wanted = args.only.split(",")
        unknown = set(wanted) - {v.name for v in VARIANTS}
        if unknown:
            sys.exit(f"unknown variant(s) {sorted(unknown)}; known: {[v.name for v in VARIANTS]}")
        variants = [v for v in variants if v.name in wanted]
        skipped = [v for v in skipped if v.name in wanted]
    if skipped:
        print(f"skipped, not installed: {', '.join(v.name for v in skipped)}", file=sys.stderr)

    results: dict[str, list[Result]] = {v.name: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        npz = os.path.join(tmp, "mnist.npz")
        write_npz(npz, args.data_dir)
        for round_ in range(1, args.rounds + 1):
            for v in variants:
                r = run_once(v, args.epochs, npz, args.data_dir, args.timeout)
                results[v.name].append(r)
                seen = r.error or f"{process_median(r.epoch_seconds):.3f} s/epoch"
                print(f"round {round_}/{args.rounds} {v.name}: {seen}", file=sys.stderr)

    summary = {name: summarise(rs) for name, rs in results.items()}
    add_ratios(summary)
    goals = targets(summary)
    print(
        f"five_layer_relu, batch 100: {args.rounds} interleaved rounds x {args.epochs} epochs per"
        f" process (first dropped); {os.cpu_count()} CPUs, {cpu_name()}"
    )
    print(", ".join(f"{k} {v}" for k, v in versions().items()))
    print(table(summary, goals))
    report = {
        "config": {"rounds": args.rounds, "epochs": args.epochs, "data_dir": args.data_dir},
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_name(), "platform": platform.platform()},
        "versions": versions(),
        "skipped": [v.name for v in skipped],
        "variants": summary,
        "targets": [dataclasses.asdict(t) | {"passed": t.passed} for t in goals],
    }
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
