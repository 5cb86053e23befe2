"""Every metric declared once, by name: where it is computed and how an epoch reduces it. From
that declaration alone it reaches TensorBoard, the progress line, the JSON, the CSV and HParams.

Where a metric is computed (`Metric.where`, one or more of):
- `BATCH`: at every training step, inside the compiled epoch, from the step's `Observed`.
  TensorBoard's `<run>/train` gets `batch_<name>` at every step and `epoch_<name>`, the
  epoch's reduction (the mean, or the last step's value); the epoch record holds `<name>`.
- `TEST`: on the whole test set after every epoch, dropout off: `<run>/test`'s `epoch_<name>`,
  the epoch record's (and the CSV's and HParams') `test_<name>`.
- `EPOCH`: once an epoch from the trained parameters, inside the compiled epoch: `<name>` in
  `<run>/train` and in the epoch record.
- `END`: on the test set after the last epoch: a vector as scalars `<name>/<i>` in `<run>/test`
  and in the CSV, a matrix as an image in `<run>/test`; both in the run's JSON record.

A metric may read the batch's inputs (`Observed.x_BxHxWxC`) and, when it is registered with
`activations=True`, what the model sows with `self.sow("intermediates", NAME, value)` (the
built-in MLPs sow each hidden layer's activation): `Observed.activations`, Flax's nested dict
of tuples. A metric returns a scalar, or a dict of scalars (one each, `<name>/<key>`:
`weight_norm/dense_1`), or, at the end, an array. Optional metrics are computed only when a
config names them (`metrics=[weight_norm,grad_norm]`); the others always. Adding one, from
any module:

    @metrics.register("logit_norm", where=(metrics.BATCH, metrics.TEST))
    def logit_norm(o: metrics.Observed) -> jax.Array:
        return jnp.linalg.norm(o.logits_BxK, axis=-1).mean()
"""

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mnist_jax.config import ConfigError
from mnist_jax.losses import squared_kernels
from mnist_jax.registry import Registry, importable_name

BATCH, TEST, EPOCH, END = "batch", "test", "epoch", "end"
TEST_PREFIX = "test_"  # the test set's figures in an epoch record, the JSON and the CSV
VAL_PREFIX = "val_"  # the validation split's (`val_split`), evaluated as the test set is
REDUCTIONS = ("mean", "last")
METRICS = Registry("metric")


@dataclasses.dataclass(frozen=True)
class Observed:
    """What a metric reads. At `BATCH` every field is set (`activations` when a metric of the
    run asks for them); at `TEST` and `END` all but `grads` and `learning_rate`; at `EPOCH`
    only `params`."""

    logits_BxK: jax.Array | None = None
    y_BxK: jax.Array | None = None
    loss: jax.Array | None = None  # the config's loss with its settings
    params: Any = None
    grads: Any = None
    learning_rate: jax.Array | None = None  # the rate this step applied
    x_BxHxWxC: jax.Array | None = None  # the inputs, as the model sees them
    activations: Any = None  # what the model sowed, {"layer": {"name": (value,)}}


@dataclasses.dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[Observed], Any]
    where: tuple[str, ...]
    reduce: str = "mean"  # of a `BATCH` metric over an epoch's steps: "mean" or "last"
    optional: bool = False  # computed only when a config's `metrics` names it
    short: str | None = None  # its label in a single run's progress line; None: not shown
    activations: bool = False  # reads `Observed.activations`: the model's forward pass sows


def register(
    name: str,
    *,
    where: Sequence[str],
    reduce: str = "mean",
    optional: bool = False,
    short: str | None = None,
    activations: bool = False,
):
    """`@register("name", where=(BATCH, TEST))` on a function of an `Observed`."""
    if set(where) - {BATCH, TEST, EPOCH, END} or reduce not in REDUCTIONS:
        raise ValueError(f"metric {name!r}: where takes {BATCH}/{TEST}/{EPOCH}/{END}, reduce "
                         f"{'/'.join(REDUCTIONS)}")  # fmt: skip

    def add(fn: Callable[[Observed], Any]) -> Callable[[Observed], Any]:
        metric = Metric(name, fn, tuple(where), reduce, optional, short, activations)
        METRICS.register(name, metric, importable_name(fn.__globals__))
        return fn

    return add


def get(name: str) -> Metric:
    return METRICS.get(name)


def active(chosen: Sequence[str]) -> tuple[str, ...]:
    """The metrics a run computes, in registration order: every one that is not optional, and
    the optional ones `chosen` names."""
    for name in chosen:
        if not get(name).optional:
            optional = ", ".join(n for n in METRICS.entries if get(n).optional)
            raise ConfigError(
                f"metrics: {name!r} is always computed; name the optional ones: {optional}"
            )
    return tuple(n for n in METRICS.entries if not get(n).optional or n in chosen)


def at(names: Sequence[str], where: str) -> tuple[str, ...]:
    """Those of `names` computed at `where`."""
    return tuple(n for n in names if where in get(n).where)


def reads_activations(names: Sequence[str]) -> bool:
    """Whether any of `names` reads the model's sown activations."""
    return any(get(n).activations for n in names)


def compute(names: Sequence[str], observed: Observed) -> dict[str, jax.Array]:
    """Each metric's value, dicts flattened to `<name>/<key>`."""
    values = {}
    for name in names:
        value = get(name).fn(observed)
        if isinstance(value, dict):
            values |= {f"{name}/{k}": v for k, v in value.items()}
        else:
            values[name] = value
    return values


