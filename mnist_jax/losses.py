"""Losses, registered by name: functions of logits `logits_BxK`, one-hot targets `y_BxK` and,
when they ask for them (a `params` argument), the model's parameters.

A loss's settings are its keyword-only float arguments (`label_smoothing`, `l2`). Those that
differ between a sweep's members are data in the compiled program, one value per member, so
`loss.label_smoothing=0,0.05,0.1` trains in one program; those the members share are constants,
and a term they zero (`is_zero`) is left out of the program. Adding one, from any module:

    @LOSSES.register("hinge")
    def hinge(logits_BxK, y_BxK, *, margin=1.0): ...

The test set's loss is the same function with the same settings, as Keras computes `val_loss`
(with its label smoothing and its weight penalty).
"""

import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from mnist_jax.registry import Registry

LOSSES = Registry("loss", skip=("params",), keyword_only=True)
KERAS_EPSILON = 1e-7


def is_zero(setting) -> bool:
    """Whether a setting is exactly 0 for every member of the compiled group. A loss setting
    the members share arrives as a Python float, a constant of the program (only settings
    that differ between members are data); a term it zeroes is then left out, so the program
    and its numbers are those of a loss without that term, to the bit. A traced 0 still adds
    `0 * term`: exact, but XLA fuses the gradient's products differently."""
    return isinstance(setting, float) and setting == 0.0


def squared_kernels(params) -> jax.Array:
    """The sum of every squared weight of every `kernel` (dense and convolution weights; biases
    are not penalised, as Keras' `kernel_regularizer` leaves them)."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    kernels = [leaf for path, leaf in leaves if getattr(path[-1], "key", None) == "kernel"]
    return sum(jnp.sum(jnp.square(k)) for k in kernels)


@LOSSES.register("categorical")
def categorical_cross_entropy(
    logits_BxK: jax.Array,
    y_BxK: jax.Array,
    *,
    params=None,
    label_smoothing: float = 0.0,
    l2: float = 0.0,
) -> jax.Array:
    """Mean softmax cross-entropy from logits (numerically stable), the targets smoothed to
    `(1 - label_smoothing) * y + label_smoothing / K`, plus `l2` times the squared kernels."""
    if not is_zero(label_smoothing):
        y_BxK = optax.smooth_labels(y_BxK, label_smoothing)
    loss = optax.softmax_cross_entropy(logits_BxK, y_BxK).mean()
    return loss if params is None or is_zero(l2) else loss + l2 * squared_kernels(params)


@LOSSES.register("binary")
def binary_cross_entropy(
    logits_BxK: jax.Array, y_BxK: jax.Array, *, params=None, l2: float = 0.0
) -> jax.Array:
    """The tutorial's loss: binary cross-entropy over the 10 softmax outputs, as Keras computed it,
    plus `l2` times the squared kernels.

    Keras clipped the probabilities to [1e-7, 1 - 1e-7] and passed no gradient past the clip, so a
    saturated output stops teaching; with raw pixels that decides how softmax regression trains,
    which is why it is reproduced here rather than computed from logits.
    """
    p_BxK = jnp.clip(jax.nn.softmax(logits_BxK), KERAS_EPSILON, 1 - KERAS_EPSILON)
    loss = -(y_BxK * jnp.log(p_BxK) + (1 - y_BxK) * jnp.log1p(-p_BxK)).mean()
    return loss if params is None or is_zero(l2) else loss + l2 * squared_kernels(params)


def make_loss(name: str, settings: dict[str, Any]) -> Callable[..., jax.Array]:
    """`loss(logits_BxK, y_BxK, params)` of the registered loss `name` with `settings` (floats
    may be traced); the parameters reach it only if it takes them."""
    fn = LOSSES.get(name)
    wants_params = "params" in inspect.signature(fn).parameters

    def loss(logits_BxK: jax.Array, y_BxK: jax.Array, params) -> jax.Array:
        extra = {"params": params} if wants_params else {}
        return fn(logits_BxK, y_BxK, **extra, **settings)

    return loss
