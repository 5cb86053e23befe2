"""A sweep's figure from its runs' logs: final test accuracy against each key the sweep varied,
one line per setting of everything else (`plots.plot_sweep` draws it)."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnist_jax.sweep import show_value

# config.json entries that name or place a run rather than say what it trained.
NOT_SETTINGS = ("name", "experiment", "run", "hparams", "group", "devices", "tutorial")
OLD_NAMES = {"learning_rates": "lr", "learning_rate": "lr", "seeds": "seed"}


@dataclass(frozen=True)
class Run:
    """One training run: where its logs are and the config.json written beside them."""

    experiment: str
    name: str
    path: Path
    config: dict


def _last(scalars: dict, tag: str) -> float | None:
    return float(scalars[tag][1][-1]) if tag in scalars else None


def _settings(run: Run) -> dict[str, Any]:
    """What a run trained, flat: `lr`, `seed`, `epochs`, `model.hidden`, ..."""
    config = {k: v for k, v in run.config.items() if k not in NOT_SETTINGS}
    for old, new in OLD_NAMES.items():  # logs written before a config held one rate and seed
        if old in config:
            value = config.pop(old)
            config.setdefault(new, value[0] if isinstance(value, list) else value)
    flat = {"lr": config.pop("lr", None), "seed": config.pop("seed", None)}
    for kind in ("model", "optimizer", "schedule", "loss"):
        if isinstance(config.get(kind), dict):
            flat |= {f"{kind}.{k}": v for k, v in config.pop(kind).items()}
    return flat | config


def sweep_points(runs: Sequence[Run], epochs: dict[Path, dict]) -> dict[str, dict]:
    """{key: {series: [(value, final test accuracy)]}} for each key a sweep varied (a key of the
    runs' `hparams` but seed) and that takes several values here; a key in which separate
    commands merely differ (their length, loss, pixels) is not a sweep. A series holds runs
    equal in everything else (seed included) that logged as many epochs, so runs of other
    configs or lengths (an interrupted one) are never joined; a second run of the same setting
    (a rerun) starts a series of its own."""
    settings = {run.path: _settings(run) for run in runs}
    logged = {run.path: len(epochs[run.path].get("test_accuracy", ((),))[0]) for run in runs}
    hparams = {k for run in runs for k in run.config.get("hparams") or {}}
    swept = [
        k for k in sorted(hparams - {"seed"}, key=lambda k: (k != "lr", k))
        if len({json.dumps(s.get(k)) for s in settings.values()}) > 1
    ]  # fmt: skip
    points = {key: _series(key, swept, runs, settings, logged, epochs) for key in swept}
    return {key: series for key, series in points.items() if _varies(series)}


def _varies(series: dict[str, list[tuple]]) -> bool:
    """Some line has two points: else every value sits alone and nothing is compared."""
    return any(len(points) > 1 for points in series.values())


def _series(key, swept, runs, settings, logged, epochs) -> dict[str, list[tuple]]:
    series: dict[tuple, list[tuple]] = {}
    for run in runs:
        accuracy = _last(epochs[run.path], "test_accuracy")
        value = settings[run.path].get(key)
        if accuracy is None or value is None:
            continue
        rest = {k: v for k, v in settings[run.path].items() if k != key}
        group = (json.dumps(rest, sort_keys=True), logged[run.path])
        repeat = 0
        while any(v == value for v, _ in series.get((*group, repeat), [])):
            repeat += 1
        series.setdefault((*group, repeat), []).append((value, accuracy))
    lengths = {length for _, length, _ in series}
    rests = [json.loads(rest_json) for rest_json, _, _ in series]
    differing = [  # what else tells two lines apart (another length asked, another loss, ...)
        k for k in sorted({k for rest in rests for k in rest})
        if k not in (*swept, "seed") and len({json.dumps(rest.get(k)) for rest in rests}) > 1
    ]  # fmt: skip
    labelled = {}
    for (rest_json, length, repeat), points in series.items():
        rest = json.loads(rest_json)
        shown = [k for k in [*swept, "seed", *differing] if k in rest and k != key]
        parts = [f"{k}={show_value(rest[k])}" for k in shown]
        parts += [f"{length} epochs logged"] if len(lengths) > 1 else []
        parts += [f"run {repeat + 1}"] if repeat else []
        labelled[", ".join(parts)] = points
    return labelled
