"""The tutorial's claims checked on the runs: deeper is better, ReLU beats sigmoid, dropout fixes
overfitting; each side's seeds ranked against the other's."""

import statistics

from experiments.report import SETTINGS
from experiments.report.figures import column, pm, schedule_text, stuck

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
