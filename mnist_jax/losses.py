"""Losses and metrics, all from logits `logits_BxK` and one-hot targets `y_BxK`.

Adding a loss is one function and one entry in `LOSSES`.
"""

import jax
import jax.numpy as jnp
import optax

KERAS_EPSILON = 1e-7


def categorical_cross_entropy(logits_BxK: jax.Array, y_BxK: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy, computed from logits for numerical stability."""
    return optax.softmax_cross_entropy(logits_BxK, y_BxK).mean()


def binary_cross_entropy(logits_BxK: jax.Array, y_BxK: jax.Array) -> jax.Array:
    """The tutorial's loss: binary cross-entropy over the 10 softmax outputs, as Keras computed it.

    Keras clipped the probabilities to [1e-7, 1 - 1e-7] and passed no gradient past the clip, so a
    saturated output stops teaching; with raw pixels that decides how softmax regression trains,
    which is why it is reproduced here rather than computed from logits.
    """
    p_BxK = jnp.clip(jax.nn.softmax(logits_BxK), KERAS_EPSILON, 1 - KERAS_EPSILON)
    return -(y_BxK * jnp.log(p_BxK) + (1 - y_BxK) * jnp.log1p(-p_BxK)).mean()


LOSSES = {"categorical": categorical_cross_entropy, "binary": binary_cross_entropy}


def accuracy(logits_BxK: jax.Array, y_BxK: jax.Array) -> jax.Array:
    """Classification accuracy: the argmax is the true class."""
    return (logits_BxK.argmax(-1) == y_BxK.argmax(-1)).mean()


def binary_accuracy(logits_BxK: jax.Array, y_BxK: jax.Array) -> jax.Array:
    """Mean over all K outputs of `round(p) == y`: what Keras 1/2 reported as "acc" with a binary
    loss, and the figure the tutorial quotes. One wrong argmax typically costs 2 of 10 outputs."""
    return (jnp.round(jax.nn.softmax(logits_BxK)) == y_BxK).mean()


def metrics(logits_BxK: jax.Array, y_BxK: jax.Array, loss_name: str) -> dict[str, jax.Array]:
    return {
        "loss": LOSSES[loss_name](logits_BxK, y_BxK),
        "accuracy": accuracy(logits_BxK, y_BxK),
        "binary_accuracy": binary_accuracy(logits_BxK, y_BxK),
    }
