"""The report as markdown, from the runs and the run's provenance: pure, so it is tested on
hand-made runs."""

import statistics

from experiments.report import QUICK_STEPS, SEEDS, claims
from experiments.report.figures import (
    OUTPUTS,
    accuracy_from_binary,
    column,
    outputs_wrong_per_error,
    pm,
    predicted_binary_accuracy,
    saturated_loss,
    schedule_text,
    stuck,
)
from mnist_jax import losses

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


def setting_cell(by_setting: dict[str, dict], setting: str, key: str) -> str:
    """`cell` of that setting's sweep; — where it did not run (a report stopped part-way)."""
    return cell(by_setting[setting], key) if setting in by_setting else "—"


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
            f"| {setting_cell(by_setting, 'tutorial', 'test_binary_accuracy')} "
            f"| {setting_cell(by_setting, 'tutorial', 'test_accuracy')} "
            f"| {setting_cell(by_setting, 'corrected', 'test_accuracy')} | {lab} |"
        )
    return "\n".join(lines)


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


def quick_lines(meta: dict) -> list[str]:
    if not meta["quick"]:
        return []
    return [
        f"> **Quick smoke run (`--quick`, {QUICK_STEPS} training steps per run): these "
        "numbers mean nothing.** It only checks that the report runs end to end; run "
        "without `--quick` for the real one.\n"
    ]


def provenance(meta: dict) -> str:
    return (
        f"Produced by `{meta['command']}` on {meta['date']}, host `{meta['host']}` "
        f"({meta['device']}), commit {meta['commit']}, jax {meta['jax']}, in "
        f"{meta['seconds'] / 60:.1f} min; "
        + (
            f"TensorBoard logs under `{meta['logdir']}/{{tutorial,corrected}}/`.\n"
            if meta["logdir"]
            else "its TensorBoard logs were not kept.\n"
        )
    )


def render_partial(results: dict[str, dict[str, dict]], meta: dict) -> str:
    """The sweeps that finished before a signal stopped the report (`meta["partial"]` says
    which signal, after how many): their table only, since the claims and the arithmetic
    compare experiments that did not all run."""
    return "\n".join(
        [
            "# Reproduction report (partial)\n",
            f"> **Partial: stopped by {meta['partial']}.** Only the sweeps that finished are "
            "here; — marks one that did not run. The claims and the binary-accuracy arithmetic "
            "need every experiment: run the report again for them.\n",
            *quick_lines(meta),
            provenance(meta),
            *settings_lines(results),
            "",
            results_table(results),
            "",
        ]
    )


def render(results: dict[str, dict[str, dict]], meta: dict) -> str:
    """The whole report. `meta`: command, date, host, device, commit, jax, seconds, logdir,
    quick."""
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
            *quick_lines(meta),
            provenance(meta),
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
            *claims.accuracy_claim_lines(results),
            *claims.dropout_claim_lines(results),
            "",
        ]
    )
