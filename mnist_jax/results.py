"""What a run hands back: small dataclasses, written as JSON, CSV and a table at the edge."""

import csv
import dataclasses
import io
import json
import math
import os
from typing import Any

import numpy as np

from mnist_jax import files, metrics
from mnist_jax.config import Config
from mnist_jax.sweep import Member

TEST, VAL = metrics.TEST_PREFIX, metrics.VAL_PREFIX


@dataclasses.dataclass(frozen=True)
class Epoch:
    """One epoch of one member: every metric's value by name (see `metrics`): `loss`,
    `accuracy`, ... the training batches' reduction; `test_loss`, ... the test set's;
    `val_loss`, ... the validation split's (`val_split`) when there is one;
    `weight_norm/dense_1`, ... those of the trained parameters. In a search the test set is
    evaluated for the chosen member only, after its last epoch: the others have no `test_`."""

    epoch: int
    values: dict[str, float]
    seconds: float  # the compiled epoch alone
    wall_seconds: float | None = None  # with evaluation, metric transfer, logs and checkpoint
    hparams: dict[str, float] | None = None  # PBT: the searched values this epoch trained with
    copied_from: int | None = None  # PBT: the member whose state this one took after the epoch

    def to_json(self) -> dict[str, Any]:
        """Flat, as Keras' history: `{"epoch": 1, "loss": ..., "test_loss": ..., ...}`; PBT's
        fields only in PBT."""
        pbt = {} if self.hparams is None else {"hparams": self.hparams}
        pbt |= {} if self.hparams is None else {"copied_from": self.copied_from}
        return {
            "epoch": self.epoch,
            **self.values,
            "seconds": self.seconds,
            "wall_seconds": self.wall_seconds,
            **pbt,
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> "Epoch":
        fields = ("epoch", "seconds", "wall_seconds", "hparams", "copied_from")
        values = {k: v for k, v in record.items() if k not in fields}
        return cls(
            record["epoch"],
            values,
            record["seconds"],
            record.get("wall_seconds"),
            record.get("hparams"),
            record.get("copied_from"),
        )


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
    final: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # `END` metrics
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
    def test(self) -> dict[str, float]:
        """The last epoch's test-set figures, by metric name."""
        values = self.history[-1].values
        return {k.removeprefix(TEST): v for k, v in values.items() if k.startswith(TEST)}

    @property
    def test_loss(self) -> float | None:
        return self.test.get("loss")

    @property
    def test_accuracy(self) -> float | None:
        return self.test.get("accuracy")

    @property
    def test_binary_accuracy(self) -> float | None:
        return self.test.get("binary_accuracy")

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
            **{f"{TEST}{k}": self.test.get(k) for k in SHOWN},
            **{f"{TEST}{k}": v for k, v in self.test.items()},
            **{name: value.tolist() for name, value in self.final.items()},
            "train_seconds": self.train_seconds,
            "epochs": [e.to_json() for e in self.history],
            "config": self.member.config.to_json(),
            **({} if self.lineage is None else {"lineage": self.lineage}),
        }
        return _finite(record)


@dataclasses.dataclass(frozen=True)
class ConvChoice:
    """How one convolution layer of one group was computed (`mnist_jax.conv`): `mode` train or
    evaluate; `source` forced, backend, recorded or measured; `ms` each candidate's timing, of
    all `members` the layer is mapped over in its program."""

    group: int
    layer: str
    mode: str
    impl: str
    source: str
    ms: dict[str, float]
    members: int = 1

    def describe(self) -> str:
        timed = ", ".join(f"{name} {ms:.2f}" for name, ms in self.ms.items())
        per_step = "ms per step" + (f" of {self.members} members" if self.members > 1 else "")
        return f"{self.impl} ({self.source}{f'; {per_step}: {timed}' if timed else ''})"


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
                **{f"{VAL}{m}": last.values.get(f"{VAL}{m}") for m in SHOWN},
                **{f"{TEST}{m}": last.values.get(f"{TEST}{m}") for m in SHOWN},
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
    """One row per member: every swept key, the rate, seed and loss, the final test figures,
    the last epoch's training ones (`train_loss`, ..., `weight_norm/dense_1`, ...) and the
    end's (`class_accuracy/0`, ...); a metric some members lack is left empty for them."""
    rows = [_csv_row(r, result.swept) for r in result.runs]
    header = list(dict.fromkeys(k for row in rows for k in row))
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(k, "") for k in header])
    files.write_atomic(path, text.getvalue())


def _csv_row(r: Run, swept: list[str]) -> dict[str, Any]:
    config = r.member.config
    row = {k: _csv_value(r.hparams[k]) for k in swept if k not in ("lr", "seed")}
    row |= {"learning_rate": r.learning_rate, "seed": r.seed}
    for kind in ("loss", "train_step", "augment"):
        row[kind] = getattr(config, f"{kind}_name")
        row |= {
            f"{kind}.{k}": v for k, v in getattr(config, kind).items() if f"{kind}.{k}" not in row
        }
    if config.init_from:  # where its parameters started
        row |= {"init_from": config.init_from, "init_from.member": config.init_from_member}
    row |= {"group": r.group, "diverged": r.diverged, "epochs": len(r.history)}
    row |= {f"{TEST}{k}": r.test.get(k) for k in SHOWN}
    for key, value in r.history[-1].values.items():
        if key.startswith((TEST, VAL)):
            row[key] = value
        else:
            batch = metrics.BATCH in metrics.get(key.partition("/")[0]).where
            row[f"train_{key}" if batch else key] = value
    for name, value in r.final.items():
        if value.ndim == 0:  # a figure of the whole run (DP-SGD's privacy spent)
            row[name] = float(value)
        elif value.ndim == 1:  # a vector as one column per entry; matrices only in the JSON
            row |= {f"{name}/{i}": float(v) for i, v in enumerate(value)}
    row["train_seconds"] = r.train_seconds
    if r.lineage is not None:  # PBT: the values it ended with, the states it took
        row |= {"final_hparams": json.dumps(r.history[-1].hparams), "lineage": _copies(r)}
    return row


def _copies(run: Run) -> str:
    """PBT's copies into `run`, e.g. `2:5 4:1` (after epoch 2 it took member 5's state, ...)."""
    return " ".join(f"{e.epoch}:{e.copied_from}" for e in run.history if e.copied_from is not None)


def _csv_value(value):
    return json.dumps(value) if isinstance(value, list) else value


SHOWN = ("loss", "accuracy", "binary_accuracy")  # the table's test-set columns
