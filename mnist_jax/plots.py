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
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator
from tensorboard.backend.event_processing import event_accumulator

from mnist_jax import architecture_plots
from mnist_jax.plot_sweeps import Run, sweep_points
from mnist_jax.sweep import show_value

OUTDIR = "figures"
SMOOTHING = 0.6  # TensorBoard's default smoothing weight
MAX_TICKS = 12  # a sweep's values each get a tick up to this many
# The y axis of each loss; one not named here is "<name> loss".
LOSS_AXES = {"categorical": "categorical cross-entropy", "binary": "binary cross-entropy"}


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


def save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=120, bbox_inches="tight")  # the figure grows to hold the legend
    return path


def _legend(ax) -> None:
    """Beside the plot, never over its curves."""
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)


def plot_epoch_losses(
    curves: dict[str, dict], path: Path, title: str, ylabel: str = "cross-entropy loss"
) -> Path:
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
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    _legend(ax)
    return save(fig, path)


def plot_batch_losses(
    curves: dict[str, tuple], path: Path, title: str, ylabel: str = "cross-entropy loss"
) -> Path:
    """The loss of every batch, raw (faint) and smoothed as TensorBoard does, one colour per run."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for i, (run, (steps, values)) in enumerate(curves.items()):
        colour = f"C{i % 10}"
        ax.plot(steps, values, color=colour, alpha=0.25, lw=0.8)
        ax.plot(steps, smooth(values), color=colour, lw=1.5, label=run)
    ax.plot([], [], color="k", alpha=0.25, lw=0.8, label="raw")
    ax.plot([], [], color="k", lw=1.5, label=f"smoothed (EMA {SMOOTHING})")
    ax.set(xlabel="batch", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    _legend(ax)
    return save(fig, path)


def plot_test_losses(
    curves: dict[str, list[tuple]], path: Path, ylabel: str = "cross-entropy loss"
) -> Path:
    """Test loss per epoch of every experiment, one colour per experiment (each of its runs a
    line), to compare models: a plain deep ReLU net against its dropout and decay variants."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for i, (experiment, lines) in enumerate(curves.items()):
        for j, (steps, values) in enumerate(lines):
            ax.plot(steps, values, color=f"C{i % 10}", marker=".", label=None if j else experiment)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="epoch", ylabel=f"test {ylabel}", title="Test loss by experiment")
    ax.grid(alpha=0.3)
    _legend(ax)
    return save(fig, path)


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
    return save(fig, path)


# ---------------------------------------------------------------------------------------------
# From runs to figures


def _filename(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_")


def plot_experiment(
    experiment: str, runs: Sequence[Run], epochs: dict[Path, dict], outdir: Path
) -> list[Path]:
    """Every figure of one experiment that its runs logged the data for."""
    stem, written = outdir / _filename(experiment), []
    label, ylabel = loss_labels(runs)
    epoch_curves = {label[run.path]: epochs[run.path] for run in runs}
    if any("loss" in s or "test_loss" in s for s in epoch_curves.values()):
        title = f"{experiment}: train and test loss"
        path = Path(f"{stem}_loss.png")
        written.append(plot_epoch_losses(epoch_curves, path, title, ylabel))
    batch_losses = {
        label[run.path]: s["batch_loss"]
        for run in runs
        if "batch_loss" in (s := read_scalars(run.path / "train"))
    }
    if batch_losses:
        title = f"{experiment}: loss per batch"
        path = Path(f"{stem}_batch_loss.png")
        written.append(plot_batch_losses(batch_losses, path, title, ylabel))
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
    every = [run for group in experiments.values() for run in group]
    several = len({loss_of(run) for run in every}) > 1
    _, ylabel = loss_labels(every)
    test_losses: dict[str, list] = {}  # an experiment's runs of each loss: a colour each
    for name, group in experiments.items():
        for run in group:
            if "test_loss" in epochs[run.path]:
                key = f"{name} ({loss_of(run)} loss)" if several else name
                test_losses.setdefault(key, []).append(epochs[run.path]["test_loss"])
    if len(test_losses) > 1:
        written.append(plot_test_losses(test_losses, outdir / "test_loss.png", ylabel))
    return written


def loss_of(run: Run) -> str:
    """The loss a run trained with, as its config.json names it (categorical by default)."""
    return run.config.get("loss_name", "categorical")


def loss_labels(runs: Sequence[Run]) -> tuple[dict[Path, str], str]:
    """Each run's label and the loss axis's: runs of one loss are labelled by name under an
    axis naming it; runs of several losses, whose values are not comparable, each name theirs
    (`lr_0.5-seed_0, binary loss`) under an axis saying so."""
    losses = sorted({loss_of(run) for run in runs})
    if len(losses) == 1:
        return {run.path: run.name for run in runs}, LOSS_AXES.get(losses[0], f"{losses[0]} loss")
    labels = {run.path: f"{run.name}, {loss_of(run)} loss" for run in runs}
    return labels, f"loss: {' or '.join(losses)}, as each run says (not comparable)"


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
        if args.architectures:
            written += architecture_plots.draw_standard(args.outdir)
    except OSError as error:
        if error.errno is None:  # `plot_logdir`'s own: no runs to plot
            parser.exit(1, f"error: {error}\n")
        parser.exit(
            2,
            f"error: cannot write the figures in {args.outdir} ({error.strerror or error}): give "
            "--outdir a folder that can be written\n",
        )
    print("\n".join(str(path) for path in written))
    return written


if __name__ == "__main__":
    main()
