"""The results as tables a person reads: the tutorial's `evaluate` line per setting, or a
search's members with its choice; printed at the end of a run and by `evaluate`."""

import json
import math
import statistics

import numpy as np

from mnist_jax import sweep
from mnist_jax.results import SHOWN, VAL, Result, Run


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
        stats = [_stat([r.test.get(m) for r in runs]) for m in SHOWN]
        lines.append([*setting, seed_cell, *stats, flag])
    widths = [max(len(str(c)) for c in column) for column in zip(header, *lines, strict=False)]
    out = [f"test ({loss_description(result)}), best first:"]
    out.append("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=False)))
    for line in lines:
        cells = [c.rjust(w) for c, w in zip(line[:-1], widths, strict=False)]
        out.append("  ".join(cells) + line[-1])
    return "\n".join(out + run_figures(result))


def run_figures(result: Result) -> list[str]:
    """A line for each run whose step reports figures of the whole run: `lr_0.5-seed_0:
    dp_epsilon 1.403, dp_delta 1e-05`."""
    lines = []
    for r in result.runs:
        figures = {k: float(v) for k, v in r.final.items() if np.ndim(v) == 0}
        if figures:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in figures.items())
            lines.append(f"{sweep.run_name(r.member)}: {shown}")
    return lines


def search_table(result: Result) -> str:
    """Every member of a search, those that trained longest first (halving's last rungs), then
    by validation accuracy: searched values, epochs and validation figures; the test set's for
    the chosen member only."""
    keys = [k for k in result.swept if k != "seed"] or ["lr"]
    header = [*keys, "seed", "epochs", "val loss", "val acc", "test acc", ""]
    lines = []
    scores = [r.history[-1].values.get(f"{VAL}accuracy") for r in result.runs]
    order = sorted(
        range(len(scores)), key=lambda i: (-len(result.runs[i].history), -_score(scores[i]))
    )
    for i in order:
        r, last = result.runs[i], result.runs[i].history[-1]
        values = {**r.hparams, "lr": r.learning_rate, **(last.hparams or {})}  # PBT's final
        figures = [last.values.get(f"{VAL}{m}") for m in ("loss", "accuracy")]
        test = "—" if r.test_accuracy is None else f"{r.test_accuracy:.4f}"
        flag = "chosen" if i == result.search.run else ("diverged" if r.diverged else "")
        figures = [*map(_figure, figures), test, flag]
        lines.append(
            [*(_cell(values[k]) for k in keys), str(r.seed), str(len(r.history)), *figures]
        )
    widths = [max(len(c) for c in column) for column in zip(header, *lines, strict=True)]
    out = [f"{result.search.strategy} search, validation ({loss_description(result)}), best first:"]
    out += ["  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)).rstrip()
            for line in [header, *lines]]  # fmt: skip
    out.append(f"chosen: {result.search.command}")
    return "\n".join(out)


def _score(value: float | None) -> float:
    return value if value is not None and math.isfinite(value) else -math.inf


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def loss_description(result: Result) -> str:
    """The loss and its settings that are the same for every run: `categorical loss,
    label_smoothing=0.1, l2=0`; swept ones are the table's columns."""
    configs = [r.member.config for r in result.runs] or [result.config]
    names = {c.loss_name for c in configs}
    if len(names) > 1:
        return "losses as the loss column says"
    shared = {k: v for k, v in configs[0].loss.items() if all(c.loss.get(k) == v for c in configs)}
    return ", ".join([f"{names.pop()} loss", *(f"{k}={_cell(v)}" for k, v in shared.items())])


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return json.dumps(value).replace(" ", "")
    return str(value)


def _mean_accuracy(runs: list[Run]) -> float:
    values = [r.test_accuracy for r in runs if not r.diverged and r.test_accuracy is not None]
    return statistics.fmean(values) if values else -1.0


def _stat(values: list[float | None]) -> str:
    """One figure, or the mean ± std over seeds; "—" where none was measured (a search stopped
    before its choice reads no test set)."""
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"
