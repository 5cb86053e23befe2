"""The reproduction report: every MNIST experiment in the tutorial's exact setting and corrected,
seeds 0, 1 and 2, against the tutorial's and the lab's own numbers, written as markdown.

    python -m experiments.report [--quick] [--out FILE] [--data-dir DIR] [--logdir DIR]

The tutorial's setting is each config's `tutorial_setting()` (raw pixels, binary cross-entropy,
its optimizer and rate); corrected is the config as it stands (pixels / 255, categorical
cross-entropy). The three seeds of a setting train together as one compiled sweep. `--quick`
trains a few steps per run so CI can check the whole pipeline; its numbers mean nothing, so it
writes REPORT.quick.md (git-ignored), not the committed REPORT.md, unless `--out` is given, and
its logs go to a temporary folder removed at the end, not among real runs' logs in `logs/`
(`--logdir` keeps them where it says).
The report names no absolute path of the machine it ran on: the command it prints leaves out
`--data-dir` (where this machine keeps MNIST) and shows an absolute `--out` or `--logdir` as
OUT or LOGDIR.
Every figure and verdict in the file is computed from the runs; `render` and the functions it
calls are pure, so they are tested on hand-made runs.
"""

import argparse
import dataclasses
import datetime
import importlib
import math
import os
import platform
import shlex
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import jax

from experiments import MNIST_EXPERIMENTS
from mnist_jax import experiment, files, losses
from mnist_jax.config import Config

SETTINGS = ("tutorial", "corrected")
SEEDS = (0, 1, 2)
SEED_SWEEP = f"seed={','.join(map(str, SEEDS))}"
QUICK_STEPS = 3
OUTPUTS = 10  # MNIST classes: the outputs binary accuracy averages over
OUT = "REPORT.md"  # the committed report
# Beside OUT in the current directory, so a smoke run is easy to find, and git-ignored, so its
# meaningless numbers never replace the committed report or get committed by accident.
QUICK_OUT = "REPORT.quick.md"
LOGDIR = "logs/report"  # the full report's; a quick one keeps its logs only with --logdir

# The tutorial's `model.evaluate` "acc": binary accuracy, as Keras named it under a binary loss.
TUTORIAL_ACC = {
    "softmax": 0.9439,
    "five_layer_sigmoid": 0.9874,
    "five_layer_relu": 0.9960,
    "five_layer_relu_dropout": 0.9946,
}
# The lab's reported test accuracies (its five-layer ReLU trained with Adam at LAB_RELU_LR).
LAB_ACC = {
    "softmax": 0.9268,
    "five_layer_sigmoid": 0.9788,
    "five_layer_relu": 0.9825,
    "five_layer_relu_lrdecay": 0.9824,
    "five_layer_relu_lrdecay_dropout": 0.9817,
}
LAB_RELU_LR = 0.003

# (claim, the side the claim favours, the other side), both compared on test accuracy.
ACCURACY_CLAIMS = (
    ("Deeper is better", "five_layer_sigmoid", "softmax"),
    ("ReLU beats sigmoid", "five_layer_relu", "five_layer_sigmoid"),
)
DROPOUT_PAIRS = (
    ("five_layer_relu_dropout", "five_layer_relu"),
    ("five_layer_relu_lrdecay_dropout", "five_layer_relu_lrdecay"),
)
# (key in `overfitting`, label, higher is better)
DROPOUT_MEASURES = (
    ("gap", "train-vs-test loss gap", False),
    ("rise", "test_loss rise from its minimum", False),
    ("test_accuracy", "test accuracy", True),
)


def settings(name: str, quick: bool) -> dict[str, Config]:
    """The experiment's two settings (each trained as one sweep over SEEDS); a few steps if
    `quick`."""
    config = importlib.import_module(f"experiments.{name}").CONFIG
    if quick:
        config = dataclasses.replace(config, epochs=None, steps=QUICK_STEPS)
    return {"tutorial": config.tutorial_setting(), "corrected": config}


def run_all(quick: bool, data_dir: str | None, logdir: str) -> dict[str, dict[str, dict]]:
    """`results[experiment][setting]`: that sweep's result, as its JSON report has it."""
    results = {}
    for name in MNIST_EXPERIMENTS:
        results[name] = {}
        for setting, config in settings(name, quick).items():
            print(f"== {name}, {setting} setting", flush=True)
            result = experiment.train_and_evaluate(
                config, [SEED_SWEEP], data_dir=data_dir, logdir=os.path.join(logdir, setting)
            )
            results[name][setting] = result.to_json()
    return results


