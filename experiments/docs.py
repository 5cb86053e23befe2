"""The documentation's figures and numbers, generated: runs every command the tutorial shows.

    python -m experiments.docs --data-dir D [--logdir DIR]   # runs, figures, results, pages
    python -m experiments.docs --pages-only                  # refills the pages from results

Runs each command of `COMMANDS` in a fresh process exactly as a reader types it (plus
`--data-dir`, `--logdir`, `--json`), draws the figures with `mnist_jax.plots` and
`experiments.activations` into `docs/figures/`, writes every number the pages quote to
`docs/results.json` (with the host's CPU, the package versions and the commit), then fills the
pages' markers from it (`experiments.docs_pages`).

Measured: 5.3 and 6.6 min on a shared 2-core Intel Xeon, every figure and number the same in
both runs (timings aside).
"""

import argparse
import contextlib
import dataclasses
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from experiments.docs_pages import ROOT, fill_pages

DOCS = ROOT / "docs"
FIGURES = DOCS / "figures"
RESULTS = DOCS / "results.json"
PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy", "tensorflow-datasets", "tensorboard")
PEER = "relu"  # timings are given as ratios to this command's epoch, measured in the same run


@dataclasses.dataclass(frozen=True)
class Command:
    """One command a page shows: `python -m` and `argv`, its results under `key`."""

    key: str
    argv: tuple[str, ...]

    @property
    def shown(self) -> str:
        return "python -m " + " ".join(self.argv)


# The tutorial's lessons in its order; a comparison changes one thing (same rate and length).
COMMANDS = (
    Command("softmax", ("experiments.softmax",)),
    Command("sigmoid", ("experiments.five_layer_sigmoid",)),
    Command("sigmoid_relu", ("experiments.five_layer_sigmoid", "model.activation=relu")),
    Command("relu", ("experiments.five_layer_relu",)),
    Command(
        "relu_lr", ("experiments.five_layer_relu", "--lr", "1e-4,1e-3,1e-2,1e-1", "--epochs", "10")
    ),
    Command("lrdecay", ("experiments.five_layer_relu_lrdecay",)),
    Command("lrdecay_constant", ("experiments.five_layer_relu_lrdecay", "schedule=constant")),
    Command("relu_dropout", ("experiments.five_layer_relu_dropout",)),
    Command("lrdecay_dropout", ("experiments.five_layer_relu_lrdecay_dropout",)),
)


# ---- running ----------------------------------------------------------------------------------


def run_command(command: Command, data_dir: str, logdir: Path) -> dict[str, Any]:
    """Runs `command` in a fresh process; its JSON result and the process's wall seconds."""
    json_path = logdir / f"{command.key}.json"
    argv = [*command.argv, "--data-dir", data_dir, "--logdir", str(logdir / command.key)]
    argv += ["--json", str(json_path), "--quiet"]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode:
        sys.exit(f"{command.shown} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(json_path.read_text())
    result["wall_seconds"] = time.perf_counter() - start
    return result


def summarise_run(run: dict[str, Any]) -> dict[str, Any]:
    """What a page quotes of one trained member."""
    epochs = run["epochs"]
    test_losses = [e["test_loss"] for e in epochs]
    train_loss = epochs[-1]["loss"]
    if run["diverged"] or None in test_losses:  # a diverged member's figures are not numbers
        return {"hparams": run["hparams"], "lr": run["learning_rate"], "diverged": True,
                "test_accuracy": None, "run": run["run"], "epochs": len(epochs)}  # fmt: skip
    return {
        "hparams": run["hparams"],
        "lr": run["learning_rate"],
        "test_accuracy": run["test_accuracy"],
        "test_binary_accuracy": run["test_binary_accuracy"],
        "test_loss": run["test_loss"],
        "train_loss": train_loss,
        "first_epoch_loss": epochs[0]["loss"],
        "loss_gap": run["test_loss"] - train_loss,
        "min_test_loss": min(test_losses),
        "min_test_loss_epoch": 1 + test_losses.index(min(test_losses)),
        "test_loss_rise": run["test_loss"] - min(test_losses),
        "last_learning_rate": epochs[-1]["learning_rate"],
        "epochs": len(epochs),
        "epoch_seconds": statistics.median(e["seconds"] for e in epochs[1:] or epochs),
        "run": run["run"],
        "diverged": False,
    }


def summarise(command: Command, result: dict[str, Any]) -> dict[str, Any]:
    """A command's record: each member (`runs`), the best, and the first's figures
    also at the top level, so a single run reads `softmax.test_accuracy`."""
    runs = [summarise_run(r) for r in result["runs"]]  # in the command's order
    best = max(runs, key=lambda r: r["test_accuracy"] if r["test_accuracy"] is not None else -1)
    steps = result["config"].get("steps")
    return {
        **runs[0],
        "command": command.shown,
        "experiment": result["experiment"],
        "steps": steps,
        "runs": runs,
        "best": best,
        "wall_seconds": result["wall_seconds"],
    }


def machine() -> dict[str, Any]:
    """The host, the packages and the commit the numbers came from."""
    cpuinfo = Path("/proc/cpuinfo")
    names = re.findall(r"model name\s*:\s*(.+)", cpuinfo.read_text()) if cpuinfo.exists() else []
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "mnist_jax", "experiments"],
                           capture_output=True, text=True).stdout  # fmt: skip
    return {
        "cpu": names[0].strip() if names else platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": {name: metadata.version(name) for name in PACKAGES},
        "commit": commit.strip(),
        "uncommitted_changes": bool(dirty.strip()),
    }


