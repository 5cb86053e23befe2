"""What `evaluate --ensemble` and `evaluate --attack` add to a checkpoint's test figures: each
member's and the ensemble's accuracy, `nll` and `ece`, and each member's accuracy on test images
an attack (`attacks`) perturbed by at most epsilon per pixel."""

import argparse
import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mnist_jax import attacks, metrics, sweep, trained
from mnist_jax.spec import TrainSpec

EPSILONS = (0.05, 0.1, 0.2)
ATTACK_BATCH = 1000  # test images attacked at once: a CNN's gradients stay small


def epsilons(text: str) -> tuple[float, ...]:
    """`--epsilon 0.05,0.1,0.2`: positive budgets."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers like 0.05,0.1, got {text!r}")
    return values


@dataclasses.dataclass(frozen=True)
class Figures:
    accuracy: float
    nll: float
    ece: float


@dataclasses.dataclass(frozen=True)
class Ensemble:
    members: list[Figures]  # each member's, from its own probabilities
    mean: Figures  # of the members' mean probability


@dataclasses.dataclass(frozen=True)
class Attack:
    method: str
    epsilons: tuple[float, ...]
    steps: int  # gradient steps (1 for FGSM)
    step_size: str  # as a formula of epsilon
    ranges: list[tuple[float, float]]  # each member's pixel range, clipped to
    clean: list[float]  # each member's test accuracy without attack
    accuracy: list[list[float]]  # [member][epsilon]


@dataclasses.dataclass
class Report:
    """The JSON report of `evaluate`: the runs' record, and what was asked beyond."""

    runs: dict[str, Any]  # `Result.to_json()`
    ensemble: Ensemble | None = None
    attack: Attack | None = None

    def to_json(self) -> dict[str, Any]:
        extra = {k: dataclasses.asdict(v) for k, v in vars(self).items() if k != "runs" and v}
        return self.runs | extra

    def tables(self, found) -> list[str]:
        names = [sweep.run_name(r.member) for r in found.result.runs]
        numbers = [str(m.index) for m in found.members]
        tables = []
        if self.ensemble is not None:
            each = zip(names, self.ensemble.members, strict=True)
            rows = [[i, name, *_cells(f)] for i, (name, f) in zip(numbers, each, strict=True)]
            rows.append(["", f"ensemble (mean of {len(names)})", *_cells(self.ensemble.mean)])
            head = ["member", "run", "accuracy", "nll", "ece"]
            tables.append("ensemble, test set:\n" + _table(head, rows))
        if self.attack is not None:
            a = self.attack
            each = zip(numbers, names, a.clean, a.accuracy, strict=True)
            rows = [[i, n, f"{c:.4f}", *(f"{v:.4f}" for v in accs)] for i, n, c, accs in each]
            head = ["member", "run", "clean", *(f"eps {e:g}" for e in a.epsilons)]
            how = f"{a.steps} step(s) of {a.step_size}" if a.method == "pgd" else "one step"
            scale = ", ".join(sorted({f"{lo:g}..{hi:g}" for lo, hi in a.ranges}))
            title = f"accuracy under {a.method} ({how}; epsilon in the pixel scale {scale}):"
            tables.append(title + "\n" + _table(head, rows))
        return tables


def _cells(f: Figures) -> list[str]:
    return [f"{f.accuracy:.4f}", f"{f.nll:.4f}", f"{f.ece:.4f}"]


def _table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    return "\n".join(lines)


def ensemble_figures(found, dataset: str | None) -> Ensemble:
    """Each member's figures and those of the members' mean probability, on the test set (all
    members of one dataset; each member's inputs scaled as it trained)."""
    trained.shared({m.config.dataset for m in found.members})
    probabilities, labels_N = [], None
    for member in found.members:
        x_NxHxWxC, y_NxK = found.test_set(member, dataset)
        probabilities.append(jax.nn.softmax(member.logits(x_NxHxWxC)))
        labels_N = jnp.asarray(y_NxK).argmax(-1)
    each = [_figures(metrics.of_probabilities(p, labels_N)) for p in probabilities]
    mean = _figures(metrics.of_probabilities(jnp.mean(jnp.stack(probabilities), 0), labels_N))
    return Ensemble(each, mean)


def _figures(values: dict[str, jax.Array]) -> Figures:
    return Figures(**{k: float(v) for k, v in values.items()})


def pixel_range(config, x_NxHxWxC: np.ndarray) -> tuple[float, float]:
    """The scale the model sees: 0..1, 0..255 with raw pixels, widened to a float dataset's
    own values."""
    high = 255.0 if config.raw_pixels else 1.0
    return min(0.0, float(x_NxHxWxC.min())), max(high, float(x_NxHxWxC.max()))


def attack_figures(found, dataset: str | None, method: str, epsilons_E) -> Attack:
    """Each member's accuracy on its test set attacked at each epsilon (the attack ascends the
    plain cross-entropy of its logits)."""
    clean, accuracy, ranges = [], [], []
    for member in found.members:
        x_NxHxWxC, y_NxK = found.test_set(member, dataset)
        low, high = pixel_range(member.config, x_NxHxWxC)
        ranges.append((low, high))
        clean.append(attacked_accuracy(member, x_NxHxWxC, y_NxK, method, 0.0, low, high))
        accuracy.append(
            [attacked_accuracy(member, x_NxHxWxC, y_NxK, method, e, low, high) for e in epsilons_E]
        )
    steps = attacks.PGD_STEPS if method == "pgd" else 1
    size = f"{attacks.PGD_STEP_FRACTION:g} * epsilon / {steps}" if method == "pgd" else "epsilon"
    return Attack(method, tuple(epsilons_E), steps, size, ranges, clean, accuracy)


def attacked_accuracy(member, x_NxHxWxC, y_NxK, method, epsilon, low, high) -> float:
    """The member's accuracy on the test set attacked at `epsilon` (0: the clean images)."""
    correct = 0
    for first in range(0, len(x_NxHxWxC), ATTACK_BATCH):
        batch = slice(first, first + ATTACK_BATCH)
        correct += int(
            _correct(member.spec, method, member.params, member.floats, x_NxHxWxC[batch],
                     y_NxK[batch], jnp.float32(epsilon), low, high)
        )  # fmt: skip
    return correct / len(x_NxHxWxC)


@functools.partial(jax.jit, static_argnames=("spec", "method"))
def _correct(spec: TrainSpec, method, params, floats, x_BxHxWxC, y_BxK, epsilon, low, high):
    def logits(x):
        return trained.logits_of(spec, params, floats, x)

    def loss_of_x(x):
        return optax.softmax_cross_entropy(logits(x), y_BxK).sum()

    x_adv = attacks.ATTACKS[method](loss_of_x, x_BxHxWxC, epsilon, low, high)
    return (logits(x_adv).argmax(-1) == y_BxK.argmax(-1)).sum()
