"""Training curves and model pictures drawn from the trainer's TensorBoard logs.

The tutorial's lessons are pictures: a deeper network overfits (test loss turns up while train
loss keeps falling), dropout and learning-rate decay tame it, and the learning rate decides
everything. This module reads the event files of every run under a log directory and draws them:

    python -m mnist_jax.plots LOGDIR [--outdir figures/] [--architectures]

writes, for each experiment `E` (runs at `LOGDIR/.../E/<run>/{train,test}/`):
`E_loss.png` (train and test loss per epoch, one colour per run), `E_batch_loss.png` (loss of
every batch, raw and smoothed), `E_<key>_sweep.png` for each key the runs differ in (final test
accuracy against `lr`, `model.dropout_rate`, ...; one line per setting of everything else, so
runs of different configs or lengths are never joined); `test_loss.png` (test loss of every
experiment) when there are several; and with `--architectures`, a picture of each of the two
standard models.
"""

import argparse
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from matplotlib.ticker import MaxNLocator, NullLocator
from tensorboard.backend.event_processing import event_accumulator

from mnist_jax import models
from mnist_jax.sweep import show_value

OUTDIR = "figures"
SMOOTHING = 0.6  # TensorBoard's default smoothing weight
MAX_TICKS = 12  # a sweep's values each get a tick up to this many
INPUT_SHAPE = (28, 28, 1)
STANDARD_MODELS = {  # file name: (title, model name, settings)
    "softmax_regression": ("Softmax regression", "softmax", {}),
    "five_layer_mlp_dropout": (
        "Five-layer ReLU MLP, dropout 0.25",
        "mlp",
        {"activation": "relu", "dropout_rate": 0.25, "dropout_after": [2, 3, 4]},
    ),
}
# config.json entries that name or place a run rather than say what it trained.
NOT_SETTINGS = ("name", "experiment", "run", "hparams", "group", "devices", "tutorial")
OLD_NAMES = {"learning_rates": "lr", "learning_rate": "lr", "seeds": "seed"}
LAYER_COLOURS = {"Input": "#d9ead3", "Dense": "#cfe2f3", "Dropout": "#eeeeee"}


@dataclass(frozen=True)
class Run:
    """One training run: where its logs are and the config.json written beside them."""

    experiment: str
    name: str
    path: Path
    config: dict


# ---------------------------------------------------------------------------------------------
# Reading