def activation_numbers() -> dict[str, Any]:
    """The activations lesson's numbers, from the same functions that draw its figures."""
    import flax.linen as nn

    from experiments import activations as act

    points_Nx2, outside_N = act.circle_points(act.SEED)
    separated_N = act.line_separates(act.square_features(points_Nx2), outside_N)
    xy_4x2, z_4 = act.xor_table()
    _, out_4 = act.threshold_network(xy_4x2)
    _, linear_losses_T, linear_accuracy = act.train_xor(nn.Dense(1))
    _, mlp_losses_T, mlp_accuracy = act.train_xor(act.XorMLP())
    return {
        "circle_separated": int(separated_N.sum()),
        "circle_points": int(separated_N.size),
        "threshold_network_correct": int((out_4 == z_4).sum()),
        "xor_steps": act.TRAIN_STEPS,
        "linear_xor_loss": float(linear_losses_T[-1]),
        "linear_xor_accuracy": linear_accuracy,
        "mlp_xor_loss": float(mlp_losses_T[-1]),
        "mlp_xor_accuracy": mlp_accuracy,
        "mlp_hidden": act.MLP_HIDDEN,
        "sigmoid_saturation_edge": act.sigmoid_saturation_edge(),
        "tiny_grad": act.TINY_GRAD,
    }


# ---- figures ----------------------------------------------------------------------------------


def epoch_curves(result: dict[str, Any], run: int = 0) -> dict[str, tuple]:
    """One member's per-epoch train and test loss, as `plots.plot_epoch_losses` takes them."""
    epochs = result["runs"][run]["epochs"]
    steps = [e["epoch"] for e in epochs]
    nan = float("nan")  # a diverged member's missing figures
    return {
        name: (steps, [nan if e[name] is None else e[name] for e in epochs])
        for name in ("loss", "test_loss")
    }


def batch_scalars(logdir: Path, key: str, result: dict[str, Any], run: int = 0) -> dict:
    """Every batch's scalars of one member, read back from its TensorBoard logs."""
    from mnist_jax import plots

    run_dir = logdir / key / result["experiment"] / result["runs"][run]["run"]
    return plots.read_scalars(run_dir / "train")


def draw_lr_decay(decay: dict, constant: dict, path: Path) -> Path:
    """The rate each batch applied and the smoothed batch loss, decayed against constant."""
    from matplotlib.figure import Figure

    from mnist_jax import plots

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_lr, ax_loss = fig.subplots(1, 2)
    for label, scalars in (("constant 0.003", constant), ("lab_decay from 0.003", decay)):
        ax_lr.plot(*scalars["batch_learning_rate"], label=label)
        steps, losses = scalars["batch_loss"]
        ax_loss.plot(steps, plots.smooth(losses, 0.99), label=label)
    ax_lr.set(title="learning rate of every batch", xlabel="batch", ylabel="learning rate")
    ax_loss.set(
        title="training loss of every batch (EMA 0.99)", xlabel="batch", yscale="log",
        ylabel="cross-entropy loss",
    )  # fmt: skip
    for ax in (ax_lr, ax_loss):
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    fig.savefig(path, dpi=100)
    return path


