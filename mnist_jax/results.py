"""What a run hands back: small dataclasses, written as JSON, CSV and a table at the edge."""

import csv
import dataclasses
import io
import json
import math
import os
import statistics
from typing import Any

import numpy as np

from mnist_jax import files
from mnist_jax.config import Config
from mnist_jax.sweep import Member

METRICS = ("loss", "accuracy", "binary_accuracy")


@dataclasses.dataclass(frozen=True)
class Epoch:
    """One epoch of one member: the training batches' means, the test set's values, and the
    validation split's (`val_split`) when there is one. In a search the test set is evaluated
    for the chosen member only, after its last epoch: every other `test_` value is None."""

    epoch: int
    loss: float
    accuracy: float
    binary_accuracy: float
    test_loss: float | None
    test_accuracy: float | None
    test_binary_accuracy: float | None
    seconds: float  # the compiled epoch alone
    wall_seconds: float | None = None  # with evaluation, metric transfer, logs and checkpoint
    val_loss: float | None = None
    val_accuracy: float | None = None
    val_binary_accuracy: float | None = None
    hparams: dict[str, float] | None = None  # PBT: the searched values this epoch trained with
    copied_from: int | None = None  # PBT: the member whose state this one took after the epoch


@dataclasses.dataclass
class Run:
    """One member's result; `params` is its trained parameters (a pytree on the host)."""

    member: Member
    group: int
    chunk: int | None  # its `--max-members` chunk within the group, when the group has several
    run_dir: str | None
    history: list[Epoch]
    batch_losses: np.ndarray  # [steps], the loss of every batch in order
    diverged: bool
    diverged_at_step: int | None
    mesh: dict[str, int]  # the device layout it trained on, {"data": d, "members": m}
    params: Any = None

    @property
    def hparams(self) -> dict[str, Any]:
        return self.member.hparams

    @property
    def learning_rate(self) -> float:
        return self.member.learning_rate

    @property
    def seed(self) -> int:
        return self.member.seed

    @property
    def test_loss(self) -> float | None:
        return self.history[-1].test_loss

    @property
    def test_accuracy(self) -> float | None:
        return self.history[-1].test_accuracy

    @property
    def test_binary_accuracy(self) -> float | None:
        return self.history[-1].test_binary_accuracy

    @property
    def lineage(self) -> list[dict[str, Any]] | None:
        """PBT's record of this member: each epoch's searched values and, where it took another
        member's state after that epoch, which one (`copied_from`); None outside PBT."""
        if self.history[0].hparams is None:
            return None
        return [
            {"epoch": e.epoch, "hparams": e.hparams, "copied_from": e.copied_from}
            for e in self.history
        ]

    @property
    def train_seconds(self) -> float:
        return sum(e.seconds for e in self.history)

    def to_json(self) -> dict[str, Any]:
        record = {
            "learning_rate": self.learning_rate,
            "seed": self.seed,
            "hparams": self.hparams,
            "group": self.group,
            **({} if self.chunk is None else {"chunk": self.chunk}),
            "mesh": self.mesh,
            "run": None if self.run_dir is None else os.path.basename(self.run_dir),
            "diverged": self.diverged,
            "diverged_at_step": self.diverged_at_step,
            "test_loss": self.test_loss,
            "test_accuracy": self.test_accuracy,
            "test_binary_accuracy": self.test_binary_accuracy,
            "train_seconds": self.train_seconds,
            "epochs": [_epoch_json(e) for e in self.history],
            "config": self.member.config.to_json(),
            **({} if self.lineage is None else {"lineage": self.lineage}),
        }
        return _finite(record)


def _epoch_json(epoch: Epoch) -> dict[str, Any]:
    """An epoch record, without PBT's fields outside PBT."""
    record = dataclasses.asdict(epoch)
    if epoch.hparams is None:
        del record["hparams"], record["copied_from"]
    return record