def read_scalars(event_dir: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every scalar tag in a directory's event files, as (steps, values) sorted by step.

    TensorBoard's own reader, told to keep every point (by default it samples 10,000 per tag,
    fewer than a long run's batches). A step written twice keeps its last value, as TensorBoard
    shows it.
    """
    events = event_accumulator.EventAccumulator(
        str(event_dir), size_guidance={event_accumulator.SCALARS: 0}
    )
    events.Reload()
    scalars = {}
    for tag in events.Tags()["scalars"]:
        points = {e.step: e.value for e in events.Scalars(tag)}
        steps = np.array(sorted(points))
        scalars[tag] = (steps, np.array([points[s] for s in steps]))
    return scalars


def read_epochs(run_path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A run's per-epoch curves: `loss`, `accuracy`, ... from `train/epoch_*`, `test_loss`,
    `test_accuracy`, ... from `test/epoch_*`."""
    curves = {}
    for split, prefix in (("train", ""), ("test", "test_")):
        for tag, points in read_scalars(run_path / split).items():
            if tag.startswith("epoch_"):
                curves[prefix + tag.removeprefix("epoch_")] = points
    return curves


def find_runs(logdir: str | Path) -> list[Run]:
    """Every directory under `logdir` (itself included) that holds `train/` or `test/` logs.

    Experiment and run names come from config.json, falling back to the directory names
    `<experiment>/<run>`.
    """
    root = Path(logdir)
    candidates = [root, *sorted(p for p in root.rglob("*") if p.is_dir())]
    runs = []
    for path in candidates:
        if not ((path / "train").is_dir() or (path / "test").is_dir()):
            continue
        config_path = path / "config.json"
        config = json.loads(config_path.read_text()) if config_path.is_file() else {}
        experiment = config.get("experiment", path.resolve().parent.name)
        runs.append(Run(experiment, config.get("run", path.name), path, config))
    return runs


def group_by_experiment(runs: Sequence[Run], logdir: str | Path) -> dict[str, list[Run]]:
    """Runs by the folder that holds them, named by its path under `logdir`: the report's
    `tutorial/softmax` and `corrected/softmax` are two experiments, never one."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        folder = run.path.resolve().parent
        inside = folder.is_relative_to(Path(logdir).resolve())
        name = folder.relative_to(Path(logdir).resolve()).as_posix() if inside else "."
        groups.setdefault(run.experiment if name == "." else name, []).append(run)
    return groups


def smooth(values: np.ndarray, weight: float = SMOOTHING) -> np.ndarray:
    """TensorBoard's smoothing: an exponential moving average, debiased like Adam's moments.

    Without the debiasing the curve would start near zero instead of at the first loss.
    """
    out = np.empty(len(values))
    average = 0.0
    for i, value in enumerate(values):
        average = weight * average + (1 - weight) * value
        out[i] = average / (1 - weight ** (i + 1))
    return out


# ---------------------------------------------------------------------------------------------
# Plotting: each function draws one figure from already-read data and saves it to `path`.


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=120, bbox_inches="tight")  # the figure grows to hold the legend
    return path


def _legend(ax) -> None:
    """Beside the plot, never over its curves."""
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)


def plot_epoch_losses(curves: dict[str, dict], path: Path, title: str) -> Path:
    """Train (solid) and test (dashed) loss per epoch, one colour per run: overfitting shows as
    a test curve that turns up while the train curve keeps falling."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for i, (run, scalars) in enumerate(curves.items()):
        colour = f"C{i % 10}"
        if "loss" in scalars:
            ax.plot(*scalars["loss"], color=colour, marker=".", label=run)
        if "test_loss" in scalars:
            label = None if "loss" in scalars else run
            ax.plot(*scalars["test_loss"], color=colour, marker=".", ls="--", label=label)
    ax.plot([], [], color="k", label="train (solid)")
    ax.plot([], [], color="k", ls="--", label="test (dashed)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="epoch", ylabel="cross-entropy loss", title=title)
    ax.grid(alpha=0.3)
    _legend(ax)
    return _save(fig, path)


def plot_batch_losses(curves: dict[str, tuple], path: Path, title: str) -> Path:
    """The loss of every batch, raw (faint) and smoothed as TensorBoard does, one colour per run."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for i, (run, (steps, values)) in enumerate(curves.items()):
        colour = f"C{i % 10}"
        ax.plot(steps, values, color=colour, alpha=0.25, lw=0.8)
        ax.plot(steps, smooth(values), color=colour, lw=1.5, label=run)
    ax.plot([], [], color="k", alpha=0.25, lw=0.8, label="raw")
    ax.plot([], [], color="k", lw=1.5, label=f"smoothed (EMA {SMOOTHING})")
    ax.set(xlabel="batch", ylabel="cross-entropy loss", title=title)
    ax.grid(alpha=0.3)
    _legend(ax)
    return _save(fig, path)


def plot_test_losses(curves: dict[str, list[tuple]], path: Path) -> Path:
    """Test loss per epoch of every experiment, one colour per experiment (each of its runs a
    line), to compare models: a plain deep ReLU net against its dropout and decay variants."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for i, (experiment, lines) in enumerate(curves.items()):
        for j, (steps, values) in enumerate(lines):
            ax.plot(steps, values, color=f"C{i % 10}", marker=".", label=None if j else experiment)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="epoch", ylabel="test cross-entropy loss", title="Test loss by experiment")
    ax.grid(alpha=0.3)
    _legend(ax)
    return _save(fig, path)


def plot_sweep(
    key: str, points: dict[str, list[tuple[Any, float]]], path: Path, title: str
) -> Path:
    """Final test accuracy against the swept `key`, one line per setting of everything else.
    Numbers on a number axis (log when they span a decade), names and lists as categories."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    values = [x for xy in points.values() for x, _ in xy]
    numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in values)
    categories = sorted({json.dumps(x) for x in values}) if not numeric else []
    shown = sorted(set(values)) if numeric else [json.loads(c) for c in categories]
    for series, xy in points.items():
        xs, accuracies = zip(*sorted(xy, key=lambda p: json.dumps(p[0])), strict=True)
        if numeric:
            order = np.argsort(xs)
            xs, accuracies = np.array(xs)[order], np.array(accuracies)[order]
        else:
            xs = [categories.index(json.dumps(x)) for x in xs]
        ax.plot(xs, accuracies, marker="o", label=series or None)
    if numeric and min(values) > 0 and max(values) >= 10 * min(values):
        ax.set_xscale("log")
    ticks = shown if numeric else range(len(categories))
    if len(shown) <= MAX_TICKS:  # each value as typed: 0.001, not 1e-3's float noise
        ax.set_xticks(ticks, [show_value(v) for v in shown])
        ax.xaxis.set_minor_locator(NullLocator())
    accuracies = [a for xy in points.values() for _, a in xy]
    pad = max(0.1 * (max(accuracies) - min(accuracies)), 0.001)
    ax.set_ylim(min(accuracies) - pad, max(accuracies) + pad)  # fitted, not 0 to 1
    ax.set(xlabel=key, ylabel="final test accuracy", title=title)
    ax.grid(alpha=0.3, which="both")
    _legend(ax)
    return _save(fig, path)


def draw_architecture(rows: Sequence[tuple], path: str | Path, title: str) -> Path:
    """A vertical stack of layer boxes (name, type, output shape, parameters) joined by arrows,
    and the total: the picture the tutorial drew with Keras' `model_to_dot`."""
    n = len(rows)
    fig = Figure(figsize=(4.5, 0.8 + 0.8 * n))
    ax = fig.add_subplot()
    ax.set(xlim=(0, 1), ylim=(-0.7, n), title=title)
    ax.axis("off")
    for i, (name, kind, shape, n_params) in enumerate(rows):
        y = n - 1 - i
        box = FancyBboxPatch(
            (0.1, y + 0.15), 0.8, 0.6, boxstyle="round,pad=0.02",
            facecolor=LAYER_COLOURS.get(kind, "#fff2cc"), edgecolor="#444444",
        )  # fmt: skip
        ax.add_patch(box)
        ax.text(0.5, y + 0.56, f"{name}: {kind}", ha="center", va="center", weight="bold")
        ax.text(0.5, y + 0.32, f"output {shape}   {n_params:,} params", ha="center", va="center")
        if i:
            ax.annotate("", (0.5, y + 0.77), (0.5, y + 1.13), arrowprops={"arrowstyle": "->"})
    total = sum(row[3] for row in rows)
    ax.text(0.5, -0.3, f"Total params: {total:,}", ha="center", va="center", weight="bold")
    return _save(fig, Path(path))


# ---------------------------------------------------------------------------------------------
# From runs to figures


def _filename(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_")


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


def plot_experiment(
    experiment: str, runs: Sequence[Run], epochs: dict[Path, dict], outdir: Path
) -> list[Path]:
    """Every figure of one experiment that its runs logged the data for."""
    stem, written = outdir / _filename(experiment), []
    epoch_curves = {run.name: epochs[run.path] for run in runs}
    if any("loss" in s or "test_loss" in s for s in epoch_curves.values()):
        title = f"{experiment}: train and test loss"
        written.append(plot_epoch_losses(epoch_curves, Path(f"{stem}_loss.png"), title))
    batch_losses = {
        run.name: s["batch_loss"]
        for run in runs
        if "batch_loss" in (s := read_scalars(run.path / "train"))
    }
    if batch_losses:
        title = f"{experiment}: loss per batch"
        written.append(plot_batch_losses(batch_losses, Path(f"{stem}_batch_loss.png"), title))
    for key, points in sweep_points(runs, epochs).items():
        title = f"{experiment}: final test accuracy vs {key}"
        path = Path(f"{stem}_{_filename(key)}_sweep.png")
        written.append(plot_sweep(key, points, path, title))
    return written


def plot_logdir(logdir: str | Path, outdir: str | Path) -> list[Path]:
    """Every figure for the runs under `logdir`; FileNotFoundError when there are none."""
    if not Path(logdir).is_dir():
        raise FileNotFoundError(f"log directory {logdir} does not exist")
    runs = find_runs(logdir)
    if not runs:
        raise FileNotFoundError(f"no runs (directories with train/ or test/ logs) in {logdir}")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    epochs = {run.path: read_epochs(run.path) for run in runs}
    experiments = group_by_experiment(runs, logdir)
    written = [
        path
        for name, group in experiments.items()
        for path in plot_experiment(name, group, epochs, outdir)
    ]
    test_losses = {
        name: [epochs[run.path]["test_loss"] for run in group if "test_loss" in epochs[run.path]]
        for name, group in experiments.items()
    }
    test_losses = {name: lines for name, lines in test_losses.items() if lines}
    if len(test_losses) > 1:
        written.append(plot_test_losses(test_losses, outdir / "test_loss.png"))
    return written


def draw_standard_architectures(outdir: str | Path) -> list[Path]:
    """The tutorial's first and last models, each preceded by its input as Keras draws it."""
    Path(outdir).mkdir(parents=True, exist_ok=True)
    input_row = ("input", "Input", (None, *INPUT_SHAPE), 0)
    return [
        draw_architecture(
            [input_row, *models.layer_table(models.build(model, settings), INPUT_SHAPE)],
            Path(outdir) / f"architecture_{name}.png",
            title,
        )
        for name, (title, model, settings) in STANDARD_MODELS.items()
    ]


def main(argv: Sequence[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", help="directory holding <experiment>/<run>/{epoch,batch}/ logs")
    parser.add_argument("--outdir", default=OUTDIR, help=f"where to write PNGs (default {OUTDIR})")
    parser.add_argument(
        "--architectures",
        action="store_true",
        help="also draw the softmax regression and the five-layer MLP with dropout",
    )
    args = parser.parse_args(argv)
    try:
        written = plot_logdir(args.logdir, args.outdir)
    except FileNotFoundError as error:
        parser.exit(1, f"error: {error}\n")
    if args.architectures:
        written += draw_standard_architectures(args.outdir)
    print("\n".join(str(path) for path in written))
    return written


if __name__ == "__main__":
    main()