# Pure from here on: numbers to text.


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and the sample standard deviation (n - 1), the spread over seeds."""
    return statistics.mean(values), statistics.stdev(values)


def pm(values: list[float]) -> str:
    mean, std = mean_std(values)
    return f"{mean:.4f} ± {std:.4f}"


def column(report: dict, key: str) -> list[float]:
    return [run[key] for run in report["runs"]]


def cell(report: dict, key: str) -> str:
    """Mean ± std of a test figure over seeds, flagging seeds whose loss went non-finite and
    seeds that ended at chance, either of which makes the spread meaningless."""
    total = len(report["runs"])
    counts = {
        "diverged": sum(run["diverged"] for run in report["runs"]),
        "at chance": len(stuck(report)),
    }
    flags = "".join(f" ({n}/{total} {what})" for what, n in counts.items() if n)
    return pm(column(report, key)) + flags


def reported(table: dict[str, float], name: str) -> str:
    return f"{table[name]:.4f}" if name in table else "—"


def results_table(results: dict[str, dict[str, dict]]) -> str:
    header = (
        "| experiment | tutorial's reported `acc` | ours, tutorial's setting: binary accuracy "
        "| ours, tutorial's setting: accuracy | ours, corrected: accuracy "
        "| lab's reported accuracy |"
    )
    lines = [header, "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, by_setting in results.items():
        lab = reported(LAB_ACC, name) + (" ¹" if name == "five_layer_relu" else "")
        lines.append(
            f"| `{name}` | {reported(TUTORIAL_ACC, name)} "
            f"| {cell(by_setting['tutorial'], 'test_binary_accuracy')} "
            f"| {cell(by_setting['tutorial'], 'test_accuracy')} "
            f"| {cell(by_setting['corrected'], 'test_accuracy')} | {lab} |"
        )
    return "\n".join(lines)


def schedule_text(config: dict) -> str:
    """E.g. `adam 0.001, 30 epochs` or `adam lab_decay from 0.003, 10000 steps`."""
    lr = config["lr"]
    schedule = config["schedule_name"]
    rate = f"{lr:g}" if schedule == "constant" else f"{schedule} from {lr:g}"
    length = f"{config['epochs']} epochs" if config["steps"] is None else f"{config['steps']} steps"
    return f"{config['optimizer_name']} {rate}, {length}"


def settings_lines(results: dict[str, dict[str, dict]]) -> list[str]:
    """Per experiment, what each setting trained and how long its sweep took."""
    lines = []
    for name, by_setting in results.items():
        parts = [
            f"{setting}: {schedule_text(report['config'])} "
            f"({report['runs'][0]['train_seconds']:.0f} s)"
            for setting, report in by_setting.items()
        ]
        lines.append(f"- `{name}`: " + "; ".join(parts))
    return lines


def predicted_binary_accuracy(accuracy: float) -> float:
    """Binary accuracy if every wrong argmax costs 2 of the outputs and every right one none."""
    return 1 - 2 * (1 - accuracy) / OUTPUTS


def outputs_wrong_per_error(accuracy: float, binary_accuracy: float) -> float:
    """Wrong outputs per misclassified image, were all of them due to the misclassified ones."""
    return OUTPUTS * (1 - binary_accuracy) / (1 - accuracy)


def accuracy_from_binary(binary_accuracy: float) -> float:
    """The inverse of `predicted_binary_accuracy`: the accuracy a binary figure stands for."""
    return 1 - OUTPUTS * (1 - binary_accuracy) / 2


def stuck(report: dict) -> list[dict]:
    """Runs that ended below twice chance: they learned nothing that shows."""
    return [run for run in report["runs"] if run["test_accuracy"] < 2 / OUTPUTS]


def saturated_loss() -> float:
    """Binary cross-entropy of a softmax saturated on one class at Keras's clip, over images of
    every class equally: a wrong image costs ln(1/eps) on its true output and on the chosen one."""
    return (1 - 1 / OUTPUTS) * 2 * -math.log(losses.KERAS_EPSILON) / OUTPUTS


def stuck_lines(results: dict[str, dict[str, dict]]) -> list[str]:
    lines = []
    for name, by_setting in results.items():
        for setting, report in by_setting.items():
            runs = stuck(report)
            if runs:
                seeds = ", ".join(str(r["seed"]) for r in runs)
                accuracies = ", ".join(f"{r['test_accuracy']:.4f}" for r in runs)
                final_losses = ", ".join(f"{r['epochs'][-1]['loss']:.4f}" for r in runs)
                lines.append(
                    f"- `{name}`, {setting}: seed{'s' * (len(runs) > 1)} {seeds} of "
                    f"{len(report['runs'])} ended at chance, test accuracy {accuracies}; "
                    f"{report['config']['loss']} training loss in the last epoch {final_losses}."
                )
    return lines


def inflation_lines(results: dict[str, dict[str, dict]]) -> list[str]:
    """The 2-of-10 arithmetic on our tutorial-setting means; the tutorial's figures read back."""
    lines = []
    for name, by_setting in results.items():
        acc = statistics.mean(column(by_setting["tutorial"], "test_accuracy"))
        binary = statistics.mean(column(by_setting["tutorial"], "test_binary_accuracy"))
        lines.append(
            f"- `{name}`: accuracy {acc:.4f}, so 1 − 2·{1 - acc:.4f}/{OUTPUTS} = "
            f"{predicted_binary_accuracy(acc):.4f} predicted; measured {binary:.4f} "
            f"({outputs_wrong_per_error(acc, binary):.2f} wrong outputs per misclassified image)."
        )
    back = ", ".join(
        f"`{name}` {acc:.4f} → {accuracy_from_binary(acc):.3f} (ours: "
        f"{statistics.mean(column(results[name]['tutorial'], 'test_accuracy')):.4f})"
        for name, acc in TUTORIAL_ACC.items()
    )
    lines.append(
        f"\nRead back the same way, 1 − {OUTPUTS}·(1 − binary accuracy)/2, the tutorial's figures "
        f"stand for accuracies of about {back}, ours being the mean accuracy in its setting."
    )
    return lines