@dataclasses.dataclass(frozen=True)
class ConvChoice:
    """How one convolution layer of one group was computed (`mnist_jax.conv`): `mode` train or
    evaluate; `source` forced, backend, recorded or measured; `ms` each candidate's timing."""

    group: int
    layer: str
    mode: str
    impl: str
    source: str
    ms: dict[str, float]

    def describe(self) -> str:
        timed = ", ".join(f"{name} {ms:.2f}" for name, ms in self.ms.items())
        return f"{self.impl} ({self.source}{f'; ms per step: {timed}' if timed else ''})"


@dataclasses.dataclass
class Result:
    """Everything one command trained: the base config, each member's run, in member order."""

    config: Config
    runs: list[Run]
    startup_seconds: float | None  # process start to the first step
    swept: list[str]  # the swept keys, in the order given
    validation: dict[str, Any] | None = None  # the validation split's record (`holdout.record`)
    convs: list[ConvChoice] = dataclasses.field(default_factory=list)  # models with convolutions
    search: "Choice | None" = None  # a search's chosen member

    @property
    def chosen(self) -> Run | None:
        return None if self.search is None else self.runs[self.search.run]

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.config.name,
            "config": self.config.to_json(),
            "swept": self.swept,
            "validation": self.validation,
            "search": None if self.search is None else self.search.to_json(self.runs),
            "mesh": self.runs[0].mesh if self.runs else None,
            "startup_seconds": self.startup_seconds,
            **({"conv": [dataclasses.asdict(c) for c in self.convs]} if self.convs else {}),
            "runs": [r.to_json() for r in self.runs],
        }


@dataclasses.dataclass(frozen=True)
class Choice:
    """A search's result: its strategy and settings, the run it chose by validation accuracy
    (the only one evaluated on the test set), and the command that trains that setting."""

    strategy: str
    settings: dict[str, Any]  # the `search.Search` fields
    run: int  # index into `Result.runs`
    command: str

    def to_json(self, runs: list[Run]) -> dict[str, Any]:
        chosen = runs[self.run]
        last = chosen.history[-1]
        return _finite(
            {
                **self.settings,
                "chosen": self.run,
                "command": self.command,
                "hparams": chosen.hparams | (last.hparams or {}),
                "epochs": len(chosen.history),
                **{f"val_{m}": getattr(last, f"val_{m}") for m in METRICS},
                **{f"test_{m}": getattr(last, f"test_{m}") for m in METRICS},
            }
        )


def _finite(value):
    """Non-finite numbers as None, so the JSON stays JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str, result: Result) -> None:
    """Atomically: a reader never sees half a file, a failed write keeps the old one."""
    files.write_atomic(path, json.dumps(result.to_json(), indent=1))


def write_csv(path: str, result: Result) -> None:
    """One row per member: every swept key, the rate and seed, and the final metrics (the
    validation split's too, when there is one)."""
    columns = [k for k in result.swept if k not in ("lr", "seed")]
    header = [*columns, "learning_rate", "seed", "group", "diverged", "epochs"]
    header += [f"test_{m}" for m in METRICS] + ["train_loss", "train_accuracy", "train_seconds"]
    validation = [f"val_{m}" for m in METRICS] if result.validation else []
    pbt = result.runs[0].lineage is not None
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header + validation + (["final_hparams", "lineage"] if pbt else []))
    for r in result.runs:
        last = r.history[-1]
        writer.writerow(
            [
                json.dumps(r.hparams[k]) if isinstance(r.hparams[k], list) else r.hparams[k]
                for k in columns
            ]
            + [r.learning_rate, r.seed, r.group, r.diverged, len(r.history)]
            + [r.test_loss, r.test_accuracy, r.test_binary_accuracy]
            + [last.loss, last.accuracy, r.train_seconds]
            + [getattr(last, k) for k in validation]
            + ([json.dumps(last.hparams), _copies(r)] if pbt else [])
        )
    files.write_atomic(path, text.getvalue())