def reduce(values_S: dict[str, np.ndarray]) -> dict[str, float]:
    """An epoch's value of each `BATCH` metric from its per-step values `[S]`."""
    return {
        key: float(steps.mean() if get(key.partition("/")[0]).reduce == "mean" else steps[-1])
        for key, steps in values_S.items()
    }


# The built-in metrics ---------------------------------------------------------------------------


@register("loss", where=(BATCH, TEST), short="loss")
def loss(o: Observed) -> jax.Array:
    return o.loss


@register("accuracy", where=(BATCH, TEST), short="acc")
def accuracy(o: Observed) -> jax.Array:
    """Classification accuracy: the argmax is the true class."""
    return (o.logits_BxK.argmax(-1) == o.y_BxK.argmax(-1)).mean()


@register("binary_accuracy", where=(BATCH, TEST), short="bin_acc")
def binary_accuracy(o: Observed) -> jax.Array:
    """Mean over all K outputs of `round(p) == y`: what Keras 1/2 reported as "acc" with a binary
    loss, and the figure the tutorial quotes. One wrong argmax typically costs 2 of 10 outputs."""
    return (jnp.round(jax.nn.softmax(o.logits_BxK)) == o.y_BxK).mean()


@register("learning_rate", where=(BATCH,), reduce="last")
def learning_rate(o: Observed) -> jax.Array:
    """The rate the step applied (the schedule's value); an epoch's is its last step's."""
    return o.learning_rate


@register("grad_norm", where=(BATCH,), optional=True, short="grad_norm")
def grad_norm(o: Observed) -> jax.Array:
    """The global L2 norm of the step's gradient (of the loss, penalty included)."""
    return optax.tree.norm(o.grads)


@register("weight_norm", where=(EPOCH,), optional=True)
def weight_norm(o: Observed) -> dict[str, jax.Array]:
    """Each layer's kernel L2 norm (`weight_norm/dense_1`), after the epoch."""
    return {
        layer: jnp.sqrt(squared_kernels(p))
        for layer, p in o.params.items()
        if isinstance(p, dict) and "kernel" in p
    }


@register("dead_units", where=(BATCH,), optional=True, activations=True)
def dead_units(o: Observed) -> dict[str, jax.Array]:
    """Each sown hidden layer's fraction of units that output 0 for every example of the batch
    (`dead_units/hidden_1`): dead ReLUs, which no gradient reaches."""
    return {
        layer: jnp.mean(jnp.all(value[0] <= 0, axis=0)) for layer, value in o.activations.items()
    }


def confusion_counts(o: Observed) -> jax.Array:
    """`[K, K]` counts: row the true class, column the predicted one."""
    predicted_BxK = jax.nn.one_hot(o.logits_BxK.argmax(-1), o.logits_BxK.shape[-1])
    return o.y_BxK.T @ predicted_BxK


@register("class_accuracy", where=(END,))
def class_accuracy(o: Observed) -> jax.Array:
    """`[K]`: the test accuracy of each true class (NaN for a class the test set lacks)."""
    counts_KxK = confusion_counts(o)
    return jnp.diag(counts_KxK) / counts_KxK.sum(-1)


@register("confusion_matrix", where=(END,))
def confusion_matrix(o: Observed) -> jax.Array:
    """`[K, K]` test-set counts, row the true class, column the predicted one."""
    return confusion_counts(o).astype(jnp.int32)


@register("nll", where=(TEST,))
def nll(o: Observed) -> jax.Array:
    """Plain softmax cross-entropy, whatever the training loss (label smoothing, L2, binary):
    test figures that compare across loss settings, the one calibration papers report."""
    return optax.softmax_cross_entropy(o.logits_BxK, o.y_BxK).mean()


ECE_BINS = 15  # as Guo et al. (2017) report it


@register("ece", where=(TEST,))
def ece(o: Observed) -> jax.Array:
    """Expected calibration error over `ECE_BINS` equal-width bins of the top probability:
    the mean over examples of |accuracy - confidence| within each example's bin."""
    return expected_calibration_error(jax.nn.softmax(o.logits_BxK), o.y_BxK.argmax(-1))


def expected_calibration_error(p_BxK: jax.Array, labels_B: jax.Array, bins: int = ECE_BINS):
    """ECE of probabilities `p_BxK` for integer labels: bin i holds confidences in
    (i/bins, (i+1)/bins], the first bin 0 too."""
    confidence_B = p_BxK.max(-1)
    correct_B = (p_BxK.argmax(-1) == labels_B).astype(jnp.float32)
    bin_B = jnp.clip(jnp.ceil(confidence_B * bins).astype(jnp.int32) - 1, 0, bins - 1)
    in_bin_BxN = jax.nn.one_hot(bin_B, bins)  # a sum, not a product: exact on every backend
    gap_N = jnp.abs((in_bin_BxN * (correct_B - confidence_B)[:, None]).sum(0))
    return gap_N.sum() / confidence_B.shape[0]


def of_probabilities(p_BxK: jax.Array, labels_B: jax.Array) -> dict[str, jax.Array]:
    """Accuracy, `nll` and `ece` of probabilities rather than logits: an ensemble's mean."""
    p_true_B = jnp.take_along_axis(p_BxK, labels_B[:, None], axis=-1)[:, 0]
    return {
        "accuracy": (p_BxK.argmax(-1) == labels_B).mean(),
        "nll": -jnp.log(jnp.maximum(p_true_B, jnp.finfo(p_BxK.dtype).tiny)).mean(),
        "ece": expected_calibration_error(p_BxK, labels_B),
    }