def verdict(favoured: list[float], other: list[float], higher_is_better: bool) -> str:
    """`holds` when every seed of the favoured side beats every seed of the other, `fails` when
    every one loses, else `within seed noise`: with 3 seeds a side, ranks are all we can trust."""
    sign = 1 if higher_is_better else -1
    better = [sign * v for v in favoured]
    worse = [sign * v for v in other]
    if min(better) > max(worse):
        return "holds"
    if max(better) < min(worse):
        return "fails"
    return "within seed noise"


def comparison(favoured: list[float], other: list[float], higher_is_better: bool) -> str:
    """E.g. `0.9800 ± 0.0010 vs 0.9700 ± 0.0020 (+0.0100, **holds**)`."""
    difference = statistics.mean(favoured) - statistics.mean(other)
    return (
        f"{pm(favoured)} vs {pm(other)} ({difference:+.4f}, "
        f"**{verdict(favoured, other, higher_is_better)}**)"
    )


def overfitting(run: dict) -> dict[str, float]:
    """The tutorial's signs of overfitting at the last epoch: test loss above training loss, and
    test loss climbed back from its best epoch; with the test accuracy to weigh them against."""
    test_losses = [e["test_loss"] for e in run["epochs"]]
    last = run["epochs"][-1]
    return {
        "gap": last["test_loss"] - last["loss"],
        "rise": test_losses[-1] - min(test_losses),
        "test_accuracy": run["test_accuracy"],
    }


def stuck_note(*reports: dict) -> str:
    count = sum(len(stuck(report)) for report in reports)
    return f" {count} of these runs ended at chance (see above)." if count else ""


def accuracy_claim_lines(results: dict[str, dict[str, dict]]) -> list[str]:
    lines = []
    for claim, favoured, other in ACCURACY_CLAIMS:
        lines.append(f"**“{claim}”**: `{favoured}` vs `{other}`, test accuracy.\n")
        for setting in SETTINGS:
            fav, oth = results[favoured][setting], results[other][setting]
            lines.append(
                f"- {setting} (`{favoured}` {schedule_text(fav['config'])}; `{other}` "
                f"{schedule_text(oth['config'])}): "
                + comparison(column(fav, "test_accuracy"), column(oth, "test_accuracy"), True)
                + stuck_note(fav, oth)
            )
        lines.append("")
    return lines


