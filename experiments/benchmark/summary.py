"""From processes to figures: each variant's medians over rounds, and the comparisons against
their targets, each named by what it measures."""

import dataclasses
import math
import statistics

from experiments.benchmark.parsing import Process
from experiments.benchmark.running import process_median
from experiments.benchmark.variants import BASELINE, TORCH


@dataclasses.dataclass
class Summary:
    """A variant over its rounds: the median over rounds of each process's figures."""

    seconds_per_epoch: float | None  # each process's median epoch after the first; None: none
    per_round: list[float]  # that figure, round by round
    wall_seconds_per_epoch: float | None  # the project's epochs with everything around them
    around_epoch: float | None  # (wall - compiled) / compiled; see `around_epoch`
    rounds_ok: int
    rounds: int
    test_accuracy: float | None
    startup_seconds: float | None  # the project's process start to first step
    load_seconds: float | None  # the load variant's
    process_seconds: float | None  # the whole process, seen by the driver
    others_cpu: float | None  # share of all CPUs other processes used meanwhile
    errors: list[str]
    processes: list[Process]
    vs_plain_jax: float | None = None  # seconds_per_epoch / plain JAX's
    vs_torch_eager: float | None = None  # seconds_per_epoch / PyTorch eager's


@dataclasses.dataclass(frozen=True)
class Target:
    what: str  # what is measured, in words
    measured: float | None  # None: a variant it needs is missing or failed
    limit: float | None  # None: shown for information, no target
    strict: bool = False  # `measured < limit` rather than `<=`
    figures: str = ""  # the measured figures the ratio comes from

    @property
    def passed(self) -> bool | None:
        if self.measured is None or self.limit is None:
            return None
        return self.measured < self.limit if self.strict else self.measured <= self.limit


def around_epoch(process: Process) -> float | None:
    """(sum of wall_seconds - seconds) / sum of seconds over the epochs after the first: what
    the work between compiled epochs adds to training; None without two timed epochs."""
    pairs = list(zip(process.epoch_seconds[1:], process.wall_seconds[1:], strict=False))
    if not pairs or any(wall is None for _, wall in pairs):
        return None
    train = sum(seconds for seconds, _ in pairs)
    return sum(wall - seconds for seconds, wall in pairs) / train if train > 0 else None


def median_or_none(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(processes: list[Process]) -> Summary:
    """A variant's rounds: the median over rounds of each process's figures."""
    good = [r for r in processes if r.error is None]
    timed = [r for r in good if len(r.epoch_seconds) >= 2]
    per_round = [process_median(r.epoch_seconds) for r in timed]
    walls = [
        r.wall_seconds for r in timed if len(r.wall_seconds) >= 2 and None not in r.wall_seconds
    ]
    return Summary(
        seconds_per_epoch=median_or_none(per_round),
        per_round=per_round,
        wall_seconds_per_epoch=median_or_none([process_median(w) for w in walls]),
        around_epoch=median_or_none([around_epoch(r) for r in timed]),
        rounds_ok=len(good),
        rounds=len(processes),
        test_accuracy=median_or_none([r.test_accuracy for r in good]),
        startup_seconds=median_or_none([r.startup_seconds for r in good]),
        load_seconds=median_or_none([r.load_seconds for r in good]),
        process_seconds=median_or_none([r.process_seconds for r in good]),
        others_cpu=median_or_none([r.others_cpu for r in good]),
        errors=[r.error for r in processes if r.error is not None],
        processes=processes,
    )


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def add_ratios(summary: dict[str, Summary]) -> None:
    """Every variant's epoch against plain JAX's and PyTorch eager's."""
    plain, torch = (
        summary[name].seconds_per_epoch if name in summary else None for name in (BASELINE, TORCH)
    )
    for s in summary.values():
        s.vs_plain_jax = ratio(s.seconds_per_epoch, plain)
        s.vs_torch_eager = ratio(s.seconds_per_epoch, torch)


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, spec)


def in_seconds(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else f"{fmt(value, spec)} s"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{fmt(100 * value, '.1f')} % of training"


def compare(what: str, a: float | None, b: float | None, limit: float | None, spec=".3f"):
    """A target on the ratio a / b, showing both figures."""
    return Target(
        what, ratio(a, b), limit, figures=f"{in_seconds(a, spec)} / {in_seconds(b, spec)}"
    )


def targets(summary: dict[str, Summary], long_epochs: int = 10) -> list[Target]:
    """Every comparison, from the measured summary."""

    def get(name: str, key: str = "seconds_per_epoch") -> float | None:
        return getattr(summary[name], key) if name in summary else None

    f32, bf16, plain, torch = get("float32"), get("bfloat16"), get(BASELINE), get(TORCH)
    acc_f32, acc_bf16 = get("float32", "test_accuracy"), get("bfloat16", "test_accuracy")
    accuracy_gap = None if acc_f32 is None or acc_bf16 is None else abs(acc_bf16 - acc_f32) * 100
    around_logs = get("float32", "around_epoch")
    around_nologs = get("float32_nologs", "around_epoch")
    startup, load = get("float32", "startup_seconds"), get("load", "load_seconds")
    return [
        compare("float32 epoch / plain JAX", f32, plain, 0.75),
        compare("float32 epoch / PyTorch eager", f32, torch, 0.4),
        compare("bfloat16 epoch / plain JAX", bf16, plain, 0.65),
        Target(
            "|bfloat16 - float32| test accuracy, points",
            accuracy_gap,
            0.2,
            figures=f"{fmt(acc_bf16, '.4f')} / {fmt(acc_f32, '.4f')}",
        ),
        compare("lab CNN epoch / PyTorch eager CNN", get("cnn"), get("torch_cnn"), 1.0),
        compare(
            "whole process, 1 epoch / plain_jax_tbx",
            get("run_1", "process_seconds"),
            get("tbx_1", "process_seconds"),
            1.0,
            ".2f",
        ),
        compare(
            f"whole process, {long_epochs} epochs / plain_jax_tbx",
            get("run_long", "process_seconds"),
            get("tbx_long", "process_seconds"),
            0.8,
            ".2f",
        ),
        Target("float32 start-up to first step, s", startup, 10, True, in_seconds(startup, ".2f")),
        Target("load both MNIST splits, s", load, 0.5, figures=in_seconds(load)),
        Target("around the epoch, with logs", around_logs, 0.05, figures=percent(around_logs)),
        Target("around the epoch, --no-logs", around_nologs, 0.05, figures=percent(around_nologs)),
        compare(
            "epoch wall s, logs / --no-logs",
            get("float32", "wall_seconds_per_epoch"),
            get("float32_nologs", "wall_seconds_per_epoch"),
            None,
        ),
        compare("sweep8 epoch / (8 x float32 epoch)", get("sweep8"), 8 * f32 if f32 else None, 0.9),
        compare(
            "dropout-rate sweep8 / lr sweep8 epoch (dropout)",
            get("dropout_rate8"),
            get("dropout_lr8"),
            1.0,
        ),
        compare(
            "sweep8 on 2 CPU devices: members sharded / batch split",
            get("sweep8_by_members"),
            get("sweep8_by_data"),
            None,
        ),
    ]
