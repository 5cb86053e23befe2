"""Adversarial inputs, pure JAX: the fast gradient sign method and projected gradient descent.

Both take `loss_of_x`, a differentiable scalar loss of a batch of model inputs (the summed
cross-entropy of a model's logits: each example's gradient is then its own loss's), the inputs
`x`, the budget `epsilon` (an L-infinity distance, in the pixel scale the model sees: 0..1 for
scaled pixels, 0..255 raw) and that scale's `low` and `high`. They know nothing of models or
checkpoints, so the same function serves `evaluate --attack` and an adversarial training step:

    x_adv = attacks.fgsm(lambda x: cross_entropy(model.apply(params, x), y), x, 0.1, 0.0, 1.0)
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

PGD_STEPS = 10  # Madry et al.'s MNIST attack takes 40 of 0.01 at epsilon 0.3; 10 is cheaper
PGD_STEP_FRACTION = 2.5  # each step moves epsilon * 2.5 / steps: the ball is crossed and back


def fgsm(
    loss_of_x: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    epsilon: float | jax.Array,
    low: float,
    high: float,
) -> jax.Array:
    """One step of `epsilon` along the sign of the loss's gradient (Goodfellow et al., 2015),
    clipped to [low, high]. No gradient flows back through the attack."""
    g = jax.grad(loss_of_x)(x)
    return jax.lax.stop_gradient(jnp.clip(x + epsilon * jnp.sign(g), low, high))


def pgd(
    loss_of_x: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    epsilon: float | jax.Array,
    low: float,
    high: float,
    steps: int = PGD_STEPS,
    step_size: float | jax.Array | None = None,
) -> jax.Array:
    """`steps` signed-gradient steps of `step_size` (by default `PGD_STEP_FRACTION * epsilon /
    steps`), each projected back into the `epsilon` ball around `x` and into [low, high]
    (Madry et al., 2018), from `x` itself: deterministic, and at least as strong as FGSM's
    first step whenever `step_size * steps >= epsilon`."""
    step_size = PGD_STEP_FRACTION * epsilon / steps if step_size is None else step_size
    grad = jax.grad(loss_of_x)

    def step(_, x_adv):
        moved = x_adv + step_size * jnp.sign(grad(x_adv))
        return jnp.clip(jnp.clip(moved, x - epsilon, x + epsilon), low, high)

    return jax.lax.stop_gradient(jax.lax.fori_loop(0, steps, step, x))


ATTACKS = {"fgsm": fgsm, "pgd": pgd}