def dropout_claim_lines(results: dict[str, dict[str, dict]]) -> list[str]:
    lines = [
        "**“Dropout fixes overfitting”**: with dropout vs without; a smaller gap and a smaller "
        "rise mean less overfitting. The verdict after each setting is the claim's: it holds "
        "when both shrink, and is `mixed` when the two measures disagree.\n"
    ]
    for with_dropout, without in DROPOUT_PAIRS:
        for setting in SETTINGS:
            measured = {
                side: [overfitting(run) for run in results[side][setting]["runs"]]
                for side in (with_dropout, without)
            }
            parts, verdicts = [], []
            for key, label, higher in DROPOUT_MEASURES:
                fav = [m[key] for m in measured[with_dropout]]
                oth = [m[key] for m in measured[without]]
                parts.append(f"{label} {comparison(fav, oth, higher)}")
                verdicts.append(verdict(fav, oth, higher))
            gap, rise = verdicts[:2]
            overall = gap if gap == rise else "mixed"
            lines.append(
                f"- `{with_dropout}` vs `{without}`, {setting}: {overall}. "
                + "; ".join(parts)
                + "."
                + stuck_note(results[with_dropout][setting], results[without][setting])
            )
    return lines


def render(results: dict[str, dict[str, dict]], meta: dict) -> str:
    """The whole report. `meta`: command, date, host, device, commit, jax, seconds, logdir,
    quick."""
    quick = (
        [
            f"> **Quick smoke run (`--quick`, {QUICK_STEPS} training steps per run): these "
            "numbers mean nothing.** It only checks that the report runs end to end; run "
            "without `--quick` for the real one.\n"
        ]
        if meta["quick"]
        else []
    )
    seeds = ", ".join(str(s) for s in SEEDS)
    stuck_runs = stuck_lines(results)
    stuck_section = (
        [
            "## Runs that learned nothing\n",
            f"Seeds whose test accuracy ended below twice chance (2/{OUTPUTS}):\n",
            *stuck_runs,
            "",
            "For comparison, a softmax saturated on one class at Keras's clip (ε = "
            f"{losses.KERAS_EPSILON:g}) has a binary cross-entropy of (1 − 1/{OUTPUTS})·2·ln(1/ε)"
            f"/{OUTPUTS} = {saturated_loss():.4f} over balanced classes, and the clip passes it "
            "no gradient, so such a run never recovers.\n",
        ]
        if stuck_runs
        else []
    )
    return "\n".join(
        [
            "# Reproduction report\n",
            *quick,
            f"Produced by `{meta['command']}` on {meta['date']}, host `{meta['host']}` "
            f"({meta['device']}), commit {meta['commit']}, jax {meta['jax']}, in "
            f"{meta['seconds'] / 60:.1f} min; "
            + (
                f"TensorBoard logs under `{meta['logdir']}/{{tutorial,corrected}}/`.\n"
                if meta["logdir"]
                else "its TensorBoard logs were not kept.\n"
            ),
            "Every experiment ran in two settings, each for seeds "
            f"{seeds} trained together as one compiled sweep. **Tutorial's setting**: raw pixels "
            "0–255, binary cross-entropy over the 10 softmax outputs, the tutorial's optimizer "
            "and rate. **Corrected**: pixels / 255, categorical cross-entropy, this project's "
            "default rate. Figures are on the test split after the last epoch; ± is the "
            "standard deviation over the seeds (n − 1). Batch 100 throughout; times are for "
            "each sweep of three:\n",
            *settings_lines(results),
            "",
            results_table(results),
            "",
            "The tutorial's `acc` is Keras's binary accuracy (its loss was binary "
            "cross-entropy), so it compares with our binary-accuracy column, not with "
            "accuracy. — : not reported (the decay experiments are the lab's, not the "
            "tutorial's; the lab has no five-layer ReLU with dropout but without decay).  ",
            f"¹ The lab trained its five-layer ReLU with Adam {LAB_RELU_LR:g}; ours uses the "
            "tutorial's "
            f"{results['five_layer_relu']['corrected']['config']['lr']:g}.\n",
            *stuck_section,
            "## Why binary accuracy inflates the figure\n",
            f"Binary accuracy is the mean over all {OUTPUTS} outputs of round(p) = y. The softmax "
            "outputs sum to 1, so at most one of them exceeds 0.5. A wrong argmax means the true "
            "class has p ≤ 0.5: its output rounds to 0 where the target is 1, one output wrong. "
            "When the wrongly chosen class has p > 0.5 it rounds to 1, a second. The other "
            f"outputs round to 0 and match. So an error rate e costs about 2e/{OUTPUTS}, and "
            f"binary accuracy ≈ 1 − 2·(1 − accuracy)/{OUTPUTS}: a 92 % classifier scores about "
            f"{predicted_binary_accuracy(0.92):.3f}. Our tutorial-setting means:\n",
            *inflation_lines(results),
            "",
            "## The tutorial's claims, checked\n",
            "A claim **holds** when all three seeds of the side it favours beat all three of "
            "the other, **fails** when all three lose, and is otherwise **within seed noise**. "
            "Differences are of the means. Losses are binary cross-entropy in the tutorial's "
            "setting and categorical when corrected, so compare them only within a setting. The "
            "training loss is the mean over the last epoch's batches, with dropout on for the "
            "dropout models, which shrinks their gap by itself.\n",
            *accuracy_claim_lines(results),
            *dropout_claim_lines(results),
            "",
        ]
    )


