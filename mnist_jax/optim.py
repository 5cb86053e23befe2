"""Optimizers and learning-rate schedules.

The learning rate is data, not a constant baked into the compiled program: every optimizer is
wrapped in `optax.inject_hyperparams`, and each step sets its rate from a schedule of
`(step, peak)`. That lets a sweep train many rates in one program, and the batch logs show the
rate actually used. Adding an optimizer or a schedule is one entry in a dict.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

Schedule = Callable[[jax.Array, jax.Array], jax.Array]

OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": optax.sgd,
    "adam": optax.adam,
}


def constant(step: jax.Array, peak: jax.Array) -> jax.Array:
    del step
    return peak


def lab_decay(step: jax.Array, peak: jax.Array) -> jax.Array:
    """The lab's decay (its file 2.1): `0.0001 + peak * exp(-step / 2000)`, peak 0.003 there."""
    return 0.0001 + peak * jnp.exp(-step / 2000)


SCHEDULES: dict[str, Schedule] = {"constant": constant, "lab_decay": lab_decay}


def make_optimizer(name: str) -> optax.GradientTransformation:
    """The named optimizer with its learning rate exposed in `opt_state.hyperparams`."""
    return optax.inject_hyperparams(OPTIMIZERS[name])(learning_rate=0.0)


def with_learning_rate(opt_state, learning_rate: jax.Array):
    """`opt_state` with the rate the next update will use."""
    hyperparams = {
        **opt_state.hyperparams,
        "learning_rate": jnp.asarray(learning_rate, jnp.float32),
    }
    return opt_state._replace(hyperparams=hyperparams)