def draw_figures(results: dict, jsons: dict, logdir: Path) -> dict[str, list[str]]:
    """Every figure the pages show, into docs/figures/; {file name: the commands it draws}."""
    from experiments import activations
    from mnist_jax import plots

    FIGURES.mkdir(parents=True, exist_ok=True)
    figures: dict[str, list[str]] = {}

    def epoch_figure(name: str, title: str, curves: dict[str, tuple[str, int]]) -> None:
        runs = {label: epoch_curves(jsons[key], i) for label, (key, i) in curves.items()}
        plots.plot_epoch_losses(runs, FIGURES / name, title)
        figures[name] = sorted({key for key, _ in curves.values()})

    epoch_figure("softmax_loss.png", "softmax: train and test loss", {"softmax": ("softmax", 0)})
    epoch_figure(
        "sigmoid_loss.png", "five layers, sigmoid: train and test loss", {"sigmoid": ("sigmoid", 0)}
    )
    epoch_figure(
        "sigmoid_relu_loss.png",
        "five layers, Adam 0.003, 20 epochs: sigmoid vs ReLU",
        {"sigmoid": ("sigmoid", 0), "relu": ("sigmoid_relu", 0)},
    )
    lr_runs = results["relu_lr"]["runs"]
    lr_points = {"seed 0": [(r["lr"], r["test_accuracy"]) for r in lr_runs]}
    title = "five_layer_relu, 10 epochs: final test accuracy vs lr"
    plots.plot_sweep("lr", lr_points, FIGURES / "lr_sweep.png", title)
    figures["lr_sweep.png"] = ["relu_lr"]
    epoch_figure(
        "lr_loss.png",
        "five_layer_relu, 10 epochs: loss by learning rate",
        {f"lr {r['lr']:g}": ("relu_lr", i) for i, r in enumerate(results["relu_lr"]["runs"])},
    )
    decay = batch_scalars(logdir, "lrdecay", jsons["lrdecay"])
    constant = batch_scalars(logdir, "lrdecay_constant", jsons["lrdecay_constant"])
    draw_lr_decay(decay, constant, FIGURES / "lr_decay.png")
    figures["lr_decay.png"] = ["lrdecay", "lrdecay_constant"]
    epoch_figure(
        "dropout_loss.png",
        "Adam 0.001, 30 epochs: without and with dropout",
        {"five_layer_relu": ("relu", 0), "five_layer_relu_dropout": ("relu_dropout", 0)},
    )
    epoch_figure(
        "lrdecay_dropout_loss.png",
        "lab decay, 10,000 steps: without and with dropout",
        {"lrdecay": ("lrdecay", 0), "lrdecay_dropout": ("lrdecay_dropout", 0)},
    )
    relu_batches = batch_scalars(logdir, "relu", jsons["relu"])["batch_loss"]
    title = "five_layer_relu: the loss of every batch"
    plots.plot_batch_losses({"five_layer_relu": relu_batches}, FIGURES / "batch_loss.png", title)
    figures["batch_loss.png"] = ["relu"]
    for path in plots.draw_standard_architectures(FIGURES):
        figures[path.name] = []
    with contextlib.redirect_stdout(io.StringIO()):
        activations.main(["--outdir", str(FIGURES)])
    for name in ("circle_transform", "xor_hidden_space", "xor_training", "activations"):
        figures[f"{name}.png"] = ["activations"]
    return figures


# ---- main -------------------------------------------------------------------------------------


def generate(data_dir: str, logdir: Path) -> dict[str, Any]:
    """Runs every command and draws every figure; the results file's contents."""
    results: dict[str, Any] = {"machine": machine()}
    jsons = {}
    for command in COMMANDS:
        print(f"running {command.shown}", file=sys.stderr, flush=True)
        jsons[command.key] = run_command(command, data_dir, logdir)
        results[command.key] = summarise(command, jsons[command.key])
    peer = results[PEER]["epoch_seconds"]
    for command in COMMANDS:
        results[command.key]["epoch_ratio"] = results[command.key]["epoch_seconds"] / peer
    results["activations"] = activation_numbers()
    print("drawing the figures", file=sys.stderr, flush=True)
    results["figures"] = draw_figures(results, jsons, logdir)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="the tfds data dir holding MNIST, as for experiments")
    parser.add_argument("--logdir", type=Path, help="keep the runs' logs here (default: removed)")
    parser.add_argument(
        "--pages-only", action="store_true", help="refill the pages from docs/results.json"
    )
    args = parser.parse_args(argv)
    if args.pages_only:
        results = json.loads(RESULTS.read_text())
    else:
        if args.data_dir is None:
            parser.error("--data-dir is required to run the commands (or give --pages-only)")
        start = time.perf_counter()
        with contextlib.ExitStack() as stack:
            logdir = args.logdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
            results = generate(args.data_dir, logdir.resolve())
        results["machine"]["generator_seconds"] = time.perf_counter() - start
        RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        print(f"wrote {RESULTS.relative_to(ROOT)} and {len(results['figures'])} figures")
    for page in fill_pages(results):
        print(f"filled {page.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