def git_commit() -> str:
    """The checkout's commit, flagged when the library or experiments differ from it."""
    repo = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        changes = git(
            "status", "--porcelain", "--untracked-files=no", "--", "mnist_jax", "experiments"
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" with uncommitted changes" if changes else "")


def shown_path(path: str, placeholder: str) -> str:
    """`path` as given when relative; an absolute one names this machine's layout, so
    `placeholder` stands for it."""
    return placeholder if os.path.isabs(os.path.expanduser(path)) else path


def command_text(args: argparse.Namespace) -> str:
    """The command as the report prints it, rebuilt from the parsed flags (so `--data=/x` and
    `--data-dir /x` read alike): no `--data-dir`, which only says where this machine keeps
    MNIST, and absolute paths as placeholders."""
    words = ["--quick"] if args.quick else []
    if args.out is not None:
        words += ["--out", shown_path(args.out, "OUT")]
    if args.logdir not in (None, default_logdir(args.quick)):
        words += ["--logdir", shown_path(args.logdir, "LOGDIR")]
    return " ".join(["python -m experiments.report", *map(shlex.quote, words)])


def default_logdir(quick: bool) -> str | None:
    """Where the runs log without `--logdir`: LOGDIR, or nowhere kept for a quick report."""
    return None if quick else LOGDIR


def metadata(args: argparse.Namespace, seconds: float) -> dict:
    """The run's provenance for `render`: no absolute path of this machine in any of it."""
    logdir = args.logdir or default_logdir(args.quick)
    device = jax.devices()[0]
    return {
        "command": command_text(args),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(),
        "device": f"{jax.device_count()} × {device.device_kind}, {os.cpu_count()} CPU cores",
        "jax": jax.__version__,
        "commit": git_commit(),
        "seconds": seconds,
        "logdir": logdir and shown_path(logdir, "LOGDIR"),
        "quick": args.quick,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m experiments.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="a few steps per run: a smoke test")
    p.add_argument("--out", help=f"default {OUT}, or {QUICK_OUT} with --quick")
    p.add_argument("--data-dir", help="tfds data dir (default: $TFDS_DATA_DIR or tfds' own)")
    p.add_argument(
        "--logdir", help=f"default {LOGDIR}; with --quick, a temporary folder removed at the end"
    )
    args = p.parse_args(argv)
    out = args.out or (QUICK_OUT if args.quick else OUT)
    if why := files.destination_problem(out):  # refused now, not after the long run
        p.exit(2, f"{p.prog}: error: --out {out}: {why}\n")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mnist_jax-quick-report-") as scratch:
        logdir = args.logdir or default_logdir(args.quick) or scratch
        results = run_all(args.quick, args.data_dir, logdir)
    kept = "" if logdir == scratch else f"; the runs' logs are in {logdir}"
    try:
        files.write_atomic(out, render(results, metadata(args, time.perf_counter() - start)))
    except files.WriteError as error:
        p.exit(1, f"{p.prog}: stopped: {error}{kept}\n")
    if args.quick:
        print(
            f"wrote the quick smoke report (its numbers mean nothing) to {Path(out).resolve()}"
            + (kept or "; its logs were not kept (--logdir DIR keeps them)")
        )
    else:
        print(f"wrote the report to {Path(out).resolve()}{kept}")


if __name__ == "__main__":
    main()