def _copies(run: Run) -> str:
    """PBT's copies into `run`, e.g. `2:5 4:1` (after epoch 2 it took member 5's state, ...)."""
    return " ".join(f"{e.epoch}:{e.copied_from}" for e in run.history if e.copied_from is not None)


def summary_table(result: Result) -> str:
    """The tutorial's `evaluate` line per setting, best test accuracy first; settings repeated
    over seeds show mean ± std over them. A search's members instead, best validation accuracy
    first, and the command that trains the chosen one."""
    if result.search is not None:
        return search_table(result)
    keys = [k for k in result.swept if k != "seed"]
    keys += [] if set(keys) - {"dataset"} else ["lr"]  # the rate, when nothing else differs
    rows: dict[tuple, list[Run]] = {}
    for r in result.runs:
        values = {**r.hparams, "lr": r.learning_rate}
        rows.setdefault(tuple(_cell(values[k]) for k in keys), []).append(r)
    seeds = max(len(runs) for runs in rows.values())
    header = [*keys, "seeds" if seeds > 1 else "seed", "test loss", "accuracy", "binary acc"]
    lines = []
    for setting, runs in sorted(rows.items(), key=lambda kv: -_mean_accuracy(kv[1])):
        seed_cell = str(len(runs)) if seeds > 1 else str(runs[0].seed)
        flag = "  diverged" if any(r.diverged for r in runs) else ""
        stats = [_stat([getattr(r, f"test_{m}") for r in runs]) for m in METRICS]
        lines.append([*setting, seed_cell, *stats, flag])
    widths = [max(len(str(c)) for c in column) for column in zip(header, *lines, strict=False)]
    loss = result.config.loss
    out = [f"test ({loss} loss), best first:"]
    out.append("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=False)))
    for line in lines:
        cells = [c.rjust(w) for c, w in zip(line[:-1], widths, strict=False)]
        out.append("  ".join(cells) + line[-1])
    return "\n".join(out)


def search_table(result: Result) -> str:
    """Every member of a search, those that trained longest first (halving's last rungs), then
    by validation accuracy: searched values, epochs and validation figures; the test set's for
    the chosen member only."""
    keys = [k for k in result.swept if k != "seed"] or ["lr"]
    header = [*keys, "seed", "epochs", "val loss", "val acc", "test acc", ""]
    lines = []
    scores = [r.history[-1].val_accuracy for r in result.runs]
    order = sorted(
        range(len(scores)), key=lambda i: (-len(result.runs[i].history), -_score(scores[i]))
    )
    for i in order:
        r, last = result.runs[i], result.runs[i].history[-1]
        values = {**r.hparams, "lr": r.learning_rate, **(last.hparams or {})}  # PBT's final
        test = "—" if last.test_accuracy is None else f"{last.test_accuracy:.4f}"
        flag = "chosen" if i == result.search.run else ("diverged" if r.diverged else "")
        figures = [_figure(last.val_loss), _figure(last.val_accuracy), test, flag]
        lines.append(
            [*(_cell(values[k]) for k in keys), str(r.seed), str(len(r.history)), *figures]
        )
    widths = [max(len(c) for c in column) for column in zip(header, *lines, strict=True)]
    out = [f"{result.search.strategy} search, validation ({result.config.loss} loss), best first:"]
    out += ["  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)).rstrip()
            for line in [header, *lines]]  # fmt: skip
    out.append(f"chosen: {result.search.command}")
    return "\n".join(out)


def _score(value: float | None) -> float:
    return value if value is not None and math.isfinite(value) else -math.inf


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return json.dumps(value).replace(" ", "")
    return str(value)


def _mean_accuracy(runs: list[Run]) -> float:
    values = [r.test_accuracy for r in runs if not r.diverged]
    return statistics.fmean(values) if values else -1.0


def _stat(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"
